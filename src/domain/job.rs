//! Jobs: a tool run over a dataset, queued durably and executed by a worker.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DatasetId, UserId};

/// A job's id (UUIDv7: sorts by creation time, so queue order is id order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub Uuid);

impl JobId {
    pub fn generate() -> JobId {
        JobId(Uuid::now_v7())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(JobId)
    }
}

/// QUEUED → RUNNING → COMPLETED | FAILED | CANCELLED (a QUEUED job may be cancelled too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    /// The job will not change again.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "QUEUED" => JobStatus::Queued,
            "RUNNING" => JobStatus::Running,
            "COMPLETED" => JobStatus::Completed,
            "FAILED" => JobStatus::Failed,
            "CANCELLED" => JobStatus::Cancelled,
            other => return Err(format!("unknown job status {other:?}")),
        })
    }
}

/// Why a job failed: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A job as stored (its report is read separately: it can be large).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub owner_id: UserId,
    pub tool_id: String,
    pub agents: Vec<String>,
    /// `{ agentId: { parameter: value } }` with every default filled in.
    pub parameters: serde_json::Value,
    pub dataset_id: DatasetId,
    pub baseline_dataset_id: Option<DatasetId>,
    pub status: JobStatus,
    /// 0–100, never goes backwards.
    pub progress: f64,
    pub stage: Option<String>,
    pub error: Option<JobError>,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    pub cancel_requested: bool,
    pub output_dataset_id: Option<DatasetId>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// A new job, waiting for a worker.
    pub fn queued(
        owner_id: UserId,
        tool_id: String,
        agents: Vec<String>,
        parameters: serde_json::Value,
        dataset_id: DatasetId,
        baseline_dataset_id: Option<DatasetId>,
        now: DateTime<Utc>,
    ) -> Job {
        Job {
            id: JobId::generate(),
            owner_id,
            tool_id,
            agents,
            parameters,
            dataset_id,
            baseline_dataset_id,
            status: JobStatus::Queued,
            progress: 0.0,
            stage: None,
            error: None,
            attempts: 0,
            cancel_requested: false,
            output_dataset_id: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            updated_at: now,
        }
    }
}
