//! The GraphQL layer: the schema, its resolvers, and how domain errors become GraphQL
//! errors. Only this module imports async-graphql; it knows nothing of HTTP.

mod account;
mod ai;
mod context;
mod dataset;
pub mod errors;
mod execute;
mod jobs;
mod loaders;
mod pagination;

use async_graphql::{MergedObject, Schema};

use crate::config::GraphqlLimits;

pub use context::{ClientAddr, RequestId};
pub use dataset::StagedUploads;
pub use errors::ErrorPolicy;
pub use execute::{
    Executed, GraphqlRequest, OperationKind, RequestContext, error_body, execute, operation_kind,
};
pub use loaders::{DatasetLoader, QueueLoader, UserLoader};

/// Every query, one object per feature.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(account::AccountQuery, dataset::DatasetQuery, jobs::JobQuery, ai::AiQuery);

/// Every mutation, one object per feature.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    account::AccountMutation,
    dataset::DatasetMutation,
    jobs::JobMutation,
    ai::AiMutation,
);

/// Every subscription.
pub type SubscriptionRoot = jobs::JobSubscription;

/// The application's schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with the limits that refuse an operation before it runs. Shared
/// services are added with `.data(...)` by the caller (see `app`).
pub fn schema_builder(
    limits: GraphqlLimits,
) -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot::default())
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(16)
}

// Complexity: a field counts 1 and its selection once, however many items a list returns, so
// the fields that return many items — or start a scan — weigh what they cost. A page of
// `first` items weighs `first` times its selection (an aliased list of jobs each previewing a
// thousand rows was 300 MB from a 166-byte query); rows of data weigh half a unit each; an
// on-demand histogram or top-values list weighs a column scan; a profile's columns count as
// ten (the schema cannot know how many a report has), a dataset's versions ten too.

/// What a list argument is when a request leaves it out or passes null (the arguments are
/// nullable with these defaults, as `first: Int = 20`: a client's optional variable passes).
pub(crate) const FIRST_PAGE: i32 = 20;
pub(crate) const FIRST_ROWS: i32 = 100;
pub(crate) const PREVIEW_ROWS: i32 = 50;
pub(crate) const FIRST_OFFSET: i32 = 0;
/// The most sampled rows a preview returns at once.
pub(crate) const MAX_SAMPLE_ROWS: i32 = 1000;
pub(crate) const TOP_VALUES: i32 = 5;
pub(crate) const HISTOGRAM_BINS: i32 = 20;
pub(crate) const LAST_MESSAGES: i32 = 50;

/// A page of `first` items (at most 100), each with the selection's weight.
pub(crate) fn paged(first: i32, child_complexity: usize) -> usize {
    usize::try_from(first.clamp(1, 100)).unwrap_or(1).saturating_mul(child_complexity)
}

/// The last `n` messages of a conversation (at most 200): each five weigh their selection's
/// weight (a page of conversations with their default 50 messages stays light, 30 aliases of
/// 200 messages on each of them do not).
pub(crate) fn messages(n: i32, child_complexity: usize) -> usize {
    usize::try_from((n.clamp(1, 200) + 4) / 5).unwrap_or(1).saturating_mul(child_complexity)
}

/// A list of up to `n` rows of data (previews, rejects, row-level issues).
pub(crate) fn rows(n: i32) -> usize {
    1 + usize::try_from(n.clamp(0, 1000)).unwrap_or(0) / 2
}

/// A value that may need a scan of a whole column (`histogram(bins)`, `topValues(limit)`).
pub(crate) fn scan(n: i32) -> usize {
    20 + usize::try_from(n.clamp(0, 1000)).unwrap_or(0) / 10
}

/// A profile's (or a dataset's) columns: counted as ten.
pub(crate) fn per_column(child_complexity: usize) -> usize {
    10usize.saturating_mul(child_complexity)
}

/// A dataset's versions: counted as ten (each cleanse adds two).
pub(crate) fn per_version(child_complexity: usize) -> usize {
    10usize.saturating_mul(child_complexity)
}

/// `previewTool` runs a whole cleanse plan on a sample.
pub(crate) const PREVIEW_TOOL_COMPLEXITY: usize = 200;

/// The application's schema with its limits, error policy, services and DataLoaders.
pub fn build_schema(
    limits: GraphqlLimits,
    metrics: crate::metrics::Metrics,
    accounts: crate::auth::Accounts,
    datasets: crate::datasets::Datasets,
    jobs: crate::jobs::Jobs,
    ai: crate::ai::Ai,
    store: std::sync::Arc<dyn crate::store::MetadataStore>,
) -> AppSchema {
    use async_graphql::dataloader::DataLoader;
    schema_builder(limits)
        .extension(ErrorPolicy { max_aliases: limits.max_aliases, metrics })
        .data(accounts)
        .data(datasets)
        .data(jobs)
        .data(ai)
        .data(DataLoader::new(UserLoader(store.clone()), tokio::spawn))
        .data(DataLoader::new(QueueLoader(store.clone()), tokio::spawn))
        .data(DataLoader::new(DatasetLoader(store), tokio::spawn))
        .finish()
}

/// The schema in SDL, as committed in `schema/schema.graphql`.
pub fn sdl() -> String {
    let limits = GraphqlLimits { max_depth: 1, max_complexity: 1, max_aliases: 1 };
    // (With `@specifiedBy`, as introspection gives it: codegen from either agrees.)
    schema_builder(limits)
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}
