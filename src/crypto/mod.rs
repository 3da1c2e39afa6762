//! Cryptographic building blocks: passwords, random secrets, signing keys, sealing.

pub mod keys;
pub mod password;
pub mod seal;
pub mod secret;
