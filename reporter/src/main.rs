//! The `vigil-reporter` command line: the clap definitions and the
//! dispatch; each subcommand's body is in [`cli`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// mimalloc instead of glibc's malloc: under ingest load glibc's
/// `_int_malloc`, `_int_free` and `malloc_consolidate` took about a fifth of
/// the reporter's CPU (every report is parsed into thousands of strings and
/// freed again; BENCHMARKS.md, "Reporter ingest from outside").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::reports::ExportFormat;
use cli::users::Role;
use cli::StoreArgs;

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
    /// Delete stored reports received more than DURATION ago (`90d`), in
    /// batches; each host's newest report, the latest results, the daily
    /// roll-ups and the audit log stay.
    Prune {
        #[arg(long, value_name = "DURATION")]
        older_than: String,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
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
            cli::audit::verify_offline(
                file,
                certificate,
                public_key.as_deref(),
                data.as_ref(),
                config.as_ref(),
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

async fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Render {
            what:
                RenderCmd::Brochure {
                    output,
                    data,
                    config,
                },
        } => cli::reports::brochure(output, data, config).await,
        Cmd::Prune {
            older_than,
            data,
            config,
        } => cli::reports::prune(older_than, data, config).await,
        Cmd::Export {
            format,
            output,
            data,
            config,
        } => cli::reports::export(format, output, data, config).await,
        Cmd::Audit {
            cmd:
                AuditCmd::Verify {
                    data,
                    config,
                    public_key,
                    witness,
                    ..
                },
        } => cli::audit::verify(data, config, public_key, witness).await,
        Cmd::Audit {
            cmd: AuditCmd::Key { data, config },
        } => cli::audit::key(data, config),
        Cmd::Audit {
            cmd:
                AuditCmd::Export {
                    output,
                    data,
                    config,
                },
        } => cli::audit::export(output, data, config).await,
        Cmd::Policy {
            cmd:
                PolicyCmd::Publish {
                    file,
                    data,
                    config,
                    by,
                },
        } => cli::policy::publish(file, data, config, by).await,
        Cmd::Agent { cmd } => match cmd {
            AgentCmd::List { at } => cli::agents::list(at).await,
            AgentCmd::Revoke { host, at } => cli::agents::revoke(host, at).await,
            AgentCmd::AllowReenroll { host, at } => cli::agents::allow_reenroll(host, at).await,
            AgentCmd::Approve { host, roles, at } => cli::agents::approve(host, roles, at).await,
        },
        Cmd::User { cmd } => match cmd {
            UserCmd::Add {
                name,
                role,
                data,
                config,
                password_stdin,
            } => cli::users::add(name, role, data, config, password_stdin).await,
            UserCmd::List { at } => cli::users::list(at).await,
            UserCmd::Disable { name, at } => cli::users::disable(name, at).await,
            UserCmd::Enable { name, at } => cli::users::enable(name, at).await,
            UserCmd::Rotate { name, at } => cli::users::rotate(name, at).await,
        },
        Cmd::Serve {
            config,
            listen,
            data,
            plain_http,
        } => cli::serve::serve(config, listen, data, plain_http).await,
    }
}
