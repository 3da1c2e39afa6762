//! Shared fixtures for the end-to-end suite: one running server per test, on SQLite or on
//! PostgreSQL, a simulated browser with its own cookie jar, and a cookie-less back channel for
//! the client application.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{redirect, Response, StatusCode};
use scraper::{ElementRef, Html, Selector};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use url::Url;

pub use scopegate::config::Settings;
use scopegate::ops;
use scopegate::startup::Application;
use scopegate::store::Store;

/// Every test in the block runs twice: `on_sqlite` and `on_postgres`.
///
/// ```ignore
/// e2e! {
///     async fn a_thing_happens(app) { … }
///
///     #[settings(|s| s.code_ttl_secs = 1)]
///     async fn a_code_expires(app) { … }
/// }
/// ```
macro_rules! e2e {
    ($( $(#[settings($tweak:expr)])? async fn $name:ident($app:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    let Some($app) = $crate::helpers::spawn_app_with(
                        $crate::helpers::Backend::Sqlite,
                        settings_tweak!($($tweak)?),
                    )
                    .await else { unreachable!("SQLite is always available") };
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    let Some($app) = $crate::helpers::spawn_app_with(
                        $crate::helpers::Backend::Postgres,
                        settings_tweak!($($tweak)?),
                    )
                    .await else { return };
                    $body
                }
            }
        )*
    };
}

macro_rules! settings_tweak {
    () => {
        |_: &mut $crate::helpers::Settings| {}
    };
    ($tweak:expr) => {
        $tweak
    };
}

// ---------------------------------------------------------------------------------------------
// Spawning
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running Scopegate on its own fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub address: String,
    pub port: u16,
    /// The default simulated browser's HTTP client (no redirects followed, own cookie jar).
    pub client: reqwest::Client,
    /// The default simulated browser.
    pub browser: Browser,
    /// The client application's back channel to the token endpoint: no cookies, no redirects.
    pub api: reqwest::Client,
    pub store: Store,
    pub settings: Settings,
    pub backend: Backend,
    pub pg_db_name: Option<String>,
    pg_admin_url: Option<String>,
    server: tokio::task::JoinHandle<()>,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let (Some(name), Some(admin_url)) = (self.pg_db_name.take(), self.pg_admin_url.take()) {
            // Best effort, on a plain thread: the async runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                use diesel::{Connection as _, RunQueryDsl as _};
                if let Ok(mut conn) = diesel::PgConnection::establish(&admin_url) {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    ))
                    .execute(&mut conn);
                }
            })
            .join();
        }
    }
}

/// A SQLite-backed app with test defaults.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {})
        .await
        .expect("spawn_app(Backend::Postgres) without a database: use spawn_app_postgres")
}

/// A PostgreSQL-backed app, or `None` (after a line on stderr) when no test database is
/// configured outside CI. In CI a missing database is a failure.
pub async fn spawn_app_postgres() -> Option<TestApp> {
    spawn_app_with(Backend::Postgres, |_| {}).await
}

/// Test defaults: port 0, issuer derived from the bound address, generous rate limits (every
/// request of the suite comes from 127.0.0.1), then `tweak`.
pub fn test_settings(database_url: String) -> Settings {
    Settings {
        database_url,
        bind: "127.0.0.1:0".to_string(),
        public_url: None,
        login_rate_limit_per_minute: 10_000,
        token_rate_limit_per_minute: 10_000,
        admin_email: None,
        admin_password: None,
        ..Settings::default()
    }
}

pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let mut tmp = None;
    let mut pg_db_name = None;
    let mut pg_admin_url = None;
    let database_url = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = sqlite_url(&dir.path().join("scopegate.db"));
            tmp = Some(dir);
            url
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url()?;
            let name = format!("scopegate_test_{}", random_string(12).to_lowercase());
            let db_url = create_postgres_database(&admin_url, &name).await;
            pg_db_name = Some(name);
            pg_admin_url = Some(admin_url);
            db_url
        }
    };
    let mut settings = test_settings(database_url);
    if let Some(dir) = &tmp {
        // Keep any key material the server writes inside the test's own directory.
        settings.seal_key_file = Some(dir.path().join("seal.key"));
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        settings.seal_key_file = Some(dir.path().join("seal.key"));
        tmp = Some(dir);
    }
    tweak(&mut settings);
    Some(start(settings, backend, tmp, pg_db_name, pg_admin_url).await)
}

