//! The fleet as the views judge it, read in compact form and cached per
//! ingest generation.
//!
//! Every ingest transaction bumps `fleet_generation.n` ([`bump_generation`],
//! its last statement, so the counter's row lock is the last one taken). A
//! view reads the counter first, then reuses the latest results and newest
//! reports it read at that generation ([`Cache`]), or reads them again (in
//! one read transaction, one packed row per control and status). The agents (roles,
//! intervals, revocations) change outside ingest and are read on every view
//! (one packed row). Staleness depends on the time and is judged on every
//! view ([`crate::posture::judge`]).
//!
//! INVARIANT: the cached state is at least as new as the generation it is
//! labelled with (the counter is read before the state, and the counter
//! moves in the same transaction as the state), so a view after an ingest
//! commit never shows the state from before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::Row;

use super::*;
use crate::posture::{self, ControlIn, FleetIn, HostIn};
use crate::store::{Backend, Store};

/// Moves the generation the views cache by. Inside the ingest transaction,
/// as its last statement.
pub async fn bump_generation(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE fleet_generation SET n = n + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn generation<'c, E>(e: E) -> Result<i64>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT n FROM fleet_generation WHERE id = 1")
            .fetch_optional(e)
            .await?
            .unwrap_or(0),
    )
}

/// The latest results and newest reports of one generation.
#[derive(Debug)]
struct Latest {
    generation: i64,
    /// Hosts with a newest report or a latest result, sorted, unique.
    names: Vec<String>,
    /// Per name: its newest report (finished_at, report_id, worst status as stored).
    reports: Vec<Option<(i64, String, String)>>,
    /// Status table ([`posture::status_table`]).
    statuses: Vec<String>,
    /// Per control: id, title, (name index, status code, finished_at) by name.
    controls: Vec<(String, String, Vec<posture::Row>)>,
}

/// The views' cache (one per reporter process).
#[derive(Debug, Default)]
pub struct Cache {
    latest: tokio::sync::Mutex<Option<Arc<Latest>>>,
    loads: AtomicU64,
}

impl Cache {
    /// How many times the latest state was read from the store (for tests).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
}

/// The packing aggregate of the backend over `expr`, lines joined by `\n`.
fn packed(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Sqlite => format!("group_concat({expr}, char(10))"),
        Backend::Postgres => format!("string_agg({expr}, chr(10))"),
    }
}

fn tab(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "char(9)",
        Backend::Postgres => "chr(9)",
    }
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} `{v}`"))
}

