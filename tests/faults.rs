//! Faults, all at once and at random moments (tests/daemon.rs covers each
//! alone, at fixed moments): a reporter and three `vigil-agent run` daemons;
//! the reporter and one agent are killed with SIGKILL and restarted at moments
//! drawn from a seeded RNG (the seed is printed; `VIGIL_FAULTS_SEED` replays
//! one); a report waiting in a second agent's spool is cut in half on disk,
//! and a JSON file that is no report is dropped beside it; the third agent's spool is a 2 MiB tmpfs that is filled to the last
//! byte for a while. Afterwards every report an agent logged as spooled is
//! stored exactly once, nothing is stored twice, the corrupt file is in
//! quarantine with a log line saying so, the bogus report is in `rejected/`,
//! and the agents that were not killed ran throughout and stop cleanly.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_tests::*;

/// A tmpfs mounted for the test, unmounted on drop (even when the test fails).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let mount = require_tool("mount", "mount");
        std::fs::create_dir_all(path).unwrap();
        let o = Command::new(mount)
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs {
            path: path.to_owned(),
        }
    }

    /// Fills the file system with `fill`, to the last byte.
    fn fill(&self) -> PathBuf {
        let p = self.path.join("zz-filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // the last bytes, one at a time
        while f.write(&[0u8]).is_ok_and(|n| n == 1) {}
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A small xorshift RNG: the same seed gives the same faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

fn running(a: &mut DaemonAgent) -> bool {
    a.child
        .as_mut()
        .is_some_and(|c| c.try_wait().ok().flatten().is_none())
}

fn kill9(a: &mut DaemonAgent) {
    if let Some(mut c) = a.child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn random_kills_a_full_spool_disk_and_corrupt_files_lose_and_double_nothing() {
    let seed = std::env::var("VIGIL_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("faults: VIGIL_FAULTS_SEED={seed}");
    let mut rng = Rng(seed);
    // Built first: the two minutes are the test's own.
    binary("vigil-reporter", "vigil-reporter");
    agent();
    let started = Instant::now();

    let data = tempfile::Builder::new()
        .prefix("vigil-faults-")
        .tempdir()
        .unwrap();
    let mut r = Reporter::start(&data.path().join("data"), false, None, &[]);
    let staff = r.add_user("faults-staff", "auditor");

    let mut killed = DaemonAgent::new("faults-killed", &r.base, "");
    let mut corrupt = DaemonAgent::new("faults-corrupt", &r.base, "");
    let mut full = DaemonAgent::new("faults-full", &r.base, "");
    // Declared after the agent whose directory it sits in: unmounted first.
    let disk = Tmpfs::mount(&full.spool(), "2m");
    for a in [&killed, &corrupt, &full] {
        let o = a.enroll(ENROLL_SECRET);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    for a in [&mut killed, &mut corrupt, &mut full] {
        a.start(&[]);
    }
    for a in [&killed, &corrupt, &full] {
        wait_until(30, &format!("a first report from {}", a.host), || {
            !r.stored_report_ids(&staff, &a.host).is_empty()
        });
    }

    // The first fault: the reporter dies, and a report the corrupt agent
    // spools meanwhile is cut in half on disk (bit rot, a torn write).
    r.kill9();
    let mut reporter_kills = 1;
    let spooled_file = || {
        std::fs::read_dir(corrupt.spool())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".json") && !n.starts_with('.') && n != "dropped.count")
    };
    wait_until(10, "a report waiting in the spool", || {
        spooled_file().is_some()
    });
    let bad_name = spooled_file().unwrap();
    let bad_id = bad_name
        .trim_end_matches(".json")
        .split_once('-')
        .map(|(_, id)| id.to_owned())
        .unwrap();
    let text = std::fs::read(corrupt.spool().join(&bad_name)).unwrap();
    let tmp = corrupt.spool().join(".faults.tmp");
    std::fs::write(&tmp, &text[..text.len() / 2]).unwrap();
    std::fs::rename(&tmp, corrupt.spool().join(&bad_name)).unwrap();
    // And JSON that is no report, shipped first (the lowest sequence number).
    let bogus_name = "00000000000000000002-bogus.json";
    std::fs::write(&tmp, "{\"schema\": \"vigil.report/v1\", \"hello\": 1}").unwrap();
    std::fs::rename(&tmp, corrupt.spool().join(bogus_name)).unwrap();
    r.restart();

    // Chaos for a while: the reporter and the `killed` agent die at random
    // moments and come back after random pauses; in the middle, the `full`
    // agent's spool disk is full for a few seconds.
    let chaos = Duration::from_secs(30);
    let chaos_start = Instant::now();
    let mut agent_kills = 0;
    let mut filled: Option<(PathBuf, Instant)> = None;
    let mut disk_was_full = false;
    while chaos_start.elapsed() < chaos {
        std::thread::sleep(rng.millis(300, 2500));
        if !disk_was_full && chaos_start.elapsed() > Duration::from_secs(8) {
            filled = Some((disk.fill(), Instant::now()));
            disk_was_full = true;
        }
        if let Some((filler, since)) = &filled {
            if since.elapsed() > Duration::from_secs(5) {
                std::fs::remove_file(filler).unwrap();
                filled = None;
            }
        }
        match rng.next() % 3 {
            0 => {
                r.kill9();
                reporter_kills += 1;
                std::thread::sleep(rng.millis(0, 1500));
                r.restart();
            }
            1 => {
                kill9(&mut killed);
                agent_kills += 1;
                std::thread::sleep(rng.millis(0, 1500));
                killed.start(&[]);
            }
            _ => {
                // both at once
                r.kill9();
                kill9(&mut killed);
                reporter_kills += 1;
                agent_kills += 1;
                std::thread::sleep(rng.millis(0, 1000));
                killed.start(&[]);
                std::thread::sleep(rng.millis(0, 1000));
                r.restart();
            }
        }
        assert!(running(&mut corrupt), "{}", corrupt.log());
        assert!(running(&mut full), "{}", full.log());
    }
    if let Some((filler, _)) = filled.take() {
        std::fs::remove_file(filler).unwrap();
    }
    eprintln!(
        "faults: {reporter_kills} reporter kills, {agent_kills} agent kills in {:?}",
        chaos_start.elapsed()
    );
    assert!(disk_was_full);

    // The full disk: reports were lost with a clear line, and spooling resumed.
    let log = full.log();
    assert!(
        log.contains("to the spool") && log.contains("it is lost"),
        "no report lost on the full disk:\n{log}"
    );
    eprintln!(
        "faults: {} reports lost while the spool disk was full",
        log.matches("it is lost").count()
    );
    let last_lost = log
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains("it is lost"))
        .unwrap();
    let spooled_after = |a: &DaemonAgent| {
        a.log()
            .lines()
            .skip(last_lost + 1)
            .filter(|l| l.contains("report spooled"))
            .count()
    };
    wait_until(20, "spooling again after the disk was freed", || {
        spooled_after(&full) >= 2
    });

    // Calm: the last restart is up (a SIGTERM before its handlers are
    // installed would kill it outright), and every spool drains.
    wait_until(30, "the killed agent running again", || {
        killed.log().matches("running for host").count() == agent_kills + 1
    });
    for a in [&killed, &corrupt, &full] {
        wait_until(60, &format!("{} spool drained", a.host), || {
            a.spool_len() == 0
        });
    }
    assert!(running(&mut corrupt) && running(&mut full));
    for a in [&mut killed, &mut corrupt, &mut full] {
        assert_eq!(a.stop(), 0, "{}", a.log());
    }

    // Exactly once: every report logged as spooled is stored, once.
    let mut unlogged_total = 0;
    for (a, kills) in [(&killed, agent_kills), (&corrupt, 0), (&full, 0)] {
        let log = a.log();
        assert!(
            !log.contains("dropped the oldest report"),
            "{}: the spool bounds dropped a report:\n{log}",
            a.host
        );
        // The report cut in half was spooled but can never be delivered.
        let spooled: Vec<String> = a
            .spooled_ids()
            .into_iter()
            .filter(|id| *id != bad_id)
            .collect();
        let stored = r.stored_report_ids(&staff, &a.host);
        assert!(!stored.contains(&bad_id), "the corrupt report was stored");
        let mut seen: HashMap<&String, usize> = HashMap::new();
        for id in &stored {
            *seen.entry(id).or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{}: stored twice: {twice:?}", a.host);
        let stored_set: HashSet<&String> = stored.iter().collect();
        let spooled_set: HashSet<&String> = spooled.iter().collect();
        assert_eq!(
            spooled_set.len(),
            spooled.len(),
            "{}: spooled twice",
            a.host
        );
        let missing: Vec<_> = spooled_set.difference(&stored_set).collect();
        assert!(
            missing.is_empty(),
            "{}: logged as spooled, never stored: {missing:?}\n{log}",
            a.host
        );
        // Killed between writing a report and logging it: stored, not logged.
        // At most one per kill, and only for the agent that was killed.
        let unlogged = stored_set.difference(&spooled_set).count();
        assert!(
            unlogged <= kills,
            "{}: {unlogged} stored reports were never spooled ({kills} kills)",
            a.host
        );
        unlogged_total += unlogged;
        eprintln!(
            "faults: {}: {} spooled, {} stored, {unlogged} stored unlogged",
            a.host,
            spooled.len(),
            stored.len()
        );
    }
    eprintln!(
        "faults: {unlogged_total} reports stored without a spool line in all; {:?} in all",
        started.elapsed()
    );

    // The corrupt file: quarantined, with a clear line; the bogus report rejected.
    assert!(
        corrupt.spool().join("quarantine").join(&bad_name).is_file(),
        "{}",
        corrupt.log()
    );
    assert!(
        corrupt.log().contains(&format!(
            "spooled report `{bad_name}` is not valid JSON; moved to quarantine"
        )),
        "{}",
        corrupt.log()
    );
    assert!(
        corrupt.spool().join("rejected").join(bogus_name).is_file(),
        "{}",
        corrupt.log()
    );
    assert!(
        corrupt
            .log()
            .contains(&format!("will never accept report `{bogus_name}`")),
        "{}",
        corrupt.log()
    );
    // A crash mid-write leaves no half report behind to be shipped.
    for a in [&killed, &full] {
        let leftovers: Vec<String> = std::fs::read_dir(a.spool())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert!(leftovers.is_empty(), "{}: {leftovers:?}", a.host);
    }
    // Temp files of the writes that failed on the full disk (not shipped:
    // the spool lists only `<seq>-<id>.json`); reported, not judged.
    let temps = std::fs::read_dir(full.spool())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    eprintln!("faults: {temps} temp files left in the full agent's spool");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the faults test took {:?}; it must stay under two minutes",
        started.elapsed()
    );
    drop(disk);
}
