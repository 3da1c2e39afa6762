//! End-to-end suite: every test starts its own Scopegate on a fresh database and talks HTTP to
//! it. `e2e!` tests run on SQLite and on PostgreSQL (`SCOPEGATE_TEST_DATABASE_URL`).

#[macro_use]
mod helpers;

mod authorize;
mod cli;
mod client_credentials;
mod consent;
mod discovery;
mod errors;
mod introspection;
mod login;
mod oidc;
mod refresh;
mod resource_api;
mod revocation;
mod scope_helpers;
mod security;
mod third_party_client;
mod token;
