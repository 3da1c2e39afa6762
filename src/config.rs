//! Typed settings: defaults < TOML file (`SCOPEGATE_CONFIG`) < `SCOPEGATE_*` environment.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Everything the server and the CLI need to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `sqlite://relative.db`, `sqlite:///abs/path.db` or `postgres://…`.
    pub database_url: String,
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// The issuer; `http://` + the bound address when unset.
    pub public_url: Option<String>,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub code_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    pub session_ttl_secs: i64,
    /// An admin's session ends after this long without a request (`SCOPEGATE_ADMIN_IDLE_SECS`).
    pub admin_idle_timeout_secs: i64,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    /// Master key for sealing secrets at rest: 32 bytes, base64.
    pub seal_key: Option<SecretString>,
    /// Where the master key lives when `seal_key` is unset (created 0600 on first start).
    pub seal_key_file: Option<PathBuf>,
    pub login_rate_limit_per_minute: u32,
    pub token_rate_limit_per_minute: u32,
    pub db_pool_size: u32,
    /// Google upstream; without a client id, "Continue with Google" is not offered.
    pub google: GoogleSettings,
}

/// Google endpoints (configurable so tests can run a local fake Google).
#[derive(Clone, Debug)]
pub struct GoogleSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    /// Gmail and Calendar APIs live under this base, with Google's own paths.
    pub api_url: String,
    /// The People API base; defaults to `api_url` when that was set, else Google's own host.
    pub people_url: Option<String>,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        GoogleSettings {
            client_id: None,
            client_secret: None,
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            api_url: "https://www.googleapis.com".into(),
            people_url: None,
        }
    }
}

