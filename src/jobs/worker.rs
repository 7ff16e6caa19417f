//! Workers: claim queued jobs from the metadata store and run them, each in its own DuckDB
//! database, with a lease kept alive by a heartbeat.
//!
//! - **Claiming** is atomic in the store (MySQL `FOR UPDATE SKIP LOCKED`, SQLite one writer),
//!   so several instances share one queue. At most `WORKER_CONCURRENCY` jobs run per
//!   process.
//! - **Leases.** A running job's lease is renewed every third of `JOB_LEASE`. A worker that
//!   dies stops renewing; after the lease expires another worker claims the job again
//!   (`JOB_MAX_ATTEMPTS` in all), then it fails with `WORKER_LOST`. A worker that finds it
//!   no longer holds its job (it was too slow and someone else took over) stops and writes
//!   nothing.
//! - **Cancelling.** The monitor reads the job a few times a second; once cancellation is
//!   requested it interrupts DuckDB (again and again, so a query started after the first
//!   interrupt stops too) and the job ends CANCELLED with its partial output discarded.
//! - **Shutdown.** Running jobs are interrupted and put back in the queue.
//! - **Fault injection.** [`Hooks`] let a test step into a run at the points where only a
//!   fault or a race could act (a damaged output, a cancellation after publishing). A
//!   production server sets none.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

use super::cleanse::CLEAN_TOOL;
use super::pipeline;
use super::registry::PROFILE_TOOL;
use super::service::Jobs;
use crate::config::EngineConfig;
use crate::domain::{DatasetId, DatasetKind, Job, JobError, JobId, JobStatus, Report};
use crate::engine::session::{Interrupter, Session, SessionError};
use crate::store::JobOutcome;

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs one process runs at once.
    pub concurrency: usize,
    pub lease: Duration,
    pub max_attempts: u32,
    /// How often an idle worker looks for jobs queued by other instances.
    pub poll: Duration,
    /// Limits of each job's own DuckDB database.
    pub engine: EngineConfig,
    /// Each job spills under `<temp_root>/<job id>-<attempt>`.
    pub temp_root: PathBuf,
    /// None in production.
    pub hooks: Hooks,
}

/// Called with a cleanse's output folder (see [`Hooks::cleansed`]).
pub type CleansedHook = Arc<dyn Fn(&Path) + Send + Sync>;

/// Where a test can step into a running job (fault injection). Each is `None` unless a
/// test sets it.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called on the job's blocking thread once a cleanse has written its output folder
    /// (`data.parquet`, `quarantine.parquet`), before the output is checked.
    pub cleansed: Option<CleansedHook>,
    /// Awaited once a run has published its new versions, before the job's end is recorded.
    pub published: Option<JobHook>,
    /// Awaited right before a job's end is recorded, after the worker last read the job.
    pub finishing: Option<JobHook>,
}

/// Awaited with the job's id (see [`Hooks`]).
pub type JobHook = Arc<dyn Fn(JobId) -> BoxFuture<'static, ()> + Send + Sync>;

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("cleansed", &self.cleansed.is_some())
            .field("published", &self.published.is_some())
            .field("finishing", &self.finishing.is_some())
            .finish()
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a running job's monitor looks for a cancellation.
const MONITOR_TICK: Duration = Duration::from_millis(200);

