//! Domain types: values that are parsed once at the edge and valid from then on.
//!
//! Nothing here knows GraphQL, HTTP or SQL.

mod conversation;
mod dataset;
mod drift;
mod email;
mod job;
mod password;
mod report;
mod risk;
mod user;

pub use conversation::{
    Conversation, ConversationId, ConversationMessage, LlmUsage, MessageRole, NewMessage, UsageTotals,
};
pub use dataset::{
    ColumnInfo, Dataset, DatasetFormat, DatasetId, DatasetKind, check_dataset_name, download_name, fit_name,
    is_bidi_control, split_extension,
};
pub use drift::{ColumnDrift, DriftBin, DriftParams, DriftReport, PersonalColumn, Retyped, SchemaDrift};
pub use email::Email;
pub use job::{Job, JobError, JobId, JobStatus};
pub use password::Password;
pub use report::{
    AgentResult, CleanseManifest, ColumnProfile, Correlation, Finding, HistogramBin, IntegrityCheck,
    ManifestChange, ManifestStep, Profile, ProfileParams, Quality, Report, RowIssue, ValueCount,
};
pub use risk::{PII_KINDS, PiiColumn, Regulation, RiskParams, RiskReport, mask, mask_embedded};
pub use user::{NewUser, Role, User, UserCredentials, UserId};
