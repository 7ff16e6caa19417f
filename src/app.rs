//! Start-up: build every service from a `Config`, bind the socket, serve until told to
//! stop. Tests call [`Application::build`] with port 0 and talk to the real server.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use poem::Server;
use poem::listener::{Acceptor, TcpAcceptor};

use crate::auth::{Accounts, SignInLimiter, TokenIssuer, load_or_generate_secret_key};
use crate::config::Config;
use crate::datasets::Datasets;
use crate::engine::Engine;
use crate::gql::AppSchema;
use crate::jobs::{Hooks, Jobs, WorkerConfig};
use crate::metrics::Metrics;
use crate::store::{self, MetadataStore};

/// The services every request can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn MetadataStore>,
    pub engine: Engine,
    pub accounts: Accounts,
    pub datasets: Datasets,
    pub jobs: Jobs,
    pub schema: AppSchema,
    pub metrics: Metrics,
    /// Open WebSockets, told when the server stops (they close with 1001, going away, rather
    /// than drop).
    pub sockets: Sockets,
}

/// The open WebSockets of a server: `closing` is set when it stops, `open` counts them.
#[derive(Clone)]
pub struct Sockets {
    pub closing: tokio::sync::watch::Sender<bool>,
    pub open: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for Sockets {
    fn default() -> Self {
        Sockets { closing: tokio::sync::watch::channel(false).0, open: Arc::default() }
    }
}

impl AppState {
    /// Opens the store (and migrates it), the engine and the signing key.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating DATA_DIR {}", config.data_dir.display()))?;
        let store = store::open(&config.database).await.context("opening the metadata store")?;
        let report =
            store.migrate().await.map_err(anyhow::Error::from).context("migrating the metadata store")?;
        tracing::info!(backend = ?store.backend(), applied = ?report.applied, "metadata store ready");

        let engine_config = config.engine.clone();
        // Several processes may share DATA_DIR (an API and its workers): each spills into its
        // own folder, so no process reads another's spill files. A folder left by a dead
        // process with the same id is stale: emptied first.
        let temp_dir = config.engine_temp_dir().join(format!("process-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&temp_dir);
        for dir in [&temp_dir, &config.engine_temp_dir().join("jobs")] {
            crate::storage::ensure_writable(dir).context("DuckDB's spill folder (DUCKDB_TEMP_DIR)")?;
        }
        sweep_stale_spill(&config.engine_temp_dir());
        let engine = tokio::task::spawn_blocking(move || Engine::open(&engine_config, &temp_dir))
            .await?
            .context("opening the DuckDB engine")?;

        let secret = match &config.secret_key {
            Some(key) => key.clone(),
            None => {
                let (key, generated) = load_or_generate_secret_key(&config.data_dir)?;
                let path = config.data_dir.join("secret_key");
                if generated {
                    tracing::warn!(path = %path.display(), "SECRET_KEY is not set: generated a signing key and saved it; set SECRET_KEY when running several instances");
                } else {
                    tracing::info!(path = %path.display(), "SECRET_KEY is not set: using the signing key saved in the data directory");
                }
                key
            }
        };
        let tokens = TokenIssuer::new(&secret, config.jwt_algorithm, config.access_token_ttl)?;
        let accounts = Accounts::new(
            store.clone(),
            tokens,
            SignInLimiter::new(config.sign_in_limits),
            config.refresh_token_ttl,
        );
        let datasets_root = config.data_dir.join("datasets");
        let storage = crate::storage::open(config.object_store.as_ref(), datasets_root.clone())
            .context("opening dataset storage")?;
        tracing::info!(storage = storage.describe(), "dataset storage ready");
        let datasets = Datasets::new(store.clone(), engine.clone(), storage, datasets_root);
        datasets.prepare_folders().context("DATA_DIR's datasets folder")?;
        datasets.sweep_leftovers().await;
        let jobs = Jobs::new(store.clone(), datasets.clone(), &config.jobs);
        let ai = crate::ai::Ai::new(
            &config.ai,
            store.clone(),
            jobs.clone(),
            // Inside this process's spill folder: swept with it when the process is gone.
            config.engine_temp_dir().join(format!("process-{}", std::process::id())).join("copilot"),
        );
        tracing::info!(model = ai.model_name(), "AI agents ready");
        let metrics = Metrics::new();
        let schema = crate::gql::build_schema(
            config.graphql_limits,
            metrics.clone(),
            accounts.clone(),
            datasets.clone(),
            jobs.clone(),
            ai,
            store.clone(),
        );
        Ok(AppState {
            config: Arc::new(config),
            store,
            engine,
            accounts,
            datasets,
            jobs,
            schema,
            metrics,
            sockets: Sockets::default(),
        })
    }

    /// How this process's workers run jobs.
    pub fn worker_config(&self) -> WorkerConfig {
        let jobs = self.config.jobs;
        WorkerConfig {
            concurrency: jobs.concurrency,
            lease: jobs.lease,
            max_attempts: jobs.max_attempts,
            poll: jobs.poll_interval,
            engine: self.config.engine.clone(),
            temp_root: self.config.engine_temp_dir().join("jobs"),
            hooks: Hooks::default(),
        }
    }
}

/// Removes spill folders that crashed processes and jobs left in `DUCKDB_TEMP_DIR`:
/// `process-<pid>/` of processes that are gone (Linux: no `/proc/<pid>`), and `jobs/<job id>/`
/// untouched for a day (a running job's folder is written to while it spills).
fn sweep_stale_spill(root: &std::path::Path) {
    const STALE_JOB: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let remove = |path: std::path::PathBuf| match std::fs::remove_dir_all(&path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed a stale spill folder"),
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove a stale spill folder"),
    };
    let proc_fs = std::path::Path::new("/proc/self").exists();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("process-")
            && proc_fs
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            remove(entry.path());
        }
    }
    for entry in std::fs::read_dir(root.join("jobs")).into_iter().flatten().flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE_JOB);
        if stale {
            remove(entry.path());
        }
    }
}

