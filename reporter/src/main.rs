//! The `vigil-reporter` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use vigil_reporter::config::ReporterConfig;
use vigil_reporter::{app, auth, tls};

#[derive(Parser)]
#[command(
    name = "vigil-reporter",
    version,
    about = "The central service vigil agents report to"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API (TLS by default, with a self-signed certificate when none is configured).
    Serve {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Default 127.0.0.1:8443.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Default ./vigil-data.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Serve plain HTTP (behind a TLS proxy, or on loopback for tests).
        #[arg(long)]
        plain_http: bool,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Enrolled agents: list them, revoke one, allow a re-enrollment, approve roles.
    Agent {
        #[command(subcommand)]
        cmd: AgentCmd,
    },
    /// Signed policies handed out to agents.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Render a document from the store.
    Render {
        #[command(subcommand)]
        what: RenderCmd,
    },
    /// Export the posture and every host's newest results (JSON, CSV or SARIF 2.1.0).
    Export {
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormat,
        /// Default: standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RenderCmd {
    /// The security brochure PDF (the same as `GET /brochure.pdf`).
    Brochure {
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
    Csv,
    Sarif,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verifies every entry, signature and checkpoint, and the log against
    /// the newest checkpoint witnessed outside the database; exits 1 naming
    /// the first entry altered, removed or reordered.
    Verify {
        /// The reporter's data directory: its database, witness file and
        /// audit key (with `--export` or `--certificate`: only the key).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Verify an exported log offline instead of the database.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// Verify an erasure certificate offline instead.
        #[arg(long, value_name = "FILE", conflicts_with = "export")]
        certificate: Option<PathBuf>,
        /// The reporter's audit public key (base64, as `audit key` prints it,
        /// or a file holding it). Offline checks trust only this key or the
        /// one of `--config`/`--data`, never a key the file carries.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
        /// A witness file to check the log against (default: the data
        /// directory's, or the config's `witness_file`).
        #[arg(long, value_name = "FILE")]
        witness: Option<PathBuf>,
    },
    /// Writes the whole log (entries, checkpoints, public key) as JSON.
    Export {
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Prints the audit log's public key (base64): give it to whoever
    /// verifies certificates and exports offline.
    Key {
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Validates FILE, signs it with the policy key and makes it the policy
    /// agents receive (a running reporter hands it out at the agents' next poll).
    Publish {
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Who publishes it, for the audit log (default: the Unix user).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Adds a user and prints their API token once.
    Add {
        name: String,
        #[arg(long)]
        role: Role,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Also set a password for the web pages, read from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists users: role, whether disabled, when their token was issued.
    List {
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Disables a user: their API token, web sessions and login links stop working.
    Disable {
        name: String,
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Enables a disabled user again.
    Enable {
        name: String,
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Issues a new API token for a user (printed once); the old one stops working.
    Rotate {
        name: String,
        #[command(flatten)]
        at: StoreArgs,
    },
}

#[derive(clap::Args)]
struct StoreArgs {
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Who does this, for the audit log (default: the Unix user).
    #[arg(long)]
    by: Option<String>,
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Every host's newest agent: trusted, requested and pending roles.
    List {
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Revokes the active agent of HOST; HOST may then enroll again.
    Revoke {
        host: String,
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Allows one re-enrollment of HOST within 24 hours; its active agent
    /// keeps working until then, and the new agent keeps its trusted roles.
    AllowReenroll {
        host: String,
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Trusts HOST's agent with ROLES (comma-separated), or with the roles it
    /// requested when --roles is absent.
    Approve {
        host: String,
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
        #[command(flatten)]
        at: StoreArgs,
    },
}

/// Shortest enrollment secret `serve` accepts (issue 19, item 3).
const MIN_SECRET_LEN: usize = 16;

fn actor(by: Option<String>) -> String {
    by.or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into())
}

async fn state_at(at: &StoreArgs) -> anyhow::Result<vigil_reporter::state::Shared> {
    let cfg = config_of(at.config.as_ref())?;
    let data = data_dir(at.data.clone(), &cfg);
    app::state(&cfg, &data).await
}

async fn user_cmd(cmd: UserCmd) -> anyhow::Result<()> {
    use vigil_reporter::users;
    match cmd {
        UserCmd::Add { .. } => anyhow::bail!("internal: `user add` is handled apart"),
        UserCmd::List { at } => {
            let state = state_at(&at).await?;
            for u in users::list_users(&state.store, state.staff_token_lifetime_ms).await? {
                println!(
                    "{}\t{}\t{}\ttoken issued {}{}",
                    u.name,
                    u.role,
                    match &u.disabled_at {
                        Some(d) => format!("disabled {d}"),
                        None => "enabled".into(),
                    },
                    u.token_issued_at.as_deref().unwrap_or("?"),
                    u.token_expires_at
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        UserCmd::Disable { name, at } => {
            let state = state_at(&at).await?;
            if !users::set_disabled(&state.store, &state.audit, &name, true, &actor(at.by)).await? {
                anyhow::bail!("no enabled user `{name}`");
            }
            eprintln!("disabled `{name}`: their token, sessions and login links no longer work");
            Ok(())
        }
        UserCmd::Enable { name, at } => {
            let state = state_at(&at).await?;
            if !users::set_disabled(&state.store, &state.audit, &name, false, &actor(at.by)).await?
            {
                anyhow::bail!("no disabled user `{name}`");
            }
            eprintln!("enabled `{name}`");
            Ok(())
        }
        UserCmd::Rotate { name, at } => {
            let state = state_at(&at).await?;
            let token = users::rotate_token(&state.store, &state.audit, &name, &actor(at.by))
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user `{name}`"))?;
            eprintln!("new API token of `{name}` (shown once; the old one no longer works):");
            println!("{token}");
            Ok(())
        }
    }
}

async fn agent_cmd(cmd: AgentCmd) -> anyhow::Result<()> {
    use vigil_reporter::enrollment;
    match cmd {
        AgentCmd::List { at } => {
            let state = state_at(&at).await?;
            for a in enrollment::list(&state.store).await? {
                println!(
                    "{}\t{}\troles [{}]\tpending [{}]\t{}{}{}",
                    a.host,
                    a.agent_id,
                    a.roles.join(", "),
                    a.pending_roles.join(", "),
                    match &a.revoked_at {
                        Some(r) => format!("revoked {r}"),
                        None => "active".into(),
                    },
                    if a.cert_bound {
                        "\tcertificate-bound"
                    } else {
                        ""
                    },
                    a.reenroll_allowed_until
                        .map(|u| format!("\tre-enrollment allowed until {u}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        AgentCmd::Revoke { host, at } => {
            let state = state_at(&at).await?;
            let id = enrollment::revoke_host(&state.store, &state.audit, &host, &actor(at.by))
                .await?
                .ok_or_else(|| anyhow::anyhow!("host `{host}` has no active agent"))?;
            eprintln!("revoked agent {id} of `{host}`; the host may enroll again");
            Ok(())
        }
        AgentCmd::AllowReenroll { host, at } => {
            let state = state_at(&at).await?;
            if !enrollment::allow_reenroll(&state.store, &state.audit, &host, &actor(at.by)).await?
            {
                anyhow::bail!(
                    "host `{host}` has no active agent; it may enroll without permission"
                );
            }
            eprintln!("`{host}` may enroll again within 24 hours; its agent works until then");
            Ok(())
        }
        AgentCmd::Approve { host, roles, at } => {
            if let Some(r) = &roles {
                if !enrollment::valid_roles(r) {
                    anyhow::bail!("`--roles` must be at most 32 short words");
                }
            }
            let state = state_at(&at).await?;
            let set =
                enrollment::approve_roles(&state.store, &state.audit, &host, roles, &actor(at.by))
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("host `{host}` has no active agent"))?;
            eprintln!("`{host}` is trusted with roles [{}]", set.join(", "));
            Ok(())
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Role {
    Admin,
    Auditor,
}

/// Exit code of an offline verification: 0 verified, 1 failed, 2 could not run.
fn offline_exit(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vigil-reporter: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Audit {
        cmd:
            AuditCmd::Verify {
                certificate,
                export,
                public_key,
                data,
                config,
                ..
            },
    } = &cli.cmd
    {
        // Offline: no runtime, no database; the key is the reporter's own.
        let offline = |file: &PathBuf, certificate: bool| {
            offline_exit(
                reporter_public_key(public_key.as_deref(), data.as_ref(), config.as_ref())
                    .and_then(|key| match certificate {
                        true => verify_certificate_file(file, &key),
                        false => verify_export_file(file, &key),
                    }),
            )
        };
        if let Some(file) = certificate {
            return offline(file, true);
        }
        if let Some(file) = export {
            return offline(file, false);
        }
    }
    init_logs();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil-reporter: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-reporter: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    if journald {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.init();
    }
}

fn config_of(path: Option<&PathBuf>) -> anyhow::Result<ReporterConfig> {
    match path {
        Some(p) => ReporterConfig::load(p),
        None => Ok(ReporterConfig::default()),
    }
}

fn print_verification(v: &vigil_reporter::audit::Verification) -> bool {
    if v.ok {
        println!(
            "audit log verified: {} entries, {} checkpoints, root {}, key {}",
            v.entries, v.checkpoints, v.root, v.public_key
        );
    } else {
        for p in &v.problems {
            eprintln!("{p}");
        }
        match v.first_bad_seq {
            Some(seq) => eprintln!("audit log FAILED verification: first bad entry {seq}"),
            None => eprintln!("audit log FAILED verification"),
        }
    }
    v.ok
}

/// The audit public key offline checks trust: `--public-key` (base64, or a
/// file holding it), else the one derived from the reporter's key file (the
/// config's `audit_key`, or `DATA/audit/ed25519.key`). Never one that the
/// checked file carries: with none of these, the check refuses to run.
fn reporter_public_key(
    given: Option<&str>,
    data: Option<&PathBuf>,
    config: Option<&PathBuf>,
) -> anyhow::Result<String> {
    use base64::Engine as _;
    let decodes = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(k.trim())
            .is_ok_and(|b| b.len() == 32)
    };
    if let Some(k) = given {
        if decodes(k) {
            return Ok(k.trim().to_owned());
        }
        let text = std::fs::read_to_string(k).with_context(|| {
            format!("`--public-key`: `{k}` is neither a base64 ed25519 key nor a readable file")
        })?;
        if decodes(&text) {
            return Ok(text.trim().to_owned());
        }
        anyhow::bail!("`--public-key`: `{k}` does not hold a base64 ed25519 key");
    }
    let cfg = config_of(config)?;
    let key_file = cfg
        .audit_key
        .clone()
        .unwrap_or_else(|| data_dir(data.cloned(), &cfg).join("audit/ed25519.key"));
    if !key_file.exists() {
        anyhow::bail!(
            "no audit key to verify against: give `--public-key KEY` (the reporter prints it with `vigil-reporter audit key`), or `--data DIR`/`--config FILE` of the reporter; a key the file carries is never trusted (`{}` does not exist)",
            key_file.display()
        );
    }
    vigil_reporter::audit::public_key_of_file(&key_file)
}

fn verify_certificate_file(file: &std::path::Path, key: &str) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
    let cert: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("`{}` is not JSON", file.display()))?;
    let problems =
        vigil_reporter::audit::verify_certificate(&cert, key, vigil_reporter::closures::STATES);
    if problems.is_empty() {
        println!(
            "erasure certificate verified: account `{}` closed at {}",
            cert.get("account").and_then(|v| v.as_str()).unwrap_or("?"),
            cert.get("closed_at")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
        );
        return Ok(true);
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!("erasure certificate FAILED verification");
    Ok(false)
}

fn verify_export_file(file: &std::path::Path, key: &str) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
    let export: vigil_reporter::audit::Export = serde_json::from_slice(&bytes)
        .with_context(|| format!("`{}` is not an audit export", file.display()))?;
    Ok(print_verification(&vigil_reporter::audit::verify(
        &export,
        Some(key),
    )))
}

fn data_dir(data: Option<PathBuf>, cfg: &ReporterConfig) -> PathBuf {
    data.or(cfg.data.clone())
        .unwrap_or_else(|| PathBuf::from("vigil-data"))
}

fn write_out(output: Option<&PathBuf>, bytes: &[u8]) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            // Written beside, then renamed: a reader never sees half a file.
            let tmp = p.with_extension("partial");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, p))
                .with_context(|| format!("cannot write `{}`", p.display()))
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), bytes)
            .context("cannot write to standard output"),
    }
}

async fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Render {
            what:
                RenderCmd::Brochure {
                    output,
                    data,
                    config,
                },
        } => {
            let cfg = config_of(config.as_ref())?;
            let state = app::state(&cfg, &data_dir(data, &cfg)).await?;
            let pdf = vigil_reporter::brochure::brochure_pdf(&state).await?;
            write_out(Some(&output), &pdf)?;
            eprintln!(
                "wrote the brochure to `{}` ({} bytes)",
                output.display(),
                pdf.len()
            );
            Ok(())
        }
        Cmd::Export {
            format,
            output,
            data,
            config,
        } => {
            use vigil_reporter::export;
            let cfg = config_of(config.as_ref())?;
            let state = app::state(&cfg, &data_dir(data, &cfg)).await?;
            let now = vigil_reporter::store::now_ms();
            let posture = vigil_reporter::fleet::compute_posture(&state, now)
                .await
                .map_err(|e| anyhow::anyhow!("cannot compute the posture: {e}"))?;
            let mut reports = Vec::new();
            for (host, at, id) in vigil_reporter::fleet_state::last_reports(&state.store).await? {
                if let Some(body) = state.store.report_body(&id).await? {
                    reports.push((host, at, body));
                }
            }
            let rows = export::rows_of(&reports);
            let text = match format {
                ExportFormat::Json => export::json(&posture, &rows),
                ExportFormat::Csv => export::csv(&rows),
                ExportFormat::Sarif => export::sarif(&rows, env!("CARGO_PKG_VERSION")),
            };
            write_out(output.as_ref(), text.as_bytes())
        }
        Cmd::Audit {
            cmd:
                AuditCmd::Verify {
                    data,
                    config,
                    public_key,
                    witness,
                    ..
                },
        } => {
            let cfg = config_of(config.as_ref())?;
            let data = data_dir(data, &cfg);
            let witness = witness
                .or_else(|| cfg.witness_file.clone())
                .unwrap_or_else(|| vigil_reporter::audit::witness_file(&data));
            let witnessed = vigil_reporter::audit::newest_witnessed(&witness)
                .with_context(|| format!("cannot read the witness file `{}`", witness.display()))?;
            if witnessed.is_none() {
                eprintln!(
                    "note: no witnessed checkpoint in `{}`: a log cut at its end cannot be detected",
                    witness.display()
                );
            }
            let state = app::state(&cfg, &data).await?;
            let export = state.audit.export(&state.store).await?;
            if !print_verification(&vigil_reporter::audit::verify_against(
                &export,
                public_key.as_deref(),
                witnessed.as_ref(),
            )) {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Audit {
            cmd: AuditCmd::Key { data, config },
        } => {
            println!(
                "{}",
                reporter_public_key(None, data.as_ref(), config.as_ref())?
            );
            Ok(())
        }
        Cmd::Audit {
            cmd:
                AuditCmd::Export {
                    output,
                    data,
                    config,
                },
        } => {
            let cfg = config_of(config.as_ref())?;
            let data = data_dir(data, &cfg);
            let state = app::state(&cfg, &data).await?;
            state.audit.checkpoint(&state.store).await?;
            let export = state.audit.export(&state.store).await?;
            std::fs::write(&output, serde_json::to_vec_pretty(&export)?)
                .with_context(|| format!("cannot write `{}`", output.display()))?;
            eprintln!(
                "wrote {} entries and {} checkpoints to {}",
                export.entries.len(),
                export.checkpoints.len(),
                output.display()
            );
            Ok(())
        }
        Cmd::Policy {
            cmd:
                PolicyCmd::Publish {
                    file,
                    data,
                    config,
                    by,
                },
        } => {
            let cfg = config_of(config.as_ref())?;
            let data = data_dir(data, &cfg);
            let blob = app::load_policy(&file)?;
            let state = app::state(&cfg, &data).await?;
            let by = by
                .or_else(|| std::env::var("SUDO_USER").ok())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".into());
            let published = vigil_reporter::policies::publish(&state, blob, &by).await?;
            println!(
                "published policy `{}` version {} (sha256 {}), signed by key {}",
                published.id,
                published.version,
                published.sha256,
                vigil_reporter::policies::public_key_b64(&state.policy_key)
            );
            Ok(())
        }
        Cmd::Agent { cmd } => agent_cmd(cmd).await,
        Cmd::User {
            cmd:
                cmd @ (UserCmd::List { .. }
                | UserCmd::Disable { .. }
                | UserCmd::Enable { .. }
                | UserCmd::Rotate { .. }),
        } => user_cmd(cmd).await,
        Cmd::User {
            cmd:
                UserCmd::Add {
                    name,
                    role,
                    data,
                    config,
                    password_stdin,
                },
        } => {
            let cfg = config_of(config.as_ref())?;
            let data = data_dir(data, &cfg);
            if !vigil_reporter::extract::valid_host(&name) {
                anyhow::bail!("user name `{name}` must be letters, digits, `-`, `.` or `_`");
            }
            let state = app::state(&cfg, &data).await?;
            let password_hash = if password_stdin {
                let mut pw = String::new();
                std::io::stdin()
                    .read_line(&mut pw)
                    .context("cannot read the password from standard input")?;
                let pw = pw.trim_end_matches(['\n', '\r']);
                if pw.chars().count() < 12 {
                    anyhow::bail!("the password must have at least 12 characters");
                }
                Some(auth::hash_password(pw).map_err(anyhow::Error::msg)?)
            } else {
                None
            };
            let token = auth::new_token(auth::STAFF_PREFIX);
            let role = match role {
                Role::Admin => "admin",
                Role::Auditor => "auditor",
            };
            if !vigil_reporter::users::add_user(
                &state.store,
                &state.audit,
                &name,
                role,
                password_hash.as_deref(),
                &token.lookup,
                &token.digest,
            )
            .await?
            {
                anyhow::bail!("user `{name}` already exists");
            }
            eprintln!("added {role} `{name}`; their API token (shown once):");
            println!("{}", token.token);
            Ok(())
        }
        Cmd::Serve {
            config,
            listen,
            data,
            plain_http,
        } => {
            let mut cfg = config_of(config.as_ref())?;
            cfg.plain_http |= plain_http;
            let data = data_dir(data, &cfg);
            let listen: SocketAddr = match listen {
                Some(l) => l,
                None => cfg
                    .listen
                    .as_deref()
                    .unwrap_or("127.0.0.1:8443")
                    .parse()
                    .context("`listen`")?,
            };
            check_secrets(&cfg)?;
            let state = app::state(&cfg, &data).await?;
            // The tree is built once, now, and checked against the newest
            // witnessed checkpoint: a log cut below it is not served.
            let cp = state
                .audit
                .warm_up(&state.store)
                .await
                .context("the audit log does not match its witnessed checkpoints")?;
            tracing::info!(size = cp.size, "audit log loaded");
            if state.enroll_secrets.is_empty() && state.enroll_role_secrets.is_empty() {
                tracing::warn!("no enrollment secret (config `enroll_secrets` or VIGIL_ENROLL_SECRET): agents cannot enroll");
            }
            // Notices: the event scan and the outbox's drainer.
            vigil_reporter::notify::spawn(state.clone());
            vigil_reporter::advisories::spawn(state.clone(), cfg.advisories.clone());
            // Signed checkpoints at intervals, whenever the log has grown.
            let st = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    // Staleness moves closures with time (never proves a phase).
                    if let Err(e) = vigil_reporter::closures::advance_all(&st, "reporter").await {
                        tracing::error!(error = %e, "cannot advance closures");
                    }
                    // Exports on request past their validity are deleted (audited).
                    if let Err(e) =
                        vigil_reporter::exports::sweep(&st, vigil_reporter::store::now_ms()).await
                    {
                        tracing::error!(error = %e, "cannot delete expired exports");
                    }
                    if let Err(e) = st.audit.checkpoint(&st.store).await {
                        tracing::error!(error = %e, "cannot issue an audit checkpoint");
                    }
                }
            });
            let router = app::build(state);
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing requests in flight");
                h.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if cfg.plain_http {
                tracing::info!(%listen, "serving plain HTTP");
                let mut server = axum_server::bind(listen)
                    .handle(handle)
                    .first_request_timeout(app::HEADER_READ_TIMEOUT);
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(app::HEADER_READ_TIMEOUT);
                server.serve(service).await.context("server failed")?;
            } else {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let id = match &cfg.tls {
                    Some(t) => tls::Identity {
                        cert: t.cert.clone(),
                        key: t.key.clone(),
                        generated: false,
                    },
                    None => tls::self_signed(&data)?,
                };
                if id.generated {
                    tracing::warn!(cert = %id.cert.display(), fingerprint = %tls::fingerprint(&id.cert)?,
                        "generated a self-signed certificate; give agents this file as `ca_file`, or configure `tls` with a real one");
                }
                let agent_tls = cfg.agent_tls.clone();
                let server_config =
                    vigil_reporter::mtls::server_config(&id.cert, &id.key, agent_tls.as_ref())?;
                let rustls_config =
                    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server_config));
                // A renewed certificate, a new CA bundle or CRL is picked up
                // within seconds, without a restart; a broken one is refused
                // and the running config kept.
                let watched =
                    vigil_reporter::mtls::watched_files(&id.cert, &id.key, agent_tls.as_ref());
                let reload = rustls_config.clone();
                tokio::spawn(async move {
                    let stamp = |files: &[PathBuf]| -> Vec<Option<std::time::SystemTime>> {
                        files
                            .iter()
                            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
                            .collect()
                    };
                    let mut seen = stamp(&watched);
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        let now = stamp(&watched);
                        if now == seen {
                            continue;
                        }
                        seen = now;
                        match vigil_reporter::mtls::server_config(
                            &id.cert,
                            &id.key,
                            agent_tls.as_ref(),
                        ) {
                            Ok(c) => {
                                reload.reload_from_config(Arc::new(c));
                                tracing::info!(
                                    "TLS files changed: certificate, agent CA and CRLs reloaded"
                                );
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "TLS files changed but do not load; keeping the running config")
                            }
                        }
                    }
                });
                if let Some(a) = &cfg.agent_tls {
                    tracing::info!(ca = %a.ca.display(), crls = a.crls.len(), require = a.require, "agent certificates (mutual TLS) on");
                }
                tracing::info!(%listen, "serving HTTPS");
                let mut server = axum_server::bind_rustls(listen, rustls_config)
                    .handle(handle)
                    .first_request_timeout(app::HEADER_READ_TIMEOUT);
                server
                    .http_builder()
                    .http1()
                    .header_read_timeout(app::HEADER_READ_TIMEOUT);
                server.serve(service).await.context("server failed")?;
            }
            Ok(())
        }
    }
}

/// Refuses to serve with a short enrollment secret (issue 19, item 3): the
/// secret is all that stands between anyone and an enrolled agent.
fn check_secrets(cfg: &ReporterConfig) -> anyhow::Result<()> {
    let env = std::env::var("VIGIL_ENROLL_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    if env
        .as_ref()
        .is_some_and(|s| s.chars().count() < MIN_SECRET_LEN)
    {
        anyhow::bail!("VIGIL_ENROLL_SECRET is shorter than {MIN_SECRET_LEN} characters; use a long random secret (`openssl rand -base64 24`)");
    }
    for (i, s) in cfg.enroll_secrets.iter().enumerate() {
        if s.chars().count() < MIN_SECRET_LEN {
            anyhow::bail!("config `enroll_secrets[{i}]` is shorter than {MIN_SECRET_LEN} characters; use a long random secret (`openssl rand -base64 24`)");
        }
    }
    for (i, s) in cfg.enroll_role_secrets.iter().enumerate() {
        if s.secret.chars().count() < MIN_SECRET_LEN {
            anyhow::bail!("config `enroll_role_secrets[{i}].secret` is shorter than {MIN_SECRET_LEN} characters; use a long random secret (`openssl rand -base64 24`)");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
