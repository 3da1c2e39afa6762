//! End-to-end suite: every test starts its own Scopegate on a fresh database and talks HTTP to
//! it. `e2e!` tests run on SQLite and on PostgreSQL (`SCOPEGATE_TEST_DATABASE_URL`).

#[macro_use]
mod helpers;

mod account;
mod admin;
mod authorize;
mod browser;
mod cli;
mod client_credentials;
mod consent;
mod discovery;
mod errors;
#[macro_use]
mod fake_google;
#[macro_use]
mod google_helpers;
mod google_api;
mod google_login;
mod google_refresh;
mod google_sealed;
mod introspection;
mod login;
mod native_auth;
mod oidc;
mod refresh;
mod resource_api;
mod revocation;
mod scope_helpers;
mod security;
mod third_party_client;
mod token;
mod ui_helpers;
