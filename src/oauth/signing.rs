//! The signing-key ring kept in memory, loaded from the store and reloaded periodically so
//! that every instance publishes and verifies the keys another instance created.

use std::sync::{Arc, RwLock};

use crate::crypto::keys::{self, KeyError, KeyRing, LoadedKey};
use crate::crypto::seal::SealKey;
use crate::domain::token::{key_still_published, Lifetimes};
use crate::error::AppError;
use crate::store::keys::{self as key_store, KeyRow};
use crate::store::DbConnection;

/// How often a running instance re-reads the key table (bounds staleness after a rotation).
pub const RELOAD_EVERY_SECS: u64 = 30;

pub struct Signing {
    ring: RwLock<Arc<KeyRing>>,
    seal: SealKey,
    lifetimes: Lifetimes,
}

/// A key as listed to operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySummary {
    pub kid: String,
    pub algorithm: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub published: bool,
}

impl Signing {
    /// Loads the keys, creating the first one on an empty table.
    pub fn load(
        conn: &mut DbConnection,
        seal: SealKey,
        lifetimes: Lifetimes,
        now: i64,
    ) -> Result<Signing, AppError> {
        let signing = Signing {
            ring: RwLock::new(Arc::new(KeyRing::new(vec![]).map_err(anyhow::Error::from)?)),
            seal,
            lifetimes,
        };
        signing.reload(conn, now)?;
        if !signing.ring().has_signer() {
            signing.rotate(conn, now)?;
        }
        Ok(signing)
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the key table.
    pub fn reload(&self, conn: &mut DbConnection, now: i64) -> Result<(), AppError> {
        let rows = key_store::list(conn)?;
        let mut loaded = Vec::new();
        for row in rows {
            if !key_still_published(row.retired_at, &self.lifetimes, now) {
                continue;
            }
            let pkcs8 = match row.retired_at {
                None => Some(self.seal.open(&row.private_sealed, &row.kid).map_err(|e| {
                    anyhow::anyhow!("cannot unseal signing key {}: {e} (is SCOPEGATE_SEAL_KEY the one it was sealed with?)", row.kid)
                })?),
                Some(_) => None,
            };
            loaded.push(LoadedKey {
                kid: row.kid,
                pkcs8,
                public_x: row.public_x,
                created_at: row.created_at,
                retired_at: row.retired_at,
            });
        }
        let ring = KeyRing::new(loaded).map_err(anyhow::Error::from)?;
        match self.ring.write() {
            Ok(mut slot) => *slot = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        Ok(())
    }

    /// Creates a new key, retires the others (they stay published until their tokens expire).
    pub fn rotate(&self, conn: &mut DbConnection, now: i64) -> Result<String, AppError> {
        let generated = keys::generate().map_err(|e: KeyError| anyhow::Error::from(e))?;
        let row = KeyRow {
            private_sealed: self.seal.seal(&generated.pkcs8, &generated.kid),
            kid: generated.kid.clone(),
            algorithm: "EdDSA".into(),
            public_x: generated.public_x,
            created_at: now,
            retired_at: None,
        };
        conn.transaction(|c| {
            key_store::insert(c, &row)?;
            key_store::retire_others(c, &row.kid, now)?;
            diesel::QueryResult::Ok(())
        })?;
        self.reload(conn, now)?;
        Ok(generated.kid)
    }

    pub fn list(&self, conn: &mut DbConnection, now: i64) -> Result<Vec<KeySummary>, AppError> {
        Ok(key_store::list(conn)?
            .into_iter()
            .map(|r| KeySummary {
                published: key_still_published(r.retired_at, &self.lifetimes, now),
                kid: r.kid,
                algorithm: r.algorithm,
                created_at: r.created_at,
                retired_at: r.retired_at,
            })
            .collect())
    }
}

use diesel::Connection as _;
