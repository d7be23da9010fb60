//! The `baton` command: `dev`, `serve` and `migrate` run a node, `health`
//! probes one; every other verb is a client of the REST API. Errors print one line to stderr and
//! exit non-zero.

mod apikeys;
mod batches;
mod client;
mod health;
mod output;
mod schedules;
mod search_attributes;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::Limits;
use crate::server::{self, Options};
use crate::telemetry::logs::{self, LogFormat};
use crate::time::SystemClock;
use crate::{claim, dispatch};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Durable execution, pushed to your HTTP handlers"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a development server: embedded SQLite, no setup.
    Dev(DevArgs),
    /// Run a production node on PostgreSQL (any number share one database).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// Probe a node's /healthz (or /readyz): exit 0 when it answers 200.
    Health(health::HealthArgs),
    /// Manage namespaces.
    #[command(subcommand)]
    Namespace(client::NamespaceCmd),
    /// Create, list and revoke namespace-scoped API keys (admin only).
    #[command(subcommand)]
    Apikey(apikeys::ApiKeyCmd),
    /// Register handler endpoints for task queues.
    #[command(subcommand)]
    Endpoint(client::EndpointCmd),
    /// Start, inspect and control workflows.
    #[command(subcommand)]
    Workflow(Box<client::WorkflowCmd>),
    /// Create and control cron and interval schedules that start workflows.
    #[command(subcommand)]
    Schedule(Box<schedules::ScheduleCmd>),
    /// Terminate, cancel, signal, reset or delete the runs a query matches, as a durable job.
    #[command(subcommand)]
    Batch(Box<batches::BatchCmd>),
    /// Inbound webhook sources: verify providers' signed deliveries and map them to workflows.
    #[command(subcommand)]
    Webhook(Box<webhooks::WebhookCmd>),
}

#[derive(Args)]
struct DevArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7233")]
    listen: SocketAddr,
    /// SQLite file, or `:memory:` for a throwaway server.
    #[arg(long, default_value = "baton-dev.db")]
    db: String,
    /// Let tests move the server's clock forward (`POST /api/v1/dev/time/skip`).
    #[arg(long)]
    time_skipping: bool,
    /// Retention of the `default` namespace when this server creates it
    /// (on first start): how long its closed runs are kept. Later changes
    /// go through `baton namespace update`.
    #[arg(long, env = "BATON_DEFAULT_NAMESPACE_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    default_namespace_retention: std::time::Duration,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, env = "BATON_DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "BATON_LISTEN", default_value = "0.0.0.0:7233")]
    listen: SocketAddr,
    /// Retention of the `default` namespace when this server creates it
    /// (on first start): how long its closed runs are kept. Later changes
    /// go through `baton namespace update`.
    #[arg(long, env = "BATON_DEFAULT_NAMESPACE_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    default_namespace_retention: std::time::Duration,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
