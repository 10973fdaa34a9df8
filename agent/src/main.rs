//! The `vigil-agent` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigil_agent::collect::HostCtx;
use vigil_agent::config::AgentConfig;
use vigil_agent::engine::{self, RunOptions};
use vigil_agent::pace::{Pace, ScanPriority};
use vigil_rules::format::{self, Format};
use vigil_rules::policy::{self, LoadError};

#[derive(Parser)]
#[command(
    name = "vigil-agent",
    version,
    about = "Verify a host against a written security policy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Verify this host against a policy and print the report.
    Check {
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Run only this control (repeatable).
        #[arg(long = "control", value_name = "ID")]
        controls: Vec<String>,
        /// This host's role (repeatable): only the controls and checks whose
        /// `roles` name one of them run. Replaces the config's `roles`; with
        /// neither, every control runs.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// table (default on a terminal), json (default otherwise), junit or sarif.
        #[arg(long)]
        format: Option<Format>,
        /// Write the report here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Check the tree under DIR as if it were the host's root (for images and tests).
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// The host name to report; defaults to the config's `host`, then the hostname.
        #[arg(long)]
        host: Option<String>,
        /// Where checks keep state between runs.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Accepted exceptions (YAML): failing checks they cover make their control `waived`.
        #[arg(long, value_name = "FILE")]
        waivers: Option<PathBuf>,
        /// Read files for log_secrets, file_integrity and clamav at idle CPU and I/O
        /// priority (the daemon's default; `check` runs at normal priority unless the
        /// config's `scan_priority` says otherwise).
        #[arg(long)]
        idle: bool,
        /// Shared read budget of those checks in MB/s (10^6 bytes), 0 = unlimited
        /// (`check`'s default unless the config's `read_budget_mb_per_s` says otherwise).
        #[arg(long, value_name = "MBPS")]
        read_budget: Option<u64>,
    },
    /// Run the policy's unit tests (FILE.yaml -> FILE.test.yaml): judge given facts, compare with expectations.
    Test {
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
    },
    /// Print the facts each check of a control collects here, as JSON (for policy unit tests).
    Facts {
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        #[arg(long = "control", value_name = "ID")]
        control: String,
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Validate a policy; prints every problem as FILE:LINE:COLUMN: message.
    Validate {
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
    },
    /// Write the SHA-256 baseline of a control's `file_integrity` checks.
    Baseline {
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        #[arg(long = "control", value_name = "ID")]
        control: String,
        /// Baseline the tree under DIR as if it were the host's root.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
        /// Where the baseline's hash is recorded.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Enroll this agent with the reporter: trades the enrollment secret for a
    /// token written to the config's `token_file` (mode 0600).
    Enroll {
        /// The reporter; defaults to the config's `server`.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// The enrollment secret (also read from $VIGIL_ENROLL_SECRET, which
        /// does not show in the process list, or from --secret-file).
        #[arg(
            long,
            value_name = "SECRET",
            env = "VIGIL_ENROLL_SECRET",
            hide_env_values = true
        )]
        secret: Option<String>,
        /// A file holding the enrollment secret.
        #[arg(long, value_name = "FILE", conflicts_with = "secret")]
        secret_file: Option<PathBuf>,
        /// Default /etc/vigil/agent.yaml (when it exists).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The daemon: runs the checks on schedule and ships reports (under systemd).
    Run {
        #[arg(long, value_name = "FILE", default_value = vigil_agent::config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print the systemd drop-in for vigil-agent.service that lets the policy's
    /// erasure sections run (write paths and capabilities), derived from them.
    EraseUnit {
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The agent's state directory (the erasure journal lives there).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/vigil")]
        state_dir: String,
    },
    /// List the check types this build has, with their finding codes and
    /// what to do about each.
    Types {
        /// `table` (the default) or `json`.
        #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// The same as `--format json` (kept for earlier scripts).
        #[arg(long)]
        json: bool,
    },
}

/// Exit codes of the contract.
const OK: u8 = 0;
const FAILED: u8 = 1;
const INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vigil-agent: {e:#}");
            ExitCode::from(INVALID)
        }
    }
}

