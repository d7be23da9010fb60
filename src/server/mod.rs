//! The composition root: opens the store, builds `apply`, the dispatcher,
//! the timer, transfer, schedule and batch services, the API router and
//! (unless turned off) the web UI's routes, runs them until shutdown and
//! joins them all. Service loops log their errors and keep going; only a
//! failure to bind or to open the database takes the process down.
//! `connection` is the HTTP listener, `framing` the request framing its
//! guard follows, `tls` the certificates of the listener and of pushes.

mod connection;
mod framing;
mod tls;

pub use tls::TlsOptions;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, Access, AppState, Shared};
use crate::apply::Applier;
use crate::engine::Limits;
use crate::ids::Namespace;
use crate::store::{self, NamespaceRecord, Store};
use crate::time::{Clock, Duration, SkippingClock, SystemClock};
use crate::{apply, batch, claim, dispatch, readiness, retention, scheduler, timers, transfer};

/// Everything a node needs to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: SocketAddr,
    pub database_url: String,
    pub api_key: Option<String>,
    pub limits: Limits,
    pub apply: apply::Options,
    pub dispatch: dispatch::Options,
    /// Claim loop options of the timer and transfer queues.
    pub timers: claim::Options,
    /// Serve `/api/v1/dev/time…` and let it move this node's clock.
    pub time_skipping: bool,
    /// Serve the web UI at `/ui/` (`crate::ui`).
    pub ui: bool,
    /// The `default` namespace's retention if this node creates it.
    pub default_retention: Duration,
    /// The API's certificate, and the CAs pushes trust.
    pub tls: TlsOptions,
    /// The highest rate a batch job may ask for, in runs per second
    /// (higher requests are lowered to it).
    pub batch_max_rps: f64,
}

/// A started node.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    readiness: readiness::Handle,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The HTTP listener stops last, so `/readyz` answers 503 while the
    /// node drains.
    listener_shutdown: watch::Sender<bool>,
    listener: JoinHandle<()>,
}

impl Running {
    /// Shuts down in order: turns unready (`/readyz` answers 503, other
    /// routes 503 too), then stops the services (claiming stops, pushes
    /// drain) and waits for them, then stops the listener.
    pub async fn stop(self) {
        self.readiness.drain();
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.listener_shutdown.send(true);
        let _ = self.listener.await;
    }

    /// Waits until the node stops (it only stops when told to).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.listener.await;
    }
}

/// Opens the database, applies migrations and makes sure the `default`
/// namespace exists (created with `default_retention`; an existing one is
/// left as it is).
pub async fn open_store(
    database_url: &str,
    clock: &dyn Clock,
    default_retention: Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::open(database_url)
        .await
        .with_context(|| format!("opening database {}", redact(database_url)))?;
    store.migrate().await.context("applying migrations")?;
    let default = Namespace("default".to_owned());
    if store.get_namespace(&default).await?.is_none() {
        let record = NamespaceRecord {
            name: default,
            description: "Created by the server".to_owned(),
            retention: default_retention,
            created_at: clock.now(),
        };
        match store.create_namespace(&record).await {
            Ok(()) | Err(store::Error::AlreadyExists(_)) => {}
            Err(e) => return Err(e).context("creating the default namespace"),
        }
    }
    Ok(store)
}

/// Starts a node: binds, then runs the services in the background.
pub async fn start(mut options: Options) -> anyhow::Result<Running> {
    crate::telemetry::install();
    let skipping = options
        .time_skipping
        .then(|| Arc::new(SkippingClock::default()));
    let clock: Arc<dyn Clock> = match &skipping {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let acceptor = tls::acceptor(&options.tls)?;
    let push_roots = tls::push_roots(&options.tls)?;
    let store = open_store(&options.database_url, &*clock, options.default_retention).await?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding {}", options.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    options.dispatch.public_url.get_or_insert_with(|| {
        let mut reach = addr;
        if reach.ip().is_unspecified() {
            reach.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("{scheme}://{reach}")
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let transport = Arc::new(dispatch::HttpTransport::new(
        options.dispatch.max_response_bytes,
        push_roots,
    ));
    let services = services(store, clock, transport, &options, shutdown_rx.clone());
    let state = AppState::new(Shared {
        querier: services.querier,
        schedules: services.scheduler,
        batches: services.batches,
        batch_max_rps: options.batch_max_rps,
        applier: services.applier,
        access: Arc::new(Access::new(options.api_key.clone())),
        time_skipping: skipping,
    });
    let readiness = state.applier.readiness().clone();
    let mut router = api::router(state);
    if options.ui {
        router = router.merge(crate::ui::router());
    }
    let (listener_shutdown, listener_rx) = watch::channel(false);
    let listener = tokio::spawn(connection::serve(listener, router, acceptor, listener_rx));
    tracing::info!(%addr, scheme, "baton listening");
    if options.ui {
        tracing::info!("web UI at {scheme}://{addr}{}", crate::ui::PREFIX);
    }
    Ok(Running {
        addr,
        readiness,
        shutdown,
        tasks: services.tasks,
        listener_shutdown,
        listener,
    })
}

/// A node's services, running.
pub struct Services {
    pub applier: Applier,
    pub querier: dispatch::Querier,
    /// Wakes the schedule loop after an API change.
    pub scheduler: scheduler::Handle,
    /// Wakes the batch loop after the API started a job.
    pub batches: batch::runner::Handle,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Spawns a node's services (command path, dispatcher, timers, transfers,
/// readiness probe, queue-depth gauges) on `store`, `clock` and the push
/// `transport`, until `shutdown` turns true: everything `start` runs but
/// the HTTP API. The simulation (tests/sim.rs) drives this with an
/// in-memory store, a simulated clock and an in-memory transport.
pub fn services(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn dispatch::Transport>,
    options: &Options,
    shutdown: watch::Receiver<bool>,
) -> Services {
    let depths = tokio::spawn(crate::telemetry::queue_depths(
        store.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    let (applier, pushes) = Applier::new(
        store.clone(),
        clock.clone(),
        options.limits.clone(),
        options.apply.clone(),
    );
    let dispatcher = dispatch::Service::new(applier.clone(), options.dispatch.clone(), transport);
    let timer_service = timers::Service::new(applier.clone(), options.timers.clone());
    let transfer_service = transfer::Service::new(applier.clone(), options.timers.clone());
    let schedule_service = scheduler::Service::new(applier.clone(), options.timers.clone());
    let scheduler = schedule_service.handle();
    let batch_service = batch::runner::Service::new(applier.clone(), options.timers.clone());
    let batches = batch_service.handle();
    let querier = dispatcher.querier();
    let readiness = applier.readiness().clone();
    let closing = applier.clone();
    let mut closed = shutdown.clone();
    let tasks = vec![
        depths,
        tokio::spawn(readiness::run(store.clone(), readiness, shutdown.clone())),
        tokio::spawn(retention::run(store, clock, shutdown.clone())),
        // Outcomes still retrying against a failing store give up at
        // shutdown; the durable task rows bring their work back.
        tokio::spawn(async move {
            let _ = closed.wait_for(|stop| *stop).await;
            closing.close();
        }),
        tokio::spawn(dispatcher.run(pushes, shutdown.clone())),
        tokio::spawn(timer_service.run(shutdown.clone())),
        tokio::spawn(transfer_service.run(shutdown.clone())),
        tokio::spawn(schedule_service.run(shutdown.clone())),
        tokio::spawn(batch_service.run(shutdown)),
    ];
    Services {
        applier,
        querier,
        scheduler,
        batches,
        tasks,
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