/// Runs workers until `shutdown` turns true, then puts running jobs back in the queue.
pub async fn run(jobs: Jobs, config: WorkerConfig, mut shutdown: watch::Receiver<bool>) {
    let worker = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    tracing::info!(worker, concurrency = config.concurrency, "worker started");
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let stopping = Arc::new(AtomicBool::new(false));
    let mut running = tokio::task::JoinSet::new();
    let store = jobs.inner.store.clone();
    let mut last_sweep = None;
    let mut claims: u64 = 0;
    'claims: loop {
        // While every slot is taken, the jobs of workers that died are still looked after
        // (ended WORKER_LOST, or CANCELLED when their cancellation was asked for): they need
        // no slot, and a busy instance must not leave them RUNNING until one of its own ends.
        let permit = loop {
            tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => break p,
                    Err(_) => break 'claims,
                },
                _ = shutdown.changed() => break 'claims,
                _ = tokio::time::sleep(config.poll) => {
                    look_after_lost_jobs(&jobs, &config, &mut last_sweep).await;
                }
            }
        };
        if *shutdown.borrow() {
            break;
        }
        look_after_lost_jobs(&jobs, &config, &mut last_sweep).await;
        // (After the sweep, which may take a while: the lease starts when the job is claimed.)
        let now = crate::store::now();
        let lease_until =
            now + chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(30));
        // Each claim holds its job under a name of its own: a run whose lease ran out while it
        // was still alive (a paused machine, a long database outage) loses every write once
        // the job is claimed again, even when this same process claims it.
        claims += 1;
        let holder = format!("{worker}-{claims}");
        match store.claim_job(&holder, now, lease_until, config.max_attempts).await {
            Ok(Some(job)) => {
                let span =
                    tracing::info_span!("job", job_id = %job.id, tool = job.tool_id, attempt = job.attempts);
                let run = execute(jobs.clone(), config.clone(), holder, job, stopping.clone());
                running.spawn(
                    async move {
                        run.await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    _ = tokio::time::sleep(config.poll) => {}
                    _ = jobs.inner.queued.notified() => {}
                    _ = shutdown.changed() => break,
                }
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "could not claim a job");
                tokio::time::sleep(config.poll).await;
            }
        }
        while running.try_join_next().is_some() {}
    }
    stopping.store(true, Ordering::SeqCst);
    while running.join_next().await.is_some() {}
    tracing::info!(worker, "worker stopped");
}

/// Ends the jobs whose workers died and that cannot run again (`WORKER_LOST`, or CANCELLED
/// when their cancellation was asked for), and every `ORPHAN_SWEEP` deletes the versions their
/// jobs did not complete.
async fn look_after_lost_jobs(
    jobs: &Jobs,
    config: &WorkerConfig,
    last_sweep: &mut Option<std::time::Instant>,
) {
    match jobs.inner.store.fail_lost_jobs(crate::store::now(), config.max_attempts).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!(
                jobs = n,
                "jobs failed with WORKER_LOST: their workers stopped and no attempts are left"
            )
        }
        Err(e) => tracing::warn!(error = %e, "could not check for lost jobs"),
    }
    if last_sweep.is_none_or(|at| at.elapsed() >= ORPHAN_SWEEP) {
        *last_sweep = Some(std::time::Instant::now());
        jobs.delete_orphaned_outputs().await;
    }
}

/// Why a run ended without a report.
enum Stop {
    Failed(JobError),
    Interrupted,
    Internal(anyhow::Error),
}

impl From<SessionError> for Stop {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Interrupted => Stop::Interrupted,
            SessionError::OutOfMemory(message) => {
                Stop::Failed(JobError { code: "OUT_OF_MEMORY".into(), message })
            }
            SessionError::Internal(e) => Stop::Internal(e),
        }
    }
}

/// What the monitor found.
#[derive(Default)]
struct Flags {
    cancel: AtomicBool,
    lost: AtomicBool,
}