/// Starts a server on an existing SQLite database, with the seal key file the CLI used (the
/// CLI tests).
pub async fn spawn_app_on(database_url: String, seal_key_file: std::path::PathBuf) -> TestApp {
    let mut settings = test_settings(database_url);
    settings.seal_key_file = Some(seal_key_file);
    start(settings, Backend::Sqlite, None, None, None).await
}

async fn start(
    settings: Settings,
    backend: Backend,
    tmp: Option<tempfile::TempDir>,
    pg_db_name: Option<String>,
    pg_admin_url: Option<String>,
) -> TestApp {
    let application = Application::build(settings.clone())
        .await
        .unwrap_or_else(|e| panic!("Application::build failed: {e:?}"));
    let port = application.port();
    let store = application.store();
    let server = tokio::spawn(async move {
        let _ = application.run_until_stopped().await;
    });
    let address = format!("http://127.0.0.1:{port}");
    let browser = Browser::new(&address);
    let api = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("reqwest client");
    TestApp {
        client: browser.http.clone(),
        browser,
        api,
        address,
        port,
        store,
        settings,
        backend,
        pg_db_name,
        pg_admin_url,
        server,
        _tmp: tmp,
    }
}

pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var("SCOPEGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if in_ci() {
                panic!(
                    "SCOPEGATE_TEST_DATABASE_URL is not set; in CI the PostgreSQL suite must run"
                );
            }
            eprintln!("skipping PostgreSQL test: SCOPEGATE_TEST_DATABASE_URL is not set");
            None
        }
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

async fn create_postgres_database(admin_url: &str, name: &str) -> String {
    let admin = admin_url.to_string();
    let db = name.to_string();
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection as _, RunQueryDsl as _};
        let mut conn = diesel::PgConnection::establish(&admin)
            .unwrap_or_else(|e| panic!("cannot connect to SCOPEGATE_TEST_DATABASE_URL: {e}"));
        diesel::sql_query(format!("CREATE DATABASE \"{db}\""))
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("CREATE DATABASE {db}: {e}"));
    })
    .await
    .expect("create database task");
    let mut url = Url::parse(admin_url).expect("SCOPEGATE_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password: String,
}

#[derive(Clone, Debug)]
pub struct TestClient {
    pub name: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// The first registered redirect URI, the one the helpers use.
    pub redirect_uri: String,
    pub redirect_uris: Vec<String>,
}

impl TestClient {
    /// How this client authenticates by default: Basic when confidential, `client_id` alone
    /// when public.
    pub fn auth(&self) -> ClientAuth {
        match &self.client_secret {
            Some(secret) => ClientAuth::Basic(self.client_id.clone(), secret.clone()),
            None => ClientAuth::Public(self.client_id.clone()),
        }
    }

    pub fn post_auth(&self) -> ClientAuth {
        ClientAuth::Post(
            self.client_id.clone(),
            self.client_secret.clone().expect("a confidential client"),
        )
    }

    pub fn secret(&self) -> &str {
        self.client_secret
            .as_deref()
            .expect("a confidential client")
    }
}

pub const CONFIDENTIAL_REDIRECT: &str = "https://client.example/oauth/callback";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1:7777/callback";

/// The whole scope catalogue, as the issue lists it.
pub const CATALOGUE: &[&str] = &[
    "email.modify",
    "email.read_only",
    "email.send",
    "email.folders_and_labels",
    "email.drafts",
    "calendar",
    "calendar.read_only",
    "contacts",
    "contacts.read_only",
    "openid",
    "profile",
    "email",
    "offline_access",
];

impl TestApp {
    pub async fn create_user(&self) -> TestUser {
        let tag = random_string(8).to_lowercase();
        let email = format!("user-{tag}@example.test");
        let name = format!("Test User {tag}");
        let password = format!("correct horse {tag} battery staple");
        let id = {
            let store = self.store.clone();
            let (email, name, password) = (email.clone(), name.clone(), password.clone());
            tokio::task::spawn_blocking(move || {
                ops::add_user(&store, &email, &name, &password, false)
            })
            .await
            .expect("add_user task")
            .unwrap_or_else(|e| panic!("add_user: {e:?}"))
        };
        TestUser {
            id: id.to_string(),
            email,
            name,
            password,
        }
    }