struct NodeArgs {
    /// Require `Authorization: Bearer <key>` on every API call: this key is
    /// the bootstrap admin, and keys made with `baton apikey create` are
    /// accepted too. Without it the API is open (and makes no keys); an
    /// empty key is an error, never an open API.
    #[arg(long, env = "BATON_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Largest payload (input, result, details) in bytes.
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    max_payload_bytes: u64,
    /// Suggest continue-as-new past this many history events.
    #[arg(long, default_value_t = 4_096)]
    suggest_continue_as_new_events: i64,
    /// Terminate a run past this many history events.
    #[arg(long, default_value_t = 51_200)]
    max_history_events: i64,
    /// Terminate a run past this many history bytes.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    max_history_bytes: u64,
    /// Longest sleep between polls for due work, in milliseconds (wake-ups
    /// usually come much sooner).
    #[arg(long, default_value_t = 1_000)]
    poll_interval_ms: i64,
    /// At shutdown (SIGTERM, Ctrl-C), how long pushes already sent may
    /// take to be answered before they are handed back to other nodes,
    /// e.g. `20s`. Keep it below the orchestrator's grace period.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    drain_timeout: std::time::Duration,
    /// Memory budget of the cache of recently written runs, in MiB: what
    /// a node keeps in memory does not grow with the number of open runs.
    #[arg(long, env = "BATON_RUN_CACHE_MB", default_value_t = 64)]
    run_cache_mb: usize,
    /// Do not serve the web UI at `/ui/`.
    #[arg(long)]
    no_ui: bool,
    /// The URL handlers reach this node's API at, e.g.
    /// `https://baton.example.com`: workflow task pushes carry the
    /// checkpoint URL built from it (docs/protocol.md §5.9). Default:
    /// `http://` (or `https://`) and the listen address.
    #[arg(long, env = "BATON_PUBLIC_URL")]
    public_url: Option<String>,
    /// Past this many history bytes, endpoints that page
    /// (`history_pages`) are sent the newest events of a run's history and
    /// a reference to page in the rest (docs/protocol.md §5.10).
    #[arg(long, env = "BATON_PUSH_HISTORY_BYTES", default_value_t = 1024 * 1024)]
    push_history_bytes: u64,
    /// Payloads (inputs, results, signals, heartbeat details) larger than
    /// this many bytes are stored once, apart from the history, and events
    /// hold a reference (docs/protocol.md §9.1); 0 turns this off.
    #[arg(long, env = "BATON_PAYLOAD_REFERENCE_BYTES", default_value_t = 128 * 1024)]
    payload_reference_bytes: u64,
    /// Most bytes of referenced payloads a push to a `payload_references`
    /// endpoint carries beside their references (docs/protocol.md §9.1).
    #[arg(long, env = "BATON_PUSH_PAYLOAD_BYTES", default_value_t = 2 * 1024 * 1024)]
    push_payload_bytes: u64,
    /// How log lines on stderr are written: `text`, or `json` (one object
    /// per line, with the trace and span ids of the request or push).
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve the API over TLS with this certificate chain (PEM); needs
    /// `--tls-key`.
    #[arg(long, env = "BATON_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "BATON_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (a PEM bundle) that pushes to `https://` endpoints
    /// also trust, besides the built-in web roots.
    #[arg(long, env = "BATON_PUSH_CA_FILE")]
    push_ca_file: Option<PathBuf>,
    /// The highest rate a batch job may run at, in runs per second; a job
    /// asking for more runs at this rate.
    #[arg(long, env = "BATON_BATCH_MAX_RPS", default_value_t = 1_000.0)]
    batch_max_rps: f64,
}

#[derive(Args)]
struct MigrateArgs {
    #[arg(long, env = "BATON_DATABASE_URL")]
    database_url: String,
    /// Retention of the `default` namespace when this server creates it
    /// (on first start): how long its closed runs are kept. Later changes
    /// go through `baton namespace update`.
    #[arg(long, env = "BATON_DEFAULT_NAMESPACE_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    default_namespace_retention: std::time::Duration,
}

/// How client verbs print.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = match &cli.command {
        Cmd::Dev(args) => logs::init(true, args.node.log_format),
        Cmd::Serve(args) => logs::init(true, args.node.log_format),
        _ => logs::init(false, LogFormat::Text),
    };
    let outcome = run(cli).await;
    logging.shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Dev(args) => {
            let url = if args.db == ":memory:" {
                "sqlite::memory:".to_owned()
            } else {
                format!("sqlite:{}", args.db)
            };
            let mut options = options(args.listen, url, &args.node)?;
            options.time_skipping = args.time_skipping;
            options.default_retention = duration(args.default_namespace_retention);
            let scheme = if options.tls.cert_and_key.is_some() {
                "https"
            } else {
                "http"
            };
            let running = server::start(options).await?;
            print_dev_banner(scheme, running.addr, &args.db, !args.node.no_ui);
            serve_until_signal(running).await
        }
        Cmd::Serve(args) => {
            let mut options = options(args.listen, args.database_url, &args.node)?;
            options.default_retention = duration(args.default_namespace_retention);
            let running = server::start(options).await?;
            serve_until_signal(running).await
        }
        Cmd::Migrate(args) => {
            let retention = duration(args.default_namespace_retention);
            server::open_store(&args.database_url, &SystemClock, retention).await?;
            println!(
                "migrations applied to {}",
                server::redact(&args.database_url)
            );
            Ok(())
        }
        Cmd::Health(args) => health::health(args).await,
        Cmd::Namespace(cmd) => client::namespace(cmd).await,
        Cmd::Apikey(cmd) => apikeys::apikey(cmd).await,
        Cmd::Endpoint(cmd) => client::endpoint(cmd).await,
        Cmd::Workflow(cmd) => client::workflow(*cmd).await,
        Cmd::Schedule(cmd) => match schedules::check(&cmd) {
            Ok(()) => schedules::schedule(*cmd).await,
            Err(e) => Err(e),
        },
        Cmd::Batch(cmd) => batches::batch(*cmd).await,
        Cmd::Webhook(cmd) => webhooks::webhook(*cmd).await,
    }
}

