//! Argon2id password hashing, off the async runtime and bounded in concurrency.

use std::sync::Arc;

use anyhow::anyhow;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::{OnceCell, Semaphore};

use crate::domain::Password;
use crate::error::AppError;

/// Hashes and verifies passwords. Each hash costs ~19 MiB and tens of milliseconds, so
/// at most a few run at once, each in `spawn_blocking`.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the email is unknown so that
    /// an unknown email takes as long as a wrong password.
    dummy: Arc<OnceCell<String>>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PasswordHasher { permits: Arc::new(Semaphore::new(cores * 2)), dummy: Arc::new(OnceCell::new()) }
    }
}

impl PasswordHasher {
    /// Hashes a new password into a PHC string (`$argon2id$v=19$…`).
    pub async fn hash(&self, password: &Password) -> Result<String, AppError> {
        let password = password.expose().to_owned();
        // The permit moves into the blocking task: a cancelled request does not free it
        // while its hash is still being computed.
        let permit = self.permits.clone().acquire_owned().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| AppError::internal(anyhow!("hashing a password: {e}")))
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Checks a password against a stored hash. `None` (unknown account) verifies against a
    /// dummy hash and returns `false`, taking the same time.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool, AppError> {
        let (hash, known) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?, false),
        };
        let password = password.expose().to_owned();
        let permit = self.permits.clone().acquire_owned().await.map_err(AppError::internal)?;
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| AppError::internal(anyhow!("stored password hash is unreadable: {e}")))?;
            Ok::<_, AppError>(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(AppError::internal)??;
        Ok(matches && known)
    }

    async fn dummy_hash(&self) -> Result<String, AppError> {
        self.dummy
            .get_or_try_init(|| async {
                let random = uuid::Uuid::new_v4().to_string();
                self.hash(&Password::presented(random)?).await
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let hasher = PasswordHasher::default();
        let right = Password::parse_new("correct horse battery".into()).unwrap();
        let wrong = Password::presented("incorrect horse".into()).unwrap();
        let hash = hasher.hash(&right).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify(&right, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&right, None).await.unwrap());
    }
}