    pub async fn create_client(&self, spec: ops::ClientSpec) -> TestClient {
        let name = spec.name.clone();
        let redirect_uris = spec.redirect_uris.clone();
        let store = self.store.clone();
        let created = tokio::task::spawn_blocking(move || ops::add_client(&store, spec))
            .await
            .expect("add_client task")
            .unwrap_or_else(|e| panic!("add_client: {e:?}"));
        TestClient {
            name,
            client_id: created.client_id.to_string(),
            client_secret: created.client_secret.map(|s| s.to_string()),
            redirect_uri: redirect_uris.first().cloned().unwrap_or_default(),
            redirect_uris,
        }
    }

    /// A confidential web client allowed every scope, PKCE required.
    pub async fn confidential_client(&self) -> TestClient {
        self.create_client(confidential_spec()).await
    }

    /// A public native client (loopback redirect), PKCE required.
    pub async fn public_client(&self) -> TestClient {
        self.create_client(public_spec()).await
    }

    /// A confidential client that may only ask for `scopes`.
    pub async fn client_with_scopes(&self, scopes: &[&str]) -> TestClient {
        self.create_client(ops::ClientSpec {
            scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
            ..confidential_spec()
        })
        .await
    }

    /// A second browser, with its own cookie jar.
    pub fn new_browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.api.get(self.url(path)).send().await.expect("GET")
    }

    /// The issuer as the metadata document states it.
    pub async fn issuer(&self) -> String {
        self.metadata().await["issuer"]
            .as_str()
            .expect("metadata has an issuer")
            .to_string()
    }

    pub async fn metadata(&self) -> Value {
        let resp = self.get("/.well-known/oauth-authorization-server").await;
        assert_eq!(resp.status(), StatusCode::OK, "RFC 8414 metadata");
        resp.json().await.expect("metadata is JSON")
    }

    pub async fn openid_configuration(&self) -> Value {
        let resp = self.get("/.well-known/openid-configuration").await;
        assert_eq!(resp.status(), StatusCode::OK, "OIDC discovery");
        resp.json().await.expect("openid-configuration is JSON")
    }

    pub async fn jwks(&self) -> Value {
        let resp = self.get("/.well-known/jwks.json").await;
        assert_eq!(resp.status(), StatusCode::OK, "JWKS");
        resp.json().await.expect("JWKS is JSON")
    }

    // --- authorize -----------------------------------------------------------------------

    pub async fn get_authorize(&self, params: &AuthParams) -> Response {
        self.browser.get_authorize(params).await
    }

    pub async fn login(&self, user: &TestUser) -> Response {
        self.browser.login(user).await
    }

    /// Runs authorize → login → consent (as `decision` says) in the default browser and
    /// returns where the browser was finally sent off-site (normally the redirect URI).
    pub async fn authorize(&self, user: &TestUser, params: &AuthParams, decision: Decision) -> Url {
        self.browser.authorize(user, params, decision).await
    }

    /// The whole flow for `scope`, everything allowed; returns the code and what exchanging it
    /// needs.
    pub async fn authorize_code(
        &self,
        user: &TestUser,
        client: &TestClient,
        scope: &str,
    ) -> CodeGrant {
        let params = AuthParams::new(client, scope);
        self.authorize_code_with(user, client, &params).await
    }

    pub async fn authorize_code_with(
        &self,
        user: &TestUser,
        client: &TestClient,
        params: &AuthParams,
    ) -> CodeGrant {
        let url = self.authorize(user, params, Decision::AllowAll).await;
        code_grant_from(&url, client, params)
    }

    // --- token ---------------------------------------------------------------------------

    pub async fn post_token<T: Serialize + ?Sized>(
        &self,
        auth: &ClientAuth,
        form: &T,
    ) -> TokenResponse {
        let body = serde_urlencoded::to_string(form).expect("form encodes");
        let body = match auth {
            ClientAuth::Post(id, secret) => join_form(
                &body,
                &serde_urlencoded::to_string([("client_id", id), ("client_secret", secret)])
                    .unwrap(),
            ),
            ClientAuth::Public(id) => join_form(
                &body,
                &serde_urlencoded::to_string([("client_id", id)]).unwrap(),
            ),
            ClientAuth::Basic(..) | ClientAuth::None => body,
        };
        let mut req = self
            .api
            .post(self.url("/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let ClientAuth::Basic(id, secret) = auth {
            req = req.header("Authorization", basic_auth(id, secret));
        }
        TokenResponse::read(req.send().await.expect("POST /oauth/token")).await
    }

    /// POST /oauth/token with a raw body and content type.
    pub async fn post_token_raw(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut req = self.api.post(self.url("/oauth/token")).body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        req.send().await.expect("POST /oauth/token")
    }

    pub async fn exchange(&self, grant: &CodeGrant) -> TokenResponse {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", grant.code.as_str()),
        ];
        if let Some(uri) = &grant.redirect_uri {
            form.push(("redirect_uri", uri.as_str()));
        }
        if let Some(v) = &grant.verifier {
            form.push(("code_verifier", v.as_str()));
        }
        self.post_token(&grant.client.auth(), &form).await
    }

    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> TokenResponse {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.post_token(&client.auth(), &form).await
    }

    pub async fn client_credentials(
        &self,
        client: &TestClient,
        scope: Option<&str>,
    ) -> TokenResponse {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.post_token(&client.auth(), &form).await
    }

    /// Code flow + exchange, asserting success.
    pub async fn tokens(&self, user: &TestUser, client: &TestClient, scope: &str) -> Tokens {
        let grant = self.authorize_code(user, client, scope).await;
        self.exchange(&grant).await.tokens()
    }

    // --- resource side -------------------------------------------------------------------

    pub async fn userinfo(&self, access_token: &str) -> Response {
        self.api
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("GET /userinfo")
    }

    /// Verifies a JWT's EdDSA signature with the JWKS key named by its `kid`, and `iss`;
    /// returns its header and claims. `aud` is checked by the callers.
    pub async fn verify_jwt(&self, token: &str) -> (jsonwebtoken::Header, Value) {
        let header = jsonwebtoken::decode_header(token).expect("a JWT header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA, "alg");
        let kid = header.kid.clone().expect("the JWT header names a kid");
        let jwks = self.jwks().await;
        let key = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"].as_str() == Some(kid.as_str()))
            .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks}"));
        let x = key["x"].as_str().expect("an OKP key has x");
        let decoding = jsonwebtoken::DecodingKey::from_ed_components(x).expect("x is base64url");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[self.issuer().await]);
        let data = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
            .unwrap_or_else(|e| panic!("JWT does not verify against the JWKS: {e}"));
        (header, data.claims)
    }
}

