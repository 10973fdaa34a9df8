//! The baseline: a SHA-256 of every file under chosen paths, written by
//! `vigil-agent baseline` ([`write_baseline`]) and compared with what is
//! there now ([`compare_baseline`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::file_integrity::{Baseline, Diff, DiffKind, Params};

use super::with_buf;
use crate::collect::host::{io_reason, HostCtx};
use crate::pace::{self, Pace};

/// Why a baseline could not be written or compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    #[error(transparent)]
    Cancelled(#[from] pace::Stopped),
    #[error("cannot walk `{path}`: {}", walk_reason(source))]
    Walk {
        path: String,
        #[source]
        source: walkdir::Error,
    },
    #[error("cannot stat `{path}`: {source}")]
    Stat {
        path: String,
        #[source]
        source: walkdir::Error,
    },
    /// `cannot read `/etc/x`: …`; `what` is `read`, `read link`, `create`, `write`.
    #[error("cannot {what} `{path}`: {}", io_reason(source))]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this check has no `baseline` file")]
    NoBaselineFile,
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    #[error("baseline `{0}` does not exist: create it with `vigil-agent baseline --policy FILE --control ID`")]
    Missing(String),
    #[error("cannot read baseline `{baseline}`: {}", io_reason(source))]
    ReadBaseline {
        baseline: String,
        #[source]
        source: std::io::Error,
    },
    #[error("baseline `{baseline}` is not a vigil baseline: {source}")]
    NotABaseline {
        baseline: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("baseline `{baseline}` has schema `{schema}`, expected `{}`", SCHEMA)]
    Schema { baseline: String, schema: String },
    #[error("baseline `{baseline}` covers {covers:?} but the policy says {policy:?}: re-create it with `vigil-agent baseline`")]
    Covers {
        baseline: String,
        covers: Vec<String>,
        policy: Vec<String>,
    },
}

fn walk_reason(e: &walkdir::Error) -> String {
    e.io_error().map_or_else(|| e.to_string(), io_reason)
}

fn io(
    what: &'static str,
    path: impl std::fmt::Display,
) -> impl FnOnce(std::io::Error) -> BaselineError {
    let path = path.to_string();
    move |source| BaselineError::Io { what, path, source }
}

fn sha256_file(path: &Path, buf: &mut [u8], pace: &Pace) -> std::io::Result<String> {
    pace.check()?;
    let mut f = pace.reader(std::fs::File::open(path)?);
    let mut h = Sha256::new();
    loop {
        let k = f.read(buf)?;
        if k == 0 {
            break;
        }
        h.update(buf.get(..k).unwrap_or_default());
    }
    Ok(hex::encode(h.finalize()))
}

/// The baseline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub schema: String,
    pub created_at: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub entries: BTreeMap<String, Entry>,
}

const SCHEMA: &str = "vigil.baseline/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `file` or `symlink`.
    pub kind: String,
    /// Content hash (files) or link target (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Permission bits in octal (`0755`).
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

/// Walks `paths` and hashes every file, in parallel.
fn snapshot(
    paths: &[String],
    exclude: &[String],
    skip: &str,
    ctx: &HostCtx,
) -> Result<BTreeMap<String, Entry>, BaselineError> {
    let mut found: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    for p in paths {
        let real = ctx.path(p);
        if std::fs::symlink_metadata(&real).is_err() {
            continue; // an absent path simply has no entries
        }
        let walk = walkdir::WalkDir::new(&real).follow_links(false).into_iter();
        for e in walk.filter_entry(|e| {
            let host = ctx.display(e.path());
            !exclude
                .iter()
                .any(|x| host == *x || host.starts_with(&format!("{}/", x.trim_end_matches('/'))))
        }) {
            if ctx.pace.is_stopped() {
                return Err(pace::Stopped.into());
            }
            let e = e.map_err(|source| BaselineError::Walk {
                path: source.path().map_or(p.clone(), |x| ctx.display(x)),
                source,
            })?;
            let ft = e.file_type();
            if !(ft.is_file() || ft.is_symlink()) {
                continue;
            }
            let host = ctx.display(e.path());
            if host == skip {
                continue;
            }
            let md = e.metadata().map_err(|source| BaselineError::Stat {
                path: host.clone(),
                source,
            })?;
            found.push((host, e.path().to_path_buf(), md));
        }
    }
    found
        .par_iter()
        .map(|(host, real, md)| {
            with_buf(|buf| {
                let symlink = md.file_type().is_symlink();
                let (sha256, target) = if symlink {
                    let t = std::fs::read_link(real).map_err(io("read link", host))?;
                    (None, Some(t.to_string_lossy().into_owned()))
                } else {
                    let h = sha256_file(real, buf, &ctx.pace).map_err(io("read", host))?;
                    (Some(h), None)
                };
                Ok((
                    host.clone(),
                    Entry {
                        kind: if symlink { "symlink" } else { "file" }.into(),
                        sha256,
                        target,
                        mode: format!("{:04o}", md.mode() & 0o7777),
                        uid: md.uid(),
                        gid: md.gid(),
                        size: md.len(),
                    },
                ))
            })
        })
        .collect()
}

