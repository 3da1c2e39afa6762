//! `Application::build`: migrate, load keys, bind the listener (port 0 in tests), serve.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::Key;
use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::crypto::seal::SealKey;
use crate::domain::token::Lifetimes;
use crate::error::AppError;
use crate::oauth::signing::{Signing, RELOAD_EVERY_SECS};
use crate::store::{DatabaseUrl, Store, StoreError};
use crate::web::ratelimit::RateLimits;

/// Shared, read-mostly state of a running server.
pub struct AppState {
    pub store: Store,
    pub settings: Settings,
    /// The issuer identifier (no trailing slash).
    pub issuer: String,
    pub lifetimes: Lifetimes,
    pub signing: Signing,
    pub seal: SealKey,
    pub cookie_key: Key,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    pub limits: RateLimits,
    /// The Google upstream, when a Google client id is configured.
    pub google: Option<crate::upstream::google::Google>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("seal key: {0}")]
    SealKey(String),
    #[error("{0}")]
    Setup(String),
}

impl From<AppError> for StartupError {
    fn from(e: AppError) -> Self {
        StartupError::Setup(format!("{e:?}"))
    }
}

pub struct Application {
    port: u16,
    address: SocketAddr,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let store = open_store(&settings).await?;
        let seal = resolve_seal_key(&settings, store.url())?;

        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.bind.clone(),
            source,
        })?;
        let issuer = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"))
            .trim_end_matches('/')
            .to_string();
        let lifetimes = Lifetimes {
            access: settings.access_token_ttl_secs,
            refresh: settings.refresh_token_ttl_secs,
            code: settings.code_ttl_secs,
            id_token: settings.id_token_ttl_secs,
        };

        let now = chrono::Utc::now().timestamp();
        let signing = {
            let store = store.clone();
            let seal = seal.clone();
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || -> Result<Signing, StartupError> {
                let mut conn = store.conn()?;
                let signing = Signing::load(&mut conn, seal, lifetimes, now)?;
                crate::ops::bootstrap_admin(&mut conn, &settings, now)?;
                Ok(signing)
            })
            .await
            .map_err(|e| StartupError::Setup(e.to_string()))??
        };

        let google =
            crate::upstream::google::Google::new(&settings.google).map_err(StartupError::Setup)?;
        let state = web::Data::new(AppState {
            google,
            limits: RateLimits::new(
                settings.login_rate_limit_per_minute,
                settings.token_rate_limit_per_minute,
            ),
            secure_cookies: issuer.starts_with("https://"),
            cookie_key: Key::derive_from(&derive_cookie_master(&seal)),
            store,
            settings,
            issuer,
            lifetimes,
            signing,
            seal,
        });

        let data = state.clone();
        let verifier: web::Data<dyn crate::api::guard::TokenVerifier> =
            web::Data::from(Arc::new(crate::api::guard::ScopegateVerifier {
                state: state.clone(),
            }) as Arc<dyn crate::api::guard::TokenVerifier>);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(verifier.clone())
                .app_data(web::PayloadConfig::new(64 * 1024))
                .app_data(web::FormConfig::default().limit(64 * 1024))
                .wrap(crate::web::security_headers())
                .wrap(
                    middleware::Logger::new("%r %s %Dms")
                        .exclude("/healthz")
                        .log_target("scopegate::http"),
                )
                .configure(crate::web::routes)
                .configure(crate::oauth::routes)
                .configure(crate::upstream::routes)
                .configure(crate::api::routes)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: address.to_string(),
            source,
        })?
        .run();

        spawn_key_reloader(state.clone().into_inner());
        spawn_janitor(state.clone().into_inner());
        tracing::info!(%address, issuer = %state.issuer, "scopegate listening on http://{address}");
        Ok(Application {
            port: address.port(),
            address,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

async fn open_store(settings: &Settings) -> Result<Store, StartupError> {
    let url = settings.database_url.clone();
    let size = settings.db_pool_size;
    tokio::task::spawn_blocking(move || {
        let store = Store::connect(&url, size)?;
        store.migrate()?;
        Ok::<_, StoreError>(store)
    })
    .await
    .map_err(|e| StartupError::Setup(e.to_string()))?
    .map_err(StartupError::from)
}

/// Cookie signing keys are derived from the master key, so all instances agree.
fn derive_cookie_master(seal: &SealKey) -> Vec<u8> {
    use sha2::{Digest, Sha512};
    let mut h = Sha512::new();
    h.update(b"scopegate cookie key v1");
    h.update(seal.bytes());
    h.finalize().to_vec()
}

/// The master key: `SCOPEGATE_SEAL_KEY`, else a key file (beside the SQLite file by default),
/// created 0600 on first start. Never in the database.
pub fn resolve_seal_key(settings: &Settings, db: &DatabaseUrl) -> Result<SealKey, StartupError> {
    if let Some(key) = &settings.seal_key {
        return SealKey::from_base64(key.expose_secret())
            .map_err(|e| StartupError::SealKey(e.to_string()));
    }
    let path = settings
        .seal_key_file
        .clone()
        .unwrap_or_else(|| default_key_file(db));
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StartupError::SealKey(format!("cannot read {}: {e}", path.display())))?;
        return SealKey::from_base64(&text)
            .map_err(|e| StartupError::SealKey(format!("{}: {e}", path.display())));
    }
    let key = SealKey::generate();
    write_private_file(&path, &key.to_base64())
        .map_err(|e| StartupError::SealKey(format!("cannot create {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "created a new seal key file; back it up with the database");
    Ok(key)
}

fn default_key_file(db: &DatabaseUrl) -> PathBuf {
    match db {
        DatabaseUrl::Sqlite(p) => {
            let mut name = p
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_else(|| "scopegate.db".into());
            name.push(".key");
            p.with_file_name(name)
        }
        DatabaseUrl::Postgres(_) => PathBuf::from("scopegate.key"),
    }
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Re-reads signing keys so a rotation on one instance reaches the others.
fn spawn_key_reloader(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(RELOAD_EVERY_SECS));
        tick.tick().await;
        loop {
            tick.tick().await;
            let s = state.clone();
            let now = s.now();
            let result = state
                .store
                .run(move |conn| s.signing.reload(conn, now))
                .await;
            if let Err(e) = result {
                tracing::warn!(error = ?e, "reloading signing keys failed");
            }
        }
    });
}

/// How often expired codes, sessions and revocation entries are deleted.
const PURGE_EVERY_SECS: u64 = 600;

/// Deletes rows that can no longer matter: expired codes, sessions and revoked-jti entries.
fn spawn_janitor(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(PURGE_EVERY_SECS));
        loop {
            tick.tick().await;
            let now = state.now();
            let result = state
                .store
                .run(move |conn| crate::store::purge_expired(conn, now))
                .await;
            match result {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
}
