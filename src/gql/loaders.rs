//! DataLoaders: nested fields that look up users or datasets are batched into one store
//! query per kind instead of one per parent object.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::domain::{Dataset, DatasetId, User, UserId};
use crate::error::AppError;
use crate::store::MetadataStore;

/// Loads users by id.
pub struct UserLoader(pub Arc<dyn MetadataStore>);

/// Loads datasets by (owner, id): the owner is part of the key, so batching never crosses
/// tenants.
pub struct DatasetLoader(pub Arc<dyn MetadataStore>);

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
