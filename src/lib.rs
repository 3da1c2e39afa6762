//! Scopegate: an OAuth 2 authorization server with granular, user-consented scopes.
#![deny(clippy::unwrap_used)]

pub mod api;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod oauth;
pub mod ops;
pub mod startup;
pub mod store;
pub mod upstream;
pub mod web;

pub use startup::Application;
