//! The rules a new username and password must follow.

use std::ops::RangeInclusive;

use crate::config::AccountConfig;
use crate::error::ApiError;

/// Length bounds (in characters) from `[account]`; usernames also have a fixed alphabet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRules {
    username_len: RangeInclusive<usize>,
    password_len: RangeInclusive<usize>,
}

impl CredentialRules {
    /// The rules configured in `[account]`.
    pub fn new(config: &AccountConfig) -> Self {
        Self {
            username_len: config.username_min_len..=config.username_max_len,
            password_len: config.password_min_len..=config.password_max_len,
        }
    }

    /// Checks a username for registration: length, and only `A-Z a-z 0-9 _ - .`.
    pub fn check_username(&self, username: &str) -> Result<(), ApiError> {
        let len = username.chars().count();
        if !self.username_len.contains(&len) {
            let (min, max) = (self.username_len.start(), self.username_len.end());
            return Err(ApiError::InvalidUsername(format!("username must be {min} to {max} characters long")));
        }
        if !username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(ApiError::InvalidUsername(
                "username may contain only letters A-Z and a-z, digits, '_', '-' and '.'".into(),
            ));
        }
        Ok(())
    }

    /// Checks a password for registration: length only.
    pub fn check_password(&self, password: &str) -> Result<(), ApiError> {
        let len = password.chars().count();
        if !self.password_len.contains(&len) {
            let (min, max) = (self.password_len.start(), self.password_len.end());
            return Err(ApiError::InvalidPassword(format!("password must be {min} to {max} characters long")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn rules() -> CredentialRules {
        CredentialRules::new(&AccountConfig::default())
    }

    #[test]
    fn usernames() {
        for ok in ["abc", "Alice_01", "a.b-c", &"x".repeat(32)] {
            assert!(rules().check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", &"x".repeat(33), "has space", "émile", "semi;colon", ""] {
            assert!(matches!(rules().check_username(bad), Err(ApiError::InvalidUsername(_))), "{bad}");
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(rules().check_password("12345678").is_ok());
        assert!(rules().check_password("ééééééé").is_err());
        assert!(rules().check_password("éééééééé").is_ok());
        assert!(rules().check_password(&"p".repeat(128)).is_ok());
        let e = rules().check_password(&"p".repeat(129)).unwrap_err();
        assert_eq!(e.to_string(), "password must be 8 to 128 characters long");
        assert_eq!(e.code(), "invalid_password");
    }
}
