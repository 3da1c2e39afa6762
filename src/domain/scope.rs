//! The scope catalogue and scope-set parsing (DESIGN.md "The scope catalogue").

use std::fmt;

/// Prefix of every Google scope URL.
pub const GOOGLE_SCOPE_BASE: &str = "https://www.googleapis.com/auth/";

/// One row of the catalogue.
#[derive(Debug)]
pub struct ScopeInfo {
    pub name: &'static str,
    /// Plain-language description shown on the consent page.
    pub description: &'static str,
    /// Sensitive scopes (send, modify) are highlighted on the consent page.
    pub sensitive: bool,
    /// Google scopes asked upstream, relative to [`GOOGLE_SCOPE_BASE`] (or absolute like `openid`).
    pub google: &'static [&'static str],
}

/// The catalogue, in display order; this order is also the canonical output order.
pub const CATALOGUE: &[ScopeInfo] = &[
    ScopeInfo {
        name: "email.modify",
        description: "Read and modify your messages, threads, attachments and their metadata (but not send)",
        sensitive: true,
        google: &["gmail.modify"],
    },
    ScopeInfo {
        name: "email.read_only",
        description: "Read your messages, threads, attachments, drafts and metadata, without changing anything",
        sensitive: false,
        google: &["gmail.readonly"],
    },
    ScopeInfo {
        name: "email.send",
        description: "Send email as you (send only, no reading)",
        sensitive: true,
        google: &["gmail.send"],
    },
    ScopeInfo {
        name: "email.folders_and_labels",
        description: "Read and modify your folders and labels",
        sensitive: false,
        google: &["gmail.labels"],
    },
    ScopeInfo {
        name: "email.drafts",
        description: "Read and modify your drafts (but not send them)",
        sensitive: false,
        google: &["gmail.compose"],
    },
    ScopeInfo {
        name: "calendar",
        description: "Read and modify your calendars and events",
        sensitive: false,
        google: &["calendar"],
    },
    ScopeInfo {
        name: "calendar.read_only",
        description: "Read your calendars and events",
        sensitive: false,
        google: &["calendar.readonly"],
    },
    ScopeInfo {
        name: "contacts",
        description: "Read and modify your contacts",
        sensitive: false,
        google: &["contacts"],
    },
    ScopeInfo {
        name: "contacts.read_only",
        description: "Read your contacts",
        sensitive: false,
        google: &["contacts.readonly"],
    },
    ScopeInfo {
        name: "openid",
        description: "Confirm your identity",
        sensitive: false,
        google: &[],
    },
    ScopeInfo {
        name: "profile",
        description: "See your name",
        sensitive: false,
        google: &[],
    },
    ScopeInfo {
        name: "email",
        description: "See your email address",
        sensitive: false,
        google: &[],
    },
    ScopeInfo {
        name: "offline_access",
        description: "Keep access while you are not using the application",
        sensitive: false,
        google: &[],
    },
];

/// A scope from the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(usize);

/// Why a scope string was refused; every case is `invalid_scope` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope {0:?}")]
    Unknown(String),
    #[error("no scope requested")]
    Empty,
    #[error("scope {0:?} is not allowed for this client")]
    NotAllowed(String),
}

impl Scope {
    /// Looks a name up in the catalogue.
    pub fn parse(name: &str) -> Result<Scope, ScopeError> {
        CATALOGUE
            .iter()
            .position(|s| s.name == name)
            .map(Scope)
            .ok_or_else(|| ScopeError::Unknown(truncate(name)))
    }

    pub fn name(self) -> &'static str {
        CATALOGUE[self.0].name
    }

    pub fn info(self) -> &'static ScopeInfo {
        &CATALOGUE[self.0]
    }

    pub fn all() -> impl Iterator<Item = Scope> {
        (0..CATALOGUE.len()).map(Scope)
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of catalogue scopes, always iterated and printed in catalogue order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u32);

impl ScopeSet {
    /// Parses a scope string separated by spaces and/or commas (the Nylas SDKs send commas).
    /// An unknown name fails the whole string; duplicates are merged.
    pub fn parse(input: &str) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for name in input.split([' ', ',']).filter(|s| !s.is_empty()) {
            set.insert(Scope::parse(name)?);
        }
        Ok(set)
    }

    /// Like [`ScopeSet::parse`], but an empty string is an error too.
    pub fn parse_non_empty(input: &str) -> Result<ScopeSet, ScopeError> {
        let set = ScopeSet::parse(input)?;
        if set.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(set)
    }

    pub fn all() -> ScopeSet {
        Scope::all().collect()
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= 1 << scope.0;
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0 & (1 << scope.0) != 0
    }

    pub fn contains_name(&self, name: &str) -> bool {
        Scope::parse(name).is_ok_and(|s| self.contains(s))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & !other.0)
    }

    /// The set restricted to what a client may ask for; the first scope outside is an error.
    pub fn check_allowed(&self, allowed: &ScopeSet) -> Result<(), ScopeError> {
        match self.difference(allowed).iter().next() {
            Some(scope) => Err(ScopeError::NotAllowed(scope.name().to_string())),
            None => Ok(()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::all().filter(|s| self.contains(*s))
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Scope::name).collect()
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::default();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

/// Space-separated, catalogue order (RFC 6749 §3.3).
impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(s.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_and_spaces_both_separate_scopes() {
        let set = ScopeSet::parse("email.send,email.read_only  calendar").expect("valid");
        assert_eq!(set.to_string(), "email.read_only email.send calendar");
    }

    #[test]
    fn an_unknown_scope_fails_the_whole_string() {
        assert_eq!(
            ScopeSet::parse("email.read_only email.everything"),
            Err(ScopeError::Unknown("email.everything".into()))
        );
    }

    #[test]
    fn an_empty_string_is_empty_and_refused_where_a_scope_is_needed() {
        assert!(ScopeSet::parse(" , ").expect("valid").is_empty());
        assert_eq!(ScopeSet::parse_non_empty(""), Err(ScopeError::Empty));
    }

    #[test]
    fn allowed_scopes_are_checked_by_name() {
        let allowed = ScopeSet::parse("email.read_only").expect("valid");
        let asked = ScopeSet::parse("email.read_only email.send").expect("valid");
        assert_eq!(
            asked.check_allowed(&allowed),
            Err(ScopeError::NotAllowed("email.send".into()))
        );
    }

    #[test]
    fn set_algebra_keeps_catalogue_order() {
        let a = ScopeSet::parse("contacts email.modify").expect("valid");
        let b = ScopeSet::parse("email.modify openid").expect("valid");
        assert_eq!(a.union(&b).to_string(), "email.modify contacts openid");
        assert_eq!(a.difference(&b).to_string(), "contacts");
        assert!(ScopeSet::default().is_subset(&a));
    }

    #[test]
    fn the_catalogue_fits_the_bit_set() {
        assert!(CATALOGUE.len() <= 32);
    }
}
