//! The job use cases the API offers: start a tool run, read and list jobs, cancel, follow
//! progress, read reports.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{Notify, broadcast};

use super::cleanse::{self, CLEAN_TOOL};
use super::registry::{self, CheckedRun};
use crate::datasets::Datasets;
use crate::domain::{
    ColumnInfo, Dataset, DatasetId, HistogramBin, Job, JobId, JobStatus, Profile, Report, UserId, ValueCount,
};
use crate::error::{AppError, ErrorCode};
use crate::reports::{self, ReportFormat, ReportMeta};
use crate::store::{JobFilter, MetadataStore, Page, PageRequest};

/// What a client asks to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub tool_id: String,
    pub dataset_id: String,
    pub baseline_dataset_id: Option<String>,
    pub agents: Option<Vec<String>>,
    pub parameters: Option<serde_json::Value>,
}

/// Jobs over the metadata store. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn MetadataStore>,
    pub(super) datasets: Datasets,
    /// The longest a `previewTool` may run (`PREVIEW_TIMEOUT`).
    preview_timeout: std::time::Duration,
    /// Jobs one user may have queued or running (`MAX_ACTIVE_JOBS_PER_USER`).
    max_active_per_user: u64,
    /// Turns for counting an owner's active jobs and queueing one, so that parallel requests
    /// from one user cannot all pass the count before any is stored: one of [`OWNER_STRIPES`]
    /// locks, picked by the owner's id (owners sharing one only wait for each other's insert).
    run_turns: Vec<tokio::sync::Mutex<()>>,
    /// Progress streams one user may have open on this instance
    /// (`MAX_SUBSCRIPTIONS_PER_USER`), and how many each user has.
    max_followers_per_user: usize,
    followers: Arc<std::sync::Mutex<std::collections::HashMap<UserId, usize>>>,
    /// Local change notifications (job ids): progress streams on this instance wake at once;
    /// changes made by other instances are seen by polling the store.
    pub(super) changes: broadcast::Sender<JobId>,
    /// Wakes this instance's workers when a job is queued here.
    pub(super) queued: Notify,
    /// Profiles by dataset version and parameters: a version never changes.
    pub(super) profiles: moka::future::Cache<String, Arc<Profile>>,
    /// Parsed reports by job: a finished job's report never changes.
    reports: moka::future::Cache<JobId, Arc<Report>>,
    /// On-demand histograms and top values (other bins or limits than the stored ones).
    details: moka::future::Cache<String, Arc<serde_json::Value>>,
    /// Turns for computing them: each scans a whole column on the shared engine, and one
    /// request may ask for many (a list of columns, aliases), so at most
    /// [`DETAIL_CONCURRENCY`] run at once and the rest wait without holding a blocking thread;
    /// one of them at most per owner: a request asking for hundreds of histograms takes one
    /// turn at a time and leaves the other to everyone else.
    detail_turns: Arc<super::turns::Turns>,
    /// Turns for `previewTool`, each of which waits for the shared engine's heavy slot (the
    /// one uploads and exports take) and holds it up to `PREVIEW_TIMEOUT`: at most
    /// [`DETAIL_CONCURRENCY`] wait or run at once, one per owner, so that one user's many
    /// previews (aliases, parallel requests) do not queue ahead of everyone's uploads.
    preview_turns: super::turns::Turns,
    /// Rendered report files by job, format and a fingerprint of the personal columns known
    /// when rendered (a finished report never changes; what other runs found may).
    files: moka::future::Cache<(JobId, ReportFormat, u64), Arc<ReportFile>>,
    /// The queue as last read ([`MetadataStore::queue`]), for queued jobs' progress streams:
    /// read at most once per [`QUEUE_SNAPSHOT_TTL`] on this instance, however many follow.
    queue: moka::future::Cache<(), Arc<Vec<JobId>>>,
}

/// How long progress streams share one reading of the queue.
const QUEUE_SNAPSHOT_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A rendered report, ready to download.
#[derive(Debug)]
pub struct ReportFile {
    pub name: String,
    pub format: ReportFormat,
    pub bytes: Vec<u8>,
}

