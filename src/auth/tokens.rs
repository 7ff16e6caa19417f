//! Access tokens (short-lived JWTs) and refresh tokens (opaque, stored only as hashes).

use std::time::Duration;

use anyhow::anyhow;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::JwtAlgorithm;
use crate::domain::{Role, User, UserId};
use crate::secret::Secret;

use super::Caller;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// `USER` or `ADMIN`.
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    /// A unique id per token.
    pub jti: String,
}

/// Why an access token was refused. The message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired; refresh the session")]
    Expired,
    #[error("access token is invalid")]
    Invalid,
}

/// The claims of a download link: one dataset (or one job's report), one format, one owner,
/// a few minutes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DownloadClaims {
    /// The owner's user id: the link works only for their dataset or job.
    pub sub: String,
    pub aud: String,
    /// The dataset, for a dataset link; empty for a report link.
    pub dataset: String,
    /// The job whose report this link downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub format: String,
    pub exp: i64,
}

const DOWNLOAD_AUDIENCE: &str = "agensium-download";

/// Signs and verifies access tokens (and download links) with one HMAC key and one algorithm.
#[derive(Clone)]
pub struct TokenIssuer {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    download_validation: Validation,
    access_ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(key: &Secret<Vec<u8>>, algorithm: JwtAlgorithm, access_ttl: Duration) -> anyhow::Result<Self> {
        let algorithm = match algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
        };
        // Only the configured algorithm is accepted: a token claiming `none`, another HMAC
        // size or an asymmetric algorithm is refused before its signature is looked at.
        let mut validation = Validation::new(algorithm);
        // No leeway: `Credentials::require` refuses a token the second it expires, and a
        // WebSocket's `connection_init` must refuse what every operation would (a token five
        // seconds past its expiry was acknowledged, then every operation failed).
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        // Download links carry an audience, so neither kind of token passes for the other
        // (access-token validation refuses any token that has an audience).
        let mut download_validation = Validation::new(algorithm);
        download_validation.leeway = 0;
        download_validation.set_audience(&[DOWNLOAD_AUDIENCE]);
        download_validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        Ok(TokenIssuer {
            download_validation,
            algorithm,
            encoding: EncodingKey::from_secret(key.expose()).map_err(|e| anyhow!("signing key: {e}"))?,
            decoding: DecodingKey::from_secret(key.expose()).map_err(|e| anyhow!("signing key: {e}"))?,
            validation,
            access_ttl,
        })
    }

    /// Lifetime of an access token, in seconds (the `expiresIn` clients see).
    pub fn access_ttl_secs(&self) -> i64 {
        i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// Issues an access token for a user.
    pub fn issue_access(&self, user: &User) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user.id.to_string(),
            role: user.role.as_str().to_string(),
            iat: now,
            exp: now + self.access_ttl_secs(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| anyhow!("signing an access token: {e}"))
    }

    /// Verifies an access token and returns the caller it names.
    pub fn verify_access(&self, token: &str) -> Result<Caller, TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        let user_id = data.claims.sub.parse::<UserId>().map_err(|_| TokenError::Invalid)?;
        let role = data.claims.role.parse::<Role>().map_err(|_| TokenError::Invalid)?;
        Ok(Caller { user_id, role, expires_at: data.claims.exp })
    }
}

impl TokenIssuer {
    /// A signed download link token for one dataset in one format, valid for `ttl`.
    pub fn issue_download(
        &self,
        owner: UserId,
        dataset: &str,
        format: &str,
        ttl: Duration,
    ) -> anyhow::Result<(String, i64)> {
        self.sign_download(owner, dataset, None, format, ttl)
    }

    /// A signed download link token for one job's report in one format, valid for `ttl`.
    pub fn issue_report_download(
        &self,
        owner: UserId,
        job: &str,
        format: &str,
        ttl: Duration,
    ) -> anyhow::Result<(String, i64)> {
        self.sign_download(owner, "", Some(job), format, ttl)
    }

    fn sign_download(
        &self,
        owner: UserId,
        dataset: &str,
        job: Option<&str>,
        format: &str,
        ttl: Duration,
    ) -> anyhow::Result<(String, i64)> {
        let exp = chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(300);
        let claims = DownloadClaims {
            sub: owner.to_string(),
            aud: DOWNLOAD_AUDIENCE.into(),
            dataset: dataset.into(),
            job: job.map(String::from),
            format: format.into(),
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| anyhow!("signing a download link: {e}"))?;
        Ok((token, exp))
    }

    /// Verifies a download token; `None` when it is forged, expired or not a download token.
    pub fn verify_download(&self, token: &str) -> Option<(UserId, DownloadClaims)> {
        let data =
            jsonwebtoken::decode::<DownloadClaims>(token, &self.decoding, &self.download_validation).ok()?;
        let owner = data.claims.sub.parse::<UserId>().ok()?;
        Some((owner, data.claims))
    }
}

/// A new refresh token: 32 random bytes, URL-safe base64. Returns the token and its hash.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// Hex SHA-256 of a refresh token: what the store keeps. The token has 256 bits of
/// entropy, so a fast hash is enough (no salt or slow KDF needed).
pub fn hash_refresh_token(token: &str) -> String {
    crate::store::hex_digest(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Email;

    fn issuer(key: &str, alg: JwtAlgorithm, ttl: u64) -> TokenIssuer {
        TokenIssuer::new(&Secret::new(key.as_bytes().to_vec()), alg, Duration::from_secs(ttl)).unwrap()
    }

    fn user() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            role: Role::Admin,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn round_trips_and_refuses_other_keys_and_algorithms() {
        let a = issuer("0123456789abcdef0123456789abcdef", JwtAlgorithm::Hs256, 60);
        let u = user();
        let token = a.issue_access(&u).unwrap();
        let caller = a.verify_access(&token).unwrap();
        assert_eq!((caller.user_id, caller.role), (u.id, Role::Admin));

        let other_key = issuer("fedcba9876543210fedcba9876543210", JwtAlgorithm::Hs256, 60);
        assert_eq!(other_key.verify_access(&token), Err(TokenError::Invalid));
        let other_alg = issuer("0123456789abcdef0123456789abcdef", JwtAlgorithm::Hs512, 60);
        assert_eq!(other_alg.verify_access(&token), Err(TokenError::Invalid));
        assert_eq!(a.verify_access("not.a.token"), Err(TokenError::Invalid));
    }

    #[test]
    fn download_and_access_tokens_do_not_pass_for_each_other() {
        let a = issuer("0123456789abcdef0123456789abcdef", JwtAlgorithm::Hs256, 60);
        let u = user();
        let (download, _) = a.issue_download(u.id, "d1", "csv", Duration::from_secs(60)).unwrap();
        let (owner, claims) = a.verify_download(&download).unwrap();
        assert_eq!((owner, claims.dataset.as_str(), claims.format.as_str()), (u.id, "d1", "csv"));
        assert_eq!(a.verify_access(&download), Err(TokenError::Invalid));
        let access = a.issue_access(&u).unwrap();
        assert!(a.verify_download(&access).is_none());
        let other = issuer("fedcba9876543210fedcba9876543210", JwtAlgorithm::Hs256, 60);
        assert!(other.verify_download(&download).is_none());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (t1, h1) = new_refresh_token();
        let (t2, _) = new_refresh_token();
        assert_ne!(t1, t2);
        assert_eq!(h1.len(), 64);
        assert_eq!(hash_refresh_token(&t1), h1);
    }
}
