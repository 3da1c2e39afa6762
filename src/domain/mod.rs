//! Domain rules with no I/O; time is always passed in.

pub mod api;
pub mod client;
pub mod google;
pub mod mail;
pub mod scope;
pub mod token;
pub mod user;