/// How often a progress stream re-reads the store when nothing local woke it (changes
/// made by a worker in another instance).
const POLL: Duration = Duration::from_millis(500);

/// A failure of work on the server's shared engine (a preview, its evidence sample) as the
/// client sees it: running out of `DUCKDB_MEMORY_LIMIT` is the dataset's size against the
/// server's limit, not a fault of the server.
fn shared_engine_failure(e: anyhow::Error, what: &str, advice: &str) -> AppError {
    if format!("{e:#}").contains("Out of Memory Error") {
        AppError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "{what} needs more memory than DUCKDB_MEMORY_LIMIT allows, even spilling to disk: {advice}"
            ),
        )
    } else {
        AppError::internal(e)
    }
}

/// What to do when a preview's sample does not fit.
const PREVIEW_ADVICE: &str =
    "preview fewer rows (cleanse-previewer.sample_size), or run the tool, which works in its own database";

impl Jobs {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        datasets: Datasets,
        config: &crate::config::JobsConfig,
    ) -> Jobs {
        let (changes, _) = broadcast::channel(1024);
        Jobs {
            inner: Arc::new(Inner {
                store,
                datasets,
                preview_timeout: config.preview_timeout,
                max_active_per_user: config.max_active_per_user,
                run_turns: owner_locks(),
                max_followers_per_user: config.max_subscriptions_per_user,
                followers: Arc::default(),
                changes,
                queued: Notify::new(),
                profiles: moka::future::Cache::builder().max_capacity(256).build(),
                reports: moka::future::Cache::builder().max_capacity(256).build(),
                details: moka::future::Cache::builder().max_capacity(4096).build(),
                detail_turns: Arc::new(super::turns::Turns::new(DETAIL_CONCURRENCY)),
                preview_turns: super::turns::Turns::new(DETAIL_CONCURRENCY),
                queue: moka::future::Cache::builder()
                    .max_capacity(1)
                    .time_to_live(QUEUE_SNAPSHOT_TTL)
                    .build(),
                // Weighed by size: at most 64 MiB of rendered reports.
                files: moka::future::Cache::builder()
                    .weigher(|_, file: &Arc<ReportFile>| u32::try_from(file.bytes.len()).unwrap_or(u32::MAX))
                    .max_capacity(64 * 1024 * 1024)
                    .build(),
            }),
        }
    }

    pub fn datasets(&self) -> &Datasets {
        &self.inner.datasets
    }

    /// The request checked against the registry, and the caller's dataset (and baseline) it
    /// names.
    async fn checked(
        &self,
        owner: UserId,
        request: &RunRequest,
    ) -> Result<(CheckedRun, Dataset, Option<Dataset>), AppError> {
        let run = registry::check_run(
            &request.tool_id,
            request.agents.as_deref(),
            request.parameters.as_ref(),
            request.baseline_dataset_id.is_some(),
        )?;
        let dataset = self
            .inner
            .datasets
            .get(owner, &request.dataset_id)
            .await
            .map_err(|e| name_field(e, "datasetId"))?;
        let baseline = match &request.baseline_dataset_id {
            Some(id) => Some(
                self.inner.datasets.get(owner, id).await.map_err(|e| name_field(e, "baselineDatasetId"))?,
            ),
            None => None,
        };
        Ok((run, dataset, baseline))
    }

    /// The `NOT_FOUND` (naming its field) of a request whose dataset or baseline was deleted
    /// while it was being checked: what a failure reading it, or storing the job (its foreign
    /// key), then means. `None` when both are still there.
    async fn deleted_meanwhile(&self, owner: UserId, request: &RunRequest) -> Option<AppError> {
        self.checked(owner, request).await.err()
    }

    /// Checks the request against the registry and the caller's datasets, then queues a job.
    /// Nothing is stored when any check fails.
    pub async fn run_tool(&self, owner: UserId, request: RunRequest) -> Result<Job, AppError> {
        let (run, dataset, baseline) = self.checked(owner, &request).await?;
        self.check_active_jobs(owner).await?;
        registry::check_test_columns(&run, &dataset.columns)?;
        super::pipeline::check_patterns(self.inner.datasets.engine(), &run).await?;
        if run.tool_id == CLEAN_TOOL
            && let Err(e) = self.cleanse_plan(&run, &dataset).await
        {
            return Err(self.deleted_meanwhile(owner, &request).await.unwrap_or(e));
        }
        let CheckedRun { tool_id, agents, parameters } = run;
        // Counted again, in the owner's turn, right before the job is stored (the first count
        // refuses early, before the checks above read the dataset).
        let _turn = self.inner.run_turns[stripe_of(owner)].lock().await;
        self.check_active_jobs(owner).await?;
        let job = Job::queued(
            owner,
            tool_id,
            agents,
            parameters,
            dataset.id,
            baseline.map(|b| b.id),
            crate::store::now(),
        );
        if let Err(e) = self.inner.store.insert_job(&job).await {
            return Err(self.deleted_meanwhile(owner, &request).await.unwrap_or_else(|| e.into()));
        }
        tracing::info!(job_id = %job.id, tool = job.tool_id, dataset_id = %job.dataset_id, "job queued");
        // notify_one keeps a permit when no worker is waiting right now, so the next wait ends at once.
        self.inner.queued.notify_one();
        self.changed(job.id);
        Ok(job)
    }

    /// Refuses another job to an owner who already has `MAX_ACTIVE_JOBS_PER_USER` queued or
    /// running (`RATE_LIMITED`, with `maximum`): one user cannot fill the queue, and the store,
    /// without bound. Exact on one instance (`run_tool` counts in the owner's turn); runs
    /// requested at the same instant on two instances may both pass.
    async fn check_active_jobs(&self, owner: UserId) -> Result<(), AppError> {
        let limit = self.inner.max_active_per_user;
        // (One count: a job claimed or put back between two would be counted twice, or not.)
        let filter =
            JobFilter { statuses: vec![JobStatus::Queued, JobStatus::Running], ..JobFilter::default() };
        let active = self
            .inner
            .store
            .list_jobs(owner, &filter, &PageRequest { first: 1, after: None })
            .await?
            .total_count;
        if active < limit {
            return Ok(());
        }
        Err(AppError::new(
            ErrorCode::RateLimited,
            format!(
                "you have {active} jobs queued or running, the most one user may have \
                 (MAX_ACTIVE_JOBS_PER_USER = {limit}): wait for one to finish, or cancel one"
            ),
        )
        .with("maximum", serde_json::json!(limit)))
    }

    /// The plan a Clean My Data run makes over `dataset` (from a sample of its columns, as the
    /// worker will), every pattern checked by DuckDB itself: refusals come now, before a job
    /// exists. Returns the plan and where the dataset's data is.
    async fn cleanse_plan(
        &self,
        run: &CheckedRun,
        dataset: &Dataset,
    ) -> Result<(cleanse::Built, std::path::PathBuf), AppError> {
        cleanse::check_columns(&dataset.columns)?;
        let engine = self.inner.datasets.engine();
        let patterns = run.parameters.get(cleanse::QUARANTINE).and_then(|q| q.get("patterns"));
        let mut checked = std::collections::HashSet::new();
        for (i, p) in patterns.and_then(|p| p.as_array()).into_iter().flatten().enumerate() {
            let pattern = p["pattern"].as_str().unwrap_or_default().to_string();
            if !checked.insert(pattern.clone()) {
                continue;
            }
            if let Err(why) = engine.check_pattern(pattern).await.map_err(AppError::internal)? {
                let path = format!("{}.patterns[{i}]", cleanse::QUARANTINE);
                return Err(AppError::bad_input(&path, format!("{path}: invalid pattern: {why}")));
            }
        }
        let data = self.inner.datasets.data_path(dataset).await?;
        let columns = dataset.columns.clone();
        let source = data.clone();
        let tokens = cleanse::null_tokens(&run.parameters);
        let evidence = engine
            .run_heavy(move |conn| {
                crate::engine::cleanse::sample_evidence(
                    conn,
                    &source,
                    &columns,
                    &tokens,
                    cleanse::EVIDENCE_SAMPLE_ROWS,
                )
            })
            .await
            .map_err(|e| {
                // (Before any job: the run and the preview both plan from this sample, whose
                // size no parameter changes.)
                let advice = format!(
                    "the sample reads {} rows of each of the dataset's {} columns; the server's \
                     DUCKDB_MEMORY_LIMIT must be raised for this dataset",
                    cleanse::EVIDENCE_SAMPLE_ROWS,
                    dataset.columns.len()
                );
                shared_engine_failure(
                    e,
                    "sampling the dataset's columns to plan the automatic steps",
                    &advice,
                )
            })?;
        let built = cleanse::build(&run.parameters, &run.agents, &dataset.columns, &evidence)?;
        for check in built.engine_checks() {
            let (path, refused) = match check {
                cleanse::EngineCheck::DateFormat { path, format } => {
                    let why = engine.check_date_format(format.clone()).await.map_err(AppError::internal)?;
                    (path, why.err().map(|why| format!("the date format {format:?} is not valid: {why}")))
                }
                cleanse::EngineCheck::Constant { path, column, value, ty } => {
                    let why =
                        engine.check_constant(value.clone(), ty.clone()).await.map_err(AppError::internal)?;
                    (path, why.err().map(|why| format!("{value:?} cannot fill {column} ({ty}): {why}")))
                }
            };
            if let Some(message) = refused {
                return Err(AppError::bad_input(&path, format!("{path}: {message}")));
            }
        }
        Ok((built, data))
    }

    /// Runs a tool's plan on a sample of the dataset and says what it would do; writes
    /// nothing. Only tools that change data have a preview.
    pub async fn preview_tool(
        &self,
        owner: UserId,
        request: RunRequest,
    ) -> Result<cleanse::Preview, AppError> {
        if request.tool_id != CLEAN_TOOL && registry::tool(&request.tool_id).is_some() {
            return Err(AppError::bad_input(
                "toolId",
                format!("{} does not change data, so it has no preview", request.tool_id),
            )
            .with("allowed", serde_json::json!([CLEAN_TOOL])));
        }
        let (run, dataset, _) = self.checked(owner, &request).await?;
        // (The owner's earlier previews first: the time limit starts once this one's turn has come.)
        let _turn = self
            .inner
            .preview_turns
            .take(owner)
            .await
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("the server is stopping")))?;
        // The limit covers the plan's evidence sample too. Past it the future is dropped,
        // which interrupts DuckDB (`Engine::run`): a preview too heavy to answer must not hold
        // the engine's slot for uploads.
        let limit = self.inner.preview_timeout;
        // Whether the plan was made (its evidence sampled) when the limit passed.
        let planned = std::sync::atomic::AtomicBool::new(false);
        let work = async {
            let (built, data) = self.cleanse_plan(&run, &dataset).await?;
            planned.store(true, std::sync::atomic::Ordering::Relaxed);
            let sample_rows = run
                .parameters
                .get(cleanse::PREVIEWER)
                .and_then(|p| p.get("sample_size"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(10_000);
            let columns = dataset.columns.clone();
            let plan = built.plan.clone();
            let preview = self
                .inner
                .datasets
                .engine()
                .run_heavy(move |conn| {
                    crate::engine::cleanse::preview(conn, &data, &columns, &plan, sample_rows)
                })
                .await
                .map_err(|e| shared_engine_failure(e, "previewing the plan on its sample", PREVIEW_ADVICE))?;
            Ok::<_, AppError>((built, preview))
        };
        let (built, preview) = match tokio::time::timeout(limit, work).await {
            Ok(done) => done?,
            Err(_) if !planned.load(std::sync::atomic::Ordering::Relaxed) => {
                // Sampling every column's values to plan the automatic steps took the time:
                // the sample size does not change that.
                return Err(AppError::bad_input(
                    "datasetId",
                    format!(
                        "the preview was stopped after {} s (PREVIEW_TIMEOUT) while sampling the values of the \
                         dataset's {} columns to plan the automatic steps: run the tool, which has no time limit",
                        limit.as_secs_f64(),
                        dataset.columns.len()
                    ),
                ));
            }
            Err(_) => {
                let path = format!("{}.sample_size", cleanse::PREVIEWER);
                return Err(AppError::bad_input(
                    &path,
                    format!(
                        "the preview was stopped after {} s (PREVIEW_TIMEOUT): preview fewer rows ({path}) \
                         or a lighter plan, or run the tool, which has no time limit",
                        limit.as_secs_f64()
                    ),
                ));
            }
        };
        Ok(cleanse::Preview::of(&built, &preview))
    }

    /// The owner's job, or `NOT_FOUND` (also for someone else's).
    pub async fn get(&self, owner: UserId, id: &str) -> Result<Job, AppError> {
        let not_found = || AppError::not_found("no such job");
        let id: JobId = id.parse().map_err(|_| not_found())?;
        self.inner.store.job(id, owner).await?.ok_or_else(not_found)
    }

    pub async fn list(
        &self,
        owner: UserId,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>, AppError> {
        Ok(self.inner.store.list_jobs(owner, filter, page).await?)
    }

    /// Cancels a queued job at once; asks the worker of a running job to stop it (it stops
    /// within a second). A finished job is returned unchanged.
    pub async fn cancel(&self, owner: UserId, id: &str) -> Result<Job, AppError> {
        let job = self.get(owner, id).await?;
        let job = self
            .inner
            .store
            .cancel_job(job.id, owner, crate::store::now())
            .await?
            .ok_or_else(|| AppError::not_found("no such job"))?;
        tracing::info!(job_id = %job.id, status = job.status.as_str(), "job cancellation requested");
        // Cancelled at once while running, its worker having died: what it published goes
        // now, not at the next sweep. (A queued job published nothing: the sweep finds none.)
        if job.status == JobStatus::Cancelled {
            self.delete_orphaned_outputs().await;
        }
        self.changed(job.id);
        Ok(job)
    }

    /// Deletes the versions published by jobs that did not complete them, which a worker that
    /// died after publishing could not delete itself (`MetadataStore::orphaned_outputs`: only
    /// versions nothing else builds on). Workers call it every 30 s.
    pub async fn delete_orphaned_outputs(&self) {
        let orphans = match self.inner.store.orphaned_outputs().await {
            Ok(orphans) => orphans,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for versions of jobs that did not complete");
                return;
            }
        };
        for (owner, id) in orphans {
            match self.inner.datasets.delete(owner, &id.to_string()).await {
                Ok(()) => {
                    tracing::info!(dataset_id = %id, "removed a version its job did not complete (its worker died)")
                }
                Err(e) => {
                    tracing::warn!(dataset_id = %id, error = e.report(), "could not remove a version its job did not complete")
                }
            }
        }
    }

    /// A finished job's report, if it has one.
    pub async fn report(&self, job: &Job) -> Result<Option<Arc<Report>>, AppError> {
        if job.status != JobStatus::Completed {
            return Ok(None);
        }
        if let Some(report) = self.inner.reports.get(&job.id).await {
            return Ok(Some(report));
        }
        let Some(text) = self.inner.store.job_report(job.id, job.owner_id).await? else {
            return Ok(None);
        };
        let report: Report = serde_json::from_str(&text).map_err(AppError::internal)?;
        let report = Arc::new(report);
        self.inner.reports.insert(job.id, report.clone()).await;
        Ok(Some(report))
    }

    /// The columns of a dataset version that its owner's completed runs found personal
    /// (column → kind: the risk scorer's findings, the profiler's flags, a drift run's own
    /// detection), from its most recent [`PERSONAL_RUNS`] runs: what one run's report does not
    /// know, another's may (a profile run after a risk scoring still masks the names it found).
    pub async fn personal_columns(
        &self,
        owner: UserId,
        dataset: DatasetId,
    ) -> Result<std::collections::HashMap<String, String>, AppError> {
        let filter =
            JobFilter { statuses: vec![JobStatus::Completed], tool_id: None, dataset_id: Some(dataset) };
        let page = self.list(owner, &filter, &PageRequest { first: PERSONAL_RUNS, after: None }).await?;
        let mut known = std::collections::HashMap::new();
        // Oldest first, so that the most recent run's verdict on a column wins.
        for job in page.items.iter().rev() {
            if let Some(report) = self.report(job).await? {
                known.extend(reports::Masking::of(&report).into_kinds());
            }
        }
        Ok(known)
    }

    /// A finished job's report rendered as a file (`None` while the job has no report).
    pub async fn report_file(
        &self,
        job: &Job,
        format: ReportFormat,
    ) -> Result<Option<Arc<ReportFile>>, AppError> {
        let Some(report) = self.report(job).await? else { return Ok(None) };
        if format == ReportFormat::Manifest && report.cleanse.is_none() {
            return Ok(None);
        }
        // What other runs found personal is masked too; a file rendered before one of them
        // finished is rendered again (the key holds what was known).
        let mut personal = self.personal_columns(job.owner_id, job.dataset_id).await?;
        // A drift report shows the baseline's categories too: what runs on the baseline found
        // personal is masked as well (a column may hold fewer personal values now).
        if let Some(baseline) = job.baseline_dataset_id {
            for (column, kind) in self.personal_columns(job.owner_id, baseline).await? {
                personal.entry(column).or_insert(kind);
            }
        }
        let mut known: Vec<(&String, &String)> = personal.iter().collect();
        known.sort_unstable();
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            known.hash(&mut hasher);
            hasher.finish()
        };
        // Concurrent requests for the same file share one rendering.
        let render = async {
            let name_of =
                |dataset: Option<Dataset>| dataset.map_or_else(|| "deleted dataset".to_string(), |d| d.name);
            let dataset = self.inner.store.dataset(job.dataset_id, job.owner_id).await?;
            // The baseline's name now, else as the comparison recorded it (deleting the
            // baseline clears the job's link to it).
            let recorded = report.drift.as_ref().and_then(|d| d.baseline_name.clone());
            let baseline = match job.baseline_dataset_id {
                Some(id) => match self.inner.store.dataset(id, job.owner_id).await? {
                    Some(dataset) => Some(dataset.name),
                    None => Some(recorded.unwrap_or_else(|| name_of(None))),
                },
                None => recorded,
            };
            let meta = ReportMeta {
                job_id: job.id.to_string(),
                tool_id: job.tool_id.clone(),
                dataset_name: name_of(dataset),
                baseline_name: baseline,
                created_at: job.created_at,
                finished_at: job.finished_at,
                personal,
            };
            let name = format.file_name(&meta.dataset_name);
            let bytes = tokio::task::spawn_blocking(move || reports::render(format, &meta, &report))
                .await
                .map_err(AppError::internal)?
                .map_err(AppError::internal)?;
            Ok::<_, AppError>(Arc::new(ReportFile { name, format, bytes }))
        };
        let file =
            self.inner.files.try_get_with((job.id, format, fingerprint), render).await.map_err(|e| {
                AppError::internal(anyhow::anyhow!("rendering a {} report: {}", format.as_str(), e.report()))
            })?;
        Ok(Some(file))
    }

    /// The owner's job as a stream of snapshots: the current state first, then one on every
    /// change, ending after the job finishes. `NOT_FOUND` for someone else's job.
    pub async fn follow(
        &self,
        owner: UserId,
        id: &str,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<Job, AppError>> + Send>>, AppError> {
        let first = self.get(owner, id).await?;
        let permit = self.follower(owner)?;
        let state = Follow {
            _permit: permit,
            store: self.inner.store.clone(),
            queue: self.inner.queue.clone(),
            changes: self.inner.changes.subscribe(),
            last: first,
            sent_first: false,
            done: false,
            position: None,
            polls: 0,
        };
        Ok(Box::pin(futures_util::stream::unfold(state, Follow::next)))
    }

    /// Counts one more progress stream for `owner`, or refuses it (`RATE_LIMITED`, with
    /// `maximum`) when the owner already has `MAX_SUBSCRIPTIONS_PER_USER` open here: each
    /// stream reads the store twice a second.
    fn follower(&self, owner: UserId) -> Result<FollowerPermit, AppError> {
        let limit = self.inner.max_followers_per_user;
        let mut counts = lock_counts(&self.inner.followers);
        let open = counts.entry(owner).or_insert(0);
        if *open >= limit {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!(
                    "you are following {open} jobs already, the most one user may \
                     (MAX_SUBSCRIPTIONS_PER_USER = {limit}): complete a subscription first"
                ),
            )
            .with("maximum", serde_json::json!(limit)));
        }
        *open += 1;
        Ok(FollowerPermit { counts: self.inner.followers.clone(), owner })
    }

    /// Tells local progress streams a job changed.
    pub(super) fn changed(&self, id: JobId) {
        let _ = self.inner.changes.send(id);
    }

    /// A column's histogram with `bins` bins (computed on demand and cached when it differs
    /// from the stored one).
    pub async fn histogram(
        &self,
        dataset: &Dataset,
        column: &ColumnInfo,
        bins: u64,
    ) -> Result<Vec<HistogramBin>, AppError> {
        let key = format!("h:{}:{}:{bins}", dataset.id, column.name);
        let value = self
            .detail(key, dataset, |engine, data| {
                let column = column.clone();
                async move { Ok(serde_json::to_value(engine.histogram(data, column, bins).await?)?) }
            })
            .await?;
        serde_json::from_value((*value).clone()).map_err(AppError::internal)
    }

    /// A column's `limit` most frequent values (computed on demand and cached).
    pub async fn top_values(
        &self,
        dataset: &Dataset,
        column: &ColumnInfo,
        limit: u64,
    ) -> Result<Vec<ValueCount>, AppError> {
        let key = format!("t:{}:{}:{limit}", dataset.id, column.name);
        let value = self
            .detail(key, dataset, |engine, data| {
                let column = column.clone();
                async move { Ok(serde_json::to_value(engine.top_values(data, column, limit).await?)?) }
            })
            .await?;
        serde_json::from_value((*value).clone()).map_err(AppError::internal)
    }

    async fn detail<F, Fut>(
        &self,
        key: String,
        dataset: &Dataset,
        compute: F,
    ) -> Result<Arc<serde_json::Value>, AppError>
    where
        F: FnOnce(crate::engine::Engine, std::path::PathBuf) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<serde_json::Value>>,
    {
        if let Some(hit) = self.inner.details.get(&key).await {
            return Ok(hit);
        }
        let data = self.inner.datasets.data_path(dataset).await?;
        let (engine, turns) = (self.inner.datasets.engine().clone(), self.inner.detail_turns.clone());
        let owner = dataset.owner_id;
        // Requests for the same detail at the same time share one computation.
        self.inner
            .details
            .try_get_with(key, async move {
                let _turn =
                    turns.take(owner).await.ok_or_else(|| anyhow::anyhow!("the server is stopping"))?;
                compute(engine, data).await.map(Arc::new)
            })
            .await
            .map_err(|e: Arc<anyhow::Error>| AppError::internal(anyhow::anyhow!("{e:#}")))
    }
}