/// The key `--api-key` / `BATON_API_KEY` sets. An empty or blank one is
/// refused: it would otherwise leave the API open while the operator
/// believes it is protected.
fn api_key(given: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(key) = given else {
        return Ok(None);
    };
    if key.trim().is_empty() {
        anyhow::bail!(
            "--api-key (or BATON_API_KEY) is set but empty; give a key, or unset it to run without authentication"
        );
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!(
            "--api-key (or BATON_API_KEY) must be printable ASCII without spaces, as a bearer token is"
        );
    }
    Ok(Some(key.to_owned()))
}

fn options(listen: SocketAddr, database_url: String, node: &NodeArgs) -> anyhow::Result<Options> {
    let limits = Limits {
        max_payload_bytes: node.max_payload_bytes,
        suggest_continue_as_new_events: node.suggest_continue_as_new_events,
        max_history_events: node.max_history_events,
        max_history_bytes: node.max_history_bytes,
        ..Limits::default()
    };
    let claim = claim::Options {
        poll_interval: crate::time::Duration(node.poll_interval_ms.max(10)),
        ..claim::Options::default()
    };
    if !(node.batch_max_rps.is_finite() && node.batch_max_rps > 0.0) {
        anyhow::bail!(
            "--batch-max-rps {} is not a rate: give runs per second above 0",
            node.batch_max_rps
        );
    }
    Ok(Options {
        listen,
        database_url,
        api_key: api_key(node.api_key.as_deref())?,
        limits,
        apply: crate::apply::Options {
            run_cache_bytes: node.run_cache_mb.saturating_mul(1024 * 1024),
            payload_reference_bytes: node.payload_reference_bytes,
        },
        dispatch: dispatch::Options {
            claim: claim.clone(),
            drain_timeout: duration(node.drain_timeout),
            public_url: node
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            push_history_bytes: node.push_history_bytes,
            push_payload_bytes: node.push_payload_bytes,
            ..dispatch::Options::default()
        },
        timers: claim,
        time_skipping: false,
        ui: !node.no_ui,
        default_retention: crate::store::DEFAULT_RETENTION,
        tls: server::TlsOptions {
            cert_and_key: node.tls_cert.clone().zip(node.tls_key.clone()),
            push_ca_file: node.push_ca_file.clone(),
        },
        batch_max_rps: node.batch_max_rps,
    })
}

fn duration(d: std::time::Duration) -> crate::time::Duration {
    crate::time::Duration(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn serve_until_signal(running: server::Running) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

fn print_dev_banner(scheme: &str, addr: SocketAddr, db: &str, ui: bool) {
    let ui = if ui {
        format!("Web UI: {scheme}://{addr}{}\n", crate::ui::PREFIX)
    } else {
        String::new()
    };
    println!(
        "Baton dev server listening on {scheme}://{addr} (database: {db})
{ui}
Register your handler for a task queue:
  baton endpoint register --task-queue my-queue --url http://127.0.0.1:8000/ --secret whsec_...

Start a workflow:
  baton workflow start --type MyWorkflow --task-queue my-queue --id my-first-run --input '{{\"name\": \"world\"}}'
  baton workflow result my-first-run --wait 30s
"
    );
}