fn join_form(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}&{b}"),
    }
}

pub fn confidential_spec() -> ops::ClientSpec {
    ops::ClientSpec {
        name: format!("Acme Mail {}", random_string(6)),
        redirect_uris: vec![CONFIDENTIAL_REDIRECT.to_string()],
        public: false,
        scopes: None,
        pkce_required: true,
        ..Default::default()
    }
}

pub fn public_spec() -> ops::ClientSpec {
    ops::ClientSpec {
        name: format!("Acme Desktop {}", random_string(6)),
        redirect_uris: vec![PUBLIC_REDIRECT.to_string()],
        public: true,
        scopes: None,
        pkce_required: true,
        ..Default::default()
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// RFC 6749 §2.3.1 HTTP Basic, each part form-urlencoded first.
    Basic(String, String),
    /// `client_id` and `client_secret` in the body.
    Post(String, String),
    /// A public client: `client_id` in the body only.
    Public(String),
    None,
}

pub fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

#[derive(Debug)]
pub struct TokenResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TokenResponse {
    pub async fn read(resp: Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        TokenResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    pub fn str(&self, key: &str) -> &str {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("token response has no string {key}: {}", self.text))
    }

    pub fn scope(&self) -> BTreeSet<String> {
        scope_set(self.str("scope"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a success and returns the tokens.
    pub fn tokens(&self) -> Tokens {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "token request failed: {}",
            self.text
        );
        Tokens {
            access_token: self.str("access_token").to_string(),
            refresh_token: self.body["refresh_token"].as_str().map(str::to_string),
            id_token: self.body["id_token"].as_str().map(str::to_string),
            scope: self.scope(),
            body: self.body.clone(),
        }
    }

    /// Asserts an RFC 6749 §5.2 error: status, `error`, a string `error_description`, and
    /// `Cache-Control: no-store`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(self.error(), error, "error; body: {}", self.text);
        assert!(
            self.body["error_description"].is_string(),
            "error_description is a string: {}",
            self.text
        );
        assert_no_store(&self.headers);
    }

    /// Like `assert_error` but accepts any of `errors` (where the RFCs allow more than one).
    #[track_caller]
    pub fn assert_error_in(&self, status: u16, errors: &[&str]) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert!(
            errors.contains(&self.error()),
            "error is one of {errors:?}; body: {}",
            self.text
        );
        assert_no_store(&self.headers);
    }
}

#[track_caller]
pub fn assert_no_store(headers: &HeaderMap) {
    let cc = headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        cc.contains("no-store"),
        "Cache-Control: no-store, got {cc:?}"
    );
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: BTreeSet<String>,
    pub body: Value,
}

