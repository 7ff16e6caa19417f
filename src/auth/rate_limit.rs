//! Sign-in attempt limits, per account and per client address.
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

/// Counts sign-in attempts and says when to refuse them.
#[derive(Clone)]
pub struct SignInLimiter {
    limits: SignInLimits,
    accounts: Cache<String, Arc<Mutex<Window>>>,
    addresses: Cache<IpAddr, Arc<Mutex<Window>>>,
}

impl SignInLimiter {
    pub fn new(limits: SignInLimits) -> Self {
        SignInLimiter {
            limits,
            accounts: Cache::builder().max_capacity(100_000).time_to_live(limits.window).build(),
            addresses: Cache::builder().max_capacity(100_000).time_to_live(limits.window).build(),
        }
    }

    /// Counts an attempt from `address`; `Err(retry_after)` when over the limit.
    pub fn check_address(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        let Some(address) = address else { return Ok(()) };
        let window = self.addresses.get_with(address, new_window);
        self.count(&window, self.limits.per_address, true)
    }

    /// Whether the account may try again; does not count.
    pub fn check_account(&self, email: &Email) -> Result<(), Duration> {
        match self.accounts.get(email.as_str()) {
            Some(window) => self.count(&window, self.limits.per_account, false),
            None => Ok(()),
        }
    }

    /// Records a failed attempt on an account.
    pub fn record_failure(&self, email: &Email) {
        let window = self.accounts.get_with(email.as_str().to_string(), new_window);
        let _ = self.count(&window, u32::MAX, true);
    }

    /// Forgets an account's failures after a successful sign-in.
    pub fn record_success(&self, email: &Email) {
        self.accounts.invalidate(email.as_str());
    }

    fn count(&self, window: &Mutex<Window>, limit: u32, increment: bool) -> Result<(), Duration> {
        let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(w.started) >= self.limits.window {
            *w = Window { started: now, count: 0 };
        }
        if w.count >= limit {
            let retry_after = self.limits.window.saturating_sub(now.duration_since(w.started));
            return Err(retry_after.max(Duration::from_secs(1)));
        }
        if increment {
            w.count += 1;
        }
        Ok(())
    }
}

impl Default for Window {
    fn default() -> Self {
        Window { started: Instant::now(), count: 0 }
    }
}

fn new_window() -> Arc<Mutex<Window>> {
    Arc::new(Mutex::new(Window::default()))
}