/// How many of a dataset version's most recent completed runs tell which of its columns are
/// personal ([`Jobs::personal_columns`]).
const PERSONAL_RUNS: usize = 50;

/// On-demand histograms and top values computed at once (each a scan of one column with the
/// engine's threads).
const DETAIL_CONCURRENCY: usize = 2;

/// Whether a client would see a difference.
fn differs(a: &Job, b: &Job) -> bool {
    a.status != b.status
        || a.progress != b.progress
        || a.stage != b.stage
        || a.cancel_requested != b.cancel_requested
        || a.updated_at != b.updated_at
}

/// Per-owner locks for counting jobs are striped: this many, an owner's picked by its id;
/// owners sharing one only wait for each other's insert.
const OWNER_STRIPES: usize = 64;

fn owner_locks() -> Vec<tokio::sync::Mutex<()>> {
    (0..OWNER_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect()
}

/// The stripe of `owner`'s locks.
fn stripe_of(owner: UserId) -> usize {
    (owner.0.as_u128() % OWNER_STRIPES as u128) as usize
}

/// One open progress stream, counted against its owner until dropped.
struct FollowerPermit {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<UserId, usize>>>,
    owner: UserId,
}

impl Drop for FollowerPermit {
    fn drop(&mut self) {
        let mut counts = lock_counts(&self.counts);
        if let Some(open) = counts.get_mut(&self.owner) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.owner);
            }
        }
    }
}