impl GoogleSettings {
    pub fn people_base(&self) -> &str {
        match &self.people_url {
            Some(u) => u,
            None if self.api_url != GoogleSettings::default().api_url => &self.api_url,
            None => "https://people.googleapis.com",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://scopegate.db".into(),
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 60,
            id_token_ttl_secs: 3600,
            session_ttl_secs: 12 * 3600,
            admin_idle_timeout_secs: 900,
            admin_email: None,
            admin_password: None,
            seal_key: None,
            seal_key_file: None,
            login_rate_limit_per_minute: 30,
            token_rate_limit_per_minute: 600,
            db_pool_size: 8,
            google: GoogleSettings::default(),
        }
    }
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid value for {name}: {value:?} is not {expected}")]
    Env {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// The file layer: every field optional, names as in `Settings`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    bind: Option<String>,
    public_url: Option<String>,
    access_token_ttl_secs: Option<i64>,
    refresh_token_ttl_secs: Option<i64>,
    code_ttl_secs: Option<i64>,
    id_token_ttl_secs: Option<i64>,
    session_ttl_secs: Option<i64>,
    admin_idle_timeout_secs: Option<i64>,
    admin_email: Option<String>,
    seal_key_file: Option<PathBuf>,
    login_rate_limit_per_minute: Option<u32>,
    token_rate_limit_per_minute: Option<u32>,
    db_pool_size: Option<u32>,
}

impl Settings {
    /// Reads defaults, then the file named by `SCOPEGATE_CONFIG` (if any), then the environment.
    pub fn load() -> Result<Settings, ConfigError> {
        Self::load_from(|name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`], with the environment given as a lookup function.
    pub fn load_from(env: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        if let Some(path) = env("SCOPEGATE_CONFIG") {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: FileSettings =
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?;
            s.apply_file(file);
        }
        s.apply_env(&env)?;
        Ok(s)
    }

    fn apply_file(&mut self, f: FileSettings) {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = f.$field { self.$field = v; } )* };
        }
        take!(
            database_url,
            bind,
            access_token_ttl_secs,
            refresh_token_ttl_secs,
            code_ttl_secs,
            id_token_ttl_secs,
            session_ttl_secs,
            admin_idle_timeout_secs,
            login_rate_limit_per_minute,
            token_rate_limit_per_minute,
            db_pool_size
        );
        if f.public_url.is_some() {
            self.public_url = f.public_url;
        }
        if f.admin_email.is_some() {
            self.admin_email = f.admin_email;
        }
        if f.seal_key_file.is_some() {
            self.seal_key_file = f.seal_key_file;
        }
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn number<T: std::str::FromStr>(
            name: &'static str,
            value: String,
        ) -> Result<T, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Env {
                name,
                value,
                expected: "a whole number",
            })
        }
        if let Some(v) = env("SCOPEGATE_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = env("SCOPEGATE_BIND") {
            self.bind = v;
        }
        if let Some(v) = env("SCOPEGATE_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env("SCOPEGATE_ADMIN_EMAIL") {
            self.admin_email = Some(v);
        }
        if let Some(v) = env("SCOPEGATE_ADMIN_PASSWORD") {
            self.admin_password = Some(SecretString::from(v));
        }
        if let Some(v) = env("SCOPEGATE_SEAL_KEY") {
            self.seal_key = Some(SecretString::from(v));
        }
        if let Some(v) = env("SCOPEGATE_GOOGLE_CLIENT_ID") {
            self.google.client_id = Some(v);
        }
        if let Some(v) = env("SCOPEGATE_GOOGLE_CLIENT_SECRET") {
            self.google.client_secret = Some(SecretString::from(v));
        }
        let urls: [(&str, &mut String); 4] = [
            ("SCOPEGATE_GOOGLE_AUTH_URL", &mut self.google.auth_url),
            ("SCOPEGATE_GOOGLE_TOKEN_URL", &mut self.google.token_url),
            (
                "SCOPEGATE_GOOGLE_USERINFO_URL",
                &mut self.google.userinfo_url,
            ),
            ("SCOPEGATE_GOOGLE_API_URL", &mut self.google.api_url),
        ];
        for (name, slot) in urls {
            if let Some(v) = env(name) {
                *slot = v.trim_end_matches('/').to_string();
            }
        }
        if let Some(v) = env("SCOPEGATE_GOOGLE_PEOPLE_URL") {
            self.google.people_url = Some(v.trim_end_matches('/').to_string());
        }
        if let Some(v) = env("SCOPEGATE_SEAL_KEY_FILE") {
            self.seal_key_file = Some(PathBuf::from(v));
        }
        let numbers: [(&'static str, &mut i64); 6] = [
            (
                "SCOPEGATE_ACCESS_TOKEN_TTL_SECS",
                &mut self.access_token_ttl_secs,
            ),
            (
                "SCOPEGATE_REFRESH_TOKEN_TTL_SECS",
                &mut self.refresh_token_ttl_secs,
            ),
            ("SCOPEGATE_CODE_TTL_SECS", &mut self.code_ttl_secs),
            ("SCOPEGATE_ID_TOKEN_TTL_SECS", &mut self.id_token_ttl_secs),
            ("SCOPEGATE_SESSION_TTL_SECS", &mut self.session_ttl_secs),
            (
                "SCOPEGATE_ADMIN_IDLE_SECS",
                &mut self.admin_idle_timeout_secs,
            ),
        ];
        for (name, slot) in numbers {
            if let Some(v) = env(name) {
                *slot = number(name, v)?;
            }
        }
        let limits: [(&'static str, &mut u32); 3] = [
            (
                "SCOPEGATE_LOGIN_RATE_LIMIT_PER_MINUTE",
                &mut self.login_rate_limit_per_minute,
            ),
            (
                "SCOPEGATE_TOKEN_RATE_LIMIT_PER_MINUTE",
                &mut self.token_rate_limit_per_minute,
            ),
            ("SCOPEGATE_DB_POOL_SIZE", &mut self.db_pool_size),
        ];
        for (name, slot) in limits {
            if let Some(v) = env(name) {
                *slot = number(name, v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_from(|k| match k {
            "SCOPEGATE_BIND" => Some("0.0.0.0:9000".into()),
            "SCOPEGATE_CODE_TTL_SECS" => Some("5".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.code_ttl_secs, 5);
        assert_eq!(s.access_token_ttl_secs, 3600);
    }

    #[test]
    fn a_non_numeric_lifetime_is_a_clear_error() {
        let err = Settings::load_from(|k| {
            (k == "SCOPEGATE_ACCESS_TOKEN_TTL_SECS").then(|| "soon".to_string())
        })
        .expect_err("invalid");
        assert!(err.to_string().contains("SCOPEGATE_ACCESS_TOKEN_TTL_SECS"));
    }
}
