//! What each resource operation needs: the operation table (DESIGN.md) and the Nylas v2
//! route table built on it. Both live here, next to the scope catalogue; README's table is
//! generated from them and a test keeps the two in step.

use crate::domain::scope::{Scope, ScopeSet};

/// A resource operation, which needs at least one of its scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Any valid token.
    Account,
    ReadMessages,
    ModifyMessages,
    Send,
    ReadDrafts,
    WriteDrafts,
    ReadFolders,
    WriteFolders,
    ReadCalendars,
    WriteCalendars,
    ReadContacts,
    WriteContacts,
}

impl Operation {
    /// The scope names of which a token needs at least one; empty for "any valid token".
    pub fn any_of_names(self) -> &'static [&'static str] {
        use Operation::*;
        match self {
            Account => &[],
            ReadMessages => &["email.modify", "email.read_only"],
            ModifyMessages => &["email.modify"],
            Send => &["email.send"],
            ReadDrafts => &["email.drafts", "email.modify", "email.read_only"],
            WriteDrafts => &["email.drafts"],
            ReadFolders => &[
                "email.folders_and_labels",
                "email.modify",
                "email.read_only",
            ],
            WriteFolders => &["email.folders_and_labels"],
            ReadCalendars => &["calendar", "calendar.read_only"],
            WriteCalendars => &["calendar"],
            ReadContacts => &["contacts", "contacts.read_only"],
            WriteContacts => &["contacts"],
        }
    }

    pub fn any_of(self) -> ScopeSet {
        self.any_of_names()
            .iter()
            .filter_map(|n| Scope::parse(n).ok())
            .collect()
    }
}

/// One route of the resource API.
#[derive(Clone, Copy, Debug)]
pub struct ApiRoute {
    pub method: &'static str,
    /// actix path pattern.
    pub path: &'static str,
    pub operation: Operation,
}

const fn r(method: &'static str, path: &'static str, operation: Operation) -> ApiRoute {
    ApiRoute {
        method,
        path,
        operation,
    }
}

/// The Nylas v2-compatible resource API.
pub const API_ROUTES: &[ApiRoute] = {
    use Operation::*;
    &[
        r("GET", "/account", Account),
        r("GET", "/messages", ReadMessages),
        r("GET", "/messages/{id}", ReadMessages),
        r("GET", "/threads", ReadMessages),
        r("GET", "/threads/{id}", ReadMessages),
        r("GET", "/files/{id}", ReadMessages),
        r("PUT", "/messages/{id}", ModifyMessages),
        r("PUT", "/threads/{id}", ModifyMessages),
        r("DELETE", "/messages/{id}", ModifyMessages),
        r("POST", "/send", Send),
        r("GET", "/drafts", ReadDrafts),
        r("GET", "/drafts/{id}", ReadDrafts),
        r("POST", "/drafts", WriteDrafts),
        r("PUT", "/drafts/{id}", WriteDrafts),
        r("DELETE", "/drafts/{id}", WriteDrafts),
        r("GET", "/folders", ReadFolders),
        r("GET", "/labels", ReadFolders),
        r("POST", "/folders", WriteFolders),
        r("PUT", "/folders/{id}", WriteFolders),
        r("DELETE", "/folders/{id}", WriteFolders),
        r("POST", "/labels", WriteFolders),
        r("PUT", "/labels/{id}", WriteFolders),
        r("DELETE", "/labels/{id}", WriteFolders),
        r("GET", "/calendars", ReadCalendars),
        r("GET", "/events", ReadCalendars),
        r("GET", "/events/{id}", ReadCalendars),
        r("POST", "/events", WriteCalendars),
        r("PUT", "/events/{id}", WriteCalendars),
        r("DELETE", "/events/{id}", WriteCalendars),
        r("GET", "/contacts", ReadContacts),
        r("GET", "/contacts/{id}", ReadContacts),
        r("POST", "/contacts", WriteContacts),
        r("PUT", "/contacts/{id}", WriteContacts),
        r("DELETE", "/contacts/{id}", WriteContacts),
    ]
};

/// The refusal sentence, with scope lists printed as Python lists (what the Nylas SDKs show).
pub fn insufficient_scope_message(token_scopes: &ScopeSet, any_of: &ScopeSet) -> String {
    format!(
        "You do not have access to the required scopes. You provided a token which has the following scopes {}. You would need a token with at least one of the following scopes: {}",
        python_list(token_scopes),
        python_list(any_of)
    )
}

fn python_list(set: &ScopeSet) -> String {
    let items: Vec<String> = set.iter().map(|s| format!("'{}'", s.name())).collect();
    format!("[{}]", items.join(", "))
}

/// Does a token with `granted` pass an operation needing `any_of`?
pub fn allows(granted: &ScopeSet, any_of: &ScopeSet) -> bool {
    any_of.is_empty() || !granted.intersection(any_of).is_empty()
}

/// The README table: one row per route, scopes in catalogue order.
pub fn markdown_table() -> String {
    let mut out = String::from("| method and path | needs at least one of |\n|---|---|\n");
    for route in API_ROUTES {
        let needs = match route.operation.any_of().names() {
            names if names.is_empty() => "any valid token".to_string(),
            names => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&format!(
            "| `{} {}` | {} |\n",
            route.method, route.path, needs
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_message_matches_the_nylas_wording() {
        let token = ScopeSet::parse("email.send email.read_only").expect("valid");
        let msg = insufficient_scope_message(&token, &Operation::ModifyMessages.any_of());
        assert_eq!(
            msg,
            "You do not have access to the required scopes. You provided a token which has the following scopes ['email.read_only', 'email.send']. You would need a token with at least one of the following scopes: ['email.modify']"
        );
    }

    #[test]
    fn every_operation_names_catalogue_scopes_only() {
        for route in API_ROUTES {
            assert_eq!(
                route.operation.any_of().len(),
                route.operation.any_of_names().len(),
                "{} {}",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn at_least_one_scope_of_the_list_suffices() {
        let read_only = ScopeSet::parse("email.read_only").expect("valid");
        assert!(allows(&read_only, &Operation::ReadDrafts.any_of()));
        assert!(!allows(&read_only, &Operation::WriteDrafts.any_of()));
        assert!(allows(&ScopeSet::default(), &Operation::Account.any_of()));
    }

    #[test]
    fn the_readme_table_is_generated_from_the_route_table() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's resource API table is out of date; paste domain::api::markdown_table():\n{}",
            markdown_table()
        );
    }
}