fn record_path(ctx: &HostCtx, baseline: &str) -> PathBuf {
    let key = hex::encode(Sha256::digest(baseline.as_bytes()));
    ctx.state_dir
        .join("file_integrity")
        .join(format!("baseline-{}.sha256", key.get(..16).unwrap_or(&key)))
}

/// What `vigil-agent baseline` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: String,
    pub entries: usize,
    pub sha256: String,
    /// Where the hash was recorded, or why it could not be.
    pub recorded: Result<PathBuf, String>,
}

/// Writes the baseline of `p.paths` to `p.baseline` and records its hash in
/// the state directory.
pub fn write_baseline(p: &Params, ctx: &HostCtx) -> Result<Written, BaselineError> {
    let baseline = p.baseline.as_ref().ok_or(BaselineError::NoBaselineFile)?;
    let entries = snapshot(&p.paths, &p.exclude, baseline, ctx)?;
    let file = BaselineFile {
        schema: SCHEMA.into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        paths: p.paths.clone(),
        exclude: p.exclude.clone(),
        entries,
    };
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(BaselineError::Encode)?;
    bytes.push(b'\n');
    let real = ctx.path(baseline);
    if let Some(dir) = real.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir.display()))?;
    }
    let tmp = real.with_extension("tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, &real))
        .map_err(io("write", real.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let rec = record_path(ctx, baseline);
    let recorded = rec
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&rec, format!("{sha256}\n")))
        .map(|_| rec.clone())
        .map_err(|e| {
            format!(
                "cannot record the hash in `{}`: {}",
                rec.display(),
                io_reason(&e)
            )
        });
    Ok(Written {
        path: baseline.clone(),
        entries: file.entries.len(),
        sha256,
        recorded,
    })
}

pub(super) fn compare_baseline(
    p: &Params,
    baseline: &str,
    ctx: &HostCtx,
) -> Result<Baseline, BaselineError> {
    let real = ctx.path(baseline);
    let bytes = match std::fs::read(&real) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BaselineError::Missing(baseline.to_owned()))
        }
        Err(source) => {
            return Err(BaselineError::ReadBaseline {
                baseline: baseline.to_owned(),
                source,
            })
        }
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let recorded_sha256 = std::fs::read_to_string(record_path(ctx, baseline))
        .ok()
        .map(|s| s.trim().to_owned());
    let file: BaselineFile =
        serde_json::from_slice(&bytes).map_err(|source| BaselineError::NotABaseline {
            baseline: baseline.to_owned(),
            source,
        })?;
    if file.schema != SCHEMA {
        return Err(BaselineError::Schema {
            baseline: baseline.to_owned(),
            schema: file.schema,
        });
    }
    if file.paths != p.paths || file.exclude != p.exclude {
        return Err(BaselineError::Covers {
            baseline: baseline.to_owned(),
            covers: file.paths,
            policy: p.paths.clone(),
        });
    }
    let now = snapshot(&p.paths, &p.exclude, baseline, ctx)?;
    let mut diffs = Vec::new();
    for (path, old) in &file.entries {
        match now.get(path) {
            None => diffs.push(Diff {
                path: path.clone(),
                kind: DiffKind::Removed,
                changes: vec![],
            }),
            Some(new) if new != old => diffs.push(Diff {
                path: path.clone(),
                kind: DiffKind::Changed,
                changes: changes(old, new),
            }),
            Some(_) => {}
        }
    }
    for path in now.keys() {
        if !file.entries.contains_key(path) {
            diffs.push(Diff {
                path: path.clone(),
                kind: DiffKind::Added,
                changes: vec![],
            });
        }
    }
    diffs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Baseline {
        path: baseline.to_owned(),
        sha256,
        recorded_sha256,
        created_at: Some(file.created_at),
        entries: file.entries.len() as u64,
        files_now: now.len() as u64,
        diffs,
    })
}

fn changes(old: &Entry, new: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if old.kind != new.kind {
        out.push(format!("type {} -> {}", old.kind, new.kind));
    }
    if old.sha256 != new.sha256 && old.kind == new.kind && new.kind == "file" {
        out.push("content".into());
    }
    if old.target != new.target && new.kind == "symlink" && old.kind == new.kind {
        out.push(format!(
            "target {} -> {}",
            old.target.as_deref().unwrap_or("?"),
            new.target.as_deref().unwrap_or("?")
        ));
    }
    if old.mode != new.mode {
        out.push(format!("mode {} -> {}", old.mode, new.mode));
    }
    if (old.uid, old.gid) != (new.uid, new.gid) {
        out.push(format!(
            "owner {}:{} -> {}:{}",
            old.uid, old.gid, new.uid, new.gid
        ));
    }
    if old.size != new.size {
        out.push(format!("size {} -> {}", old.size, new.size));
    }
    out
}
