//! Operator operations shared by the CLI, the admin UI and the tests.

use serde::Serialize;

use crate::config::Settings;
use crate::crypto::password;
use crate::crypto::secret::{random_id, OpaqueToken};
use crate::domain::client::{parse_client_name, ClientId, RedirectUri};
use crate::domain::scope::ScopeSet;
use crate::domain::token::CLIENT_SECRET_PREFIX;
use crate::domain::user::{check_new_password, parse_user_name, Email};
use crate::error::AppError;
use crate::store::clients::{self, ClientRow};
use crate::store::users::{self, User};
use crate::store::{audit, is_unique_violation, DbConnection, Store};
use secrecy::ExposeSecret;

/// What an operator asks for when registering a client.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    /// Scopes the client may ask for; `None` is the whole catalogue.
    pub scopes: Option<Vec<String>>,
    /// For confidential clients; public clients always need PKCE.
    pub pkce_required: bool,
    /// May introspect other clients' tokens.
    pub resource_server: bool,
}

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            name: String::new(),
            redirect_uris: Vec::new(),
            public: false,
            scopes: None,
            pkce_required: true,
            resource_server: false,
        }
    }
}

/// A registered client; the secret is shown this once and never stored.
#[derive(Debug, Serialize)]
pub struct CreatedClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A client as listed to operators: no secret, not even its digest.
#[derive(Debug, Serialize)]
pub struct ClientListing {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
    pub pkce_required: bool,
    pub resource_server: bool,
    pub created_at: i64,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Creates a user with a password (argon2id). Blocking.
pub fn add_user(
    store: &Store,
    email: &str,
    name: &str,
    password_text: &str,
    admin: bool,
) -> Result<String, AppError> {
    let mut conn = store.conn()?;
    create_user(
        &mut conn,
        email,
        name,
        password_text,
        admin,
        now(),
        Some("cli"),
    )
}

pub fn create_user(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    password_text: &str,
    admin: bool,
    now: i64,
    actor: Option<&str>,
) -> Result<String, AppError> {
    let email = Email::parse(email).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let name = parse_user_name(name).map_err(|e| AppError::BadRequest(e.to_string()))?;
    check_new_password(password_text).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let hash = password::hash(password_text).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let user = User {
        id: random_id("usr_", 12),
        email: email.as_str().to_string(),
        name,
        password_hash: Some(hash),
        is_admin: admin,
        disabled: false,
        created_at: now,
    };
    users::insert(conn, &user).map_err(|e| {
        if is_unique_violation(&e) {
            AppError::Conflict(format!("a user with email {email} already exists"))
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        now,
        actor,
        "user.created",
        Some(&user.id),
        serde_json::json!({"email": user.email, "admin": admin}),
        None,
    )?;
    Ok(user.id)
}

/// Registers a client. Blocking.
pub fn add_client(store: &Store, spec: ClientSpec) -> Result<CreatedClient, AppError> {
    let mut conn = store.conn()?;
    create_client(&mut conn, spec, now(), Some("cli"))
}

pub fn create_client(
    conn: &mut DbConnection,
    spec: ClientSpec,
    now: i64,
    actor: Option<&str>,
) -> Result<CreatedClient, AppError> {
    let name = parse_client_name(&spec.name).map_err(|e| AppError::BadRequest(e.to_string()))?;
    if spec.redirect_uris.is_empty() {
        return Err(AppError::BadRequest(
            "a client needs at least one redirect URI".into(),
        ));
    }
    let mut uris = Vec::new();
    for u in &spec.redirect_uris {
        let parsed = RedirectUri::parse(u).map_err(|e| AppError::BadRequest(e.to_string()))?;
        uris.push(parsed.as_str().to_string());
    }
    let scopes = match &spec.scopes {
        None => ScopeSet::all(),
        Some(list) => {
            let set = ScopeSet::parse(&list.join(" "))
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
            if set.is_empty() {
                return Err(AppError::BadRequest(
                    "--scope needs at least one scope".into(),
                ));
            }
            set
        }
    };
    let id = random_id(ClientId::PREFIX, 16);
    let secret = (!spec.public).then(|| OpaqueToken::generate(CLIENT_SECRET_PREFIX));
    let row = ClientRow {
        id: id.clone(),
        name,
        secret_digest: secret.as_ref().map(OpaqueToken::digest),
        redirect_uris: uris.join("\n"),
        allowed_scopes: scopes.to_string(),
        pkce_required: spec.public || spec.pkce_required,
        is_resource_server: spec.resource_server,
        created_at: now,
    };
    clients::insert(conn, &row)?;
    audit::record(
        conn,
        now,
        actor,
        "client.created",
        Some(&id),
        serde_json::json!({"name": row.name, "public": spec.public, "scopes": row.allowed_scopes}),
        None,
    )?;
    Ok(CreatedClient {
        client_id: id,
        client_secret: secret.map(|s| s.reveal().to_string()),
    })
}

pub fn list_clients(store: &Store) -> Result<Vec<ClientListing>, AppError> {
    let mut conn = store.conn()?;
    Ok(clients::list(&mut conn)?
        .into_iter()
        .map(|c| ClientListing {
            public: c.secret_digest.is_none(),
            client_id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris.lines().map(str::to_string).collect(),
            scopes: c.allowed_scopes,
            pkce_required: c.pkce_required,
            resource_server: c.is_resource_server,
            created_at: c.created_at,
        })
        .collect())
}

/// On an empty database, creates the first admin from the settings, or `admin@localhost`
/// with a random password printed once.
pub fn bootstrap_admin(
    conn: &mut DbConnection,
    settings: &Settings,
    now: i64,
) -> Result<(), AppError> {
    if users::count(conn)? > 0 {
        return Ok(());
    }
    let email = settings
        .admin_email
        .clone()
        .unwrap_or_else(|| "admin@localhost".into());
    let (password_text, generated) = match &settings.admin_password {
        Some(p) => (p.expose_secret().to_string(), false),
        None => (random_id("", 18), true),
    };
    create_user(
        conn,
        &email,
        "Administrator",
        &password_text,
        true,
        now,
        Some("bootstrap"),
    )?;
    if generated {
        // Printed, never logged: this is the only time it is shown.
        println!("Created the first admin account: {email} with password {password_text}");
        println!("Sign in at /login and change it.");
    } else {
        tracing::info!(%email, "created the first admin account from SCOPEGATE_ADMIN_EMAIL");
    }
    Ok(())
}

/// Signing-key operations for the CLI.
pub struct KeyAdmin {
    store: Store,
    signing: crate::oauth::signing::Signing,
}

pub fn key_admin(
    store: &Store,
    settings: &Settings,
    seal: crate::crypto::seal::SealKey,
) -> Result<KeyAdmin, AppError> {
    let lifetimes = crate::domain::token::Lifetimes {
        access: settings.access_token_ttl_secs,
        refresh: settings.refresh_token_ttl_secs,
        code: settings.code_ttl_secs,
        id_token: settings.id_token_ttl_secs,
    };
    let mut conn = store.conn()?;
    let signing = crate::oauth::signing::Signing::load(&mut conn, seal, lifetimes, now())?;
    Ok(KeyAdmin {
        store: store.clone(),
        signing,
    })
}

impl KeyAdmin {
    pub fn list(&self) -> Result<Vec<crate::oauth::signing::KeySummary>, AppError> {
        let mut conn = self.store.conn()?;
        self.signing.list(&mut conn, now())
    }

    pub fn rotate(&self) -> Result<String, AppError> {
        let mut conn = self.store.conn()?;
        let kid = self.signing.rotate(&mut conn, now())?;
        audit::record(
            &mut conn,
            now(),
            Some("cli"),
            "key.rotated",
            Some(&kid),
            serde_json::json!({}),
            None,
        )?;
        Ok(kid)
    }
}

/// Creates a user without a password (signed up through Google). Returns the user id.
pub fn create_passwordless_user(
    conn: &mut DbConnection,
    email: &Email,
    name: &str,
    now: i64,
    actor: Option<&str>,
    via: &str,
    ip: Option<&str>,
) -> Result<String, AppError> {
    let user = User {
        id: random_id("usr_", 12),
        email: email.as_str().to_string(),
        name: name.chars().take(200).collect(),
        password_hash: None,
        is_admin: false,
        disabled: false,
        created_at: now,
    };
    users::insert(conn, &user)?;
    audit::record(
        conn,
        now,
        actor.or(Some(&user.id)),
        "user.created",
        Some(&user.id),
        serde_json::json!({"via": via}),
        ip,
    )?;
    Ok(user.id)
}
