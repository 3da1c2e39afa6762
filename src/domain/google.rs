//! Rules for the Google upstream: which Google scopes a Scopegate scope set needs, which
//! Scopegate scopes a Google grant covers, and when a Google identity may join an existing
//! account.

use crate::domain::scope::{Scope, ScopeSet, GOOGLE_SCOPE_BASE};

/// Identity scopes asked on every Google sign-in.
pub const IDENTITY_SCOPES: [&str; 3] = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
];

/// The full Google scope URLs one Scopegate scope needs.
pub fn google_scopes_of(scope: Scope) -> Vec<String> {
    scope
        .info()
        .google
        .iter()
        .map(|g| format!("{GOOGLE_SCOPE_BASE}{g}"))
        .collect()
}

/// Identity plus exactly the Google scopes the Scopegate scopes map to, in catalogue order.
pub fn google_scopes_for(scopes: &ScopeSet) -> Vec<String> {
    let mut out: Vec<String> = IDENTITY_SCOPES.iter().map(|s| s.to_string()).collect();
    for s in scopes.iter() {
        for g in google_scopes_of(s) {
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

/// The Google scopes (beyond identity) that `scopes` need and `granted` lacks.
pub fn missing_google_scopes(scopes: &ScopeSet, granted: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for s in scopes.iter() {
        for g in google_scopes_of(s) {
            if !granted.contains(&g) && !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

/// The Scopegate scopes a Google grant covers (those needing no Google scope always are).
pub fn covered_by(granted: &[String]) -> ScopeSet {
    Scope::all()
        .filter(|s| google_scopes_of(*s).iter().all(|g| granted.contains(g)))
        .collect()
}

/// Splits Google's space-separated `scope` into full scope strings.
pub fn parse_google_scopes(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// What to do with a Google identity at sign-in.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkDecision {
    /// Already linked to this user.
    Linked(String),
    /// Join the existing user with this email.
    JoinByEmail(String),
    Create,
    Refuse(&'static str),
}

/// The linking rules (documented in the README):
/// 1. a Google `sub` already linked signs in as its user;
/// 2. otherwise an existing user with the same email is joined only when Google says the
///    email is verified *and* Google is authoritative for it (a gmail.com / googlemail.com
///    address, or a Workspace account whose `hd` is the email's domain), and the user has no
///    other Google account linked;
/// 3. otherwise a new user is created, again only for a verified email.
pub fn decide_link(
    linked_user: Option<&str>,
    same_email_user: Option<(&str, bool)>,
    email: &str,
    email_verified: bool,
    hosted_domain: Option<&str>,
) -> LinkDecision {
    if let Some(user) = linked_user {
        return LinkDecision::Linked(user.to_string());
    }
    if !email_verified {
        return LinkDecision::Refuse("Google has not verified this account's email address.");
    }
    match same_email_user {
        Some((_, true)) => LinkDecision::Refuse(
            "An account with this email is already linked to another Google account.",
        ),
        Some((user, false)) => {
            let domain = email
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            let authoritative = domain == "gmail.com"
                || domain == "googlemail.com"
                || hosted_domain.is_some_and(|hd| hd.eq_ignore_ascii_case(&domain));
            if authoritative {
                LinkDecision::JoinByEmail(user.to_string())
            } else {
                LinkDecision::Refuse("An account with this email already exists. Sign in with your password instead.")
            }
        }
        None => LinkDecision::Create,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_is_asked_for_identity_and_the_mapped_scopes_only() {
        let set = ScopeSet::parse("email.read_only email.send openid").expect("valid");
        assert_eq!(
            google_scopes_for(&set),
            vec![
                "openid",
                "https://www.googleapis.com/auth/userinfo.email",
                "https://www.googleapis.com/auth/userinfo.profile",
                "https://www.googleapis.com/auth/gmail.readonly",
                "https://www.googleapis.com/auth/gmail.send",
            ]
        );
    }

    #[test]
    fn a_partial_google_grant_covers_only_its_scopes() {
        let granted = vec!["https://www.googleapis.com/auth/gmail.readonly".to_string()];
        let covered = covered_by(&granted);
        assert!(covered.contains_name("email.read_only"));
        assert!(!covered.contains_name("email.send"));
        assert!(covered.contains_name("openid"));
        let asked = ScopeSet::parse("email.read_only email.send").expect("valid");
        assert_eq!(
            missing_google_scopes(&asked, &granted),
            vec!["https://www.googleapis.com/auth/gmail.send"]
        );
    }

    #[test]
    fn emails_join_only_where_google_is_authoritative() {
        assert_eq!(
            decide_link(Some("u1"), None, "a@x.org", false, None),
            LinkDecision::Linked("u1".into())
        );
        assert_eq!(
            decide_link(None, Some(("u2", false)), "a@gmail.com", true, None),
            LinkDecision::JoinByEmail("u2".into())
        );
        assert_eq!(
            decide_link(
                None,
                Some(("u2", false)),
                "a@corp.example",
                true,
                Some("corp.example")
            ),
            LinkDecision::JoinByEmail("u2".into())
        );
        assert!(matches!(
            decide_link(None, Some(("u2", false)), "a@corp.example", true, None),
            LinkDecision::Refuse(_)
        ));
        assert!(matches!(
            decide_link(None, Some(("u2", true)), "a@gmail.com", true, None),
            LinkDecision::Refuse(_)
        ));
        assert!(matches!(
            decide_link(None, None, "a@gmail.com", false, None),
            LinkDecision::Refuse(_)
        ));
        assert_eq!(
            decide_link(None, None, "a@gmail.com", true, None),
            LinkDecision::Create
        );
    }
}
