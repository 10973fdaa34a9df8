//! Running deletion hooks and restic: argv without a shell, stdin closed, a
//! timeout that kills the child, and only a scrubbed last line of stderr kept.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use vigil_rules::checks::erasure::{substitute, valid_account, Action};

use crate::collect::dsn::Dsn;
use crate::collect::host::io_reason;

/// How a command ended.
#[derive(Debug)]
pub struct Ran {
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    /// The last non-empty line of stderr, scrubbed.
    pub stderr_tail: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Why a command gave no exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("empty command")]
    Empty,
    #[error("cannot start `{program}`: {}", io_reason(source))]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` timed out after {} and was killed", humantime::format_duration(*timeout))]
    TimedOut { program: String, timeout: Duration },
    #[error("waiting for `{program}` failed: {}", io_reason(source))]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// restic's and journald's steps report it in their own words.
impl From<RunError> for String {
    fn from(e: RunError) -> String {
        e.to_string()
    }
}

/// Runs `argv` with extra environment; `Err` when it cannot start or times out
/// (the child is killed then).
pub async fn run(
    argv: &[String],
    env: &[(&str, PathBuf)],
    timeout: Duration,
) -> Result<Ran, RunError> {
    let (program, args) = argv.split_first().ok_or(RunError::Empty)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !env.is_empty() {
        // Only what the caller gives: no inherited restic credentials.
        cmd.env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_COMMAND");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|source| RunError::Start {
        program: program.clone(),
        source,
    })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(RunError::TimedOut {
            program: program.clone(),
            timeout,
        }),
        Ok(Err(source)) => Err(RunError::Wait {
            program: program.clone(),
            source,
        }),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail = stderr
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            Ok(Ran {
                exit_code: out.status.code(),
                stdout: out.stdout,
                stderr_tail: scrub_line(tail),
            })
        }
    }
}

/// Runs a hook template for an account; the account is checked again here so
/// that nothing unsafe is ever substituted into an argument.
pub async fn run_hook(template: &[String], account: &str, timeout: Duration) -> Action {
    let program = template.first().cloned().unwrap_or_default();
    let what = format!("hook {program}");
    if !valid_account(account) {
        return Action {
            what,
            ok: false,
            exit_code: None,
            detail: Some("account id is not `[A-Za-z0-9._-]+`; hook not run".into()),
            at: None,
        };
    }
    let argv: Vec<String> = template.iter().map(|a| substitute(a, account)).collect();
    match run(&argv, &[], timeout).await {
        Ok(r) => Action {
            what,
            ok: r.ok(),
            exit_code: r.exit_code,
            detail: (!r.stderr_tail.is_empty()).then_some(r.stderr_tail),
            at: Some(super::now()),
        },
        Err(e) => Action {
            what,
            ok: false,
            exit_code: None,
            detail: Some(e.to_string()),
            at: None,
        },
    }
}

/// Hides what looks like a credential in one line of a program's output:
/// the password of `scheme://user:password@host` and the value of
/// `password=`, `secret=`, `token=`, `key=` style words. Long lines are cut.
pub fn scrub_line(line: &str) -> String {
    let words: Vec<String> = line
        .split(' ')
        .map(|w| {
            if w.contains("://") {
                let url = Dsn::new(w);
                let shown = url.to_string();
                if shown != w {
                    return shown;
                }
            }
            for sep in ['=', ':'] {
                if let Some((k, v)) = w.split_once(sep) {
                    let kl = k.to_ascii_lowercase();
                    if !v.is_empty()
                        && ["pass", "secret", "token", "key", "auth"]
                            .iter()
                            .any(|s| kl.contains(s))
                    {
                        return format!("{k}{sep}[REDACTED]");
                    }
                }
            }
            w.to_owned()
        })
        .collect();
    let out = words.join(" ");
    if out.chars().count() > 300 {
        out.chars().take(300).collect::<String>() + "…"
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_credentials() {
        assert_eq!(
            scrub_line("cannot reach postgres://app:s3cret@db/x password=hunter2 ok"),
            "cannot reach postgres://app:[REDACTED]@db/x password=[REDACTED] ok"
        );
        assert_eq!(scrub_line("token:abc"), "token:[REDACTED]");
        assert_eq!(scrub_line("site acme deleted"), "site acme deleted");
    }

    #[tokio::test]
    async fn hooks_substitute_time_out_and_report_stderr() {
        let t = Duration::from_secs(10);
        let a = run_hook(
            &[
                "sh".into(),
                "-c".into(),
                "echo \"gone $0\" >&2; exit 3".into(),
                "{account}".into(),
            ],
            "acme",
            t,
        )
        .await;
        assert!(!a.ok);
        assert_eq!(a.exit_code, Some(3));
        assert_eq!(a.detail.as_deref(), Some("gone acme"));
        let a = run_hook(
            &["sleep".into(), "30".into()],
            "acme",
            Duration::from_millis(300),
        )
        .await;
        assert!(!a.ok);
        assert!(a.detail.unwrap_or_default().contains("timed out"));
        let a = run_hook(&["true".into()], "../x", t).await;
        assert!(!a.ok);
        let a = run_hook(&["/nonexistent/prog".into()], "acme", t).await;
        assert!(a.detail.unwrap_or_default().contains("cannot start"));
    }
}