impl Tokens {
    pub fn refresh_token(&self) -> &str {
        self.refresh_token.as_deref().expect("a refresh_token")
    }
}

/// What the token request needs after a successful authorization.
#[derive(Clone, Debug)]
pub struct CodeGrant {
    pub code: String,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub verifier: Option<String>,
    /// Sent to the token endpoint when it was sent to the authorization endpoint.
    pub redirect_uri: Option<String>,
    pub client: TestClient,
}

pub fn code_grant_from(url: &Url, client: &TestClient, params: &AuthParams) -> CodeGrant {
    let q = query(url);
    let code = q
        .get("code")
        .unwrap_or_else(|| panic!("expected a code in the redirect, got {url}"))
        .clone();
    CodeGrant {
        code,
        state: q.get("state").cloned(),
        iss: q.get("iss").cloned(),
        verifier: params.pkce.as_ref().map(|p| p.verifier.clone()),
        redirect_uri: params.get("redirect_uri").map(str::to_string),
        client: client.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization request parameters and PKCE
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = random_string(64);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The query of an authorization request, in order, duplicates allowed.
#[derive(Clone, Debug)]
pub struct AuthParams {
    pub pairs: Vec<(String, String)>,
    pub pkce: Option<Pkce>,
}

impl AuthParams {
    /// response_type=code, client_id, redirect_uri, scope, a random state and a fresh S256
    /// challenge.
    pub fn new(client: &TestClient, scope: &str) -> Self {
        let pkce = Pkce::new();
        let pairs = vec![
            ("response_type".to_string(), "code".to_string()),
            ("client_id".to_string(), client.client_id.clone()),
            ("redirect_uri".to_string(), client.redirect_uri.clone()),
            ("scope".to_string(), scope.to_string()),
            ("state".to_string(), random_string(20)),
            ("code_challenge".to_string(), pkce.challenge.clone()),
            ("code_challenge_method".to_string(), "S256".to_string()),
        ];
        AuthParams {
            pairs,
            pkce: Some(pkce),
        }
    }

    /// Replaces every `key` by one `key=value` (or appends it).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        match self.pairs.iter().position(|(k, _)| k == key) {
            Some(i) => {
                self.pairs[i].1 = value.to_string();
                let mut seen = false;
                self.pairs.retain(|(k, _)| {
                    if k != key {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.pairs.push((key.to_string(), value.to_string())),
        }
        self
    }

    /// Appends `key=value` even if `key` is already there.
    pub fn add(mut self, key: &str, value: &str) -> Self {
        self.pairs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn remove(mut self, key: &str) -> Self {
        self.pairs.retain(|(k, _)| k != key);
        if key == "code_challenge" {
            self.pkce = None;
        }
        self
    }

    pub fn without_pkce(self) -> Self {
        self.remove("code_challenge")
            .remove("code_challenge_method")
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn state(&self) -> &str {
        self.get("state").expect("a state")
    }

    pub fn query(&self) -> String {
        serde_urlencoded::to_string(&self.pairs).expect("query encodes")
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated browser
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allow, leaving every checkbox as the page set it.
    AllowAll,
    /// Allow with exactly these scopes checked.
    Allow(Vec<String>),
    Deny,
}

impl Decision {
    pub fn allow(scopes: &[&str]) -> Self {
        Decision::Allow(scopes.iter().map(|s| s.to_string()).collect())
    }
}

/// Where one response sent the browser.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a test helper; boxing would only add noise
pub enum Step {
    /// A redirect to Scopegate's login page.
    Login(Url),
    /// A redirect to another Scopegate page.
    Internal(Url),
    /// A redirect off Scopegate (normally to the client's redirect URI).
    Away(Url),
    /// A consent page.
    Consent(ConsentPage),
    /// Anything else.
    Other {
        status: StatusCode,
        url: Url,
        body: String,
    },
}

#[derive(Clone, Debug)]
pub struct Browser {
    pub http: reqwest::Client,
    pub address: String,
}

impl Browser {
    pub fn new(address: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("reqwest client");
        Browser {
            http,
            address: address.to_string(),
        }
    }

    /// A browser whose jar starts with `cookies` (`name=value` strings) for the server.
    pub fn with_cookies(address: &str, cookies: &[String]) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let url = Url::parse(address).expect("address");
        for c in cookies {
            jar.add_cookie_str(c, &url);
        }
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .cookie_provider(jar)
            .build()
            .expect("reqwest client");
        Browser {
            http,
            address: address.to_string(),
        }
    }

    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.address, path_or_url)
        }
    }

    pub fn origin(&self) -> url::Origin {
        Url::parse(&self.address).expect("address").origin()
    }

    pub async fn get(&self, path_or_url: &str) -> Response {
        self.http
            .get(self.url(path_or_url))
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_form<T: Serialize + ?Sized>(&self, path_or_url: &str, form: &T) -> Response {
        self.http
            .post(self.url(path_or_url))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    pub async fn get_authorize(&self, params: &AuthParams) -> Response {
        self.get(&format!("/oauth/authorize?{}", params.query()))
            .await
    }

    /// Follows one redirect.
    pub async fn follow(&self, resp: &Response) -> Response {
        let to =
            location(resp).unwrap_or_else(|| panic!("expected a redirect, got {}", resp.status()));
        self.get(to.as_str()).await
    }

    /// Signs in from a plain `/login`.
    pub async fn login(&self, user: &TestUser) -> Response {
        self.submit_login("/login", &user.email, &user.password)
            .await
    }

    /// Loads the login page at `login_url`, fills the form and posts it; returns the answer to
    /// the POST.
    pub async fn submit_login(&self, login_url: &str, email: &str, password: &str) -> Response {
        let form = self.login_form(login_url).await;
        let mut fields = form.hidden.clone();
        fields.retain(|(k, _)| k != "email" && k != "password");
        fields.push(("email".to_string(), email.to_string()));
        fields.push(("password".to_string(), password.to_string()));
        self.post_form(form.action.as_str(), &fields).await
    }

    /// The login form on the page at `login_url`.
    pub async fn login_form(&self, login_url: &str) -> Form {
        let resp = self.get(login_url).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {login_url}");
        let url = resp.url().clone();
        let body = resp.text().await.expect("login page body");
        Form::find(&body, &url, |f| f.has_input("password"))
            .unwrap_or_else(|| panic!("no login form at {url}: {body}"))
    }

    /// Classifies a response.
    pub async fn step(&self, resp: Response) -> Step {
        let status = resp.status();
        let url = resp.url().clone();
        if status.is_redirection() {
            let to = location(&resp).unwrap_or_else(|| panic!("{status} without Location"));
            if to.origin() != self.origin() {
                return Step::Away(to);
            }
            if to.path() == "/login" {
                return Step::Login(to);
            }
            return Step::Internal(to);
        }
        let body = resp.text().await.unwrap_or_default();
        if status == StatusCode::OK {
            if let Some(page) = ConsentPage::parse(&body, &url) {
                return Step::Consent(page);
            }
        }
        Step::Other { status, url, body }
    }

    /// Drives a response through login, internal redirects and consent until the browser is
    /// sent away; returns that URL.
    pub async fn drive(&self, mut resp: Response, user: &TestUser, decision: Decision) -> Url {
        for _ in 0..10 {
            resp = match self.step(resp).await {
                Step::Away(url) => return url,
                Step::Login(url) => {
                    self.submit_login(url.as_str(), &user.email, &user.password)
                        .await
                }
                Step::Internal(url) => self.get(url.as_str()).await,
                Step::Consent(page) => self.decide(&page, &decision).await,
                Step::Other { status, url, body } => {
                    panic!("authorization flow stuck at {url}: {status}\n{body}")
                }
            };
        }
        panic!("authorization flow did not end after 10 steps")
    }

    pub async fn authorize(&self, user: &TestUser, params: &AuthParams, decision: Decision) -> Url {
        let resp = self.get_authorize(params).await;
        self.drive(resp, user, decision).await
    }

    /// Authorizes until the consent page appears (signing in if asked) and returns it.
    pub async fn consent_page(&self, user: &TestUser, params: &AuthParams) -> ConsentPage {
        let mut resp = self.get_authorize(params).await;
        for _ in 0..10 {
            resp = match self.step(resp).await {
                Step::Consent(page) => return page,
                Step::Login(url) => {
                    self.submit_login(url.as_str(), &user.email, &user.password)
                        .await
                }
                Step::Internal(url) => self.get(url.as_str()).await,
                other => panic!("expected a consent page, got {other:?}"),
            };
        }
        panic!("no consent page after 10 steps")
    }

    /// Posts the consent form with `decision`.
    pub async fn decide(&self, page: &ConsentPage, decision: &Decision) -> Response {
        let (value, scopes): (&str, Vec<String>) = match decision {
            Decision::AllowAll => ("allow", page.checked_scopes()),
            Decision::Allow(scopes) => ("allow", scopes.clone()),
            Decision::Deny => ("deny", page.checked_scopes()),
        };
        self.post_consent(page, value, &scopes, true).await
    }

    /// Posts the consent form: every hidden input (or all but csrf_token when
    /// `with_csrf` is false), `decision`, and one `scope` per entry.
    pub async fn post_consent(
        &self,
        page: &ConsentPage,
        decision: &str,
        scopes: &[String],
        with_csrf: bool,
    ) -> Response {
        let mut fields: Vec<(String, String)> = page
            .form
            .hidden
            .iter()
            .filter(|(k, _)| with_csrf || k != "csrf_token")
            .cloned()
            .collect();
        fields.push(("decision".to_string(), decision.to_string()));
        fields.extend(scopes.iter().map(|s| ("scope".to_string(), s.clone())));
        self.post_form(page.form.action.as_str(), &fields).await
    }

    /// Posts /logout with `csrf_token`.
    pub async fn logout(&self, csrf_token: &str) -> Response {
        self.post_form("/logout", &[("csrf_token", csrf_token)])
            .await
    }
}

/// An HTML form, parsed.
#[derive(Clone, Debug)]
pub struct Form {
    pub action: Url,
    pub method: String,
    pub hidden: Vec<(String, String)>,
    /// Every input's name.
    pub inputs: Vec<String>,
    /// `(value, checked)` of each `<input type="checkbox" name="scope">`.
    pub scope_boxes: Vec<(String, bool)>,
    /// `(name, value)` of each submit button.
    pub buttons: Vec<(String, String)>,
}

impl Form {
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|n| n == name)
    }

    pub fn hidden(&self, name: &str) -> Option<&str> {
        self.hidden
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn parse(el: ElementRef<'_>, base: &Url) -> Form {
        let action = el
            .value()
            .attr("action")
            .filter(|a| !a.is_empty())
            .map(|a| base.join(a).expect("form action resolves"))
            .unwrap_or_else(|| base.clone());
        let method = el
            .value()
            .attr("method")
            .unwrap_or("get")
            .to_ascii_lowercase();
        let input = Selector::parse("input").unwrap();
        let button = Selector::parse("button, input[type=submit]").unwrap();
        let mut hidden = Vec::new();
        let mut inputs = Vec::new();
        let mut scope_boxes = Vec::new();
        for i in el.select(&input) {
            let v = i.value();
            let name = v.attr("name").unwrap_or("").to_string();
            let ty = v.attr("type").unwrap_or("text").to_ascii_lowercase();
            let value = v.attr("value").unwrap_or("").to_string();
            if !name.is_empty() {
                inputs.push(name.clone());
            }
            if ty == "hidden" && !name.is_empty() {
                hidden.push((name.clone(), value.clone()));
            }
            if ty == "checkbox" && name == "scope" {
                scope_boxes.push((value, v.attr("checked").is_some()));
            }
        }
        let buttons = el
            .select(&button)
            .filter_map(|b| {
                let v = b.value();
                Some((
                    v.attr("name")?.to_string(),
                    v.attr("value").unwrap_or("").to_string(),
                ))
            })
            .collect();
        Form {
            action,
            method,
            hidden,
            inputs,
            scope_boxes,
            buttons,
        }
    }

    /// The first form in `html` that `pick` accepts.
    pub fn find(html: &str, base: &Url, pick: impl Fn(&Form) -> bool) -> Option<Form> {
        Self::all(html, base).into_iter().find(|f| pick(f))
    }

    pub fn all(html: &str, base: &Url) -> Vec<Form> {
        let doc = Html::parse_document(html);
        let sel = Selector::parse("form").unwrap();
        doc.select(&sel).map(|f| Form::parse(f, base)).collect()
    }
}

/// The consent page: its form and text.
#[derive(Clone, Debug)]
pub struct ConsentPage {
    pub form: Form,
    pub html: String,
    /// The page's visible text, whitespace collapsed.
    pub text: String,
    pub url: Url,
}

impl ConsentPage {
    /// A page is a consent page when it has a POST form with a `decision` button.
    pub fn parse(html: &str, url: &Url) -> Option<Self> {
        let form = Form::find(html, url, |f| {
            f.method == "post" && f.buttons.iter().any(|(n, _)| n == "decision")
        })?;
        Some(ConsentPage {
            form,
            html: html.to_string(),
            text: visible_text(html),
            url: url.clone(),
        })
    }

    pub fn scopes(&self) -> Vec<String> {
        self.form
            .scope_boxes
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn checked_scopes(&self) -> Vec<String> {
        self.form
            .scope_boxes
            .iter()
            .filter(|(_, c)| *c)
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn csrf_token(&self) -> &str {
        self.form
            .hidden("csrf_token")
            .expect("the consent form has a csrf_token")
    }
}

/// The text a person would read (no script or style), whitespace collapsed.
pub fn visible_text(html: &str) -> String {
    let doc = Html::parse_document(html);
    let body = Selector::parse("body").unwrap();
    let root = doc
        .select(&body)
        .next()
        .unwrap_or_else(|| doc.root_element());
    let mut out = String::new();
    for node in root.descendants() {
        if let Some(text) = node.value().as_text() {
            let in_hidden = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .map(|e| matches!(e.name(), "script" | "style" | "template"))
                    .unwrap_or(false)
            });
            if !in_hidden {
                out.push_str(text);
                out.push(' ');
            }
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// `Location`, resolved against the request URL.
pub fn location(resp: &Response) -> Option<Url> {
    let loc = resp.headers().get("location")?.to_str().ok()?;
    resp.url().join(loc).ok()
}

pub fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn query_all(url: &Url, key: &str) -> Vec<String> {
    url.query_pairs()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

pub fn scope_set(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn random_string(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

pub fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers()
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

#[track_caller]
pub fn assert_redirect(resp: &Response) -> Url {
    assert!(
        matches!(resp.status().as_u16(), 302 | 303),
        "expected 302/303, got {}",
        resp.status()
    );
    location(resp).expect("a redirect has a Location")
}

/// The browser was sent to `redirect_uri` (same scheme, host, port, path).
#[track_caller]
pub fn assert_sent_to(url: &Url, redirect_uri: &str) {
    let expected = Url::parse(redirect_uri).expect("redirect_uri");
    assert_eq!(
        (
            url.scheme(),
            url.host_str(),
            url.port_or_known_default(),
            url.path()
        ),
        (
            expected.scheme(),
            expected.host_str(),
            expected.port_or_known_default(),
            expected.path()
        ),
        "sent to {url}, expected {redirect_uri}"
    );
}

/// An RFC 6749 §4.1.2.1 error redirect with `state` and (RFC 9207) `iss`.
#[track_caller]
pub fn assert_error_redirect(
    url: &Url,
    redirect_uri: &str,
    error: &str,
    state: &str,
    issuer: &str,
) {
    assert_sent_to(url, redirect_uri);
    let q = query(url);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some(error),
        "error in {url}"
    );
    assert!(
        q.contains_key("error_description"),
        "error_description in {url}"
    );
    assert_eq!(
        q.get("state").map(String::as_str),
        Some(state),
        "state in {url}"
    );
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(issuer),
        "iss in {url}"
    );
    assert!(!q.contains_key("code"), "no code with an error: {url}");
}

/// A 400 HTML error page that sends the browser nowhere.
pub async fn assert_error_page(resp: Response) {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "an error page");
    assert!(
        resp.headers().get("location").is_none(),
        "an error page must not redirect"
    );
    let ct = header(&resp, "content-type").unwrap_or("").to_string();
    assert!(ct.starts_with("text/html"), "an HTML page, got {ct:?}");
    let body = resp.text().await.unwrap_or_default();
    assert!(!body.trim().is_empty(), "the error page says something");
}

#[track_caller]
pub fn assert_frame_ancestors_none(resp: &Response) {
    let csp = header(resp, "content-security-policy").unwrap_or("");
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "CSP frame-ancestors 'none', got {csp:?}"
    );
}

/// `name=value` of every cookie a response sets.
pub fn set_cookies(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .collect()
}

/// Unique, readable JSON keys of a value's object.
pub fn keys(v: &Value) -> HashSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
