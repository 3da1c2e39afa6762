//! Fixtures for the Google upstream tests: a Scopegate pointed at a [`FakeGoogle`], the
//! "Continue with Google" browser flow, native authentication (`/connect/*`), resource API
//! calls, and raw looks into the database.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};
use scraper::{Html, Selector};
use secrecy::SecretString;
use serde_json::{json, Value};
use url::Url;

pub use scopegate::config::GoogleSettings;

use crate::fake_google::*;
use crate::helpers::*;

/// Like `e2e!`, with a fake Google running and Scopegate's Google settings pointing at it:
///
/// ```ignore
/// google_e2e! {
///     async fn a_thing_happens(app, google) { … }
///
///     #[settings(|s| s.google.token_url = closed_port_url())]
///     async fn google_is_down(app, google) { … }
/// }
/// ```
macro_rules! google_e2e {
    ($( $(#[settings($tweak:expr)])? async fn $name:ident($app:ident, $google:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    let Some(($app, $google)) = $crate::google_helpers::spawn_google_app(
                        $crate::helpers::Backend::Sqlite,
                        settings_tweak!($($tweak)?),
                    )
                    .await else { unreachable!("SQLite is always available") };
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    let Some(($app, $google)) = $crate::google_helpers::spawn_google_app(
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

// ---------------------------------------------------------------------------------------------
// Spawning
// ---------------------------------------------------------------------------------------------

/// Scopegate's Google settings, every endpoint at the fake (People included).
pub fn google_settings(google: &FakeGoogle) -> GoogleSettings {
    GoogleSettings {
        client_id: Some(SCOPEGATE_GOOGLE_CLIENT_ID.to_string()),
        client_secret: Some(SecretString::from(
            SCOPEGATE_GOOGLE_CLIENT_SECRET.to_string(),
        )),
        auth_url: google.auth_url(),
        token_url: google.token_url(),
        userinfo_url: google.userinfo_url(),
        api_url: google.api_url(),
        people_url: Some(google.api_url()),
    }
}

/// A fake Google, then a Scopegate configured for it (then `tweak`).
pub async fn spawn_google_app(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
) -> Option<(TestApp, FakeGoogle)> {
    let google = FakeGoogle::start().await;
    let app = spawn_app_with(backend, |s| {
        s.google = google_settings(&google);
        tweak(s);
    })
    .await?;
    Some((app, google))
}

// ---------------------------------------------------------------------------------------------
// "Continue with Google"
// ---------------------------------------------------------------------------------------------

/// The `href` of the "Continue with Google" link on a page, resolved.
pub fn google_link(html: &str, base: &Url) -> Option<Url> {
    let doc = Html::parse_document(html);
    let a = Selector::parse("a[href]").expect("selector");
    doc.select(&a)
        .filter_map(|e| e.value().attr("href"))
        .filter_map(|h| base.join(h).ok())
        .find(|u| u.path() == "/auth/google")
}

/// The "Ask Google again" link of a consent page.
pub fn ask_google_link(page: &ConsentPage) -> Option<Url> {
    google_link(&page.html, &page.url)
}

/// From an authorization request to the login page, then "Continue with Google": returns the
/// URL Scopegate sends the browser to at Google.
pub async fn start_google_sign_in(browser: &Browser, params: &AuthParams) -> Url {
    let resp = browser.get_authorize(params).await;
    let login = match browser.step(resp).await {
        Step::Login(url) => url,
        other => panic!("expected a redirect to the login page, got {other:?}"),
    };
    let resp = browser.get(login.as_str()).await;
    assert_eq!(resp.status(), StatusCode::OK, "the login page");
    let url = resp.url().clone();
    let body = resp.text().await.unwrap_or_default();
    let link = google_link(&body, &url)
        .unwrap_or_else(|| panic!("no \"Continue with Google\" link on {url}: {body}"));
    follow_to_google(browser, &link).await
}

/// GETs a Scopegate `/auth/google?…` link and returns where it sends the browser (Google).
pub async fn follow_to_google(browser: &Browser, link: &Url) -> Url {
    let resp = browser.get(link.as_str()).await;
    let status = resp.status();
    let to =
        location(&resp).unwrap_or_else(|| panic!("GET {link}: expected a redirect, got {status}"));
    assert!(status.is_redirection(), "GET {link}: {status}");
    to
}

/// The browser visits Google's authorization URL; the fake answers at once (as the
/// configured user decides) with a redirect back: returns that callback URL.
pub async fn google_answers(browser: &Browser, google_url: &Url) -> Url {
    let resp = browser.get(google_url.as_str()).await;
    let status = resp.status();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "the fake Google redirects back: {google_url}"
    );
    location(&resp).expect("a Location back to Scopegate")
}

/// The whole round trip to Google; returns Scopegate's answer to the callback.
pub async fn sign_in_with_google(browser: &Browser, params: &AuthParams) -> Response {
    let to_google = start_google_sign_in(browser, params).await;
    let callback = google_answers(browser, &to_google).await;
    browser.get(callback.as_str()).await
}

/// Follows Scopegate-internal redirects from `resp` to the consent page.
pub async fn follow_to_consent(browser: &Browser, mut resp: Response) -> ConsentPage {
    for _ in 0..6 {
        resp = match browser.step(resp).await {
            Step::Consent(page) => return page,
            Step::Internal(url) => browser.get(url.as_str()).await,
            other => panic!("expected the consent page, got {other:?}"),
        };
    }
    panic!("no consent page after 6 steps")
}

/// Signs in with Google from an authorization request and returns the consent page.
pub async fn google_consent_page(browser: &Browser, params: &AuthParams) -> ConsentPage {
    let resp = sign_in_with_google(browser, params).await;
    follow_to_consent(browser, resp).await
}

/// Signs in with Google, decides on the consent page, returns where the browser is sent.
pub async fn google_authorize(browser: &Browser, params: &AuthParams, decision: Decision) -> Url {
    let page = google_consent_page(browser, params).await;
    let resp = browser.decide(&page, &decision).await;
    match browser.step(resp).await {
        Step::Away(url) => url,
        other => panic!("expected a redirect to the client, got {other:?}"),
    }
}

/// The status and visible text of an HTML page.
pub async fn page_text(resp: Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let ct = header(&resp, "content-type").unwrap_or("").to_string();
    let body = resp.text().await.unwrap_or_default();
    (status, ct, visible_text(&body))
}

// ---------------------------------------------------------------------------------------------
// Native authentication
// ---------------------------------------------------------------------------------------------

/// The application's own Google OAuth client (native authentication refreshes with it).
pub const APP_GOOGLE_CLIENT_ID: &str = "acme-mail.apps.googleusercontent.com";
pub const APP_GOOGLE_CLIENT_SECRET: &str = "GOCSPX-acme-mail-app-secret";

/// `Authorization: Basic base64(<client_secret>:)`, as the Nylas SDKs send it.
pub fn nylas_basic(client_secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_secret}:")))
}

#[derive(Debug)]
pub struct JsonResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl JsonResponse {
    pub async fn read(resp: Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        JsonResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a Nylas-style error: `status`, `{"message": <non-empty>, "type": one of types}`.
    #[track_caller]
    pub fn assert_nylas_error(&self, statuses: &[u16], types: &[&str]) {
        assert!(
            statuses.contains(&self.status.as_u16()),
            "status {} not in {statuses:?}; body: {}",
            self.status,
            self.text
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a message: {}",
            self.text
        );
        let ty = self.body["type"].as_str().unwrap_or("");
        assert!(
            types.contains(&ty),
            "type {ty:?} not in {types:?}: {}",
            self.text
        );
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// POSTs JSON to a Scopegate path, with an optional `Authorization` header.
pub async fn post_json(
    app: &TestApp,
    path: &str,
    body: &Value,
    authorization: Option<&str>,
) -> JsonResponse {
    let mut req = app.api.post(app.url(path)).json(body);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    JsonResponse::read(req.send().await.expect("POST")).await
}

/// The `/connect/authorize` body for `client`, the fake's user and `refresh_token`.
pub fn connect_body(
    client: &TestClient,
    google: &FakeGoogle,
    refresh_token: &str,
    scopes: Value,
) -> Value {
    let user = google.user();
    json!({
        "client_id": client.client_id,
        "name": user.name,
        "email_address": user.email,
        "provider": "gmail",
        "settings": {
            "google_client_id": APP_GOOGLE_CLIENT_ID,
            "google_client_secret": APP_GOOGLE_CLIENT_SECRET,
            "google_refresh_token": refresh_token,
        },
        "scopes": scopes,
    })
}

/// A Google refresh token the app holds, granted identity + `google_scopes`.
pub fn app_refresh_token(google: &FakeGoogle, google_scopes: &[&str]) -> String {
    let mut scopes: Vec<&str> = IDENTITY.to_vec();
    scopes.extend_from_slice(google_scopes);
    google.issue_refresh_token(APP_GOOGLE_CLIENT_ID, APP_GOOGLE_CLIENT_SECRET, &scopes)
}

/// What native authentication produced.
#[derive(Clone, Debug)]
pub struct NativeAccount {
    pub client: TestClient,
    /// The Scopegate access token.
    pub access_token: String,
    /// The `/connect/token` answer (the account object and the token).
    pub body: Value,
    /// The application's Google refresh token.
    pub google_refresh_token: String,
}

impl NativeAccount {
    pub fn account_id(&self) -> &str {
        self.body["account_id"].as_str().expect("account_id")
    }
}

/// `/connect/authorize` + `/connect/token` for `client`, asking `scopes` (comma-separated, as
/// the SDKs send them) with a refresh token granted `google_scopes`.
pub async fn native_connect(
    app: &TestApp,
    google: &FakeGoogle,
    client: &TestClient,
    scopes: &[&str],
    google_scopes: &[&str],
) -> NativeAccount {
    let refresh = app_refresh_token(google, google_scopes);
    let resp = post_json(
        app,
        "/connect/authorize",
        &connect_body(client, google, &refresh, json!(scopes.join(","))),
        None,
    )
    .await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "/connect/authorize: {}",
        resp.text
    );
    let code = resp.body["code"].as_str().expect("a code").to_string();
    let resp = post_json(
        app,
        "/connect/token",
        &json!({"client_id": client.client_id, "client_secret": client.secret(), "code": code}),
        None,
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK, "/connect/token: {}", resp.text);
    NativeAccount {
        client: client.clone(),
        access_token: resp.body["access_token"]
            .as_str()
            .expect("an access_token")
            .to_string(),
        body: resp.body,
        google_refresh_token: refresh,
    }
}

/// Native authentication for Scopegate `scopes`, the Google grant being exactly their
/// mapped Google scopes (+ identity).
pub async fn native_account(app: &TestApp, google: &FakeGoogle, scopes: &[&str]) -> NativeAccount {
    let client = app.confidential_client().await;
    let google_scopes: Vec<&str> = scopes.iter().filter_map(|s| google_scope_for(s)).collect();
    native_connect(app, google, &client, scopes, &google_scopes).await
}

/// A Scopegate token for the same account with other scopes (another native authorization).
pub async fn another_token(
    app: &TestApp,
    google: &FakeGoogle,
    client: &TestClient,
    scopes: &[&str],
) -> String {
    let google_scopes: Vec<&str> = ALL_RESOURCE_SCOPES
        .iter()
        .filter_map(|s| google_scope_for(s))
        .collect();
    native_connect(app, google, client, scopes, &google_scopes)
        .await
        .access_token
}

/// The nine resource scopes, catalogue order.
pub const ALL_RESOURCE_SCOPES: &[&str] = &[
    "email.modify",
    "email.read_only",
    "email.send",
    "email.folders_and_labels",
    "email.drafts",
    "calendar",
    "calendar.read_only",
    "contacts",
    "contacts.read_only",
];

// ---------------------------------------------------------------------------------------------
// The resource API
// ---------------------------------------------------------------------------------------------

/// One resource API call with a bearer token.
pub async fn api_call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> JsonResponse {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.api.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    JsonResponse::read(req.send().await.expect("API call")).await
}

/// The refusal body DESIGN.md fixes, scopes in catalogue order.
pub fn refusal_message(token_scopes: &[&str], any_of: &[&str]) -> String {
    let order = |v: &[&str]| -> String {
        let mut sorted: Vec<&str> = v.to_vec();
        sorted.sort_by_key(|s| CATALOGUE.iter().position(|c| c == s).unwrap_or(usize::MAX));
        format!(
            "[{}]",
            sorted
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "You do not have access to the required scopes. You provided a token which has the following scopes {}. You would need a token with at least one of the following scopes: {}",
        order(token_scopes),
        order(any_of)
    )
}

/// Asserts Scopegate's own 403 (not Google's): exact body and `WWW-Authenticate`.
#[track_caller]
pub fn assert_scope_refusal(resp: &JsonResponse, token_scopes: &[&str], any_of: &[&str]) {
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "{}", resp.text);
    assert_eq!(
        resp.body,
        json!({"message": refusal_message(token_scopes, any_of), "type": "api_error"}),
        "the refusal body"
    );
    let www = resp.header("www-authenticate").unwrap_or("");
    assert!(
        www.starts_with("Bearer") && www.contains("error=\"insufficient_scope\""),
        "WWW-Authenticate: {www:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The database, read directly
// ---------------------------------------------------------------------------------------------

#[derive(diesel::QueryableByName)]
struct TextValue {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    v: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    c: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs `$body` with `$conn` a fresh connection to the app's database (SQLite or
/// PostgreSQL; the body is compiled for both) and `$sqlite` telling which.
macro_rules! with_db {
    ($app:expr, |$conn:ident, $sqlite:ident| $body:expr) => {{
        let url: String = $app.settings.database_url.clone();
        tokio::task::spawn_blocking(move || {
            use diesel::{Connection as _, RunQueryDsl as _};
            if let Some(path) = url.strip_prefix("sqlite://") {
                let mut c = diesel::SqliteConnection::establish(path).expect("open SQLite");
                let $conn = &mut c;
                let $sqlite = true;
                $body
            } else {
                let mut c = diesel::PgConnection::establish(&url).expect("open PostgreSQL");
                let $conn = &mut c;
                let $sqlite = false;
                $body
            }
        })
        .await
        .expect("database task")
    }};
}

/// Rows in `table`.
pub async fn count_rows(app: &TestApp, table: &str) -> i64 {
    let q = format!("SELECT COUNT(*) AS n FROM {table}");
    with_db!(app, |conn, _sqlite| {
        diesel::sql_query(q.as_str())
            .load::<Count>(conn)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .first()
            .map(|c| c.n)
            .unwrap_or(0)
    })
}

/// Every value of every column of every table, as text.
pub async fn database_text(app: &TestApp) -> Vec<String> {
    with_db!(app, |conn, sqlite| {
        let list = if sqlite {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table'"
        } else {
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema()"
        };
        let columns = diesel::sql_query(list)
            .load::<Column>(conn)
            .expect("list columns");
        assert!(!columns.is_empty(), "the database has columns");
        let mut out = Vec::new();
        for col in columns {
            let q = format!(
                "SELECT CAST(\"{}\" AS TEXT) AS v FROM \"{}\"",
                col.c.replace('"', "\"\""),
                col.t.replace('"', "\"\"")
            );
            let rows = diesel::sql_query(q.as_str())
                .load::<TextValue>(conn)
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            out.extend(rows.into_iter().filter_map(|r| r.v));
        }
        out
    })
}

/// The raw bytes of the SQLite database and its WAL (empty on PostgreSQL).
pub fn sqlite_bytes(app: &TestApp) -> Vec<u8> {
    let Some(path) = app.settings.database_url.strip_prefix("sqlite://") else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
            bytes.extend(b);
        }
    }
    bytes
}

pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `(user_id, needs_reauth, granted_scopes)` of every Google link.
pub async fn google_links(app: &TestApp) -> Vec<(String, bool, String)> {
    #[derive(diesel::QueryableByName)]
    struct Link {
        #[diesel(sql_type = diesel::sql_types::Text)]
        user_id: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        needs_reauth: bool,
        #[diesel(sql_type = diesel::sql_types::Text)]
        granted_scopes: String,
    }
    with_db!(app, |conn, _sqlite| {
        diesel::sql_query("SELECT user_id, needs_reauth, granted_scopes FROM google_accounts")
            .load::<Link>(conn)
            .expect("google_accounts")
            .into_iter()
            .map(|l| (l.user_id, l.needs_reauth, l.granted_scopes))
            .collect()
    })
}

/// A password user with a chosen email.
pub async fn create_user_with_email(app: &TestApp, email: &str) -> TestUser {
    let store = app.store.clone();
    let (email, name, password) = (
        email.to_string(),
        "Password Person".to_string(),
        format!("correct horse {} battery", random_string(8)),
    );
    let id = {
        let (e, n, p) = (email.clone(), name.clone(), password.clone());
        tokio::task::spawn_blocking(move || scopegate::ops::add_user(&store, &e, &n, &p, false))
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

/// `GET /account` with `token`: the account object.
pub async fn account(app: &TestApp, token: &str) -> Value {
    let resp = api_call(app, "GET", "/account", token, None).await;
    assert_eq!(resp.status, StatusCode::OK, "GET /account: {}", resp.text);
    resp.body
}

/// `url` with query parameter `key` replaced by `value`.
pub fn with_param(url: &Url, key: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

/// Lifetime of the Google access tokens issued while a test sets up, so that they have
/// expired — at Google and by Scopegate's clock — once [`let_google_tokens_expire`] returns.
pub const SHORT_TTL_SECS: i64 = 2;

/// Waits until every Google access token issued with [`SHORT_TTL_SECS`] has expired; tokens
/// issued from now on last an hour.
pub async fn let_google_tokens_expire(google: &FakeGoogle) {
    google.set_access_token_ttl(3599);
    tokio::time::sleep(std::time::Duration::from_millis(
        SHORT_TTL_SECS as u64 * 1000 + 200,
    ))
    .await;
}
