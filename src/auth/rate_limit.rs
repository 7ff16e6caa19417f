//! Fixed-window rate limits: sign-in attempts per account and per client address, and any
//! other per-key limit ([`WindowLimiter`]).
//!
//! Fixed windows kept in a moka cache that forgets a key when its window ends, so memory
//! stays bounded. Limits are per instance: several instances behind a load balancer each
//! allow the configured number.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::SignInLimits;
use crate::domain::Email;

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// At most `limit` events per key in each fixed window. Keys are forgotten when their window
/// ends, so memory stays bounded.
#[derive(Clone)]
pub struct WindowLimiter<K: std::hash::Hash + Eq + Send + Sync + 'static> {
    limit: u32,
    window: Duration,
    windows: Cache<K, Arc<Mutex<Window>>>,
}

impl<K: std::hash::Hash + Eq + Send + Sync + 'static> WindowLimiter<K> {
    pub fn new(limit: u32, window: Duration) -> Self {
        WindowLimiter {
            limit,
            window,
            windows: Cache::builder().max_capacity(100_000).time_to_live(window).build(),
        }
    }

    /// Counts an event for `key`; `Err(retry_after)` when over the limit (nothing counted).
    pub fn check(&self, key: K) -> Result<(), Duration> {
        let window =
            self.windows.get_with(key, || Arc::new(Mutex::new(Window { started: Instant::now(), count: 0 })));
        let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(w.started) >= self.window {
            *w = Window { started: now, count: 0 };
        }
        if w.count >= self.limit {
            let retry_after = self.window.saturating_sub(now.duration_since(w.started));
            return Err(retry_after.max(Duration::from_secs(1)));
        }
        w.count += 1;
        Ok(())
    }

    /// Forgets `key`'s events.
    pub fn reset(&self, key: &K) {
        self.windows.invalidate(key);
    }
}

/// Counts sign-in attempts and says when to refuse them.
#[derive(Clone)]
pub struct SignInLimiter {
    accounts: WindowLimiter<String>,
    addresses: WindowLimiter<IpAddr>,
}

impl SignInLimiter {
    pub fn new(limits: SignInLimits) -> Self {
        SignInLimiter {
            accounts: WindowLimiter::new(limits.per_account, limits.window),
            addresses: WindowLimiter::new(limits.per_address, limits.window),
        }
    }

    /// Counts an attempt from `address`; `Err(retry_after)` when over the limit. IPv6
    /// clients are counted per /64, the block one client usually holds.
    pub fn check_address(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        let Some(address) = address else { return Ok(()) };
        self.addresses.check(client_block(address))
    }

    /// Counts an attempt on an account before its password is checked, so that parallel
    /// attempts cannot slip past the limit while earlier ones are still hashing.
    pub fn check_account(&self, email: &Email) -> Result<(), Duration> {
        self.accounts.check(email.as_str().to_string())
    }

    /// Forgets an account's attempts after a successful sign-in: only failures add up.
    pub fn record_success(&self, email: &Email) {
        self.accounts.reset(&email.as_str().to_string());
    }
}

/// The unit a client is counted by: its IPv4 address, or its IPv6 /64.
fn client_block(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_account: u32, per_address: u32) -> SignInLimiter {
        SignInLimiter::new(SignInLimits { per_account, per_address, window: Duration::from_secs(60) })
    }

    #[test]
    fn accounts_are_limited_until_a_success() {
        let l = limiter(2, 100);
        let email = Email::parse("a@example.com").unwrap();
        assert!(l.check_account(&email).is_ok());
        assert!(l.check_account(&email).is_ok());
        let retry = l.check_account(&email).unwrap_err();
        assert!(retry <= Duration::from_secs(60) && retry >= Duration::from_secs(1));
        l.record_success(&email);
        assert!(l.check_account(&email).is_ok());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let l = limiter(100, 1);
        assert!(l.check_address(Some("2001:db8::1".parse().unwrap())).is_ok());
        assert!(l.check_address(Some("2001:db8::ffff:2".parse().unwrap())).is_err());
        assert!(l.check_address(Some("2001:db8:0:1::1".parse().unwrap())).is_ok());
        assert!(l.check_address(Some("::ffff:10.0.0.1".parse().unwrap())).is_ok());
        assert!(l.check_address(Some("10.0.0.1".parse().unwrap())).is_err());
        assert!(l.check_address(None).is_ok());
    }
}
