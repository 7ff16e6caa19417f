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

    /// Takes back one event [`WindowLimiter::check`] counted for `key` (another limit refused
    /// what it was counted for).
    pub fn uncount(&self, key: &K) {
        if let Some(window) = self.windows.get(key) {
            let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
            w.count = w.count.saturating_sub(1);
        }
    }

    /// Forgets `key`'s events.
    pub fn reset(&self, key: &K) {
        self.windows.invalidate(key);
    }
}

/// How many times an account's per-address limit its attempts from every address together
/// may reach before the account refuses sign-ins from anywhere.
pub const ACCOUNT_WIDE_FACTOR: u32 = 10;

/// Counts sign-in attempts and says when to refuse them.
///
/// An account's attempts are counted per client address (`per_account` each), so that a
/// stranger guessing from one address locks the account for that address only, not for its
/// owner; and from every address together up to `per_account × ACCOUNT_WIDE_FACTOR`, so that
/// guesses spread over many addresses are bounded too (locking the account out then takes that
/// many addresses).
#[derive(Clone)]
pub struct SignInLimiter {
    accounts: WindowLimiter<(String, Option<IpAddr>)>,
    account_wide: WindowLimiter<String>,
    addresses: WindowLimiter<IpAddr>,
}

impl SignInLimiter {
    pub fn new(limits: SignInLimits) -> Self {
        SignInLimiter {
            accounts: WindowLimiter::new(limits.per_account, limits.window),
            account_wide: WindowLimiter::new(
                limits.per_account.saturating_mul(ACCOUNT_WIDE_FACTOR),
                limits.window,
            ),
            addresses: WindowLimiter::new(limits.per_address, limits.window),
        }
    }

    /// Counts an attempt from `address`; `Err(retry_after)` when over the limit. IPv6
    /// clients are counted per /64, the block one client usually holds.
    pub fn check_address(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        let Some(address) = address else { return Ok(()) };
        self.addresses.check(client_block(address))
    }

    /// Counts an attempt on an account from `address` before its password is checked, so that
    /// parallel attempts cannot slip past the limit while earlier ones are still hashing.
    /// An attempt the account-wide limit refuses is not counted against its address, so that
    /// the owner's own tries while strangers hold the account locked do not lock it longer for
    /// the owner.
    pub fn check_account(&self, email: &Email, address: Option<IpAddr>) -> Result<(), Duration> {
        let pair = (email.as_str().to_string(), address.map(client_block));
        self.accounts.check(pair.clone())?;
        self.account_wide.check(email.as_str().to_string()).inspect_err(|_| self.accounts.uncount(&pair))
    }

    /// Forgets an account's attempts after a successful sign-in from `address`: only failures
    /// add up.
    pub fn record_success(&self, email: &Email, address: Option<IpAddr>) {
        self.accounts.reset(&(email.as_str().to_string(), address.map(client_block)));
        self.account_wide.reset(&email.as_str().to_string());
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
        let here = Some("10.0.0.1".parse().unwrap());
        assert!(l.check_account(&email, here).is_ok());
        assert!(l.check_account(&email, here).is_ok());
        let retry = l.check_account(&email, here).unwrap_err();
        assert!(retry <= Duration::from_secs(60) && retry >= Duration::from_secs(1));
        l.record_success(&email, here);
        assert!(l.check_account(&email, here).is_ok());
    }

    #[test]
    fn guesses_from_one_address_do_not_lock_the_owner_out() {
        let l = limiter(2, 1000);
        let email = Email::parse("a@example.com").unwrap();
        let stranger: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..2 {
            assert!(l.check_account(&email, Some(stranger)).is_ok());
        }
        assert!(l.check_account(&email, Some(stranger)).is_err());
        // Another address (IPv6: another /64) still may try.
        assert!(l.check_account(&email, Some("198.51.100.1".parse().unwrap())).is_ok());
        assert!(l.check_account(&email, Some("2001:db8::1".parse().unwrap())).is_ok());
        assert!(l.check_account(&email, Some("2001:db8::2".parse().unwrap())).is_ok());
        assert!(l.check_account(&email, Some("2001:db8::3".parse().unwrap())).is_err());
    }

    #[test]
    fn guesses_spread_over_many_addresses_are_bounded_per_account() {
        let l = limiter(2, 1000);
        let email = Email::parse("a@example.com").unwrap();
        let mut allowed = 0;
        for i in 0..100u8 {
            let address = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i)));
            allowed += [0, 1].iter().filter(|_| l.check_account(&email, address).is_ok()).count();
        }
        assert_eq!(allowed, 2 * ACCOUNT_WIDE_FACTOR as usize);
        // Another account is not affected.
        assert!(l.check_account(&Email::parse("b@example.com").unwrap(), None).is_ok());

        // The owner's tries while the account is locked everywhere are not counted against
        // the owner's address: once the account-wide window ends, the owner has every try.
        let home = Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 9)));
        for _ in 0..5 {
            assert!(l.check_account(&email, home).is_err());
        }
        l.account_wide.reset(&email.as_str().to_string());
        assert!(l.check_account(&email, home).is_ok());
        assert!(l.check_account(&email, home).is_ok());
        assert!(l.check_account(&email, home).is_err());
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
