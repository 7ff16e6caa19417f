//! Turns at a scarce resource shared by every user (a column scan of the shared engine, a
//! co-pilot query's process): at most so many at once over all users, and at most one per
//! user, so that one user's many requests wait for each other, not everyone else.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::domain::UserId;

/// At most `at_once` turns over all users, one per user.
pub struct Turns {
    global: Arc<Semaphore>,
    /// Per user, while used in the last ten minutes.
    owners: moka::sync::Cache<UserId, Arc<Mutex<()>>>,
}

/// A turn: held until dropped.
pub struct Turn {
    _global: OwnedSemaphorePermit,
    _owner: OwnedMutexGuard<()>,
}

impl Turns {
    pub fn new(at_once: usize) -> Turns {
        Turns {
            global: Arc::new(Semaphore::new(at_once)),
            owners: moka::sync::Cache::builder().time_to_idle(std::time::Duration::from_secs(600)).build(),
        }
    }

    /// Waits for `owner`'s turn: first behind the owner's own earlier requests, then for a
    /// free place. `None` once closed (never, as used here).
    pub async fn take(&self, owner: UserId) -> Option<Turn> {
        let mine = self.owners.get_with(owner, || Arc::new(Mutex::new(())));
        let owner_guard = mine.lock_owned().await;
        let global = self.global.clone().acquire_owned().await.ok()?;
        Some(Turn { _global: global, _owner: owner_guard })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_users_requests_wait_for_each_other_not_for_everyone_else() {
        let turns = Turns::new(2);
        let (ada, bob, cy) =
            (UserId(uuid::Uuid::now_v7()), UserId(uuid::Uuid::now_v7()), UserId(uuid::Uuid::now_v7()));
        let first = turns.take(ada).await.unwrap();
        // Ada's second request waits for her first, leaving the other place to Bob.
        let waiting = tokio::time::timeout(Duration::from_millis(100), turns.take(ada)).await;
        assert!(waiting.is_err(), "a user's second turn waits for the first");
        let bobs = tokio::time::timeout(Duration::from_secs(5), turns.take(bob)).await.expect("Bob's turn");
        // Both places taken: Cy waits for one.
        assert!(tokio::time::timeout(Duration::from_millis(100), turns.take(cy)).await.is_err());
        drop(first);
        let cys = tokio::time::timeout(Duration::from_secs(5), turns.take(cy)).await.expect("Cy's turn");
        drop((bobs, cys));
        assert!(tokio::time::timeout(Duration::from_secs(5), turns.take(ada)).await.is_ok());
    }
}
