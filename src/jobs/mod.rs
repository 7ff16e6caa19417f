//! Jobs: tool runs queued durably in the metadata store and executed by workers, with
//! progress streamed to clients.
//!
//! - [`registry`]: the tools, their agents and typed parameters; checks run requests.
//! - [`service`]: what the API does with jobs (run, read, list, cancel, follow, reports).
//! - [`worker`]: claims and runs jobs, each in its own DuckDB database, with leases.
//! - [`pipeline`]: runs the selected agents in one DuckDB session (worker and CLI).
//! - [`cleanse`]: Clean My Data's agents, the plan their parameters make, the manifest.
//! - [`tools`]: arranges what the engine computed into each agent's result.

pub mod cleanse;
pub mod pipeline;
pub mod registry;
mod service;
mod tools;
pub mod turns;
pub mod worker;

pub use service::{Jobs, ReportFile, RunRequest};
pub use worker::{Hooks, JobHook, WorkerConfig};