fn lock_counts<T>(counts: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The state of one progress stream.
struct Follow {
    _permit: FollowerPermit,
    store: Arc<dyn MetadataStore>,
    /// The instance's shared reading of the queue.
    queue: moka::future::Cache<(), Arc<Vec<JobId>>>,
    changes: broadcast::Receiver<JobId>,
    last: Job,
    sent_first: bool,
    done: bool,
    /// A queued job's place in the queue when last sent (`None` until read), and the polls
    /// since it was last read: it is read every [`POSITION_POLLS`] polls, and a change sends a
    /// snapshot as any other change does.
    position: Option<u64>,
    polls: u32,
}

/// Polls between two readings of a queued job's place in the queue (two seconds).
const POSITION_POLLS: u32 = 4;

impl Follow {
    /// How many queued jobs are ahead of `id`, from the instance's shared reading of the
    /// queue (one read of the store a second, not one per stream). `None` when the store
    /// cannot be read.
    async fn jobs_ahead(&self, id: JobId) -> Option<u64> {
        let store = self.store.clone();
        let queue =
            self.queue.try_get_with((), async move { store.queue().await.map(Arc::new) }).await.ok()?;
        Some(crate::store::jobs_ahead_in(&queue, id))
    }

    async fn next(mut self) -> Option<(Result<Job, AppError>, Follow)> {
        if self.done {
            return None;
        }
        if !self.sent_first {
            self.sent_first = true;
            self.done = self.last.status.is_finished();
            if self.last.status == JobStatus::Queued {
                self.position = self.jobs_ahead(self.last.id).await;
            }
            return Some((Ok(self.last.clone()), self));
        }
        let id = self.last.id;
        loop {
            // A local change to this job wakes the stream at once; a change made by another
            // instance is seen at the next poll.
            let changes = &mut self.changes;
            let _ = tokio::time::timeout(POLL, async {
                loop {
                    match changes.recv().await {
                        Ok(changed) if changed == id => return,
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            })
            .await;
            match self.store.job_by_id(id).await {
                Err(e) => {
                    self.done = true;
                    return Some((Err(AppError::from(e)), self));
                }
                // Deleted with its dataset.
                Ok(None) => return None,
                Ok(Some(job)) if differs(&job, &self.last) => {
                    self.done = job.status.is_finished();
                    self.last = job.clone();
                    self.polls = 0;
                    return Some((Ok(job), self));
                }
                Ok(Some(job)) if job.status == JobStatus::Queued => {
                    // Jobs ahead of it started or were cancelled: its place changed.
                    self.polls += 1;
                    if self.polls >= POSITION_POLLS {
                        self.polls = 0;
                        let position = self.jobs_ahead(id).await;
                        if position.is_some() && position != self.position {
                            self.position = position;
                            return Some((Ok(job), self));
                        }
                    }
                }
                Ok(Some(job)) if job.status == JobStatus::Running && job.cancel_requested => {
                    // Asked to cancel, and its worker may have died since (no worker left to
                    // look after it): ended here once its lease has run out, every second.
                    self.polls += 1;
                    if self.polls >= 2 {
                        self.polls = 0;
                        let _ = self.store.cancel_orphaned_job(id, job.owner_id, crate::store::now()).await;
                    }
                }
                Ok(Some(_)) => continue,
            }
        }
    }
}

/// Points a dataset look-up's error at the input field that named it.
fn name_field(error: AppError, field: &str) -> AppError {
    error.with("field", field.to_string())
}
