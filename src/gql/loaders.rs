//! DataLoaders: nested fields that look up users or datasets are batched into one store
//! query per kind instead of one per parent object.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::domain::{Dataset, DatasetId, JobId, User, UserId};
use crate::error::AppError;
use crate::store::MetadataStore;

/// Loads users by id.
pub struct UserLoader(pub Arc<dyn MetadataStore>);

/// Loads datasets by (owner, id): the owner is part of the key, so batching never crosses
/// tenants.
pub struct DatasetLoader(pub Arc<dyn MetadataStore>);

/// Loads queued jobs' positions in the queue (how many jobs are ahead): one read of the queue
/// for every job of a batch (a list of queued jobs), not one each. A job no longer queued has
/// none.
pub struct QueueLoader(pub Arc<dyn MetadataStore>);

/// A load failure, shared by every field waiting on the batch.
#[derive(Clone)]
pub struct LoadError(pub Arc<AppError>);

impl From<LoadError> for async_graphql::Error {
    fn from(err: LoadError) -> Self {
        let cause = anyhow::anyhow!(err.0.report());
        AppError::internal(cause).into()
    }
}

impl Loader<UserId> for UserLoader {
    type Value = User;
    type Error = LoadError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, User>, LoadError> {
        let users = self.0.users_by_ids(keys).await.map_err(|e| LoadError(Arc::new(e.into())))?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

impl Loader<(UserId, DatasetId)> for DatasetLoader {
    type Value = Dataset;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(UserId, DatasetId)],
    ) -> Result<HashMap<(UserId, DatasetId), Dataset>, LoadError> {
        let mut by_owner: HashMap<UserId, Vec<DatasetId>> = HashMap::new();
        for (owner, id) in keys {
            by_owner.entry(*owner).or_default().push(*id);
        }
        let mut found = HashMap::new();
        for (owner, ids) in by_owner {
            let datasets =
                self.0.datasets_by_ids(owner, &ids).await.map_err(|e| LoadError(Arc::new(e.into())))?;
            found.extend(datasets.into_iter().map(|d| ((d.owner_id, d.id), d)));
        }
        Ok(found)
    }
}

impl Loader<JobId> for QueueLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[JobId]) -> Result<HashMap<JobId, u64>, LoadError> {
        let queue = self.0.queue().await.map_err(|e| LoadError(Arc::new(e.into())))?;
        Ok(queue
            .iter()
            .enumerate()
            .filter(|(_, id)| keys.contains(id))
            .map(|(ahead, id)| (*id, ahead as u64))
            .collect())
    }
}
