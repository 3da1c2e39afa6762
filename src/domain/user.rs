//! Users: email addresses and display names.

use std::fmt;

/// A lower-cased, syntactically plausible email address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("{0:?} is not a valid email address")]
    BadEmail(String),
    #[error("name must be 1 to 200 characters")]
    BadName,
    #[error("password must be 8 to 1024 characters")]
    BadPassword,
}

impl Email {
    pub fn parse(s: &str) -> Result<Email, UserError> {
        let s = s.trim();
        let bad = || UserError::BadEmail(s.chars().take(100).collect());
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(s.to_lowercase()))
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

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

pub fn parse_user_name(name: &str) -> Result<String, UserError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(UserError::BadName);
    }
    Ok(name.to_string())
}

/// Length limits only: NIST 800-63B advises against composition rules.
pub fn check_new_password(password: &str) -> Result<(), UserError> {
    let n = password.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(UserError::BadPassword);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_need_an_at_sign() {
        assert_eq!(
            Email::parse(" Ada@Example.ORG ").expect("valid").as_str(),
            "ada@example.org"
        );
        assert!(Email::parse("ada.example.org").is_err());
        assert!(Email::parse("@example.org").is_err());
        assert!(Email::parse("ada@").is_err());
        assert!(Email::parse("a da@example.org").is_err());
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough").is_ok());
    }
}
