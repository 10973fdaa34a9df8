//! Backup tool output: `restic snapshots --json`, `borg list --json`,
//! `borg info --json` (encryption), MANIFEST files, `restic ls` lines, set
//! names carrying dates, zones and times. Input: the first byte picks one.
//! Properties: no panic, no hang; a redacted location keeps no password.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{select, split_lines};
use vigil_rules::checks::backup_freshness::{
    parse_borg_encryption, parse_borg_list, parse_manifest, parse_restic_snapshots, parse_time,
    parse_zone, path_covers, redact_location, restic_ls_path, set_time_from_name, Zone,
};

fn zone() -> Zone {
    // A zone with DST gaps and folds: naive times inside them must not panic.
    parse_zone("Europe/Berlin").unwrap_or_else(|e| panic!("{e}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 8) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which {
        0 => {
            let _ = parse_restic_snapshots(text);
        }
        1 => {
            let _ = parse_borg_list(text, zone());
        }
        2 => {
            let _ = parse_borg_encryption(text);
        }
        3 => {
            let _ = parse_manifest(text, zone());
        }
        4 => {
            for line in text.lines() {
                if let Some(p) = restic_ls_path(line) {
                    let _ = path_covers(&p, "/srv/www");
                    let _ = path_covers("/srv", &p);
                }
            }
        }
        5 => {
            let _ = set_time_from_name(text, zone());
        }
        6 => {
            let parts = split_lines(text, 2);
            if let (Some(z), Some(t)) = (parts.first(), parts.get(1)) {
                if let Ok(z) = parse_zone(z) {
                    let _ = parse_time(t, z);
                }
            }
        }
        _ => {
            let r = redact_location(text);
            if let Some((_, after)) = text.split_once("://") {
                let authority = after.split('/').next().unwrap_or("");
                if let Some((userinfo, _)) = authority.rsplit_once('@') {
                    if let Some((_, pw)) = userinfo.split_once(':') {
                        if pw.len() >= 4
                            && pw.bytes().all(|b| b.is_ascii_lowercase())
                            && text.matches(pw).count() == 1
                        {
                            assert!(!r.contains(pw), "password kept in {r:?}");
                        }
                    }
                }
            }
        }
    }
});
