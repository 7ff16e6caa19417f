//! Tools and jobs in GraphQL: the registry (`tools`, `tool`), `runTool`, `cancelJob`,
//! `jobs`, `job` with its report, and the `jobProgress` subscription.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::context::ContextExt;
use super::dataset::Dataset;
use super::loaders::{DatasetLoader, QueueLoader};
use super::pagination::{PageInfo, encode_cursor, page_request};
use crate::domain::{self, DatasetId, UserId};
use crate::error::AppError;
use crate::jobs::registry::{self, AgentSpec, ParameterSpec, ToolSpec};
use crate::jobs::{Jobs, RunRequest};
use crate::reports::ReportFormat;
use crate::store::JobFilter;

fn jobs<'a>(ctx: &'a Context<'_>) -> Result<&'a Jobs, AppError> {
    ctx.data::<Jobs>().map_err(|e| AppError::internal(anyhow::anyhow!("schema data: {}", e.message)))
}

/// A named bundle of agents.
pub struct Tool(ToolSpec);

#[Object]
impl Tool {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn description(&self) -> &str {
        self.0.description
    }
    async fn agents(&self) -> Vec<Agent> {
        self.0.agents.iter().cloned().map(Agent).collect()
    }
    /// Formats the tool reads and whether it uses a baseline dataset.
    async fn file_requirements(&self) -> Json<serde_json::Value> {
        Json(self.0.file_requirements.clone())
    }
}

/// One agent of a tool, with the parameters a form can render.
pub struct Agent(AgentSpec);

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name
    }
    async fn description(&self) -> &str {
        self.0.description
    }
    /// Runs only when the run names a baseline dataset (`baselineDatasetId`).
    async fn needs_baseline(&self) -> bool {
        self.0.needs_baseline
    }
    async fn parameters(&self) -> Vec<Parameter> {
        self.0.parameters.iter().cloned().map(Parameter).collect()
    }
}

/// A typed agent parameter.
#[derive(Clone)]
pub struct Parameter(ParameterSpec);

#[Object(name = "ParameterSpec")]
impl Parameter {
    async fn name(&self) -> &str {
        self.0.name
    }
    /// What the value is, for a form to render:
    /// - `integer`, `number` (within `minimum` and `maximum`), `boolean`, `enum` (one of
    ///   `allowed`), `string`;
    /// - `strings`: a list of texts; `columns`: a list of the dataset's column names;
    /// - `column_map`: an object from column names to one of `allowed` each
    ///   (`{ "city": "title" }`);
    /// - `column_values`: an object from column names to a value each (`{ "age": 0 }`);
    /// - `ranges`: `[{ column, min, max }]`; `patterns`: `[{ column, pattern }]`;
    ///   `value_maps`: `{ column: { value: replacement } }`; `units`:
    ///   `{ column: { from, to } }`;
    /// - `tests`: a list of data tests,
    ///   `[{ type: unique|range|regex, column, min, max, pattern, weight }]`.
    ///
    /// The description says more of each.
    async fn r#type(&self) -> &str {
        self.0.type_name()
    }
    /// The value used when the parameter is not given; null when there is none (the agent
    /// then decides, as the description says).
    async fn default(&self) -> Option<Json<serde_json::Value>> {
        (!self.0.default.is_null()).then(|| Json(self.0.default.clone()))
    }
    /// The accepted values: for booleans and enums, and for each entry of a `column_map`.
    async fn allowed(&self) -> Option<Vec<Json<serde_json::Value>>> {
        self.0.allowed().map(|values| values.into_iter().map(Json).collect())
    }
    /// Smallest accepted value, for numbers.
    async fn minimum(&self) -> Option<f64> {
        self.0.minimum()
    }
    /// Largest accepted value, for numbers.
    async fn maximum(&self) -> Option<f64> {
        self.0.maximum()
    }
    async fn description(&self) -> &str {
        self.0.description
    }
}

/// A tool run request.
#[derive(InputObject)]
pub struct RunToolInput {
    /// e.g. "profile-my-data".
    tool_id: ID,
    dataset_id: ID,
    baseline_dataset_id: Option<ID>,
    /// Default: every agent of the tool.
    agents: Option<Vec<ID>>,
    /// `{ agentId: { parameter: value } }`, checked against the registry; defaults fill
    /// the rest.
    parameters: Option<Json<serde_json::Value>>,
}