async fn execute(jobs: Jobs, config: WorkerConfig, worker: String, job: Job, stopping: Arc<AtomicBool>) {
    tracing::info!("job started");
    jobs.changed(job.id);
    // Taken again after its worker died: what the lost attempt published goes now, not at
    // the next sweep (the user would see it meanwhile).
    if job.attempts > 1 {
        jobs.delete_orphaned_outputs().await;
    }
    let store = jobs.inner.store.clone();
    let flags = Arc::new(Flags::default());
    let interrupter: Arc<Mutex<Option<Interrupter>>> = Arc::default();
    let (progress_tx, progress_rx) = mpsc::unbounded_channel::<(f64, String)>();

    let writer = tokio::spawn(write_progress(jobs.clone(), job.clone(), worker.clone(), progress_rx));
    // The lease is renewed until the job's end is recorded (removing what a run published
    // may take a while on an object store); aborted when dropped, so a run that panicked does
    // not leave it renewed forever.
    let _monitor = AbortOnDrop(tokio::spawn(monitor(
        jobs.clone(),
        job.clone(),
        worker.clone(),
        config.lease,
        flags.clone(),
        interrupter.clone(),
        stopping.clone(),
    )));

    let result = run_tool(&jobs, &config, &job, progress_tx, interrupter.clone(), flags.clone()).await;
    let _ = writer.await;
    // A cancellation asked for before the end is honoured even when the monitor has not
    // seen it yet (it reads the job five times a second).
    if let Ok(Some(current)) = store.job_by_id(job.id).await
        && current.cancel_requested
    {
        flags.cancel.store(true, Ordering::SeqCst);
    }

    let now = crate::store::now();
    let published_now: Vec<DatasetId> =
        result.as_ref().map_or_else(|_| Vec::new(), |ran| ran.published.clone());
    if flags.lost.load(Ordering::SeqCst) {
        tracing::warn!("job lost: another worker holds it now; nothing written");
        discard(&jobs, &job, &published_now).await;
        return;
    }
    // Stopped by the shutdown (not a failure of its own, which is recorded as such): back to
    // the queue, unless a cancellation landed meanwhile, which is then recorded.
    let shut_down = matches!(&result, Err(Stop::Interrupted | Stop::Internal(_)));
    if stopping.load(Ordering::SeqCst) && !flags.cancel.load(Ordering::SeqCst) && shut_down {
        match store.release_job(job.id, &worker, now).await {
            Ok(true) => {
                tracing::info!("job put back in the queue: this worker is shutting down");
                jobs.changed(job.id);
                return;
            }
            // Cancelled since the last reading (or lost: then nothing below is recorded).
            Ok(false) => flags.cancel.store(true, Ordering::SeqCst),
            Err(e) => {
                tracing::warn!(error = %e, "could not put the job back; it is retried when its lease expires");
                jobs.changed(job.id);
                return;
            }
        }
    }
    let outcome = if flags.cancel.load(Ordering::SeqCst) {
        JobOutcome { status: JobStatus::Cancelled, error: None, report: None, output_dataset_id: None }
    } else {
        match &result {
            Ok(ran) => match serde_json::to_string(&ran.report) {
                Ok(text) => JobOutcome {
                    status: JobStatus::Completed,
                    error: None,
                    report: Some(text),
                    output_dataset_id: ran.output,
                },
                Err(e) => failed_internal(&job, anyhow::Error::from(e)),
            },
            Err(Stop::Failed(error)) => JobOutcome {
                status: JobStatus::Failed,
                error: Some(error.clone()),
                report: None,
                output_dataset_id: None,
            },
            Err(Stop::Interrupted) => JobOutcome {
                status: JobStatus::Failed,
                error: Some(JobError {
                    code: "INTERRUPTED".into(),
                    message: "the job was interrupted".into(),
                }),
                report: None,
                output_dataset_id: None,
            },
            Err(Stop::Internal(e)) => failed_internal(&job, anyhow::anyhow!("{e:#}")),
        }
    };
    let published: &[DatasetId] = result.as_ref().map_or(&[], |ran| ran.published.as_slice());
    // Versions published by a run that does not complete (cancelled after publishing) go
    // before its end is recorded: a client that sees the job CANCELLED never sees them.
    let completing = outcome.status == JobStatus::Completed;
    if !completing {
        discard(&jobs, &job, published).await;
    }
    if let Some(hook) = config.hooks.finishing.as_ref() {
        hook(job.id).await;
    }
    let recorded = match record_end(&jobs, &job, &worker, &outcome, now).await {
        Ok(true) => {
            tracing::info!(status = outcome.status.as_str(), "job finished");
            outcome.status == JobStatus::Completed
        }
        Ok(false) if completing => {
            // Not recorded: the worker lost the job, or its cancellation was asked for
            // after the last reading above. Cancelled, it keeps nothing it published
            // (removed before a client can see it cancelled).
            discard(&jobs, &job, published).await;
            let cancelled = JobOutcome {
                status: JobStatus::Cancelled,
                error: None,
                report: None,
                output_dataset_id: None,
            };
            match record_end(&jobs, &job, &worker, &cancelled, now).await {
                Ok(true) => tracing::info!("job cancelled as it finished"),
                Ok(false) => tracing::warn!("job finished but another worker holds it now; result dropped"),
                Err(e) => {
                    tracing::error!(error = %e, "could not record the end of a job; it is retried when its lease expires")
                }
            }
            jobs.changed(job.id);
            return;
        }
        Ok(false) => {
            tracing::warn!("job finished but another worker holds it now; result dropped");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record the end of a job; it is retried when its lease expires");
            false
        }
    };
    if completing && !recorded {
        // Versions published for a result that was not recorded (the lease lost) go again.
        discard(&jobs, &job, published).await;
    }
    jobs.changed(job.id);
}

