//! Agensium: a data-quality server. Users upload tabular files; agents profile, score,
//! cleanse and explain them. A GraphQL API (async-graphql on poem) pushes the work down
//! into an embedded DuckDB engine; users and job metadata live in SQLite or MySQL.
//!
//! Map of the crate (see docs/ARCHITECTURE.md):
//! - [`config`]: every environment variable, parsed once.
//! - [`app`]: start-up — builds the services and serves until stopped.
//! - [`http`]: poem routes, GraphQL over HTTP and WebSocket, playground, health, metrics.
//! - [`gql`]: the GraphQL schema and resolvers; the only module that knows GraphQL.
//! - [`auth`]: passwords, tokens, sessions, rate limits, capabilities.
//! - [`datasets`]: uploads, format detection, ingest into Parquet, previews.
//! - [`storage`]: where dataset files are kept (local directory or object store).
//! - [`jobs`]: the tool registry, durable jobs, workers and progress.
//! - [`store`]: the metadata store trait and its SQLite and MySQL implementations.
//! - [`engine`]: the embedded DuckDB engine; the only module that talks to DuckDB.
//! - [`domain`]: parsed, always-valid values (emails, passwords, users).
//! - [`error`]: the catalogue of error codes clients see.
//! - [`explain`]: reports in words (the rule-based summary) and the grounding check.
//! - [`ai`]: the AI agents (summary, next tools, co-pilot), with a model or rule-based.

pub mod ai;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod datasets;
pub mod domain;
pub mod engine;
pub mod error;
pub mod explain;
pub mod gql;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod profile_cli;
pub mod reports;
pub mod secret;
pub mod storage;
pub mod store;
pub mod telemetry;