impl From<RunToolInput> for RunRequest {
    fn from(input: RunToolInput) -> Self {
        RunRequest {
            tool_id: input.tool_id.0,
            dataset_id: input.dataset_id.0,
            baseline_dataset_id: input.baseline_dataset_id.map(|id| id.0),
            agents: input.agents.map(|ids| ids.into_iter().map(|id| id.0).collect()),
            parameters: input.parameters.map(|p| p.0),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl From<domain::JobStatus> for JobStatus {
    fn from(status: domain::JobStatus) -> Self {
        match status {
            domain::JobStatus::Queued => JobStatus::Queued,
            domain::JobStatus::Running => JobStatus::Running,
            domain::JobStatus::Completed => JobStatus::Completed,
            domain::JobStatus::Failed => JobStatus::Failed,
            domain::JobStatus::Cancelled => JobStatus::Cancelled,
        }
    }
}

impl From<JobStatus> for domain::JobStatus {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => domain::JobStatus::Queued,
            JobStatus::Running => domain::JobStatus::Running,
            JobStatus::Completed => domain::JobStatus::Completed,
            JobStatus::Failed => domain::JobStatus::Failed,
            JobStatus::Cancelled => domain::JobStatus::Cancelled,
        }
    }
}

/// Why a job failed.
#[derive(SimpleObject)]
pub struct JobError {
    /// Stable: WORKER_LOST, OUT_OF_MEMORY, DATASET_NOT_FOUND, INTERNAL… (docs/errors.md).
    code: String,
    message: String,
}

/// A tool run over a dataset.
pub struct Job(pub domain::Job);

#[Object]
impl Job {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn tool_id(&self) -> ID {
        ID(self.0.tool_id.clone())
    }
    async fn agents(&self) -> Vec<ID> {
        self.0.agents.iter().cloned().map(ID).collect()
    }
    /// The parameters the job runs with, defaults filled in.
    async fn parameters(&self) -> Json<serde_json::Value> {
        Json(self.0.parameters.clone())
    }
    async fn status(&self) -> JobStatus {
        self.0.status.into()
    }
    /// 0–100; never goes backwards.
    async fn progress(&self) -> f64 {
        self.0.progress
    }
    /// What the job is doing now.
    async fn stage(&self) -> Option<&str> {
        self.0.stage.as_deref()
    }
    /// For a queued job: how many queued jobs are ahead of it now (0: none). Jobs are taken
    /// round robin over their owners: a job's turn is its owner's running jobs plus its
    /// owner's jobs queued before it (within a turn, the owner served longest ago first), so
    /// one user's long queue does not hold back another's — and a job another user queues
    /// later may go ahead of it, so the position can grow.
    async fn queue_position(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        if self.0.status != domain::JobStatus::Queued {
            return Ok(None);
        }
        let ahead = ctx.data::<DataLoader<QueueLoader>>()?.load_one(self.0.id).await?;
        // Gone from the queue since this snapshot was read: a worker is starting it, so none
        // is ahead (never QUEUED with no position).
        Ok(Some(ahead.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX))))
    }
    /// Cancellation was asked for; a running job stops within a second.
    async fn cancel_requested(&self) -> bool {
        self.0.cancel_requested
    }
    /// How many times a worker started it (more than one after a worker died).
    async fn attempts(&self) -> i32 {
        i32::try_from(self.0.attempts).unwrap_or(i32::MAX)
    }
    async fn error(&self) -> Option<JobError> {
        self.0.error.as_ref().map(|e| JobError { code: e.code.clone(), message: e.message.clone() })
    }
    async fn dataset(&self, ctx: &Context<'_>) -> async_graphql::Result<Dataset> {
        load_dataset(ctx, self.0.owner_id, self.0.dataset_id).await
    }
    async fn baseline_dataset(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dataset>> {
        match self.0.baseline_dataset_id {
            Some(id) => Ok(Some(load_dataset(ctx, self.0.owner_id, id).await?)),
            None => Ok(None),
        }
    }
    /// The rows a cleanse quarantined, as a dataset of their own (with `_reason` and `_row`),
    /// when it quarantined any.
    /// Null too once that dataset was deleted.
    async fn quarantine(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dataset>> {
        let Some(report) = jobs(ctx)?.report(&self.0).await? else { return Ok(None) };
        match quarantine_id(&report) {
            Some(id) => find_dataset(ctx, self.0.owner_id, id).await,
            None => Ok(None),
        }
    }
    /// The new dataset version, for tools that change data; null once it was deleted.
    async fn output(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dataset>> {
        match self.0.output_dataset_id {
            Some(id) => find_dataset(ctx, self.0.owner_id, id).await,
            None => Ok(None),
        }
    }
    /// What the job found; present once it completed.
    async fn report(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Report>> {
        let report = jobs(ctx)?.report(&self.0).await?;
        Ok(report.map(|report| Report {
            report,
            owner: self.0.owner_id,
            dataset: self.0.dataset_id,
            job: self.0.clone(),
        }))
    }
    /// The report as files — JSON, an Excel workbook and a self-contained HTML page — once
    /// the job completed: links valid for five minutes, for this job only.
    async fn downloads(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Download>> {
        let jobs = jobs(ctx)?;
        let Some(report) = jobs.report(&self.0).await? else { return Ok(Vec::new()) };
        let tokens = ctx.accounts()?.tokens();
        let mut downloads = Vec::new();
        let mut formats = ReportFormat::ALL.to_vec();
        if report.cleanse.is_some() {
            formats.push(ReportFormat::Manifest);
        }
        for format in formats {
            let Some(file) = jobs.report_file(&self.0, format).await? else { return Ok(Vec::new()) };
            let (token, expires) = tokens
                .issue_report_download(self.0.owner_id, &self.0.id.to_string(), format.as_str(), DOWNLOAD_TTL)
                .map_err(AppError::internal)?;
            downloads.push(Download {
                name: file.name.clone(),
                format: format.extension().to_string(),
                kind: if format == ReportFormat::Manifest { "manifest" } else { "report" }.to_string(),
                url: format!("/downloads/{token}"),
                size_bytes: file.bytes.len() as f64,
                expires_at: DateTime::from_timestamp(expires, 0).unwrap_or_default(),
            });
        }
        // The data a cleanse wrote, as Parquet (other formats: `output { download(format:) }`).
        let written = [("cleaned", self.0.output_dataset_id), ("quarantine", quarantine_id(&report))];
        for (kind, id) in written {
            let Some(id) = id else { continue };
            let Some(dataset) =
                ctx.data::<DataLoader<DatasetLoader>>()?.load_one((self.0.owner_id, id)).await?
            else {
                continue;
            };
            let (token, expires) = tokens
                .issue_download(self.0.owner_id, &id.to_string(), "parquet", DOWNLOAD_TTL)
                .map_err(AppError::internal)?;
            downloads.push(Download {
                name: crate::domain::download_name(&dataset.name, "parquet"),
                format: "parquet".into(),
                kind: kind.into(),
                url: format!("/downloads/{token}"),
                size_bytes: dataset.size_bytes as f64,
                expires_at: DateTime::from_timestamp(expires, 0).unwrap_or_default(),
            });
        }
        Ok(downloads)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

fn quarantine_id(report: &domain::Report) -> Option<DatasetId> {
    report.cleanse.as_ref()?.quarantine_dataset_id.as_deref()?.parse().ok().map(DatasetId)
}

/// The owner's dataset `id`, if it still exists (a job's outputs may have been deleted).
async fn find_dataset(
    ctx: &Context<'_>,
    owner: UserId,
    id: DatasetId,
) -> async_graphql::Result<Option<Dataset>> {
    let loader = ctx.data::<DataLoader<DatasetLoader>>()?;
    Ok(loader.load_one((owner, id)).await?.map(Dataset::new))
}

async fn load_dataset(ctx: &Context<'_>, owner: UserId, id: DatasetId) -> async_graphql::Result<Dataset> {
    let loader = ctx.data::<DataLoader<DatasetLoader>>()?;
    let dataset = loader
        .load_one((owner, id))
        .await?
        .ok_or_else(|| AppError::not_found("the dataset no longer exists"))?;
    Ok(Dataset::new(dataset))
}

const DOWNLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// A file a job produced, behind a short-lived signed link.
#[derive(SimpleObject)]
pub struct Download {
    /// Suggested file name.
    name: String,
    /// json, xlsx, html or parquet.
    format: String,
    /// report (the whole report), manifest (a cleanse's manifest), cleaned (the new version's
    /// data) or quarantine (the quarantined rows).
    kind: String,
    /// Path on this server; GET it (relative to the API's origin), no header needed.
    url: String,
    size_bytes: f64,
    expires_at: DateTime<Utc>,
}

/// What a completed job found.
pub struct Report {
    report: Arc<domain::Report>,
    owner: UserId,
    dataset: DatasetId,
    job: domain::Job,
}

#[Object]
impl Report {
    /// The dataset profile, when the unified profiler ran.
    async fn profile(&self) -> Option<Profile> {
        self.report.profile.as_ref().map(|_| Profile {
            report: self.report.clone(),
            owner: self.owner,
            dataset: self.dataset,
        })
    }
    /// An executive summary in four sections (Executive Summary, Technical Findings,
    /// Recommended Actions, Next Steps). Written by the configured language model when its
    /// text states only numbers the report holds (regenerated once otherwise), else
    /// rule-based from the report's own numbers; `summaryModel` says which.
    async fn summary(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self.explained(ctx).await?.text.clone())
    }
    /// Who wrote `summary`: the model's name, or `rule-based`.
    async fn summary_model(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self.explained(ctx).await?.model.clone())
    }
    /// One or two tools to run next, each a tool of the registry (`tools`) with the agents
    /// to select, the datasets to run it on, a confidence (0–1) weighed from the report's
    /// evidence, and the reason. A suggestion about a dataset deleted since is left out.
    async fn next_tools(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ToolSuggestion>> {
        let routing = ctx.data::<crate::ai::Ai>()?.next_tools(&self.job, self.report.clone()).await;
        let loader = ctx.data::<DataLoader<DatasetLoader>>()?;
        let mut suggestions = Vec::new();
        for s in &routing.suggestions {
            let (dataset, baseline) = crate::ai::routing::targets(&self.job, s);
            // A suggestion about a dataset deleted since cannot be run: left out.
            let mut gone = false;
            for id in [dataset, baseline].into_iter().flatten() {
                gone |= loader.load_one((self.owner, id)).await?.is_none();
            }
            if gone {
                continue;
            }
            suggestions.push(ToolSuggestion {
                tool_id: ID(s.tool_id.clone()),
                agents: s.agents.clone(),
                confidence: s.confidence,
                reason: s.reason.clone(),
                model: routing.model.clone(),
                owner: self.owner,
                dataset,
                baseline,
            });
        }
        Ok(suggestions)
    }
    /// What a cleanse did: rows in and out, every step, the changes per agent and column,
    /// and the integrity checks. Present for Clean My Data runs.
    async fn cleanse(&self) -> Option<CleanseManifest> {
        self.report.cleanse.as_ref().map(CleanseManifest::from)
    }
    /// One result per agent, in the shape every agent shares.
    async fn agents(&self) -> Vec<AgentResult> {
        (0..self.report.agents.len())
            .map(|index| AgentResult { report: self.report.clone(), index })
            .collect()
    }
}

impl Report {
    async fn explained(&self, ctx: &Context<'_>) -> async_graphql::Result<Arc<crate::explain::Summary>> {
        let name = match load_dataset(ctx, self.owner, self.dataset).await {
            Ok(dataset) => dataset.0.name,
            Err(_) => "The dataset".to_string(),
        };
        Ok(ctx.data::<crate::ai::Ai>()?.summary(&self.job, self.report.clone(), name).await)
    }
}

/// The manifest of a cleanse. Rows add up: `rowsIn = rowsOut + rowsRemoved + rowsQuarantined`.
#[derive(SimpleObject)]
pub struct CleanseManifest {
    rows_in: f64,
    rows_out: f64,
    /// Removed by steps (duplicates, dropped nulls, removed outliers).
    rows_removed: f64,
    rows_quarantined: f64,
    steps: Vec<ManifestStep>,
    changes: Vec<ManifestChange>,
    checks: Vec<IntegrityCheck>,
}

impl From<&domain::CleanseManifest> for CleanseManifest {
    fn from(m: &domain::CleanseManifest) -> Self {
        CleanseManifest {
            rows_in: m.rows_in as f64,
            rows_out: m.rows_out as f64,
            rows_removed: m.rows_removed as f64,
            rows_quarantined: m.rows_quarantined as f64,
            steps: m
                .steps
                .iter()
                .map(|s| ManifestStep {
                    agent_id: ID(s.agent_id.clone()),
                    step: s.step.clone(),
                    description: s.description.clone(),
                    rows_removed: s.rows_removed as f64,
                    rows_quarantined: s.rows_quarantined as f64,
                })
                .collect(),
            changes: m
                .changes
                .iter()
                .map(|c| ManifestChange {
                    agent_id: ID(c.agent_id.clone()),
                    step: c.step.clone(),
                    column: c.column.clone(),
                    changed: c.changed as f64,
                    failed: c.failed as f64,
                })
                .collect(),
            checks: m
                .checks
                .iter()
                .map(|c| IntegrityCheck {
                    name: c.name.clone(),
                    passed: c.passed,
                    message: c.message.clone(),
                })
                .collect(),
        }
    }
}

/// One step of a cleanse plan, in order.
#[derive(SimpleObject)]
pub struct ManifestStep {
    agent_id: ID,
    /// quarantine, null_tokens, fix_types, standardize, convert_units, deduplicate, nulls or
    /// outliers.
    step: String,
    description: String,
    rows_removed: f64,
    rows_quarantined: f64,
}

/// Values one step changed, or could not handle, in one column: a value two steps changed
/// (a null token then filled) counts once in each.
#[derive(SimpleObject)]
pub struct ManifestChange {
    agent_id: ID,
    /// The step, as `ManifestStep.step` names it (empty in manifests recorded before steps
    /// were named here).
    step: String,
    column: String,
    changed: f64,
    /// Failed conversions, dates no format read, invalid emails or phone numbers, nulls
    /// left with no value to fill them.
    failed: f64,
}

/// An integrity check of a cleanse's output.
#[derive(SimpleObject)]
pub struct IntegrityCheck {
    /// row_accounting, types, no_new_nulls or filled_columns.
    name: String,
    passed: bool,
    message: String,
}

/// A tool's plan run on a sample; nothing was written.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ToolPreview {
    /// Rows of the sample.
    rows_before: f64,
    rows_after: f64,
    rows_removed: f64,
    rows_quarantined: f64,
    /// The plan's steps, in order.
    plan: Vec<PlanStep>,
    /// `{ rowsIn, rowsOut, rowsRemoved, rowsQuarantined, steps: [{ agentId, step, description,
    /// rowsRemoved, rowsQuarantined }], columns: [{ agentId, step, column, changed, failed }] }`.
    changes: Json<serde_json::Value>,
    #[graphql(skip)]
    sample: Vec<serde_json::Value>,
}

#[ComplexObject]
impl ToolPreview {
    /// Sampled rows in the dataset's order: `{ row, before: { column: value }, after:
    /// { column: value } | null, fate }` (values as text; `fate`: the step that removed the
    /// row, or `quarantine: <reasons>`). `first` rows (at most 1,000) from `offset`; with
    /// `changedOnly`, only the rows the plan changes, removes or quarantines.
    #[graphql(complexity = "crate::gql::rows(first.unwrap_or(crate::gql::FIRST_ROWS))")]
    async fn sample(
        &self,
        #[graphql(default_with = "Some(crate::gql::FIRST_ROWS)")] first: Option<i32>,
        #[graphql(default_with = "Some(crate::gql::FIRST_OFFSET)")] offset: Option<i32>,
        #[graphql(default_with = "Some(false)")] changed_only: Option<bool>,
    ) -> async_graphql::Result<Vec<Json<serde_json::Value>>> {
        let first = first.unwrap_or(crate::gql::FIRST_ROWS);
        if !(1..=crate::gql::MAX_SAMPLE_ROWS).contains(&first) {
            let message = format!("first must be between 1 and {}", crate::gql::MAX_SAMPLE_ROWS);
            return Err(AppError::bad_input("first", message).into());
        }
        let Ok(offset) = usize::try_from(offset.unwrap_or(crate::gql::FIRST_OFFSET)) else {
            return Err(AppError::bad_input("offset", "offset must be 0 or more").into());
        };
        let changed_only = changed_only.unwrap_or(false);
        Ok(self
            .sample
            .iter()
            .filter(|row| !changed_only || crate::jobs::cleanse::sample_row_changed(row))
            .skip(offset)
            .take(first as usize)
            .cloned()
            .map(Json)
            .collect())
    }
}

/// One step of a plan.
#[derive(SimpleObject)]
pub struct PlanStep {
    agent_id: ID,
    description: String,
}

/// A tool to run next.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ToolSuggestion {
    /// A tool of the registry.
    tool_id: ID,
    /// Agents of the tool to select.
    agents: Vec<String>,
    /// 0–1, from the evidence in the report.
    confidence: f64,
    reason: String,
    /// Who suggested it: the model's name, or `rule-based`.
    model: String,
    #[graphql(skip)]
    owner: UserId,
    #[graphql(skip)]
    dataset: Option<DatasetId>,
    #[graphql(skip)]
    baseline: Option<DatasetId>,
}

#[ComplexObject]
impl ToolSuggestion {
    /// The dataset to run it on: the job's new version after a cleanse, else the job's
    /// dataset. Null for a drift comparison whose version is yet to come (upload it, then
    /// run with `baselineDataset` as the baseline).
    async fn dataset(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dataset>> {
        match self.dataset {
            Some(id) => find_dataset(ctx, self.owner, id).await,
            None => Ok(None),
        }
    }
    /// For a drift comparison, the baseline (`RunToolInput.baselineDatasetId`): the
    /// original after a cleanse, else the job's dataset. Null otherwise.
    async fn baseline_dataset(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dataset>> {
        match self.baseline {
            Some(id) => find_dataset(ctx, self.owner, id).await,
            None => Ok(None),
        }
    }
}

/// One agent's result.
pub struct AgentResult {
    report: Arc<domain::Report>,
    index: usize,
}

impl AgentResult {
    fn get(&self) -> &domain::AgentResult {
        &self.report.agents[self.index]
    }
}

#[Object]
impl AgentResult {
    async fn agent_id(&self) -> ID {
        ID(self.get().agent_id.clone())
    }
    /// success or failed.
    async fn status(&self) -> &str {
        &self.get().status
    }
    /// Milliseconds this run spent on the agent: 0 for a profile taken from the cache (an
    /// earlier run's on the same version with the same parameters). Clean My Data's agents run
    /// as one plan: its writeback agent has the whole run's time (the previewer its preview's),
    /// the others 0.
    async fn execution_time_ms(&self) -> f64 {
        self.get().execution_time_ms
    }
    async fn summary_metrics(&self) -> Json<serde_json::Value> {
        Json(self.get().summary_metrics.clone())
    }
    async fn alerts(&self) -> Vec<Finding> {
        self.get().alerts.iter().map(Finding::from).collect()
    }
    async fn issues(&self) -> Vec<Finding> {
        self.get().issues.iter().map(Finding::from).collect()
    }
    async fn recommendations(&self) -> Vec<Finding> {
        self.get().recommendations.iter().map(Finding::from).collect()
    }
    /// Problems in single rows, with row numbers (capped; see `rowLevelIssueCount`): the first
    /// `first` (0 or more).
    #[graphql(complexity = "crate::gql::rows(first.unwrap_or(crate::gql::FIRST_ROWS))")]
    async fn row_level_issues(
        &self,
        #[graphql(default_with = "Some(crate::gql::FIRST_ROWS)")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<RowIssue>> {
        let first = first.unwrap_or(crate::gql::FIRST_ROWS);
        let Ok(first) = usize::try_from(first) else {
            return Err(AppError::bad_input("first", "first must not be negative").into());
        };
        Ok(self
            .get()
            .row_level_issues
            .iter()
            .take(first)
            .map(|i| RowIssue {
                row: i.row as f64,
                column: i.column.clone(),
                code: i.code.clone(),
                message: i.message.clone(),
            })
            .collect())
    }
    async fn row_level_issue_count(&self) -> f64 {
        self.get().row_level_issue_count as f64
    }
    /// The parameters the agent actually used.
    async fn parameters(&self) -> Json<serde_json::Value> {
        Json(self.get().parameters.clone())
    }
}

/// An alert, issue or recommendation.
#[derive(SimpleObject)]
pub struct Finding {
    code: String,
    /// info, warning or critical.
    severity: String,
    column: Option<String>,
    message: String,
}

impl From<&domain::Finding> for Finding {
    fn from(f: &domain::Finding) -> Self {
        Finding {
            code: f.code.clone(),
            severity: f.severity.clone(),
            column: f.column.clone(),
            message: f.message.clone(),
        }
    }
}

/// A problem in one row.
#[derive(SimpleObject)]
pub struct RowIssue {
    row: f64,
    column: Option<String>,
    code: String,
    message: String,
}

/// The profile of a dataset (definitions in docs/statistics.md).
pub struct Profile {
    report: Arc<domain::Report>,
    owner: UserId,
    dataset: DatasetId,
}

impl Profile {
    fn get(&self) -> &domain::Profile {
        self.report.profile.as_ref().expect("Profile is only built when the report has one")
    }
}

/// The quality score's components, each 0–100.
#[derive(SimpleObject)]
pub struct Quality {
    score: f64,
    grade: String,
    completeness: f64,
    validity: f64,
    uniqueness: f64,
    consistency: f64,
}

#[Object]
impl Profile {
    async fn row_count(&self) -> f64 {
        self.get().row_count as f64
    }
    async fn column_count(&self) -> i32 {
        i32::try_from(self.get().column_count).unwrap_or(i32::MAX)
    }
    /// Rows identical to an earlier row.
    async fn duplicate_row_count(&self) -> f64 {
        self.get().duplicate_row_count as f64
    }
    /// 0–100.
    async fn quality_score(&self) -> f64 {
        self.get().quality.score
    }
    /// A, B, C, D or F.
    async fn grade(&self) -> &str {
        &self.get().quality.grade
    }
    /// The score and each component it is made of.
    async fn quality(&self) -> Quality {
        let q = &self.get().quality;
        Quality {
            score: q.score,
            grade: q.grade.clone(),
            completeness: q.completeness,
            validity: q.validity,
            uniqueness: q.uniqueness,
            consistency: q.consistency,
        }
    }
    #[graphql(complexity = "crate::gql::per_column(child_complexity)")]
    async fn columns(&self) -> Vec<ColumnProfile> {
        (0..self.get().columns.len())
            .map(|index| ColumnProfile {
                report: self.report.clone(),
                owner: self.owner,
                dataset: self.dataset,
                index,
            })
            .collect()
    }
    /// Pearson correlations between numeric columns.
    async fn correlations(&self) -> Vec<Correlation> {
        self.get()
            .correlations
            .iter()
            .map(|c| Correlation { a: c.a.clone(), b: c.b.clone(), method: c.method.clone(), value: c.value })
            .collect()
    }
    async fn alerts(&self) -> Vec<Finding> {
        self.get().alerts.iter().map(Finding::from).collect()
    }
}

#[derive(SimpleObject)]
pub struct Correlation {
    a: String,
    b: String,
    method: String,
    value: f64,
}

#[derive(SimpleObject)]
pub struct ValueCount {
    /// Null for the null value.
    value: Option<String>,
    count: f64,
}

#[derive(SimpleObject)]
pub struct HistogramBin {
    lower: f64,
    upper: f64,
    count: f64,
}

/// One column's statistics. Fields that do not apply to the column's type are null.
pub struct ColumnProfile {
    report: Arc<domain::Report>,
    owner: UserId,
    dataset: DatasetId,
    index: usize,
}

impl ColumnProfile {
    fn get(&self) -> &domain::ColumnProfile {
        &self.report.profile.as_ref().expect("ColumnProfile comes from a profile").columns[self.index]
    }

    async fn dataset(&self, ctx: &Context<'_>) -> async_graphql::Result<domain::Dataset> {
        Ok(load_dataset(ctx, self.owner, self.dataset).await?.0)
    }

    fn column_info(&self) -> domain::ColumnInfo {
        let c = self.get();
        domain::ColumnInfo { name: c.name.clone(), data_type: c.data_type.clone() }
    }
}

#[Object]
impl ColumnProfile {
    async fn name(&self) -> &str {
        &self.get().name
    }
    /// DuckDB type of the canonical copy.
    async fn r#type(&self) -> &str {
        &self.get().data_type
    }
    /// integer, float, boolean, date, datetime, email, phone, url, uuid, ip, postcode,
    /// currency, category, identifier, text or empty.
    async fn semantic_type(&self) -> &str {
        &self.get().semantic_type
    }
    async fn null_count(&self) -> f64 {
        self.get().null_count as f64
    }
    async fn null_percent(&self) -> f64 {
        self.get().null_percent
    }
    /// Exact.
    async fn distinct_count(&self) -> f64 {
        self.get().distinct_count as f64
    }
    async fn unique_percent(&self) -> f64 {
        self.get().unique_percent
    }
    async fn min(&self) -> Option<&str> {
        self.get().min.as_deref()
    }
    async fn max(&self) -> Option<&str> {
        self.get().max.as_deref()
    }
    async fn mean(&self) -> Option<f64> {
        self.get().mean
    }
    /// Sample standard deviation (n − 1).
    async fn stddev(&self) -> Option<f64> {
        self.get().stddev
    }
    async fn median(&self) -> Option<f64> {
        self.get().median
    }
    async fn q25(&self) -> Option<f64> {
        self.get().q25
    }
    async fn q75(&self) -> Option<f64> {
        self.get().q75
    }
    async fn skewness(&self) -> Option<f64> {
        self.get().skewness
    }
    /// Excess kurtosis.
    async fn kurtosis(&self) -> Option<f64> {
        self.get().kurtosis
    }
    async fn zeros(&self) -> Option<f64> {
        self.get().zeros.map(|n| n as f64)
    }
    async fn negatives(&self) -> Option<f64> {
        self.get().negatives.map(|n| n as f64)
    }
    async fn min_length(&self) -> Option<i32> {
        self.get().min_length.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
    }
    async fn max_length(&self) -> Option<i32> {
        self.get().max_length.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
    }
    async fn mean_length(&self) -> Option<f64> {
        self.get().mean_length
    }
    /// Values outside the IQR fences (numbers only).
    async fn outlier_count(&self) -> Option<f64> {
        self.get().outlier_count.map(|n| n as f64)
    }
    /// Non-null values that do not fit the semantic type.
    async fn invalid_count(&self) -> f64 {
        self.get().invalid_count as f64
    }
    /// The kind of personal data the column likely holds.
    async fn pii(&self) -> Option<&str> {
        self.get().pii.as_deref()
    }
    /// The most frequent values, most frequent first (at most 1000).
    #[graphql(complexity = "crate::gql::scan(limit.unwrap_or(crate::gql::TOP_VALUES))")]
    async fn top_values(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(crate::gql::TOP_VALUES)")] limit: Option<i32>,
    ) -> async_graphql::Result<Vec<ValueCount>> {
        let limit = limit.unwrap_or(crate::gql::TOP_VALUES);
        if !(1..=1000).contains(&limit) {
            return Err(AppError::bad_input("limit", "limit must be between 1 and 1000").into());
        }
        let limit = limit as usize;
        let column = self.get();
        // The stored list answers when it is long enough or holds every value.
        let values = if limit <= column.top_values.len()
            || (column.top_values.len() as u64) >= column.distinct_count + u64::from(column.null_count > 0)
        {
            column.top_values.iter().take(limit).cloned().collect()
        } else {
            let dataset = self.dataset(ctx).await?;
            jobs(ctx)?.top_values(&dataset, &self.column_info(), limit as u64).await?
        };
        Ok(values.into_iter().map(|v| ValueCount { value: v.value, count: v.count as f64 }).collect())
    }
    /// Equal-width histogram over [min, max] (numbers, dates and times; dates and times in
    /// Unix epoch seconds), with `bins` bins (1–200).
    #[graphql(complexity = "crate::gql::scan(bins.unwrap_or(crate::gql::HISTOGRAM_BINS))")]
    async fn histogram(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(crate::gql::HISTOGRAM_BINS)")] bins: Option<i32>,
    ) -> async_graphql::Result<Vec<HistogramBin>> {
        let bins = bins.unwrap_or(crate::gql::HISTOGRAM_BINS);
        if !(1..=200).contains(&bins) {
            return Err(AppError::bad_input("bins", "bins must be between 1 and 200").into());
        }
        let column = self.get();
        // A constant column's one bin is its histogram whatever the bins asked for (one stored
        // bin of a column that is not constant is just the report's `histogram_bins: 1`).
        let constant = matches!(column.histogram.as_slice(), [only] if only.lower == only.upper);
        let stored = column.histogram.len() == bins as usize || column.histogram.is_empty() || constant;
        let bins_out = if stored {
            column.histogram.clone()
        } else {
            let dataset = self.dataset(ctx).await?;
            jobs(ctx)?.histogram(&dataset, &self.column_info(), bins as u64).await?
        };
        Ok(bins_out
            .into_iter()
            .map(|b| HistogramBin { lower: b.lower, upper: b.upper, count: b.count as f64 })
            .collect())
    }
}

/// A page of jobs.
#[derive(SimpleObject)]
pub struct JobConnection {
    nodes: Vec<Job>,
    page_info: PageInfo,
    total_count: i32,
}

#[derive(Default)]
pub struct JobQuery;

#[Object]
impl JobQuery {
    /// Every tool with its agents and their parameters.
    async fn tools(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Tool>> {
        ctx.caller()?;
        Ok(registry::tools().into_iter().map(Tool).collect())
    }

    async fn tool(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Tool>> {
        ctx.caller()?;
        Ok(registry::tool(&id).map(Tool))
    }

    /// The caller's jobs, newest first.
    #[graphql(complexity = "crate::gql::paged(first.unwrap_or(crate::gql::FIRST_PAGE), child_complexity)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        status: Option<JobStatus>,
        tool_id: Option<ID>,
        #[graphql(
            default_with = "Some(crate::gql::FIRST_PAGE)",
            desc = "How many to return, from 1 to 100."
        )]
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<JobConnection> {
        let first = first.unwrap_or(crate::gql::FIRST_PAGE);
        let caller = ctx.caller()?;
        let page = page_request("job", first, after.as_deref())?;
        let filter = JobFilter {
            statuses: status.map(Into::into).into_iter().collect(),
            tool_id: tool_id.map(|t| t.0),
            dataset_id: None,
        };
        let result = jobs(ctx)?.list(caller.user_id, &filter, &page).await?;
        let end_cursor = result.items.last().map(|j| encode_cursor("job", j.id.0));
        Ok(JobConnection {
            total_count: i32::try_from(result.total_count).unwrap_or(i32::MAX),
            page_info: PageInfo { has_next_page: result.has_next_page, end_cursor },
            nodes: result.items.into_iter().map(Job).collect(),
        })
    }

    /// One of the caller's jobs; `NOT_FOUND` for an unknown id or someone else's.
    async fn job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Job>> {
        let caller = ctx.caller()?;
        Ok(Some(Job(jobs(ctx)?.get(caller.user_id, &id).await?)))
    }
}

#[derive(Default)]
pub struct JobMutation;

#[Object]
impl JobMutation {
    /// Queues a tool run. The tool, agents and parameters are checked against the registry
    /// first: on any error nothing is queued.
    async fn run_tool(&self, ctx: &Context<'_>, input: RunToolInput) -> async_graphql::Result<Job> {
        let caller = ctx.caller()?;
        Ok(Job(jobs(ctx)?.run_tool(caller.user_id, input.into()).await?))
    }

    /// Runs a tool that changes data (clean-my-data) on a reservoir sample of the dataset
    /// (`cleanse-previewer.sample_size` rows, default 10,000) and says what it would do:
    /// rows before and after, changes per step and column, sampled rows before and after.
    /// Checked like `runTool`; writes nothing.
    #[graphql(complexity = "crate::gql::PREVIEW_TOOL_COMPLEXITY")]
    async fn preview_tool(
        &self,
        ctx: &Context<'_>,
        input: RunToolInput,
    ) -> async_graphql::Result<ToolPreview> {
        let caller = ctx.caller()?;
        let p = jobs(ctx)?.preview_tool(caller.user_id, input.into()).await?;
        Ok(ToolPreview {
            rows_before: p.rows_before as f64,
            rows_after: p.rows_after as f64,
            rows_removed: p.rows_removed as f64,
            rows_quarantined: p.rows_quarantined as f64,
            plan: p
                .plan
                .into_iter()
                .map(|(agent, description)| PlanStep { agent_id: ID(agent), description })
                .collect(),
            changes: Json(p.changes),
            sample: p.sample,
        })
    }

    /// Cancels a queued job at once, or stops a running one within a second (its partial
    /// output is discarded). A finished job is returned as it is.
    async fn cancel_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        let caller = ctx.caller()?;
        Ok(Job(jobs(ctx)?.cancel(caller.user_id, &id).await?))
    }
}

#[derive(Default)]
pub struct JobSubscription;

#[Subscription(name = "Subscription")]
impl JobSubscription {
    /// A snapshot of the caller's job now and on every change; completes when the job
    /// ends. `NOT_FOUND` for an unknown id or someone else's job. A change after the access
    /// token the socket signed in with expired sends `UNAUTHENTICATED` instead and completes:
    /// subscribe again on a socket signed in with a fresh token.
    async fn job_progress(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Job>> + use<>> {
        let caller = ctx.caller()?;
        let credentials = crate::auth::Credentials::Authenticated(caller.clone());
        let stream = jobs(ctx)?.follow(caller.user_id, &job_id).await?;
        // The snapshot's fields are resolved for the caller (its dataset, signed download
        // links): never once the token is no longer good.
        Ok(stream.scan(false, move |ended, item| {
            let item = match credentials.require() {
                _ if *ended => None,
                Err(expired) => {
                    *ended = true;
                    Some(Err(async_graphql::Error::from(expired)))
                }
                Ok(_) => Some(item.map(Job).map_err(async_graphql::Error::from)),
            };
            std::future::ready(item)
        }))
    }
}