/// How many times a job's end is written again after the store failed to take it.
const END_RETRIES: u32 = 4;

/// Records a job's end (`finish_job`). A failed write is tried again, 0.2 s later, then
/// after twice as long each time (3 s in all): a run whose result a dropped connection
/// refused is not thrown away, to be run again from the start once its lease expires. A
/// result the store keeps refusing (MySQL: a report above `max_allowed_packet`) ends the job
/// FAILED with a short message instead, rather than running it again to the same end.
async fn record_end(
    jobs: &Jobs,
    job: &Job,
    worker: &str,
    outcome: &JobOutcome,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::StoreResult<bool> {
    let store = &jobs.inner.store;
    let mut wait = Duration::from_millis(200);
    let mut retry = 0;
    let error = loop {
        match store.finish_job(job.id, worker, outcome, now).await {
            // After a failed write, `false` may mean the write had been taken (the connection
            // dropped after the commit, before its answer): the job, read again, tells.
            Ok(false) if retry > 0 => {
                let stored = store.job_by_id(job.id).await?;
                return Ok(stored.is_some_and(|j| {
                    j.status == outcome.status && j.output_dataset_id == outcome.output_dataset_id
                }));
            }
            Ok(recorded) => return Ok(recorded),
            Err(e) => {
                tracing::warn!(error = %e, "could not record the end of a job");
                if retry == END_RETRIES {
                    break e;
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
                retry += 1;
            }
        }
    };
    // (A cancellation holds nothing a store could refuse.)
    if outcome.status == JobStatus::Cancelled {
        return Err(error);
    }
    tracing::error!(error = %error, status = outcome.status.as_str(), "the store refuses the end of a job; recording it failed");
    let failed = JobOutcome {
        status: JobStatus::Failed,
        error: Some(JobError {
            code: "INTERNAL".into(),
            message: format!(
                "the job ran, but its result could not be stored; the server log has the details (job {})",
                job.id
            ),
        }),
        report: None,
        output_dataset_id: None,
    };
    // Recorded FAILED (or not at all): either way the run's result was not, which the caller
    // hears as an error (it then removes what the run published).
    store.finish_job(job.id, worker, &failed, now).await?;
    Err(error)
}

/// How often a worker looks for versions whose job did not complete them.
const ORPHAN_SWEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// Removes datasets a run published whose job did not complete.
async fn discard(jobs: &Jobs, job: &Job, published: &[DatasetId]) {
    for id in published {
        match jobs.datasets().delete(job.owner_id, &id.to_string()).await {
            Ok(()) => tracing::info!(dataset_id = %id, "removed a version whose job did not complete"),
            Err(e) => {
                tracing::warn!(dataset_id = %id, error = e.report(), "could not remove a version whose job did not complete")
            }
        }
    }
}

/// What a successful run produced.
struct Ran {
    report: Report,
    /// The new version, for tools that change data.
    output: Option<DatasetId>,
    /// Every dataset the run published (the output, the quarantined rows).
    published: Vec<DatasetId>,
}

fn failed_internal(job: &Job, cause: anyhow::Error) -> JobOutcome {
    tracing::error!(error = format!("{cause:#}"), "job failed");
    JobOutcome {
        status: JobStatus::Failed,
        error: Some(JobError {
            code: "INTERNAL".into(),
            message: format!("the job failed unexpectedly; the server log has the details (job {})", job.id),
        }),
        report: None,
        output_dataset_id: None,
    }
}

/// Stores progress reports in order, never backwards, and wakes local progress streams.
async fn write_progress(
    jobs: Jobs,
    job: Job,
    worker: String,
    mut rx: mpsc::UnboundedReceiver<(f64, String)>,
) {
    while let Some((mut progress, mut stage)) = rx.recv().await {
        // Only the latest matters when several are waiting.
        while let Ok((p, s)) = rx.try_recv() {
            (progress, stage) = (p, s);
        }
        let progress = progress.clamp(0.0, 99.0);
        match jobs.inner.store.record_progress(job.id, &worker, progress, &stage, crate::store::now()).await {
            Ok(_) => jobs.changed(job.id),
            Err(e) => tracing::warn!(error = %e, "could not record progress"),
        }
    }
}

/// Renews the lease, watches for cancellation (and for a lost lease), and interrupts the
/// engine when the job must stop.
async fn monitor(
    jobs: Jobs,
    job: Job,
    worker: String,
    lease: Duration,
    flags: Arc<Flags>,
    interrupter: Arc<Mutex<Option<Interrupter>>>,
    stopping: Arc<AtomicBool>,
) {
    let store = jobs.inner.store.clone();
    let renew_every = lease / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(MONITOR_TICK).await;
        if renewed.elapsed() >= renew_every {
            let until = crate::store::now()
                + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
            match store.renew_lease(job.id, &worker, until).await {
                Ok(Some(cancel)) => {
                    renewed = Instant::now();
                    if cancel {
                        flags.cancel.store(true, Ordering::SeqCst);
                    }
                }
                Ok(None) => flags.lost.store(true, Ordering::SeqCst),
                Err(e) => tracing::warn!(error = %e, "could not renew the job's lease"),
            }
        } else {
            match store.job_by_id(job.id).await {
                Ok(Some(current)) if current.cancel_requested => flags.cancel.store(true, Ordering::SeqCst),
                Ok(Some(current)) if current.status != JobStatus::Running => {
                    flags.lost.store(true, Ordering::SeqCst)
                }
                Ok(None) => flags.lost.store(true, Ordering::SeqCst),
                _ => {}
            }
        }
        let stop = flags.cancel.load(Ordering::SeqCst)
            || flags.lost.load(Ordering::SeqCst)
            || stopping.load(Ordering::SeqCst);
        if stop && let Some(interrupter) = interrupter.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            interrupter.interrupt();
        }
    }
}

