//! Persistence: the only module that knows diesel. One repository module per table group.

pub mod audit;
pub mod clients;
pub mod google;
pub mod grants;
pub mod keys;
pub mod schema;
pub mod sessions;
pub mod users;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to whichever backend the URL selected; every query is written once.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Where the data lives, parsed from `SCOPEGATE_DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path: relative to the working directory, or absolute (`sqlite:///abs.db`).
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL {0:?}: use sqlite://FILE, sqlite:///ABS/FILE or postgres://…"
    )]
    BadUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::BadUrl(url.to_string()));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        Err(StoreError::BadUrl(redact_url(url)))
    }
}

/// Hides a password in a URL before it is shown anywhere.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.chars().take(200).collect(),
    }
}

/// r2d2 manager that opens the backend the URL names (diesel's own tries each in turn).
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(diesel::r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // WAL lets readers proceed during a write; busy_timeout queues writers.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Handle to the database: cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.url {
            DatabaseUrl::Sqlite(p) => write!(f, "Store(sqlite {})", p.display()),
            DatabaseUrl::Postgres(_) => f.write_str("Store(postgres)"),
        }
    }
}

impl Store {
    /// Opens a pool and checks that one connection works, so a bad URL fails at once.
    pub fn connect(url: &str, pool_size: u32) -> Result<Store, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        let manager = Manager { url: url.clone() };
        // Fail fast with the real reason rather than r2d2's generic timeout.
        let probe = manager
            .connect()
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        drop(probe);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| StoreError::Connect(e.to_string()))?;
        Ok(Store { pool, url })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn conn(&self) -> Result<PooledConnection, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Connect(e.to_string()))
    }

    /// Applies pending migrations for the connected backend.
    pub fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let result = match &mut *conn {
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
            DbConnection::Postgres(c) => {
                // Instances starting together must not migrate concurrently.
                c.batch_execute("SELECT pg_advisory_lock(727274)")?;
                let r = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
                c.batch_execute("SELECT pg_advisory_unlock(727274)")?;
                r
            }
        };
        result.map_err(|e| StoreError::Migrate(e.to_string()))
    }

    /// Runs blocking diesel work off the async executor, carrying the tracing span.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        let span = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut conn = store.conn()?;
                f(&mut conn)
            })
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(StoreError::Connect(format!("blocking task failed: {e}")).into()),
        }
    }
}

/// Deletes expired authorization codes (kept a day past expiry, so replays are still
/// recognised), sessions and revoked-jti entries of expired tokens.
pub fn purge_expired(conn: &mut DbConnection, now: i64) -> Result<usize, StoreError> {
    use diesel::prelude::*;
    let codes = grants::delete_expired_codes(conn, now - 24 * 3600)?;
    let sessions = sessions::delete_expired(conn, now)?;
    let jtis = diesel::delete(
        schema::revoked_tokens::table.filter(schema::revoked_tokens::expires_at.le(now)),
    )
    .execute(conn)?;
    Ok(codes + sessions + jtis)
}

/// `true` for errors caused by a unique-key collision.
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_select_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://scopegate.db").expect("valid"),
            DatabaseUrl::Sqlite("scopegate.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/sg.db").expect("valid"),
            DatabaseUrl::Sqlite("/var/lib/sg.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").expect("valid"),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_in_bad_urls_are_not_echoed() {
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/x").expect_err("unsupported");
        assert!(!err.to_string().contains("hunter2"));
    }
}