fn load_policy(path: &std::path::Path) -> Result<policy::Policy, u8> {
    match policy::load(path) {
        Ok(p) => Ok(p),
        Err(LoadError::Invalid(d)) => {
            eprintln!("{d}");
            eprintln!(
                "vigil-agent: {} problem(s) in `{}`; nothing was run",
                d.diags.len(),
                path.display()
            );
            Err(INVALID)
        }
        Err(e) => {
            eprintln!("vigil-agent: {e}");
            Err(INVALID)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs of the daemon: stderr, without timestamps or colours under journald
/// (which adds its own); `RUST_LOG` filters (default `info`).
fn init_logs() {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if journald {
        b.without_time().with_ansi(false).init();
    } else {
        b.with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init();
    }
}

fn enroll(
    server: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<u8> {
    use vigil_agent::client::http::Secret;
    let default = PathBuf::from(vigil_agent::config::DEFAULT_CONFIG);
    let config = config.or_else(|| default.is_file().then_some(default));
    let cfg = match &config {
        Some(path) => match AgentConfig::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return Ok(INVALID);
            }
        },
        None => AgentConfig::default(),
    };
    let secret = match (secret, secret_file) {
        (Some(s), _) => Secret::new(s),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(s) => Secret::new(s.trim()),
            Err(e) => {
                eprintln!(
                    "vigil-agent: cannot read the secret file `{}`: {e}",
                    f.display()
                );
                return Ok(INVALID);
            }
        },
        (None, None) => {
            eprintln!(
                "vigil-agent: no enrollment secret: pass --secret, --secret-file or set VIGIL_ENROLL_SECRET"
            );
            return Ok(INVALID);
        }
    };
    if let Some(s) = &server {
        if let Err(e) = vigil_agent::config::check_server_url(s) {
            eprintln!("vigil-agent: {e}");
            return Ok(INVALID);
        }
    }
    let rt = runtime()?;
    match rt.block_on(vigil_agent::client::enroll::enroll(
        &cfg,
        server.as_deref(),
        &secret,
    )) {
        Ok(done) => {
            println!(
                "enrolled `{}` as agent {}; token written to `{}`",
                done.host,
                done.agent_id,
                done.token_file.display()
            );
            Ok(OK)
        }
        Err(e) => {
            eprintln!("vigil-agent: {e}");
            Ok(INVALID)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<u8> {
    match cli.cmd {
        Cmd::Enroll {
            server,
            secret,
            secret_file,
            config,
        } => enroll(server, secret, secret_file, config),
        Cmd::Run { config } => {
            init_logs();
            let rt = runtime()?;
            let res = rt.block_on(vigil_agent::daemon::run(&config));
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            match res {
                Ok(()) => Ok(OK),
                Err(e) => {
                    tracing::error!("cannot start: {e}");
                    Ok(INVALID)
                }
            }
        }
        Cmd::EraseUnit { policy, state_dir } => {
            let p = match load_policy(&policy) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            match erase_unit(&p, &policy, &state_dir) {
                Some(text) => {
                    print!("{text}");
                    Ok(OK)
                }
                None => {
                    eprintln!(
                        "vigil-agent: `{}` has no erasure check with a built-in deleter or export; the shipped unit is enough",
                        policy.display()
                    );
                    Ok(INVALID)
                }
            }
        }
        Cmd::Validate { policy } => {
            let p = match load_policy(&policy) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let checks: usize = p.controls.iter().map(|c| c.checks.len()).sum();
            println!(
                "{}: policy `{}` version {}: {} controls, {} checks, valid",
                policy.display(),
                p.meta.id,
                p.meta.version,
                p.controls.len(),
                checks
            );
            Ok(OK)
        }
        Cmd::Baseline {
            policy,
            control,
            root,
            state_dir,
        } => {
            let p = match load_policy(&policy) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let ctx = HostCtx {
                state_dir: state_dir.unwrap_or_else(|| HostCtx::live().state_dir),
                root,
                pace: Pace::default(),
            };
            Ok(write_baselines(&p, &control, &ctx))
        }
        Cmd::Types { format, json } => {
            let types = vigil_rules::checks::check_types();
            let mut text = String::new();
            if json || format == "json" {
                text = serde_json::to_string_pretty(&types)? + "\n";
            } else {
                text += "Every check: id, type, every, timeout, roles, with (the type's parameters below).\n\
                         `roles: [ROLE, ...]` on a control or a check: it runs only on hosts with one of\n\
                         those roles (`check --role ROLE`, the config's `roles`); without, on every host.\n\
                         A check's roles narrow its control's (one firewall port list per role). See docs/roles.md.\n\n";
                for t in types {
                    text += &format!("{:18} {}\n", t.name, t.summary);
                    for c in t.codes {
                        text += &format!(
                            "  {:36} {:8} {}\n",
                            c.code,
                            c.severity.as_str(),
                            c.description
                        );
                        text += &format!("  {:36} {:8} fix: {}\n", "", "", c.remediation);
                        if let Some(r) = c.reference {
                            text += &format!("  {:36} {:8} see: {r}\n", "", "");
                        }
                    }
                }
            }
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            Ok(OK)
        }
        Cmd::Test { policy } => Ok(run_policy_tests(&policy)),
        Cmd::Facts {
            policy,
            control,
            root,
            state_dir,
        } => {
            let p = match load_policy(&policy) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let Some(c) = p.control(&control) else {
                eprintln!("vigil-agent: no control `{control}` in the policy");
                return Ok(INVALID);
            };
            let ctx = HostCtx {
                state_dir: state_dir.unwrap_or_else(|| HostCtx::live().state_dir),
                root,
                pace: Pace::default(),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let mut out = serde_json::Map::new();
            for check in &c.checks {
                let value = match rt.block_on(vigil_agent::collect::collect(&check.spec, &ctx)) {
                    Ok(f) => serde_json::to_value(&f)?
                        .get("facts")
                        .cloned()
                        .unwrap_or_default(),
                    Err(e) => serde_json::json!({"collect_error": e.to_string()}),
                };
                out.insert(check.id.clone(), value);
            }
            let text = serde_json::to_string_pretty(&out)? + "\n";
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
            Ok(OK)
        }
        Cmd::Check {
            policy,
            config,
            controls,
            roles,
            format,
            output,
            root,
            host,
            state_dir,
            waivers,
            idle,
            read_budget,
        } => {
            if std::env::var_os("RUST_LOG").is_some() {
                init_logs();
            }
            let cfg = match &config {
                Some(path) => match AgentConfig::load(path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return Ok(INVALID);
                    }
                },
                None => AgentConfig::default(),
            };
            let p = match load_policy(&policy) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let roles = if roles.is_empty() {
                cfg.roles.clone()
            } else {
                roles
            };
            if let Some(bad) = roles.iter().find(|r| !vigil_agent::config::valid_role(r)) {
                eprintln!("vigil-agent: `{bad}` is not a valid role name (use letters, digits, `-`, `_` and `.`)");
                return Ok(INVALID);
            }
            if let Err(e) = engine::select_for(&p, &controls, &roles) {
                eprintln!("vigil-agent: {e}");
                return Ok(INVALID);
            }
            let waivers = match &waivers {
                None => Vec::new(),
                Some(path) => {
                    let text = match std::fs::read_to_string(path) {
                        Ok(t) => t,
                        Err(e) => {
                            eprintln!("vigil-agent: cannot read waivers `{}`: {e}", path.display());
                            return Ok(INVALID);
                        }
                    };
                    match vigil_rules::waivers::parse(&text, &path.display().to_string(), &p) {
                        Ok(w) => w,
                        Err(d) => {
                            eprintln!("{d}");
                            return Ok(INVALID);
                        }
                    }
                }
            };
            if !root.is_dir() {
                eprintln!(
                    "vigil-agent: --root `{}` is not a directory",
                    root.display()
                );
                return Ok(INVALID);
            }
            let ctx = HostCtx {
                state_dir: state_dir
                    .or(cfg.state_dir.clone())
                    .unwrap_or_else(|| HostCtx::live().state_dir),
                root,
                pace: Pace::new(
                    if idle {
                        ScanPriority::Idle
                    } else {
                        cfg.scan_priority.unwrap_or_default()
                    },
                    read_budget.or(cfg.read_budget_mb_per_s).unwrap_or(0),
                ),
            };
            let tty = std::io::stdout().is_terminal() && output.is_none();
            let fmt = format.unwrap_or(if tty { Format::Table } else { Format::Json });
            // Progress on a terminal only, and never beside JSON on stdout.
            let board = (std::io::stderr().is_terminal() && fmt != Format::Json)
                .then(|| Arc::new(vigil_agent::progress::Board::default()));
            let opts = RunOptions {
                host: host.or(cfg.host.clone()).unwrap_or_else(engine::hostname),
                roles,
                controls,
                ctx,
                erasures: engine::ErasureTasks::FromPolicy,
                board: board.clone(),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let ticker = board.map(vigil_agent::progress::Ticker::start);
            let run = rt.block_on(engine::run(&p, &opts));
            drop(ticker);
            let mut report = match run {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("vigil-agent: {e}");
                    return Ok(INVALID);
                }
            };
            if !waivers.is_empty() {
                let today = report.finished_at.date_naive();
                let applied = vigil_rules::waivers::apply(&mut report, &waivers, today);
                for id in &applied.expired {
                    eprintln!("vigil-agent: waiver `{id}` has expired; its control fails again");
                }
                for id in &applied.unused {
                    eprintln!("vigil-agent: waiver `{id}` matched no failing check on this host");
                }
            }
            let colour = tty && std::env::var_os("NO_COLOR").is_none();
            let text = format::render(&report, fmt, colour);
            match &output {
                Some(path) => write_atomic(path, text.as_bytes())
                    .with_context(|| format!("cannot write `{}`", path.display()))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    // A closed pipe (`| head`) is not an error worth a message.
                    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
                }
            }
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
            Ok(if report.all_ok() { OK } else { FAILED })
        }
    }
}

/// `baseline`: writes the baseline of every `file_integrity` check with one in `control`.
fn write_baselines(p: &policy::Policy, control: &str, ctx: &HostCtx) -> u8 {
    use vigil_agent::collect::file_integrity;
    use vigil_rules::checks::CheckSpec;
    let Some(c) = p.controls.iter().find(|c| c.id == control) else {
        eprintln!("vigil-agent: no control `{control}` in the policy");
        return INVALID;
    };
    let mut done = 0;
    for check in &c.checks {
        let CheckSpec::FileIntegrity(params) = &check.spec else {
            continue;
        };
        if params.baseline.is_none() {
            continue;
        }
        match file_integrity::write_baseline(params, ctx) {
            Ok(w) => {
                println!(
                    "{control}/{}: wrote {} entries to `{}` (sha256 {})",
                    check.id, w.entries, w.path, w.sha256
                );
                if let Err(e) = w.recorded {
                    eprintln!("vigil-agent: {e}");
                }
                done += 1;
            }
            Err(e) => {
                eprintln!("vigil-agent: {control}/{}: {e}", check.id);
                return FAILED;
            }
        }
    }
    if done == 0 {
        eprintln!(
            "vigil-agent: control `{control}` has no `file_integrity` check with a `baseline`"
        );
        return INVALID;
    }
    OK
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("vigil-report")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// `test`: 0 when every case holds, 1 naming each that failed, 2 on an invalid file.
fn run_policy_tests(policy_path: &std::path::Path) -> u8 {
    use vigil_rules::policytest;
    let p = match load_policy(policy_path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let file = policytest::test_file_for(policy_path);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "vigil-agent: cannot read the tests `{}`: {e}",
                file.display()
            );
            return INVALID;
        }
    };
    let cases = match policytest::parse(&text, &file, &p) {
        Ok(c) => c,
        Err(d) => {
            eprintln!("{d}");
            return INVALID;
        }
    };
    let mut failed = 0;
    for case in &cases {
        let o = policytest::run(case, &p);
        if o.passed {
            println!("ok    {} ({}/{})", o.name, case.control, case.check);
        } else {
            failed += 1;
            println!(
                "FAIL  {} ({}/{}): {}",
                o.name, case.control, case.check, o.detail
            );
        }
    }
    println!("{} passed, {} failed", cases.len() - failed, failed);
    if failed == 0 {
        OK
    } else {
        FAILED
    }
}

/// The drop-in `erase-unit` prints; `None` when the policy's erasure needs nothing.
fn erase_unit(p: &policy::Policy, file: &std::path::Path, state_dir: &str) -> Option<String> {
    use vigil_agent::act::preflight::{unit_needs, Needs};
    use vigil_rules::checks::CheckSpec;
    let mut needs = Needs::default();
    for c in p.controls.iter().flat_map(|c| c.checks.iter()) {
        if let CheckSpec::Erasure(e) = &c.spec {
            unit_needs(e, &mut needs);
        }
    }
    if needs.paths.is_empty() && needs.caps.is_empty() {
        return None;
    }
    needs.paths.insert(state_dir.to_owned());
    let mut out = format!(
        "# /etc/systemd/system/vigil-agent.service.d/erasure.conf\n\
         # Generated by `vigil-agent erase-unit --policy {}` (policy `{}` version {}):\n\
         # what the erasure sections' built-in deleters write, and the capabilities\n\
         # they need. Regenerate when the policy's erasure sections change.\n\
         [Service]\n",
        file.display(),
        p.meta.id,
        p.meta.version
    );
    // A path under another listed one is writable already.
    let listed = needs.paths.clone();
    let covered = |p: &str| {
        listed
            .iter()
            .any(|q| q != p && (q == "/" || p.starts_with(&format!("{q}/"))))
    };
    for path in needs.paths.iter().filter(|p| !covered(p)) {
        // `-`: a path this host does not have does not stop the unit; the
        // agent's preflight still refuses an erasure it could not finish.
        out.push_str(&format!("ReadWritePaths=-{path}\n"));
    }
    if !needs.caps.is_empty() {
        // Added to the unit's CapabilityBoundingSet (assignments accumulate).
        let caps: Vec<&str> = needs.caps.iter().map(|c| c.name()).collect();
        out.push_str(&format!("CapabilityBoundingSet={}\n", caps.join(" ")));
    }
    Some(out)
}