async fn load(store: &Store) -> Result<Latest> {
    let mut tx = match store.backend {
        Backend::Sqlite => store.pool.begin().await?,
        Backend::Postgres => {
            store
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
    };
    let generation = generation(&mut *tx).await?;
    let rows = sqlx::query("SELECT host, finished_at, report_id, status FROM latest_hosts")
        .fetch_all(&mut *tx)
        .await?;
    let mut reports: Vec<(String, i64, String, String)> = Vec::with_capacity(rows.len());
    for r in &rows {
        reports.push((
            r.try_get("host")?,
            r.try_get("finished_at")?,
            r.try_get("report_id")?,
            r.try_get("status")?,
        ));
    }
    // One row per control and status with its hosts and times packed
    // (comma-separated; host names hold no comma), read from the covering
    // index `latest_results_control` on SQLite: 200,000 results decode as a
    // few dozen rows.
    let sql = match store.backend {
        Backend::Sqlite => "SELECT control_id, status, MIN(title) AS title, group_concat(host) AS hosts, \
             group_concat(finished_at) AS times FROM latest_results GROUP BY control_id, status"
            .to_owned(),
        Backend::Postgres => "SELECT control_id, status, MIN(title) AS title, string_agg(host, ',' ORDER BY host) AS hosts, \
             string_agg(CAST(finished_at AS TEXT), ',' ORDER BY host) AS times FROM latest_results GROUP BY control_id, status"
            .to_owned(),
    };
    let rows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    // control -> (title, [(status, hosts, times)])
    // (status, hosts, times) of one control.
    type Group = (String, String, String);
    let mut per: Vec<(String, String, Vec<Group>)> = Vec::new();
    for r in &rows {
        let control: String = r.try_get("control_id")?;
        let title: String = r.try_get("title")?;
        let hosts: Option<String> = r.try_get("hosts")?;
        let times: Option<String> = r.try_get("times")?;
        let group = (
            r.try_get("status")?,
            hosts.unwrap_or_default(),
            times.unwrap_or_default(),
        );
        match per.iter_mut().find(|p| p.0 == control) {
            Some(p) => {
                if title < p.1 {
                    p.1 = title;
                }
                p.2.push(group);
            }
            None => per.push((control, title, vec![group])),
        }
    }
    let mut names: Vec<String> = reports.iter().map(|r| r.0.clone()).collect();
    let mut statuses_seen: Vec<&str> = Vec::new();
    for (_, _, groups) in &per {
        for (s, hosts, _) in groups {
            names.extend(
                hosts
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned),
            );
            if !statuses_seen.contains(&s.as_str()) {
                statuses_seen.push(s);
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    let statuses = posture::status_table(statuses_seen);
    let index: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let mut by_name: Vec<Option<(i64, String, String)>> = vec![None; names.len()];
    for (h, f, id, s) in reports {
        if let Some(slot) = index
            .get(h.as_str())
            .and_then(|i| by_name.get_mut(*i as usize))
        {
            *slot = Some((f, id, s));
        }
    }
    let mut controls = Vec::with_capacity(per.len());
    for (id, title, groups) in &per {
        let mut rows: Vec<(u32, u8, i64)> = Vec::new();
        for (s, hosts, times) in groups {
            let code = posture::status_code(&statuses, s);
            let hosts = hosts.split(',').filter(|h| !h.is_empty());
            let times = times.split(',').filter(|t| !t.is_empty());
            for (h, ms) in hosts.zip(times) {
                let Some(i) = index.get(h) else { continue };
                let ms: i64 = ms.parse().map_err(|_| corrupt("latest_results time", ms))?;
                rows.push((*i, code, ms));
            }
        }
        rows.sort_unstable_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
        controls.push((id.clone(), title.clone(), rows));
    }
    Ok(Latest {
        generation,
        names,
        reports: by_name,
        statuses,
        controls,
    })
}

/// The newest agent of one host, as the views need it.
#[derive(Debug, Clone)]
struct Agent {
    host: String,
    id: String,
    created_at: i64,
    interval_secs: i64,
    revoked: bool,
    role_set: usize,
}

/// Every host's newest agent (by creation, then id), by host, and the
/// distinct role sets they hold (the first is the empty one).
async fn agents(store: &Store) -> Result<(Vec<Agent>, Vec<Vec<String>>)> {
    let t = tab(store.backend);
    // Roles (JSON) come last: JSON holds no raw tab or newline.
    let sql = format!(
        "SELECT {} AS packed FROM agents",
        packed(
            store.backend,
            &format!(
                "host || {t} || id || {t} || CAST(created_at AS TEXT) || {t} || CAST(interval_secs AS TEXT) || {t} || \
                 (CASE WHEN revoked_at IS NULL THEN '0' ELSE '1' END) || {t} || roles"
            )
        )
    );
    let packed: Option<String> = sqlx::query_scalar(&sql).fetch_one(&store.pool).await?;
    let packed = packed.unwrap_or_default();
    let mut sets: Vec<Vec<String>> = vec![Vec::new()];
    let mut set_of: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Agent> = Vec::new();
    for line in packed.split('\n').filter(|l| !l.is_empty()) {
        let mut f = line.splitn(6, '\t');
        let (Some(host), Some(id), Some(created), Some(interval), Some(revoked), Some(roles)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(corrupt("agents row", line));
        };
        let role_set = match set_of.get(roles) {
            Some(s) => *s,
            None => {
                let r: Vec<String> =
                    serde_json::from_str(roles).map_err(|_| corrupt("agent roles", roles))?;
                let s = sets.iter().position(|x| *x == r).unwrap_or_else(|| {
                    sets.push(r);
                    sets.len() - 1
                });
                set_of.insert(roles, s);
                s
            }
        };
        out.push(Agent {
            host: host.to_owned(),
            id: id.to_owned(),
            created_at: created
                .parse()
                .map_err(|_| corrupt("agent created_at", created))?,
            interval_secs: interval
                .parse()
                .map_err(|_| corrupt("agent interval", interval))?,
            revoked: revoked == "1",
            role_set,
        });
    }
    // Newest first within a host, then one per host.
    out.sort_unstable_by(|a, b| {
        a.host
            .cmp(&b.host)
            .then(b.created_at.cmp(&a.created_at))
            .then(b.id.cmp(&a.id))
    });
    out.dedup_by(|a, b| a.host == b.host);
    Ok((out, sets))
}

/// The fleet as one view reads it: the cached latest state and the agents
/// read now, merged into one sorted host list.
#[derive(Debug)]
pub struct View {
    latest: Arc<Latest>,
    agents: Vec<Agent>,
    role_sets: Vec<Vec<String>>,
    /// The host list: (index into the latest state's names, index into agents).
    hosts: Vec<(Option<u32>, Option<u32>)>,
    /// Per control of the latest state, its rows with host list indices.
    rows: Vec<Vec<(u32, u8, i64)>>,
}

/// Reads the fleet for one view: the agents now, the latest state from the
/// cache when no ingest committed since it was read.
pub async fn view(store: &Store, cache: &Cache) -> Result<View> {
    let latest = {
        let mut slot = cache.latest.lock().await;
        let now = generation(&store.pool).await?;
        match slot.as_ref() {
            Some(l) if l.generation == now => l.clone(),
            _ => {
                let l = Arc::new(load(store).await?);
                cache.loads.fetch_add(1, Ordering::Relaxed);
                *slot = Some(l.clone());
                l
            }
        }
    };
    let (agents, role_sets) = agents(store).await?;
    // Merge the two sorted name lists.
    let mut hosts: Vec<(Option<u32>, Option<u32>)> =
        Vec::with_capacity(latest.names.len().max(agents.len()));
    let mut remap: Vec<u32> = Vec::with_capacity(latest.names.len());
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        let n = latest.names.get(i);
        let a = agents.get(j);
        let at = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
        let (take_n, take_a) = match (n, a) {
            (None, None) => break,
            (Some(_), None) => (true, false),
            (None, Some(_)) => (false, true),
            (Some(n), Some(a)) => match n.as_str().cmp(a.host.as_str()) {
                std::cmp::Ordering::Less => (true, false),
                std::cmp::Ordering::Greater => (false, true),
                std::cmp::Ordering::Equal => (true, true),
            },
        };
        let mut h = (None, None);
        if take_n {
            h.0 = u32::try_from(i).ok();
            remap.push(at);
            i += 1;
        }
        if take_a {
            h.1 = u32::try_from(j).ok();
            j += 1;
        }
        hosts.push(h);
    }
    let rows = latest
        .controls
        .iter()
        .map(|(_, _, rows)| {
            rows.iter()
                .map(|(h, s, ms)| (remap.get(*h as usize).copied().unwrap_or(u32::MAX), *s, *ms))
                .collect()
        })
        .collect();
    Ok(View {
        latest,
        agents,
        role_sets,
        hosts,
        rows,
    })
}

impl View {
    /// The compact input of [`posture::judge`].
    pub fn fleet(&self) -> FleetIn<'_> {
        let hosts = self
            .hosts
            .iter()
            .map(|(n, a)| {
                let a = a.and_then(|a| self.agents.get(a as usize));
                let n = n.map(|n| n as usize);
                let name = n
                    .and_then(|n| self.latest.names.get(n))
                    .map(String::as_str)
                    .or(a.map(|a| a.host.as_str()))
                    .unwrap_or_default();
                let last = n
                    .and_then(|n| self.latest.reports.get(n))
                    .and_then(Option::as_ref);
                HostIn {
                    name,
                    role_set: a.map_or(0, |a| a.role_set),
                    interval_secs: a.map_or(900, |a| a.interval_secs),
                    revoked: a.is_some_and(|a| a.revoked),
                    last: last.map(|l| (l.0, l.1.as_str())),
                    listed: a.is_some() || last.is_some(),
                }
            })
            .collect();
        FleetIn {
            role_sets: self.role_sets.iter().map(Vec::as_slice).collect(),
            hosts,
            statuses: &self.latest.statuses,
            controls: self
                .latest
                .controls
                .iter()
                .zip(&self.rows)
                .map(|((id, title, _), rows)| ControlIn { id, title, rows })
                .collect(),
        }
    }

    /// Per host of the list: its newest agent's id and its worst status as
    /// stored (staleness not applied).
    pub fn host_extra(&self, i: usize) -> (Option<&str>, Option<&str>) {
        let Some((n, a)) = self.hosts.get(i) else {
            return (None, None);
        };
        (
            a.and_then(|a| self.agents.get(a as usize))
                .map(|a| a.id.as_str()),
            n.and_then(|n| self.latest.reports.get(n as usize))
                .and_then(Option::as_ref)
                .map(|r| r.2.as_str()),
        )
    }
}