/// The name of a folder of this attempt's own (`<job id>-<attempt><suffix>`): a run that
/// lost its job to another attempt, and is only now cleaning up, removes its own folders, not
/// the new attempt's.
fn attempt_folder(job: &Job, suffix: &str) -> String {
    format!("{}-{}{suffix}", job.id, job.attempts)
}

/// Runs the job's tool and returns its report.
async fn run_tool(
    jobs: &Jobs,
    config: &WorkerConfig,
    job: &Job,
    progress: mpsc::UnboundedSender<(f64, String)>,
    interrupter: Arc<Mutex<Option<Interrupter>>>,
    flags: Arc<Flags>,
) -> Result<Ran, Stop> {
    if job.tool_id == CLEAN_TOOL {
        return run_cleanse(jobs, config, job, progress, interrupter, flags).await;
    }
    if job.tool_id != PROFILE_TOOL {
        return Err(Stop::Failed(JobError {
            code: "UNKNOWN_TOOL".into(),
            message: format!("this server cannot run {}", job.tool_id),
        }));
    }
    let _ = progress.send((1.0, "loading dataset".into()));
    let dataset = load_version(jobs, job, job.dataset_id, "the dataset no longer exists").await?;
    // The baseline is read only by the agents that compare with it.
    let compares = job.agents.iter().any(|a| a == super::registry::DRIFT_DETECTOR);
    let baseline = match job.baseline_dataset_id.filter(|_| compares) {
        Some(id) => Some(load_version(jobs, job, id, "the baseline dataset no longer exists").await?),
        None => None,
    };
    let profile_params = pipeline::profile_params(&job.parameters).map_err(Stop::from)?;
    let key = pipeline::profile_key(&dataset.0.id.to_string(), &profile_params);
    let cached = match pipeline::needs_profile(&job.agents, &job.parameters) {
        true => jobs.inner.profiles.get(&key).await,
        false => None,
    };
    let baseline_name = baseline.as_ref().map(|b| b.0.name.clone());
    let inputs = pipeline::Inputs { current: dataset.1, baseline: baseline.map(|b| b.1) };

    let engine = config.engine.clone();
    let temp = config.temp_root.join(attempt_folder(job, ""));
    let agents = job.agents.clone();
    let parameters = job.parameters.clone();
    let sender = progress.clone();
    let (mut report, profile) = tokio::task::spawn_blocking(move || -> Result<_, Stop> {
        let session = open_session(&engine, &temp, &interrupter, &flags)?;
        let mut report = |percent: f64, stage: &str| {
            // The agents are 5–95% of the job.
            let _ = sender.send((5.0 + percent * 0.9, stage.to_string()));
        };
        Ok(pipeline::run(&session, &agents, &parameters, &inputs, cached, &mut report)?)
    })
    .await
    .map_err(|e| Stop::Internal(e.into()))??;
    if let Some(drift) = report.drift.as_mut() {
        drift.baseline_name = baseline_name;
    }
    if let Some(profile) = profile {
        jobs.inner.profiles.insert(key, profile).await;
    }
    let _ = progress.send((97.0, "writing report".into()));
    Ok(Ran { report, output: None, published: Vec::new() })
}

