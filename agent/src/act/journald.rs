//! The systemd journal in the logs phase: a scan of every entry
//! (`journalctl -o json`) for the account's identifiers, and, with
//! `delete: vacuum`, the deletion journald allows: its files cannot be
//! rewritten entry by entry, so the active file is rotated (`journalctl
//! --rotate`) and the archived files are vacuumed (`journalctl
//! --vacuum-time=1s`), which removes every archived entry, the account's
//! with the rest. With `delete: rotation` nothing is deleted here and the
//! proof waits until journald's own retention (`MaxRetentionSec=`) removed
//! the entries. See docs/erasure.md.
//!
//! This module changes the host (`--rotate`, `--vacuum-time`).

use std::path::PathBuf;
use std::time::Duration;

use vigil_rules::checks::erasure::{Action, JournalDelete, JournalLogs, Outcome, Probe, ProbeKind};

use super::hooks;
use super::journal::Journal;
use super::purge::carries;
use crate::collect::host::HostCtx;

fn base(j: &JournalLogs, ctx: &HostCtx) -> Vec<String> {
    let mut argv = vec!["journalctl".to_owned(), "--no-pager".to_owned()];
    if let Some(d) = &j.directory {
        argv.push(format!("--directory={}", ctx.path(d).display()));
    }
    argv
}

async fn journalctl(argv: Vec<String>, timeout: Duration) -> Result<Vec<u8>, String> {
    let no_env: [(&str, PathBuf); 0] = [];
    let r = hooks::run(&argv, &no_env, timeout).await?;
    if r.ok() {
        Ok(r.stdout)
    } else {
        Err(format!(
            "`{}` failed (exit {}): {}",
            argv.get(2).map_or("journalctl", String::as_str),
            r.exit_code.map_or("by signal".into(), |c| c.to_string()),
            r.stderr_tail
        ))
    }
}

/// (entries, entries carrying an identifier)
async fn scan(
    j: &JournalLogs,
    ids: &[String],
    ctx: &HostCtx,
    timeout: Duration,
) -> Result<(u64, u64), String> {
    let mut argv = base(j, ctx);
    argv.extend(["--output=json".to_owned(), "--all".to_owned()]);
    let out = journalctl(argv, timeout).await?;
    let (mut n, mut carrying) = (0, 0);
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        n += 1;
        if carries(line, ids) {
            carrying += 1;
        }
    }
    Ok((n, carrying))
}

pub async fn phase(
    j: &JournalLogs,
    ids: &[String],
    ctx: &HostCtx,
    timeout: Duration,
    journal: &mut Journal,
    actions: &mut Vec<Action>,
    probes: &mut Vec<Probe>,
) {
    let target = match &j.directory {
        Some(d) => format!("journal {d}"),
        None => "journal".to_owned(),
    };
    let mut state = scan(j, ids, ctx, timeout).await;
    if let (Ok((_, carrying)), JournalDelete::Vacuum) = (&state, j.delete) {
        if *carrying > 0 {
            let what = "journalctl --rotate, --vacuum-time=1s".to_owned();
            let mut rotate = base(j, ctx);
            rotate.push("--rotate".into());
            let mut vacuum = base(j, ctx);
            vacuum.push("--vacuum-time=1s".into());
            let r = match journalctl(rotate, timeout).await {
                Ok(_) => {
                    // Entries written in the second of the rotation are in the
                    // archived file too: let it be older than the cut.
                    tokio::time::sleep(Duration::from_millis(1100)).await;
                    journalctl(vacuum, timeout).await
                }
                Err(e) => Err(e),
            };
            let a = match r {
                Ok(_) => Action::succeeded(
                    what,
                    Some(format!(
                        "{carrying} entr(ies) carried an identifier; archived journal files removed"
                    )),
                    super::now(),
                ),
                Err(e) => Action::failed(what, e),
            };
            journal.record(&a);
            actions.push(a);
            state = scan(j, ids, ctx, timeout).await;
        }
    }
    let outcome = match state {
        Err(reason) => Outcome::Error { reason },
        Ok((0, _)) => Outcome::Error {
            reason: "journalctl shows no entry at all: nothing found is not proof".into(),
        },
        Ok((n, 0)) => Outcome::Clean {
            detail: format!("no entry of {n} carries an identifier"),
        },
        Ok((n, c)) => Outcome::Remaining {
            detail: match j.delete {
                JournalDelete::Rotation => format!(
                    "{c} of {n} entr(ies) carry an identifier; waiting for journald's retention to remove them"
                ),
                JournalDelete::Vacuum => format!("{c} of {n} entr(ies) carry an identifier"),
            },
        },
    };
    probes.push(Probe {
        kind: ProbeKind::Log,
        target,
        outcome,
    });
}