/// A server bound to its socket, ready to run.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    state: AppState,
    hooks: Hooks,
}

impl Application {
    /// Builds every service and binds `HOST:PORT` (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let address = std::net::SocketAddr::new(config.host, config.port);
        let state = AppState::build(config).await?;
        let listener = std::net::TcpListener::bind(address).with_context(|| format!("binding {address}"))?;
        listener.set_nonblocking(true)?;
        let acceptor = TcpAcceptor::from_std(listener)?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .context("reading the bound port")?;
        Ok(Application { acceptor, port, state, hooks: Hooks::default() })
    }

    /// Lets a test step into the jobs this process runs (fault injection).
    pub fn with_job_hooks(mut self, hooks: Hooks) -> Application {
        self.hooks = hooks;
        self
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves (and runs workers, by `SERVER_ROLE`) until `shutdown` completes, then lets
    /// requests in flight finish and puts running jobs back in the queue (up to
    /// `SHUTDOWN_TIMEOUT`).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let timeout = self.state.config.shutdown_timeout;
        let idle_timeout = self.state.config.idle_timeout;
        let role = self.state.config.role;
        let (stop_workers, stopped) = tokio::sync::watch::channel(false);
        let workers = role.runs_workers().then(|| {
            let config = WorkerConfig { hooks: self.hooks.clone(), ..self.state.worker_config() };
            tokio::spawn(crate::jobs::worker::run(self.state.jobs.clone(), config, stopped))
        });
        if role.runs_api() {
            tracing::info!(port = self.port, ?role, "listening; playground at / and API at /graphql");
        } else {
            tracing::info!(port = self.port, ?role, "listening for /healthz, /readyz and /metrics only");
        }
        let sockets = self.state.sockets.clone();
        let routes = crate::http::routes(self.state);
        let closing = sockets.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = stop_workers.send(true);
            // Upgraded WebSockets are not the server's to wait for: told to close here.
            closing.closing.send_replace(true);
        };
        // Idle connections are closed (a request in flight is let finish); an upgraded
        // WebSocket is no longer the server's connection, and has its own rules (`http::ws`).
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(idle_timeout)
            .run_with_graceful_shutdown(routes, shutdown, Some(timeout))
            .await?;
        // The WebSockets send their close frames (a second at most).
        let closed = async {
            while sockets.open.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), closed).await;
        if let Some(workers) = workers
            && tokio::time::timeout(timeout, workers).await.is_err()
        {
            tracing::warn!("workers did not stop in time; their jobs are retried when their leases expire");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