/// Opens the job's DuckDB session and hands its interrupt handle to the monitor; a job
/// cancelled meanwhile stops here. Blocking.
fn open_session(
    engine: &EngineConfig,
    temp: &std::path::Path,
    interrupter: &Mutex<Option<Interrupter>>,
    flags: &Flags,
) -> Result<Session, Stop> {
    let session = Session::open(engine, temp).map_err(Stop::Internal)?;
    *interrupter.lock().unwrap_or_else(|p| p.into_inner()) = Some(session.interrupter());
    if flags.cancel.load(Ordering::SeqCst) {
        return Err(Stop::Interrupted);
    }
    Ok(session)
}

/// A folder removed when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn app_stop(e: crate::error::AppError) -> Stop {
    if e.code() == crate::error::ErrorCode::Internal {
        Stop::Internal(anyhow::anyhow!("{}", e.report()))
    } else {
        Stop::Failed(JobError { code: e.code().as_str().to_string(), message: e.message().to_string() })
    }
}

/// Clean My Data: builds the plan from a sample, previews it when the previewer runs, runs it
/// into a folder of the job's, checks the output, then (with the writeback agent) publishes
/// the cleaned rows as a new version of the dataset and the quarantined rows as another.
async fn run_cleanse(
    jobs: &Jobs,
    config: &WorkerConfig,
    job: &Job,
    progress: mpsc::UnboundedSender<(f64, String)>,
    interrupter: Arc<Mutex<Option<Interrupter>>>,
    flags: Arc<Flags>,
) -> Result<Ran, Stop> {
    use super::cleanse::{self as plan, EVIDENCE_SAMPLE_ROWS, PREVIEWER, WRITEBACK};
    let _ = progress.send((1.0, "loading dataset".into()));
    let (dataset, version) = load_version(jobs, job, job.dataset_id, "the dataset no longer exists").await?;
    let engine = config.engine.clone();
    let temp = config.temp_root.join(attempt_folder(job, ""));
    let out_dir = config.temp_root.join(attempt_folder(job, ".output"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let _cleanup = RemoveDir(out_dir.clone());
    let agents = job.agents.clone();
    let parameters = job.parameters.clone();
    let sender = progress.clone();
    let out = out_dir.clone();
    let cancel = flags.clone();
    let cleansed = config.hooks.cleansed.clone();
    let (manifest, results) = tokio::task::spawn_blocking(move || -> Result<_, Stop> {
        let session = open_session(&engine, &temp, &interrupter, &cancel)?;
        let started = Instant::now();
        let send = |percent: f64, stage: &str| {
            tracing::debug!(stage, elapsed_ms = started.elapsed().as_millis() as u64, "cleanse stage");
            let _ = sender.send((percent, stage.to_string()));
        };
        send(3.0, "sampling the columns");
        let tokens = plan::null_tokens(&parameters);
        let evidence =
            session.column_evidence(&version.data, &version.columns, &tokens, EVIDENCE_SAMPLE_ROWS)?;
        let built = plan::build(&parameters, &agents, &version.columns, &evidence).map_err(app_stop)?;
        let preview = match agents.iter().any(|a| a == PREVIEWER) {
            true => {
                send(8.0, "previewing the plan on a sample");
                let rows = parameters[PREVIEWER]["sample_size"].as_u64().unwrap_or(10_000);
                let previewing = Instant::now();
                let preview = session.cleanse_preview(&version.data, &version.columns, &built.plan, rows)?;
                Some((preview, previewing.elapsed().as_secs_f64() * 1000.0))
            }
            false => None,
        };
        send(12.0, "counting nulls");
        let (_, input_nulls) = session.column_nulls(&version.data)?;
        send(20.0, "cleansing");
        // 20 to 85: each stored segment of the chain, then the outputs.
        let outcome =
            session.cleanse(&version.data, &version.columns, &built.plan, &out, &mut |done, stage| {
                send(20.0 + 65.0 * done, stage)
            })?;
        if let Some(hook) = &cleansed {
            hook(&out);
        }
        send(85.0, "checking the output");
        let (rows, output_nulls) = session.column_nulls(&out.join("data.parquet"))?;
        let checks = plan::integrity_checks(&built, &outcome, &input_nulls, rows, &output_nulls);
        let manifest = plan::manifest(&built, &outcome, checks);
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(elapsed_ms = elapsed as u64, "cleanse checked");
        let results = move |manifest: &crate::domain::CleanseManifest| {
            plan::agent_results(
                &agents,
                &parameters,
                manifest,
                preview.as_ref().map(|(p, ms)| (&built, p, *ms)),
                elapsed,
            )
        };
        Ok((manifest, results))
    })
    .await
    .map_err(|e| Stop::Internal(e.into()))??;
    if flags.cancel.load(Ordering::SeqCst) {
        return Err(Stop::Interrupted);
    }
    let mut manifest = manifest;
    let mut published = Vec::new();
    let mut output = None;
    if let Some(writeback) = job.parameters.get(WRITEBACK) {
        let failed: Vec<String> = manifest
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect();
        if !failed.is_empty() && writeback["fail_on_check"].as_bool().unwrap_or(true) {
            return Err(Stop::Failed(JobError {
                code: "INTEGRITY_CHECK_FAILED".into(),
                message: format!(
                    "the cleaned data failed its integrity checks; nothing was published: {}",
                    failed.join("; ")
                ),
            }));
        }
        let (stem, extension) = crate::domain::split_extension(&dataset.name);
        let name = match writeback["output_name"].as_str().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => crate::domain::fit_name(stem, &format!(" (cleaned){extension}")),
        };
        let _ = progress.send((90.0, "publishing the new version".into()));
        let datasets = jobs.datasets();
        let cleaned = datasets
            .publish_version(
                &dataset,
                DatasetKind::Cleaned,
                &out_dir.join("data.parquet"),
                &name,
                Some((job.id, job.attempts)),
            )
            .await
            .map_err(app_stop)?;
        published.push(cleaned.id);
        manifest.output_dataset_id = Some(cleaned.id.to_string());
        output = Some(cleaned.id);
        if manifest.rows_quarantined > 0 {
            let name = crate::domain::fit_name(stem, &format!(" (quarantined rows){extension}"));
            match datasets
                .publish_version(
                    &dataset,
                    DatasetKind::Quarantine,
                    &out_dir.join("quarantine.parquet"),
                    &name,
                    Some((job.id, job.attempts)),
                )
                .await
            {
                Ok(quarantine) => {
                    published.push(quarantine.id);
                    manifest.quarantine_dataset_id = Some(quarantine.id.to_string());
                }
                Err(e) => {
                    discard(jobs, job, &published).await;
                    return Err(app_stop(e));
                }
            }
        }
    }
    if let Some(hook) = config.hooks.published.as_ref().filter(|_| !published.is_empty()) {
        hook(job.id).await;
    }
    let report = Report { agents: results(&manifest), cleanse: Some(manifest), ..Report::default() };
    let _ = progress.send((97.0, "writing report".into()));
    Ok(Ran { report, output, published })
}

/// A dataset version of the job's owner, with where the engine reads it.
async fn load_version(
    jobs: &Jobs,
    job: &Job,
    id: crate::domain::DatasetId,
    missing: &str,
) -> Result<(crate::domain::Dataset, pipeline::Version), Stop> {
    let dataset =
        jobs.inner.store.dataset(id, job.owner_id).await.map_err(|e| Stop::Internal(e.into()))?.ok_or_else(
            || Stop::Failed(JobError { code: "DATASET_NOT_FOUND".into(), message: missing.into() }),
        )?;
    let data = jobs
        .inner
        .datasets
        .data_path(&dataset)
        .await
        .map_err(|e| Stop::Internal(anyhow::anyhow!("{}", e.report())))?;
    let version = pipeline::Version {
        data,
        columns: dataset.columns.clone(),
        rejected_row_count: dataset.rejected_row_count,
    };
    Ok((dataset, version))
}
