//! A normalised email address: trimmed and lower-cased, so that uniqueness is
//! case-insensitive.

use std::fmt;

use crate::error::AppError;

/// An email address in its normalised form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Trims, lower-cases and checks the shape `local@domain.tld`.
    pub fn parse(raw: &str) -> Result<Email, AppError> {
        let email = raw.trim().to_lowercase();
        let bad = |why: &str| AppError::bad_input("email", format!("email {why}"));
        if email.is_empty() {
            return Err(bad("is required"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(bad("must be at most 254 characters"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(bad("must contain @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(bad("must have 1 to 64 characters before @"));
        }
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !domain_ok {
            return Err(bad("must have a domain such as example.com after @"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) || local.contains('@') {
            return Err(bad("must not contain spaces or a second @"));
        }
        Ok(Email(email))
    }

    /// Wraps an address read back from the store, which was normalised when written.
    pub fn from_trusted(stored: String) -> Email {
        Email(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for raw in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa mple.com",
            "ada@.com",
        ] {
            let err = Email::parse(raw).unwrap_err();
            assert_eq!(err.code(), crate::error::ErrorCode::BadUserInput, "{raw:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
