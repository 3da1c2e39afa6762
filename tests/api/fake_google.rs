//! A local fake Google for the end-to-end suite: the OAuth endpoints (authorization, token,
//! OpenID userinfo, revocation) and the Gmail, Calendar and People calls Scopegate makes, with
//! Google's own paths and JSON shapes.
//!
//! Every API call checks its `Authorization: Bearer` token the way Google does — 401 for an
//! unknown or expired token, 403 `PERMISSION_DENIED` when the token's granted scopes hold none
//! of the scopes the call accepts — and is recorded, so a test can prove that Scopegate holds
//! no more Google access than the user granted and made no call it should not have made.
//!
//! A test configures the fake (what the user grants at the consent screen, token lifetimes,
//! failures) and inspects what it saw through [`FakeGoogle`]; the state sits behind one mutex
//! that is never held across an await.
#![allow(dead_code)]
// Handlers return Google's error response as the `Err` of their small parsing helpers.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------------------------------------
// Google's names
// ---------------------------------------------------------------------------------------------

/// Prefix of every Google API scope.
pub const SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/";
pub const OPENID: &str = "openid";
pub const USERINFO_EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
pub const USERINFO_PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";
pub const GMAIL_MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
pub const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
pub const GMAIL_LABELS: &str = "https://www.googleapis.com/auth/gmail.labels";
pub const GMAIL_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
pub const GMAIL_METADATA: &str = "https://www.googleapis.com/auth/gmail.metadata";
/// Full mailbox access (permanent delete): Scopegate must never ask for it.
pub const MAIL_GOOGLE_COM: &str = "https://mail.google.com/";
pub const CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
pub const CALENDAR_READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";
pub const CALENDAR_EVENTS: &str = "https://www.googleapis.com/auth/calendar.events";
pub const CONTACTS: &str = "https://www.googleapis.com/auth/contacts";
pub const CONTACTS_READONLY: &str = "https://www.googleapis.com/auth/contacts.readonly";

/// The identity scopes Scopegate always asks for.
pub const IDENTITY: &[&str] = &[OPENID, USERINFO_EMAIL, USERINFO_PROFILE];

/// The Google scope a Scopegate scope maps to (DESIGN.md's catalogue), written out here on
/// purpose rather than taken from `src/`, so that the tests check the server's table.
pub fn google_scope_for(scopegate_scope: &str) -> Option<&'static str> {
    Some(match scopegate_scope {
        "email.modify" => GMAIL_MODIFY,
        "email.read_only" => GMAIL_READONLY,
        "email.send" => GMAIL_SEND,
        "email.folders_and_labels" => GMAIL_LABELS,
        "email.drafts" => GMAIL_COMPOSE,
        "calendar" => CALENDAR,
        "calendar.read_only" => CALENDAR_READONLY,
        "contacts" => CONTACTS,
        "contacts.read_only" => CONTACTS_READONLY,
        _ => return None,
    })
}

/// Google scopes for a list of Scopegate scopes (identity not included).
pub fn google_scopes_for(scopegate_scopes: &[&str]) -> BTreeSet<String> {
    scopegate_scopes
        .iter()
        .filter_map(|s| google_scope_for(s))
        .map(str::to_string)
        .collect()
}

/// Identity + the Google scopes mapped from `scopegate_scopes`: what Scopegate must ask for.
pub fn expected_google_request(scopegate_scopes: &[&str]) -> BTreeSet<String> {
    let mut set = google_scopes_for(scopegate_scopes);
    set.extend(IDENTITY.iter().map(|s| s.to_string()));
    set
}

/// Every scope this fake knows; anything else at the authorization endpoint is `invalid_scope`.
const KNOWN_SCOPES: &[&str] = &[
    OPENID,
    "email",
    "profile",
    USERINFO_EMAIL,
    USERINFO_PROFILE,
    GMAIL_MODIFY,
    GMAIL_READONLY,
    GMAIL_SEND,
    GMAIL_LABELS,
    GMAIL_COMPOSE,
    GMAIL_METADATA,
    MAIL_GOOGLE_COM,
    CALENDAR,
    CALENDAR_READONLY,
    CALENDAR_EVENTS,
    CONTACTS,
    CONTACTS_READONLY,
];

fn is_identity(scope: &str) -> bool {
    matches!(
        scope,
        OPENID | "email" | "profile" | USERINFO_EMAIL | USERINFO_PROFILE
    )
}

/// Google answers the short identity names with their long forms.
fn normalize_scope(scope: &str) -> String {
    match scope {
        "email" => USERINFO_EMAIL.to_string(),
        "profile" => USERINFO_PROFILE.to_string(),
        other => other.to_string(),
    }
}

/// The Google OAuth client Scopegate itself is registered as (the "Continue with Google"
/// button): what the tests put in `google_client_id` / `google_client_secret`.
pub const SCOPEGATE_GOOGLE_CLIENT_ID: &str = "scopegate-e2e.apps.googleusercontent.com";
pub const SCOPEGATE_GOOGLE_CLIENT_SECRET: &str = "GOCSPX-scopegate-e2e-secret";

// ---------------------------------------------------------------------------------------------
// What a test configures and inspects
// ---------------------------------------------------------------------------------------------

/// What the user does on Google's consent screen at the next authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consent {
    /// Grants every requested scope.
    All,
    /// Grants the identity scopes and, of the other requested scopes, only these.
    Only(Vec<String>),
    /// Presses "Cancel": `error=access_denied`.
    Deny,
}

impl Consent {
    pub fn only(scopes: &[&str]) -> Self {
        Consent::Only(scopes.iter().map(|s| s.to_string()).collect())
    }
}

/// How a refresh at the token endpoint fails, when it should.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshFailure {
    /// 400 `invalid_grant` "Token has been expired or revoked." (the user revoked access).
    InvalidGrant,
    /// 500, as during an outage.
    ServerError,
}

/// The Google account that signs in.
#[derive(Clone, Debug)]
pub struct GoogleUser {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
}

impl Default for GoogleUser {
    fn default() -> Self {
        GoogleUser {
            sub: "104857600000000000042".to_string(),
            email: "ada.lovelace@gmail.test".to_string(),
            email_verified: true,
            name: "Ada Lovelace".to_string(),
        }
    }
}

/// One request to the authorization endpoint, as received.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub query: Vec<(String, String)>,
}

impl AuthRequest {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The requested scopes, as sent (space-separated in `scope`).
    pub fn scopes(&self) -> BTreeSet<String> {
        self.get("scope")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// One request to the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub grant_type: String,
    /// The authenticated client, when authentication succeeded.
    pub client_id: Option<String>,
    /// How the client authenticated: "basic", "post" or "none".
    pub client_auth: &'static str,
    pub status: u16,
    pub form: Vec<(String, String)>,
}

/// One call to a Google API (Gmail, Calendar, People, userinfo).
#[derive(Clone, Debug)]
pub struct ApiCall {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The presented Google access token, if any.
    pub token: Option<String>,
    /// The scopes that token was granted (empty when unknown).
    pub token_scopes: BTreeSet<String>,
    /// The scopes of which the call needs at least one.
    pub needs_any_of: Vec<String>,
    pub status: u16,
    pub body: Option<Value>,
}

impl ApiCall {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// A message that Scopegate sent (messages.send, drafts.send), decoded.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// The RFC 2822 text as decoded from `raw`.
    pub mime: String,
    pub headers: Vec<(String, String)>,
    /// The text body (first text/plain part, else text/html), transfer-decoded.
    pub body: String,
    pub thread_id: Option<String>,
    /// The id the fake gave the sent message.
    pub id: String,
}

impl SentMessage {
    /// A header's value (case-insensitive name), RFC 2047 encoded words decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A refresh token the fake holds.
#[derive(Clone, Debug)]
pub struct RefreshGrant {
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
struct AccessGrant {
    scopes: BTreeSet<String>,
    expires_at: i64,
    revoked: bool,
    /// The refresh token this access token was refreshed from, if any.
    from_refresh: Option<String>,
}

#[derive(Clone, Debug)]
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scopes: BTreeSet<String>,
    nonce: Option<String>,
    used: bool,
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: String,
    pub filename: String,
    pub mime_type: String,
    pub data: Vec<u8>,
}

/// A Gmail message in the fake mailbox.
#[derive(Clone, Debug)]
pub struct GmailMessage {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    /// Seconds since the epoch.
    pub date: i64,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub message_id_header: String,
}

impl GmailMessage {
    fn snippet(&self) -> String {
        self.body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(100)
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct GmailDraft {
    pub id: String,
    pub message: GmailMessage,
}

/// Everything the fake knows. Tests reach it through [`FakeGoogle::with`].
#[derive(Debug)]
pub struct State {
    pub base_url: String,
    // --- configuration ---
    pub consent: Consent,
    pub user: GoogleUser,
    /// Lifetime of the access tokens issued from now on (`expires_in`); 0 issues tokens that
    /// are already expired.
    pub access_token_ttl_secs: i64,
    pub refresh_failure: Option<RefreshFailure>,
    /// How long a refresh takes (lets concurrent refreshes overlap).
    pub refresh_delay: Duration,
    /// Registered OAuth clients: id → secret.
    pub clients: HashMap<String, String>,
    /// Puts this `nonce` in ID tokens instead of the one the request asked for.
    pub id_token_nonce_override: Option<String>,
    // --- records ---
    pub auth_requests: Vec<AuthRequest>,
    pub token_requests: Vec<TokenRequest>,
    pub api_calls: Vec<ApiCall>,
    pub sent: Vec<SentMessage>,
    pub revocations: Vec<String>,
    /// Every access token and refresh token ever issued, in order.
    pub issued_tokens: Vec<String>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    // --- internal ---
    codes: HashMap<String, PendingCode>,
    access_tokens: HashMap<String, AccessGrant>,
    /// (client_id, sub) → scopes granted earlier, for `include_granted_scopes=true`.
    prior_grants: HashMap<(String, String), BTreeSet<String>>,
    next_id: u64,
    // --- data ---
    pub messages: Vec<GmailMessage>,
    pub drafts: Vec<GmailDraft>,
    pub labels: Vec<Value>,
    pub calendars: Vec<Value>,
    /// (calendar id, event).
    pub events: Vec<(String, Value)>,
    pub contacts: Vec<Value>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a valid timestamp")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn rfc2822(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a valid timestamp")
        .to_rfc2822()
}

/// Seed data ids, for assertions.
pub mod seed {
    pub const THREAD_ID: &str = "18c0ffee00000001";
    pub const MESSAGE_1: &str = "18c0ffee00000001";
    pub const MESSAGE_2: &str = "18c0ffee00000002";
    pub const ATTACHMENT_ID: &str = "ANGjdJ8fakeattachment0001";
    pub const ATTACHMENT_DATA: &[u8] = b"Agenda: 1. scopes 2. tokens 3. lunch\n";
    pub const SUBJECT: &str = "Lunch on Thursday?";
    pub const FROM_NAME: &str = "Bob Babbage";
    pub const FROM_EMAIL: &str = "bob@example.com";
    pub const USER_LABEL_ID: &str = "Label_1";
    pub const USER_LABEL_NAME: &str = "Receipts";
    pub const CALENDAR_ID_SECONDARY: &str = "team@group.calendar.google.test";
    pub const EVENT_ID: &str = "evdesignreview0001";
    pub const EVENT_TITLE: &str = "Design review";
    pub const CONTACT_ID: &str = "c1000000000000000001";
    pub const CONTACT_RESOURCE: &str = "people/c1000000000000000001";
    pub const CONTACT_NAME: &str = "Grace Hopper";
    pub const CONTACT_EMAIL: &str = "grace@example.com";
}

impl State {
    fn seeded(base_url: String) -> State {
        let user = GoogleUser::default();
        let mut clients = HashMap::new();
        clients.insert(
            SCOPEGATE_GOOGLE_CLIENT_ID.to_string(),
            SCOPEGATE_GOOGLE_CLIENT_SECRET.to_string(),
        );
        let mut s = State {
            base_url,
            consent: Consent::All,
            user,
            access_token_ttl_secs: 3599,
            refresh_failure: None,
            refresh_delay: Duration::ZERO,
            clients,
            id_token_nonce_override: None,
            auth_requests: Vec::new(),
            token_requests: Vec::new(),
            api_calls: Vec::new(),
            sent: Vec::new(),
            revocations: Vec::new(),
            issued_tokens: Vec::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            prior_grants: HashMap::new(),
            next_id: 100,
            messages: Vec::new(),
            drafts: Vec::new(),
            labels: Vec::new(),
            calendars: Vec::new(),
            events: Vec::new(),
            contacts: Vec::new(),
        };
        s.seed();
        s
    }

    fn seed(&mut self) {
        let me = format!("{} <{}>", self.user.name, self.user.email);
        let bob = format!("{} <{}>", seed::FROM_NAME, seed::FROM_EMAIL);
        let t0 = 1_735_725_600; // 2025-01-01T10:00:00Z
        self.messages = vec![
            GmailMessage {
                id: seed::MESSAGE_1.to_string(),
                thread_id: seed::THREAD_ID.to_string(),
                label_ids: vec!["INBOX".into(), "UNREAD".into(), "IMPORTANT".into()],
                from: bob.clone(),
                to: me.clone(),
                cc: String::new(),
                subject: seed::SUBJECT.to_string(),
                date: t0,
                body: "Hi Ada, are we still on for lunch on Thursday? Agenda attached.\r\n-- Bob"
                    .to_string(),
                attachments: vec![Attachment {
                    id: seed::ATTACHMENT_ID.to_string(),
                    filename: "agenda.txt".to_string(),
                    mime_type: "text/plain".to_string(),
                    data: seed::ATTACHMENT_DATA.to_vec(),
                }],
                message_id_header: "<lunch-1@example.com>".to_string(),
            },
            GmailMessage {
                id: seed::MESSAGE_2.to_string(),
                thread_id: seed::THREAD_ID.to_string(),
                label_ids: vec!["SENT".into()],
                from: me,
                to: bob,
                cc: String::new(),
                subject: format!("Re: {}", seed::SUBJECT),
                date: t0 + 3600,
                body: "Yes, noon at the usual place.".to_string(),
                attachments: Vec::new(),
                message_id_header: "<lunch-2@gmail.test>".to_string(),
            },
        ];
        let system = |id: &str| json!({"id": id, "name": id, "type": "system"});
        self.labels = vec![
            system("INBOX"),
            system("SENT"),
            system("TRASH"),
            system("DRAFT"),
            system("SPAM"),
            system("UNREAD"),
            system("STARRED"),
            system("IMPORTANT"),
            json!({
                "id": seed::USER_LABEL_ID,
                "name": seed::USER_LABEL_NAME,
                "type": "user",
                "messageListVisibility": "show",
                "labelListVisibility": "labelShow",
            }),
        ];
        self.calendars = vec![
            json!({
                "kind": "calendar#calendarListEntry",
                "etag": "\"1735725600000000\"",
                "id": self.user.email,
                "summary": self.user.email,
                "timeZone": "Europe/London",
                "accessRole": "owner",
                "primary": true,
                "selected": true,
            }),
            json!({
                "kind": "calendar#calendarListEntry",
                "etag": "\"1735725600000001\"",
                "id": seed::CALENDAR_ID_SECONDARY,
                "summary": "Team",
                "description": "The team's shared calendar",
                "timeZone": "Europe/London",
                "accessRole": "owner",
            }),
        ];
        let primary = self.user.email.clone();
        let event = self.complete_event(
            &primary,
            seed::EVENT_ID,
            json!({
                "summary": seed::EVENT_TITLE,
                "description": "Walk through the Google upstream",
                "location": "Room 4",
                "start": {"dateTime": "2030-05-01T10:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2030-05-01T11:00:00Z", "timeZone": "UTC"},
                "attendees": [{"email": seed::FROM_EMAIL, "responseStatus": "accepted"}],
            }),
        );
        self.events = vec![(primary, event)];
        self.contacts = vec![json!({
            "resourceName": seed::CONTACT_RESOURCE,
            "etag": "%EgUBAgMEBRoEAQIDBA==",
            "names": [{"displayName": seed::CONTACT_NAME, "givenName": "Grace",
                       "familyName": "Hopper", "metadata": {"primary": true}}],
            "emailAddresses": [{"value": seed::CONTACT_EMAIL, "type": "work",
                                "metadata": {"primary": true}}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
            "organizations": [{"name": "US Navy", "title": "Rear Admiral"}],
        })];
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:016x}", 0x18d0_0000_0000_0000_u64 + self.next_id)
    }

    fn complete_event(&self, calendar_id: &str, id: &str, body: Value) -> Value {
        let mut ev = match body {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let t = rfc3339(now());
        ev.insert("kind".into(), json!("calendar#event"));
        ev.insert("id".into(), json!(id));
        ev.insert("etag".into(), json!(format!("\"{}\"", random(12))));
        ev.entry("status").or_insert(json!("confirmed"));
        ev.insert(
            "htmlLink".into(),
            json!(format!("https://www.google.test/calendar/event?eid={id}")),
        );
        ev.entry("created").or_insert(json!(t.clone()));
        ev.insert("updated".into(), json!(t));
        ev.insert(
            "organizer".into(),
            json!({"email": calendar_id, "self": true}),
        );
        ev.entry("creator")
            .or_insert(json!({"email": self.user.email, "self": true}));
        ev.insert("iCalUID".into(), json!(format!("{id}@google.test")));
        ev.entry("sequence").or_insert(json!(0));
        ev.entry("reminders").or_insert(json!({"useDefault": true}));
        ev.entry("eventType").or_insert(json!("default"));
        Value::Object(ev)
    }

    /// The calendar id `primary` stands for.
    fn resolve_calendar(&self, id: &str) -> Option<String> {
        if id == "primary" {
            return Some(self.user.email.clone());
        }
        self.calendars
            .iter()
            .any(|c| c["id"].as_str() == Some(id))
            .then(|| id.to_string())
    }

    fn issue_access_token(
        &mut self,
        scopes: &BTreeSet<String>,
        from_refresh: Option<&str>,
    ) -> String {
        let token = format!("ya29.fake-{}", random(40));
        self.access_tokens.insert(
            token.clone(),
            AccessGrant {
                scopes: scopes.clone(),
                expires_at: now() + self.access_token_ttl_secs,
                revoked: false,
                from_refresh: from_refresh.map(str::to_string),
            },
        );
        self.issued_tokens.push(token.clone());
        token
    }

    fn issue_refresh_token_for(&mut self, client_id: &str, scopes: &BTreeSet<String>) -> String {
        let token = format!("1//fake-{}", random(48));
        self.refresh_tokens.insert(
            token.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                scopes: scopes.clone(),
                revoked: false,
            },
        );
        self.issued_tokens.push(token.clone());
        token
    }

    fn id_token(&self, client_id: &str, nonce: Option<&str>) -> String {
        let header = json!({"alg": "RS256", "kid": "fake-google-key", "typ": "JWT"});
        let mut claims = json!({
            "iss": "https://accounts.google.com",
            "azp": client_id,
            "aud": client_id,
            "sub": self.user.sub,
            "email": self.user.email,
            "email_verified": self.user.email_verified,
            "name": self.user.name,
            "iat": now(),
            "exp": now() + 3600,
        });
        if let Some(n) = self.id_token_nonce_override.as_deref().or(nonce) {
            claims["nonce"] = json!(n);
        }
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.ZmFrZS1zaWduYXR1cmU", b64(&header), b64(&claims))
    }
}

// ---------------------------------------------------------------------------------------------
// The handle a test holds
// ---------------------------------------------------------------------------------------------

type Shared = Arc<Mutex<State>>;

/// A running fake Google; stops when dropped.
pub struct FakeGoogle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub port: u16,
    state: Shared,
    handle: ServerHandle,
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Google");
        let port = listener.local_addr().expect("local addr").port();
        let base_url = format!("http://127.0.0.1:{port}");
        let state: Shared = Arc::new(Mutex::new(State::seeded(base_url.clone())));
        let data = web::Data::from(Arc::new(state.clone()));
        let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .expect("listen")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeGoogle {
            base_url,
            port,
            state,
            handle,
        }
    }

    pub fn auth_url(&self) -> String {
        format!("{}/o/oauth2/v2/auth", self.base_url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    pub fn userinfo_url(&self) -> String {
        format!("{}/v1/userinfo", self.base_url)
    }

    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.base_url)
    }

    /// Gmail, Calendar and People all live under this base.
    pub fn api_url(&self) -> String {
        self.base_url.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state (configuration, records, data).
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.lock())
    }

    pub fn set_consent(&self, consent: Consent) {
        self.lock().consent = consent;
    }

    pub fn set_user(&self, user: GoogleUser) {
        self.lock().user = user;
    }

    pub fn user(&self) -> GoogleUser {
        self.lock().user.clone()
    }

    pub fn set_access_token_ttl(&self, secs: i64) {
        self.lock().access_token_ttl_secs = secs;
    }

    pub fn set_refresh_failure(&self, failure: Option<RefreshFailure>) {
        self.lock().refresh_failure = failure;
    }

    pub fn set_refresh_delay(&self, delay: Duration) {
        self.lock().refresh_delay = delay;
    }

    /// Registers a Google OAuth client (an application's own, for native authentication).
    pub fn register_client(&self, client_id: &str, client_secret: &str) {
        self.lock()
            .clients
            .insert(client_id.to_string(), client_secret.to_string());
    }

    /// A refresh token the user granted `scopes` to (Google names), as an application that
    /// ran Google's flow itself would hold; registers the client too.
    pub fn issue_refresh_token(
        &self,
        client_id: &str,
        client_secret: &str,
        scopes: &[&str],
    ) -> String {
        let mut s = self.lock();
        s.clients
            .insert(client_id.to_string(), client_secret.to_string());
        let scopes = scopes.iter().map(|x| x.to_string()).collect();
        s.issue_refresh_token_for(client_id, &scopes)
    }

    /// The user revokes the application's access at Google.
    pub fn revoke_refresh_token(&self, token: &str) {
        if let Some(g) = self.lock().refresh_tokens.get_mut(token) {
            g.revoked = true;
        }
    }

    /// The user changes, at Google, what the refresh token grants (e.g. removes a permission):
    /// access tokens refreshed from now on carry `scopes`.
    pub fn set_refresh_token_scopes(&self, token: &str, scopes: &[&str]) {
        if let Some(g) = self.lock().refresh_tokens.get_mut(token) {
            g.scopes = scopes.iter().map(|s| s.to_string()).collect();
        }
    }

    /// Makes every issued access token expired, as if time had passed.
    pub fn expire_access_tokens(&self) {
        let mut s = self.lock();
        for g in s.access_tokens.values_mut() {
            g.expires_at = now() - 1;
        }
    }

    pub fn auth_requests(&self) -> Vec<AuthRequest> {
        self.lock().auth_requests.clone()
    }

    pub fn last_auth_request(&self) -> AuthRequest {
        self.lock()
            .auth_requests
            .last()
            .cloned()
            .expect("the fake Google saw an authorization request")
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().token_requests.clone()
    }

    /// Refresh requests received (successful or not).
    pub fn refresh_count(&self) -> usize {
        self.lock()
            .token_requests
            .iter()
            .filter(|r| r.grant_type == "refresh_token")
            .count()
    }

    pub fn code_exchange_count(&self) -> usize {
        self.lock()
            .token_requests
            .iter()
            .filter(|r| r.grant_type == "authorization_code")
            .count()
    }

    pub fn api_calls(&self) -> Vec<ApiCall> {
        self.lock().api_calls.clone()
    }

    /// Calls to the resource APIs (userinfo left out).
    pub fn resource_calls(&self) -> Vec<ApiCall> {
        self.lock()
            .api_calls
            .iter()
            .filter(|c| c.path != "/v1/userinfo")
            .cloned()
            .collect()
    }

    pub fn clear_api_calls(&self) {
        self.lock().api_calls.clear();
    }

    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Every access and refresh token the fake issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued_tokens.clone()
    }

    /// The scopes an access token was granted, if the fake issued it.
    pub fn scopes_of(&self, access_token: &str) -> Option<BTreeSet<String>> {
        self.lock()
            .access_tokens
            .get(access_token)
            .map(|g| g.scopes.clone())
    }

    /// The refresh token an access token was refreshed from (`None` for one from a code).
    pub fn refreshed_from(&self, access_token: &str) -> Option<String> {
        self.lock()
            .access_tokens
            .get(access_token)
            .and_then(|g| g.from_refresh.clone())
    }

    pub fn message(&self, id: &str) -> Option<GmailMessage> {
        self.lock().messages.iter().find(|m| m.id == id).cloned()
    }
}

/// An address where nothing listens (a network failure at Google).
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/o/oauth2/v2/auth", web::get().to(authorize))
        .route("/token", web::post().to(token))
        .route("/revoke", web::post().to(revoke))
        .route("/v1/userinfo", web::get().to(userinfo))
        .route("/oauth2/v3/userinfo", web::get().to(userinfo))
        // Gmail
        .route(
            "/gmail/v1/users/me/messages",
            web::get().to(gmail_messages_list),
        )
        .route(
            "/gmail/v1/users/me/messages/send",
            web::post().to(gmail_send),
        )
        .route(
            "/upload/gmail/v1/users/me/messages/send",
            web::post().to(gmail_send_upload),
        )
        .route(
            "/gmail/v1/users/me/messages/{id}",
            web::get().to(gmail_message_get),
        )
        .route(
            "/gmail/v1/users/me/messages/{id}",
            web::delete().to(gmail_message_delete),
        )
        .route(
            "/gmail/v1/users/me/messages/{id}/modify",
            web::post().to(gmail_message_modify),
        )
        .route(
            "/gmail/v1/users/me/messages/{id}/trash",
            web::post().to(gmail_message_trash),
        )
        .route(
            "/gmail/v1/users/me/messages/{id}/untrash",
            web::post().to(gmail_message_untrash),
        )
        .route(
            "/gmail/v1/users/me/messages/{mid}/attachments/{aid}",
            web::get().to(gmail_attachment),
        )
        .route(
            "/gmail/v1/users/me/threads",
            web::get().to(gmail_threads_list),
        )
        .route(
            "/gmail/v1/users/me/threads/{id}",
            web::get().to(gmail_thread_get),
        )
        .route(
            "/gmail/v1/users/me/threads/{id}/modify",
            web::post().to(gmail_thread_modify),
        )
        .route(
            "/gmail/v1/users/me/threads/{id}/trash",
            web::post().to(gmail_thread_trash),
        )
        .route(
            "/gmail/v1/users/me/drafts",
            web::get().to(gmail_drafts_list),
        )
        .route(
            "/gmail/v1/users/me/drafts",
            web::post().to(gmail_draft_create),
        )
        .route(
            "/gmail/v1/users/me/drafts/send",
            web::post().to(gmail_draft_send),
        )
        .route(
            "/gmail/v1/users/me/drafts/{id}",
            web::get().to(gmail_draft_get),
        )
        .route(
            "/gmail/v1/users/me/drafts/{id}",
            web::put().to(gmail_draft_update),
        )
        .route(
            "/gmail/v1/users/me/drafts/{id}",
            web::delete().to(gmail_draft_delete),
        )
        .route(
            "/gmail/v1/users/me/labels",
            web::get().to(gmail_labels_list),
        )
        .route(
            "/gmail/v1/users/me/labels",
            web::post().to(gmail_label_create),
        )
        .route(
            "/gmail/v1/users/me/labels/{id}",
            web::get().to(gmail_label_get),
        )
        .route(
            "/gmail/v1/users/me/labels/{id}",
            web::put().to(gmail_label_update),
        )
        .route(
            "/gmail/v1/users/me/labels/{id}",
            web::patch().to(gmail_label_update),
        )
        .route(
            "/gmail/v1/users/me/labels/{id}",
            web::delete().to(gmail_label_delete),
        )
        // Calendar
        .route(
            "/calendar/v3/users/me/calendarList",
            web::get().to(calendar_list),
        )
        .route(
            "/calendar/v3/calendars/{cid}/events",
            web::get().to(events_list),
        )
        .route(
            "/calendar/v3/calendars/{cid}/events",
            web::post().to(event_insert),
        )
        .route(
            "/calendar/v3/calendars/{cid}/events/{eid}",
            web::get().to(event_get),
        )
        .route(
            "/calendar/v3/calendars/{cid}/events/{eid}",
            web::put().to(event_update),
        )
        .route(
            "/calendar/v3/calendars/{cid}/events/{eid}",
            web::patch().to(event_update),
        )
        .route(
            "/calendar/v3/calendars/{cid}/events/{eid}",
            web::delete().to(event_delete),
        )
        // People
        .route(
            "/v1/people/me/connections",
            web::get().to(people_connections),
        )
        .route("/v1/people:createContact", web::post().to(people_create))
        .route("/v1/people/{tail:.*}", web::to(people_tail))
        .default_service(web::to(not_found_route));
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------------

fn lock(st: &web::Data<Shared>) -> MutexGuard<'_, State> {
    st.lock().unwrap_or_else(|p| p.into_inner())
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn path_param(req: &HttpRequest, name: &str) -> String {
    let raw = req.match_info().get(name).unwrap_or("");
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Google's API error body.
fn google_error(code: u16, status: &str, message: &str) -> HttpResponse {
    let reason = match code {
        400 => "badRequest",
        401 => "authError",
        403 => "insufficientPermissions",
        404 => "notFound",
        409 => "duplicate",
        410 => "deleted",
        _ => "backendError",
    };
    HttpResponse::build(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json; charset=UTF-8")
        .body(
            json!({"error": {
                "code": code,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
                "status": status,
            }})
            .to_string(),
        )
}

fn not_found() -> HttpResponse {
    google_error(404, "NOT_FOUND", "Requested entity was not found.")
}

fn bad_request(message: &str) -> HttpResponse {
    google_error(400, "INVALID_ARGUMENT", message)
}

fn ok(v: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json; charset=UTF-8")
        .body(v.to_string())
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

async fn not_found_route(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=UTF-8")
        .body(format!(
            "<!DOCTYPE html><title>Error 404 (Not Found)</title><p>The requested URL {} was not found on this server.",
            req.path()
        ))
}

/// Authenticates a Google API call and checks its scope, records it, and runs `f` when allowed.
fn api(
    st: &web::Data<Shared>,
    req: &HttpRequest,
    body: &[u8],
    any_of: &[&str],
    f: impl FnOnce(&mut State, &ApiCtx) -> HttpResponse,
) -> HttpResponse {
    let mut s = lock(st);
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        });
    let query = query_pairs(req);
    let parsed_body = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    let mut call = ApiCall {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: query.clone(),
        token: token.clone(),
        token_scopes: BTreeSet::new(),
        needs_any_of: any_of.iter().map(|s| s.to_string()).collect(),
        status: 0,
        body: parsed_body.clone(),
    };
    let grant = token.as_ref().and_then(|t| s.access_tokens.get(t).cloned());
    let resp = match grant {
        None => unauthenticated(),
        Some(g) if g.revoked || g.expires_at <= now() => {
            call.token_scopes = g.scopes.clone();
            unauthenticated()
        }
        Some(g) => {
            call.token_scopes = g.scopes.clone();
            let allowed = any_of.is_empty() || any_of.iter().any(|need| g.scopes.contains(*need));
            if !allowed {
                insufficient_scope(any_of)
            } else {
                let ctx = ApiCtx {
                    query,
                    body: parsed_body,
                    raw_body: body.to_vec(),
                    content_type: req
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                };
                f(&mut s, &ctx)
            }
        }
    };
    call.status = resp.status().as_u16();
    s.api_calls.push(call);
    resp
}

struct ApiCtx {
    query: Vec<(String, String)>,
    body: Option<Value>,
    raw_body: Vec<u8>,
    content_type: String,
}

impl ApiCtx {
    fn q(&self, key: &str) -> Option<&str> {
        first(&self.query, key)
    }

    fn json(&self) -> Result<&Value, HttpResponse> {
        self.body
            .as_ref()
            .ok_or_else(|| bad_request("Invalid JSON payload received."))
    }
}

fn unauthenticated() -> HttpResponse {
    let mut resp = google_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        ),
    );
    resp
}

fn insufficient_scope(any_of: &[&str]) -> HttpResponse {
    let mut resp = google_error(
        403,
        "PERMISSION_DENIED",
        "Request had insufficient authentication scopes.",
    );
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{}\"",
        any_of.join(" ")
    )) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// OAuth: authorization, token, userinfo, revoke
// ---------------------------------------------------------------------------------------------

fn error_page(status: u16, error: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/html; charset=UTF-8")
        .body(format!(
            "<!DOCTYPE html><title>Access blocked</title><h1>Error {status}: {error}</h1><p>{detail}</p>"
        ))
}

fn redirect_to(uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let mut url = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return error_page(400, "invalid_request", "redirect_uri is not a URL"),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.to_string()))
        .finish()
}

async fn authorize(req: HttpRequest, st: web::Data<Shared>) -> HttpResponse {
    let query = query_pairs(&req);
    let mut s = lock(&st);
    s.auth_requests.push(AuthRequest {
        query: query.clone(),
    });
    let get = |k: &str| first(&query, k);
    let Some(client_id) = get("client_id") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: client_id",
        );
    };
    if !s.clients.contains_key(client_id) {
        return error_page(401, "invalid_client", "The OAuth client was not found.");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    if get("response_type") != Some("code") {
        return error_page(
            400,
            "unsupported_response_type",
            "Only response_type=code is used by Scopegate",
        );
    }
    let requested: Vec<&str> = get("scope").unwrap_or("").split_whitespace().collect();
    if requested.is_empty() {
        return error_page(400, "invalid_request", "Missing required parameter: scope");
    }
    if let Some(bad) = requested.iter().find(|sc| !KNOWN_SCOPES.contains(sc)) {
        return error_page(
            400,
            "invalid_scope",
            &format!("Some requested scopes were invalid: {bad}"),
        );
    }
    let method = get("code_challenge_method").map(str::to_string);
    if get("code_challenge").is_some() && method.as_deref() != Some("S256") {
        return error_page(
            400,
            "invalid_request",
            "Only S256 code challenges are expected",
        );
    }
    let state = get("state").unwrap_or("").to_string();
    let mut granted: BTreeSet<String> = match &s.consent {
        Consent::Deny => {
            let mut params = vec![("error", "access_denied")];
            if !state.is_empty() {
                params.push(("state", state.as_str()));
            }
            return redirect_to(redirect_uri, &params);
        }
        Consent::All => requested.iter().map(|sc| normalize_scope(sc)).collect(),
        Consent::Only(allowed) => requested
            .iter()
            .filter(|sc| is_identity(sc) || allowed.iter().any(|a| a == *sc))
            .map(|sc| normalize_scope(sc))
            .collect(),
    };
    let key = (client_id.to_string(), s.user.sub.clone());
    if get("include_granted_scopes") == Some("true") {
        if let Some(prior) = s.prior_grants.get(&key) {
            granted.extend(prior.iter().cloned());
        }
    }
    s.prior_grants.insert(key, granted.clone());
    let code = format!("4/0fake-{}", random(40));
    s.codes.insert(
        code.clone(),
        PendingCode {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            code_challenge: get("code_challenge").map(str::to_string),
            code_challenge_method: method,
            scopes: granted.clone(),
            nonce: get("nonce").map(str::to_string),
            used: false,
        },
    );
    let scope = granted.iter().cloned().collect::<Vec<_>>().join(" ");
    let mut params = vec![];
    if !state.is_empty() {
        params.push(("state", state.as_str()));
    }
    params.push(("code", code.as_str()));
    params.push(("scope", scope.as_str()));
    params.push(("authuser", "0"));
    params.push(("prompt", "consent"));
    redirect_to(redirect_uri, &params)
}

fn token_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("application/json; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(json!({"error": error, "error_description": description}).to_string())
}

/// `(client_id, client_secret, how)` from HTTP Basic (RFC 6749 §2.3.1: each part
/// form-urlencoded) or the form.
fn client_credentials(
    req: &HttpRequest,
    form: &[(String, String)],
) -> Option<(String, Option<String>, &'static str)> {
    if let Some(basic) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
    {
        let decoded = STANDARD.decode(basic.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), Some(unescape(secret)), "basic"));
    }
    let id = first(form, "client_id")?.to_string();
    match first(form, "client_secret") {
        Some(secret) => Some((id, Some(secret.to_string()), "post")),
        None => Some((id, None, "none")),
    }
}

async fn token(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let grant_type = first(&form, "grant_type").unwrap_or("").to_string();
    let (resp, delay) = {
        let mut s = lock(&st);
        let mut record = TokenRequest {
            grant_type: grant_type.clone(),
            client_id: None,
            client_auth: "none",
            status: 0,
            form: form
                .iter()
                .filter(|(k, _)| k != "client_secret")
                .cloned()
                .collect(),
        };
        let (resp, delay) = token_inner(&mut s, &req, &form, &grant_type, &mut record);
        record.status = resp.status().as_u16();
        s.token_requests.push(record);
        (resp, delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    resp
}

fn token_inner(
    s: &mut State,
    req: &HttpRequest,
    form: &[(String, String)],
    grant_type: &str,
    record: &mut TokenRequest,
) -> (HttpResponse, Duration) {
    let Some((client_id, secret, how)) = client_credentials(req, form) else {
        return (
            token_error(
                400,
                "invalid_request",
                "Could not determine client ID from request.",
            ),
            Duration::ZERO,
        );
    };
    record.client_auth = how;
    match (s.clients.get(&client_id), secret) {
        (Some(expected), Some(given)) if *expected == given => {}
        _ => {
            return (
                token_error(401, "invalid_client", "Unauthorized"),
                Duration::ZERO,
            )
        }
    }
    record.client_id = Some(client_id.clone());
    match grant_type {
        "authorization_code" => (code_grant(s, form, &client_id), Duration::ZERO),
        "refresh_token" => {
            let delay = s.refresh_delay;
            (refresh_grant(s, form, &client_id), delay)
        }
        "" => (
            token_error(
                400,
                "invalid_request",
                "Required parameter is missing: grant_type",
            ),
            Duration::ZERO,
        ),
        _ => (
            token_error(400, "unsupported_grant_type", "Invalid grant_type"),
            Duration::ZERO,
        ),
    }
}

fn code_grant(s: &mut State, form: &[(String, String)], client_id: &str) -> HttpResponse {
    let Some(code) = first(form, "code") else {
        return token_error(400, "invalid_request", "Missing required parameter: code");
    };
    let Some(pending) = s.codes.get(code).cloned() else {
        return token_error(400, "invalid_grant", "Malformed auth code.");
    };
    if pending.used {
        return token_error(400, "invalid_grant", "Bad Request");
    }
    if pending.client_id != client_id {
        return token_error(400, "invalid_grant", "Bad Request");
    }
    if first(form, "redirect_uri") != Some(pending.redirect_uri.as_str()) {
        return token_error(400, "redirect_uri_mismatch", "Bad Request");
    }
    if let Some(challenge) = &pending.code_challenge {
        let Some(verifier) = first(form, "code_verifier") else {
            return token_error(400, "invalid_grant", "Missing code verifier.");
        };
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        if &computed != challenge {
            return token_error(400, "invalid_grant", "Invalid code verifier.");
        }
    }
    if let Some(p) = s.codes.get_mut(code) {
        p.used = true;
    }
    let access_token = s.issue_access_token(&pending.scopes, None);
    let refresh_token = s.issue_refresh_token_for(client_id, &pending.scopes);
    let id_token = s.id_token(client_id, pending.nonce.as_deref());
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(
            json!({
                "access_token": access_token,
                "expires_in": s.access_token_ttl_secs,
                "refresh_token": refresh_token,
                "scope": pending.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
                "token_type": "Bearer",
                "id_token": id_token,
            })
            .to_string(),
        )
}

fn refresh_grant(s: &mut State, form: &[(String, String)], client_id: &str) -> HttpResponse {
    let Some(rt) = first(form, "refresh_token") else {
        return token_error(
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    match s.refresh_failure {
        Some(RefreshFailure::InvalidGrant) => {
            return token_error(400, "invalid_grant", "Token has been expired or revoked.")
        }
        Some(RefreshFailure::ServerError) => {
            return token_error(500, "internal_failure", "Backend Error")
        }
        None => {}
    }
    let Some(grant) = s.refresh_tokens.get(rt).cloned() else {
        return token_error(400, "invalid_grant", "Bad Request");
    };
    if grant.revoked {
        return token_error(400, "invalid_grant", "Token has been expired or revoked.");
    }
    if grant.client_id != client_id {
        return token_error(400, "unauthorized_client", "Unauthorized");
    }
    let access_token = s.issue_access_token(&grant.scopes, Some(rt));
    let mut body = json!({
        "access_token": access_token,
        "expires_in": s.access_token_ttl_secs,
        "scope": grant.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        "token_type": "Bearer",
    });
    if grant.scopes.contains(OPENID) {
        body["id_token"] = json!(s.id_token(client_id, None));
    }
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

async fn revoke(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let mut pairs = query_pairs(&req);
    pairs.extend(form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    let Some(token) = first(&pairs, "token").map(str::to_string) else {
        return token_error(400, "invalid_request", "Bad Request");
    };
    let mut s = lock(&st);
    s.revocations.push(token.clone());
    let mut found = false;
    if let Some(g) = s.refresh_tokens.get_mut(&token) {
        g.revoked = true;
        found = true;
    }
    if let Some(g) = s.access_tokens.get_mut(&token) {
        g.revoked = true;
        found = true;
    }
    if found {
        HttpResponse::Ok()
            .content_type("application/json")
            .body("{}")
    } else {
        token_error(400, "invalid_token", "Token expired or revoked")
    }
}

async fn userinfo(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    api(
        &st,
        &req,
        &body,
        &[OPENID, USERINFO_EMAIL, USERINFO_PROFILE],
        |s, _| {
            let u = &s.user;
            let (given, family) = u.name.split_once(' ').unwrap_or((u.name.as_str(), ""));
            ok(json!({
                "sub": u.sub,
                "name": u.name,
                "given_name": given,
                "family_name": family,
                "picture": "https://lh3.googleusercontent.test/a/default-user",
                "email": u.email,
                "email_verified": u.email_verified,
            }))
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Gmail
// ---------------------------------------------------------------------------------------------

const GMAIL_READ: &[&str] = &[MAIL_GOOGLE_COM, GMAIL_MODIFY, GMAIL_READONLY];
const GMAIL_READ_METADATA: &[&str] = &[
    MAIL_GOOGLE_COM,
    GMAIL_MODIFY,
    GMAIL_READONLY,
    GMAIL_METADATA,
];
const GMAIL_WRITE: &[&str] = &[MAIL_GOOGLE_COM, GMAIL_MODIFY];
const GMAIL_SEND_ANY: &[&str] = &[MAIL_GOOGLE_COM, GMAIL_MODIFY, GMAIL_COMPOSE, GMAIL_SEND];
const DRAFTS_READ: &[&str] = &[MAIL_GOOGLE_COM, GMAIL_MODIFY, GMAIL_READONLY, GMAIL_COMPOSE];
const DRAFTS_WRITE: &[&str] = &[MAIL_GOOGLE_COM, GMAIL_MODIFY, GMAIL_COMPOSE];
const LABELS_READ: &[&str] = &[
    MAIL_GOOGLE_COM,
    GMAIL_MODIFY,
    GMAIL_READONLY,
    GMAIL_LABELS,
    GMAIL_METADATA,
];
const LABELS_WRITE: &[&str] = &[MAIL_GOOGLE_COM, GMAIL_MODIFY, GMAIL_LABELS];
const CAL_READ: &[&str] = &[CALENDAR, CALENDAR_READONLY];
const CAL_EVENTS_READ: &[&str] = &[CALENDAR, CALENDAR_READONLY, CALENDAR_EVENTS];
const CAL_WRITE: &[&str] = &[CALENDAR, CALENDAR_EVENTS];
const PEOPLE_READ: &[&str] = &[CONTACTS, CONTACTS_READONLY];
const PEOPLE_WRITE: &[&str] = &[CONTACTS];

fn b64url(data: &[u8]) -> String {
    URL_SAFE.encode(data)
}

/// base64url, padded or not (Gmail accepts both); standard alphabet too, leniently.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let lenient = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    lenient.decode(&cleaned).ok().or_else(|| {
        lenient
            .decode(cleaned.replace('+', "-").replace('/', "_"))
            .ok()
    })
}

fn message_headers(m: &GmailMessage) -> Vec<(String, String)> {
    let mut h = vec![
        ("Message-ID".to_string(), m.message_id_header.clone()),
        ("Date".to_string(), rfc2822(m.date)),
        ("Subject".to_string(), m.subject.clone()),
        ("From".to_string(), m.from.clone()),
        ("To".to_string(), m.to.clone()),
    ];
    if !m.cc.is_empty() {
        h.push(("Cc".to_string(), m.cc.clone()));
    }
    h.push(("MIME-Version".to_string(), "1.0".to_string()));
    let ct = if m.attachments.is_empty() {
        "text/plain; charset=\"UTF-8\"".to_string()
    } else {
        "multipart/mixed; boundary=\"000000000000fakeboundary\"".to_string()
    };
    h.push(("Content-Type".to_string(), ct));
    h
}

fn headers_json(h: &[(String, String)]) -> Value {
    Value::Array(
        h.iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}

/// messages.get in `format` (full | metadata | minimal | raw).
fn message_json(m: &GmailMessage, format: &str, metadata_headers: &[&str]) -> Value {
    let mut out = json!({
        "id": m.id,
        "threadId": m.thread_id,
        "labelIds": m.label_ids,
        "snippet": m.snippet(),
        "historyId": "4242",
        "internalDate": (m.date * 1000).to_string(),
        "sizeEstimate": m.body.len() + 512,
    });
    let headers = message_headers(m);
    match format {
        "minimal" => {}
        "raw" => {
            out["raw"] = json!(b64url(raw_mime(m).as_bytes()));
        }
        "metadata" => {
            let hs: Vec<(String, String)> = headers
                .into_iter()
                .filter(|(n, _)| {
                    metadata_headers.is_empty()
                        || metadata_headers.iter().any(|w| w.eq_ignore_ascii_case(n))
                })
                .collect();
            out["payload"] = json!({
                "mimeType": if m.attachments.is_empty() { "text/plain" } else { "multipart/mixed" },
                "headers": headers_json(&hs),
            });
        }
        _ => {
            let text_part = |part_id: &str, with_headers: bool| {
                let mut p = json!({
                    "partId": part_id,
                    "mimeType": "text/plain",
                    "filename": "",
                    "body": {"size": m.body.len(), "data": b64url(m.body.as_bytes())},
                });
                if with_headers {
                    p["headers"] = headers_json(&headers);
                } else {
                    p["headers"] =
                        json!([{"name": "Content-Type", "value": "text/plain; charset=\"UTF-8\""}]);
                }
                p
            };
            if m.attachments.is_empty() {
                out["payload"] = text_part("", true);
            } else {
                let mut parts = vec![text_part("0", false)];
                for (i, a) in m.attachments.iter().enumerate() {
                    parts.push(json!({
                        "partId": (i + 1).to_string(),
                        "mimeType": a.mime_type,
                        "filename": a.filename,
                        "headers": [
                            {"name": "Content-Type", "value": format!("{}; name=\"{}\"", a.mime_type, a.filename)},
                            {"name": "Content-Disposition", "value": format!("attachment; filename=\"{}\"", a.filename)},
                        ],
                        "body": {"attachmentId": a.id, "size": a.data.len()},
                    }));
                }
                out["payload"] = json!({
                    "partId": "",
                    "mimeType": "multipart/mixed",
                    "filename": "",
                    "headers": headers_json(&headers),
                    "body": {"size": 0},
                    "parts": parts,
                });
            }
        }
    }
    out
}

fn raw_mime(m: &GmailMessage) -> String {
    let mut out = String::new();
    for (n, v) in message_headers(m) {
        if n == "Content-Type" {
            out.push_str("Content-Type: text/plain; charset=\"UTF-8\"\r\n");
        } else {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    out.push_str(&m.body);
    out
}

fn visible(m: &GmailMessage, include_spam_trash: bool) -> bool {
    include_spam_trash || !m.label_ids.iter().any(|l| l == "TRASH" || l == "SPAM")
}

fn label_filter(m: &GmailMessage, label_ids: &[&str]) -> bool {
    label_ids.iter().all(|l| m.label_ids.iter().any(|x| x == l))
}

/// `maxResults` / `pageToken` paging over `items` (the page token is the offset).
fn page<T: Clone>(items: &[T], ctx: &ApiCtx, default_max: usize) -> (Vec<T>, Option<String>) {
    page_by(items, ctx, "maxResults", default_max)
}

/// Paging with the page-size parameter named `size_param` (People says `pageSize`).
fn page_by<T: Clone>(
    items: &[T],
    ctx: &ApiCtx,
    size_param: &str,
    default_max: usize,
) -> (Vec<T>, Option<String>) {
    let max = ctx
        .q(size_param)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default_max)
        .max(1);
    let start = ctx
        .q("pageToken")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    (items[start..end].to_vec(), next)
}

async fn gmail_messages_list(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, GMAIL_READ_METADATA, |s, ctx| {
        let spam_trash = ctx.q("includeSpamTrash") == Some("true");
        let labels = all(&ctx.query, "labelIds");
        let mut msgs: Vec<&GmailMessage> = s
            .messages
            .iter()
            .filter(|m| visible(m, spam_trash) && label_filter(m, &labels))
            .filter(|m| !m.label_ids.iter().any(|l| l == "DRAFT"))
            .collect();
        msgs.sort_by_key(|m| std::cmp::Reverse(m.date));
        let refs: Vec<Value> = msgs
            .iter()
            .map(|m| json!({"id": m.id, "threadId": m.thread_id}))
            .collect();
        let (items, next) = page(&refs, ctx, 100);
        let mut out = json!({"resultSizeEstimate": refs.len()});
        if !items.is_empty() {
            out["messages"] = Value::Array(items);
        }
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        ok(out)
    })
}

async fn gmail_message_get(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    let format = first(&query_pairs(&req), "format")
        .unwrap_or("full")
        .to_string();
    // format=metadata is also allowed with gmail.metadata; full and raw are not.
    let needs = if format == "metadata" || format == "minimal" {
        GMAIL_READ_METADATA
    } else {
        GMAIL_READ
    };
    api(&st, &req, &body, needs, |s, ctx| {
        let hs = all(&ctx.query, "metadataHeaders");
        match s.messages.iter().find(|m| m.id == id) {
            Some(m) => ok(message_json(m, &format, &hs)),
            None => not_found(),
        }
    })
}

async fn gmail_message_delete(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    // Permanent deletion needs full mailbox access, which Scopegate never asks for.
    api(&st, &req, &body, &[MAIL_GOOGLE_COM], |s, _| {
        let before = s.messages.len();
        s.messages.retain(|m| m.id != id);
        if s.messages.len() == before {
            not_found()
        } else {
            no_content()
        }
    })
}

fn apply_label_changes(m: &mut GmailMessage, add: &[String], remove: &[String]) {
    for l in add {
        if !m.label_ids.contains(l) {
            m.label_ids.push(l.clone());
        }
    }
    m.label_ids.retain(|l| !remove.contains(l));
}

fn string_list(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn unknown_label(s: &State, ids: &[String]) -> Option<String> {
    ids.iter()
        .find(|id| {
            !s.labels
                .iter()
                .any(|l| l["id"].as_str() == Some(id.as_str()))
        })
        .cloned()
}

async fn gmail_message_modify(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, GMAIL_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let (add, remove) = (
            string_list(&b, "addLabelIds"),
            string_list(&b, "removeLabelIds"),
        );
        if let Some(bad) = unknown_label(s, &add) {
            return bad_request(&format!("Invalid label: {bad}"));
        }
        match s.messages.iter_mut().find(|m| m.id == id) {
            Some(m) => {
                apply_label_changes(m, &add, &remove);
                ok(json!({"id": m.id, "threadId": m.thread_id, "labelIds": m.label_ids}))
            }
            None => not_found(),
        }
    })
}

async fn gmail_message_trash(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, GMAIL_WRITE, |s, _| {
        match s.messages.iter_mut().find(|m| m.id == id) {
            Some(m) => {
                apply_label_changes(m, &["TRASH".to_string()], &["INBOX".to_string()]);
                ok(json!({"id": m.id, "threadId": m.thread_id, "labelIds": m.label_ids}))
            }
            None => not_found(),
        }
    })
}

async fn gmail_message_untrash(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, GMAIL_WRITE, |s, _| {
        match s.messages.iter_mut().find(|m| m.id == id) {
            Some(m) => {
                apply_label_changes(m, &[], &["TRASH".to_string()]);
                ok(json!({"id": m.id, "threadId": m.thread_id, "labelIds": m.label_ids}))
            }
            None => not_found(),
        }
    })
}

async fn gmail_attachment(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let (mid, aid) = (path_param(&req, "mid"), path_param(&req, "aid"));
    api(&st, &req, &body, GMAIL_READ, |s, _| {
        let found = s
            .messages
            .iter()
            .find(|m| m.id == mid)
            .and_then(|m| m.attachments.iter().find(|a| a.id == aid));
        match found {
            Some(a) => {
                ok(json!({"attachmentId": a.id, "size": a.data.len(), "data": b64url(&a.data)}))
            }
            None => not_found(),
        }
    })
}

/// Parsed RFC 2822 message: headers (unfolded, encoded words decoded) and the text body.
pub fn parse_mime(mime: &str) -> (Vec<(String, String)>, String) {
    let normalized = mime.replace("\r\n", "\n");
    let (head, body) = normalized
        .split_once("\n\n")
        .unwrap_or((normalized.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if (line.starts_with(' ') || line.starts_with('\t')) && !headers.is_empty() {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    for h in headers.iter_mut() {
        h.1 = decode_encoded_words(&h.1);
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let content_type = get("Content-Type").unwrap_or_else(|| "text/plain".to_string());
    let encoding = get("Content-Transfer-Encoding").unwrap_or_default();
    let text = if content_type.to_ascii_lowercase().starts_with("multipart/") {
        multipart_text(&content_type, body)
    } else {
        transfer_decode(body, &encoding)
    };
    (headers, text)
}

fn boundary_of(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("boundary=")? + "boundary=".len();
    let rest = &content_type[at..];
    let b = if let Some(stripped) = rest.strip_prefix('"') {
        stripped.split('"').next().unwrap_or("")
    } else {
        rest.split(';').next().unwrap_or("").trim()
    };
    Some(b.to_string())
}

fn multipart_text(content_type: &str, body: &str) -> String {
    let Some(boundary) = boundary_of(content_type) else {
        return body.to_string();
    };
    let delimiter = format!("--{boundary}");
    let mut html = None;
    for part in body.split(&delimiter).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches('\n');
        let (headers, text) = parse_mime(part);
        let ct = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_else(|| "text/plain".to_string());
        let is_attachment = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("Content-Disposition")
                && v.to_ascii_lowercase().starts_with("attachment")
        });
        if is_attachment {
            continue;
        }
        if ct.starts_with("text/plain") || ct.starts_with("multipart/") {
            return text.trim_end_matches('\n').to_string();
        }
        if ct.starts_with("text/html") && html.is_none() {
            html = Some(text);
        }
    }
    html.unwrap_or_default().trim_end_matches('\n').to_string()
}

fn transfer_decode(body: &str, encoding: &str) -> String {
    match encoding.trim().to_ascii_lowercase().as_str() {
        "base64" => {
            let cleaned: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD
                .decode(&cleaned)
                .ok()
                .or_else(|| b64url_decode(&cleaned))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| body.to_string())
        }
        "quoted-printable" => quoted_printable(body, false),
        _ => body.to_string(),
    }
}

fn quoted_printable(s: &str, underscores_are_spaces: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if i + 1 < bytes.len() && bytes[i + 1] == b'\n' => i += 2,
            b'=' if i + 2 < bytes.len() && bytes[i + 1] == b'\r' && bytes[i + 2] == b'\n' => i += 3,
            b'=' if i + 2 < bytes.len() => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'_' if underscores_are_spaces => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 `=?charset?B|Q?text?=` words (UTF-8 assumed).
fn decode_encoded_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let after = &rest[start + 2..];
        let parsed = (|| {
            let (_charset, r) = after.split_once('?')?;
            let (enc, r) = r.split_once('?')?;
            let end = r.find("?=")?;
            let text = &r[..end];
            let decoded = match enc.to_ascii_uppercase().as_str() {
                "B" => String::from_utf8_lossy(&STANDARD.decode(text).ok()?).into_owned(),
                "Q" => quoted_printable(text, true),
                _ => return None,
            };
            Some((decoded, &r[end + 2..]))
        })();
        match parsed {
            Some((decoded, remaining)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = remaining;
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = after;
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

fn message_from_mime(
    s: &mut State,
    mime: &str,
    thread_id: Option<String>,
    label: &str,
) -> GmailMessage {
    let (headers, body) = parse_mime(mime);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let id = s.fresh_id("");
    let from = match get("From") {
        f if f.is_empty() => format!("{} <{}>", s.user.name, s.user.email),
        f => f,
    };
    GmailMessage {
        thread_id: thread_id.unwrap_or_else(|| id.clone()),
        id: id.clone(),
        label_ids: vec![label.to_string()],
        from,
        to: get("To"),
        cc: get("Cc"),
        subject: get("Subject"),
        date: now(),
        body,
        attachments: Vec::new(),
        message_id_header: format!("<{id}@mail.gmail.test>"),
    }
}

fn record_send(s: &mut State, mime: String, thread_id: Option<String>) -> HttpResponse {
    if let Some(t) = &thread_id {
        if !s.messages.iter().any(|m| &m.thread_id == t) {
            return not_found();
        }
    }
    let (headers, body) = parse_mime(&mime);
    let has_recipient = headers.iter().any(|(k, v)| {
        ["to", "cc", "bcc"].contains(&k.to_ascii_lowercase().as_str()) && !v.trim().is_empty()
    });
    if !has_recipient {
        return bad_request("Invalid To header");
    }
    let msg = message_from_mime(s, &mime, thread_id.clone(), "SENT");
    s.sent.push(SentMessage {
        mime,
        headers,
        body,
        thread_id,
        id: msg.id.clone(),
    });
    let out = json!({"id": msg.id, "threadId": msg.thread_id, "labelIds": msg.label_ids});
    s.messages.push(msg);
    ok(out)
}

async fn gmail_send(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    api(&st, &req, &body, GMAIL_SEND_ANY, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let Some(raw) = b["raw"].as_str() else {
            return bad_request("'raw' RFC822 payload message string or uploading message via /upload/* URL required");
        };
        let Some(bytes) = b64url_decode(raw) else {
            return bad_request("Invalid value for ByteString");
        };
        let mime = String::from_utf8_lossy(&bytes).into_owned();
        record_send(s, mime, b["threadId"].as_str().map(str::to_string))
    })
}

async fn gmail_send_upload(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, GMAIL_SEND_ANY, |s, ctx| {
        if !ctx.content_type.starts_with("message/rfc822") {
            return bad_request("Media type not supported; use message/rfc822");
        }
        let mime = String::from_utf8_lossy(&ctx.raw_body).into_owned();
        record_send(s, mime, None)
    })
}

fn thread_ids(s: &State, ctx: &ApiCtx) -> Vec<String> {
    let spam_trash = ctx.q("includeSpamTrash") == Some("true");
    let labels = all(&ctx.query, "labelIds");
    let mut latest: BTreeMap<String, i64> = BTreeMap::new();
    for m in s
        .messages
        .iter()
        .filter(|m| visible(m, spam_trash) && !m.label_ids.iter().any(|l| l == "DRAFT"))
    {
        let e = latest.entry(m.thread_id.clone()).or_insert(m.date);
        *e = (*e).max(m.date);
    }
    let mut ids: Vec<(String, i64)> = latest
        .into_iter()
        .filter(|(t, _)| {
            labels.is_empty()
                || s.messages
                    .iter()
                    .any(|m| &m.thread_id == t && label_filter(m, &labels))
        })
        .collect();
    ids.sort_by_key(|t| std::cmp::Reverse(t.1));
    ids.into_iter().map(|(t, _)| t).collect()
}

async fn gmail_threads_list(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, GMAIL_READ_METADATA, |s, ctx| {
        let ids = thread_ids(s, ctx);
        let refs: Vec<Value> = ids
            .iter()
            .map(|t| {
                let snippet = s
                    .messages
                    .iter()
                    .filter(|m| &m.thread_id == t)
                    .max_by_key(|m| m.date)
                    .map(|m| m.snippet())
                    .unwrap_or_default();
                json!({"id": t, "snippet": snippet, "historyId": "4242"})
            })
            .collect();
        let (items, next) = page(&refs, ctx, 100);
        let mut out = json!({"resultSizeEstimate": refs.len()});
        if !items.is_empty() {
            out["threads"] = Value::Array(items);
        }
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        ok(out)
    })
}

async fn gmail_thread_get(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    let format = first(&query_pairs(&req), "format")
        .unwrap_or("full")
        .to_string();
    let needs = if format == "metadata" || format == "minimal" {
        GMAIL_READ_METADATA
    } else {
        GMAIL_READ
    };
    api(&st, &req, &body, needs, |s, ctx| {
        let hs = all(&ctx.query, "metadataHeaders");
        let mut msgs: Vec<&GmailMessage> =
            s.messages.iter().filter(|m| m.thread_id == id).collect();
        if msgs.is_empty() {
            return not_found();
        }
        msgs.sort_by_key(|m| m.date);
        ok(json!({
            "id": id,
            "historyId": "4242",
            "messages": msgs.iter().map(|m| message_json(m, &format, &hs)).collect::<Vec<_>>(),
        }))
    })
}

fn thread_label_change(s: &mut State, id: &str, add: &[String], remove: &[String]) -> HttpResponse {
    let mut touched = Vec::new();
    for m in s.messages.iter_mut().filter(|m| m.thread_id == id) {
        apply_label_changes(m, add, remove);
        touched.push(json!({"id": m.id, "threadId": m.thread_id, "labelIds": m.label_ids}));
    }
    if touched.is_empty() {
        not_found()
    } else {
        ok(json!({"id": id, "historyId": "4243", "messages": touched}))
    }
}

async fn gmail_thread_modify(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, GMAIL_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let (add, remove) = (
            string_list(&b, "addLabelIds"),
            string_list(&b, "removeLabelIds"),
        );
        if let Some(bad) = unknown_label(s, &add) {
            return bad_request(&format!("Invalid label: {bad}"));
        }
        thread_label_change(s, &id, &add, &remove)
    })
}

async fn gmail_thread_trash(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, GMAIL_WRITE, |s, _| {
        thread_label_change(s, &id, &["TRASH".to_string()], &["INBOX".to_string()])
    })
}

fn draft_json(d: &GmailDraft, format: &str) -> Value {
    json!({"id": d.id, "message": message_json(&d.message, format, &[])})
}

async fn gmail_drafts_list(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, DRAFTS_READ, |s, ctx| {
        let refs: Vec<Value> = s
            .drafts
            .iter()
            .map(|d| json!({"id": d.id, "message": {"id": d.message.id, "threadId": d.message.thread_id}}))
            .collect();
        let (items, next) = page(&refs, ctx, 100);
        let mut out = json!({"resultSizeEstimate": refs.len()});
        if !items.is_empty() {
            out["drafts"] = Value::Array(items);
        }
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        ok(out)
    })
}

fn draft_message_from(s: &mut State, b: &Value) -> Result<GmailMessage, HttpResponse> {
    let Some(raw) = b["message"]["raw"].as_str() else {
        return Err(bad_request("Missing draft message"));
    };
    let bytes = b64url_decode(raw).ok_or_else(|| bad_request("Invalid value for ByteString"))?;
    let mime = String::from_utf8_lossy(&bytes).into_owned();
    let thread_id = b["message"]["threadId"].as_str().map(str::to_string);
    Ok(message_from_mime(s, &mime, thread_id, "DRAFT"))
}

async fn gmail_draft_create(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, DRAFTS_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let message = match draft_message_from(s, &b) {
            Ok(m) => m,
            Err(e) => return e,
        };
        let id = s.fresh_id("r-");
        let draft = GmailDraft { id, message };
        let out = json!({"id": draft.id, "message": {"id": draft.message.id,
            "threadId": draft.message.thread_id, "labelIds": draft.message.label_ids}});
        s.drafts.push(draft);
        ok(out)
    })
}

async fn gmail_draft_get(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, DRAFTS_READ, |s, ctx| {
        let format = ctx.q("format").unwrap_or("full");
        match s.drafts.iter().find(|d| d.id == id) {
            Some(d) => ok(draft_json(d, format)),
            None => not_found(),
        }
    })
}

async fn gmail_draft_update(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, DRAFTS_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        if !s.drafts.iter().any(|d| d.id == id) {
            return not_found();
        }
        let message = match draft_message_from(s, &b) {
            Ok(m) => m,
            Err(e) => return e,
        };
        let Some(d) = s.drafts.iter_mut().find(|d| d.id == id) else {
            return not_found();
        };
        d.message = message;
        ok(json!({"id": d.id, "message": {"id": d.message.id,
            "threadId": d.message.thread_id, "labelIds": d.message.label_ids}}))
    })
}

async fn gmail_draft_delete(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, DRAFTS_WRITE, |s, _| {
        let before = s.drafts.len();
        s.drafts.retain(|d| d.id != id);
        if s.drafts.len() == before {
            not_found()
        } else {
            no_content()
        }
    })
}

async fn gmail_draft_send(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, DRAFTS_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let Some(id) = b["id"].as_str() else {
            return bad_request("Missing draft id");
        };
        let Some(pos) = s.drafts.iter().position(|d| d.id == id) else {
            return not_found();
        };
        let draft = s.drafts.remove(pos);
        let mime = raw_mime(&draft.message);
        record_send(s, mime, None)
    })
}

fn label_json(s: &State, l: &Value) -> Value {
    let mut out = l.clone();
    if let Some(id) = l["id"].as_str() {
        let with: Vec<&GmailMessage> = s
            .messages
            .iter()
            .filter(|m| m.label_ids.iter().any(|x| x == id))
            .collect();
        out["messagesTotal"] = json!(with.len());
        out["messagesUnread"] = json!(with
            .iter()
            .filter(|m| m.label_ids.iter().any(|x| x == "UNREAD"))
            .count());
    }
    out
}

async fn gmail_labels_list(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, LABELS_READ, |s, _| {
        ok(json!({"labels": s.labels}))
    })
}

async fn gmail_label_get(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, LABELS_READ, |s, _| {
        match s
            .labels
            .iter()
            .find(|l| l["id"].as_str() == Some(id.as_str()))
        {
            Some(l) => ok(label_json(s, l)),
            None => not_found(),
        }
    })
}

async fn gmail_label_create(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, LABELS_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let Some(name) = b["name"].as_str().filter(|n| !n.trim().is_empty()) else {
            return bad_request("Invalid label name");
        };
        if s.labels.iter().any(|l| {
            l["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) {
            return google_error(409, "ALREADY_EXISTS", "Label name exists or conflicts");
        }
        s.next_id += 1;
        let id = format!("Label_{}", s.next_id);
        let mut label = json!({
            "id": id,
            "name": name,
            "type": "user",
            "messageListVisibility": b["messageListVisibility"].as_str().unwrap_or("show"),
            "labelListVisibility": b["labelListVisibility"].as_str().unwrap_or("labelShow"),
        });
        if b["color"].is_object() {
            label["color"] = b["color"].clone();
        }
        s.labels.push(label.clone());
        ok(label)
    })
}

async fn gmail_label_update(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    let is_put = req.method() == Method::PUT;
    api(&st, &req, &body, LABELS_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let Some(pos) = s
            .labels
            .iter()
            .position(|l| l["id"].as_str() == Some(id.as_str()))
        else {
            return not_found();
        };
        if s.labels[pos]["type"] == "system" {
            return bad_request("Invalid update request");
        }
        if is_put && b["name"].as_str().is_none() {
            return bad_request("Invalid label name");
        }
        if let Some(obj) = b.as_object() {
            for (k, v) in obj {
                if k != "id" && k != "type" {
                    s.labels[pos][k] = v.clone();
                }
            }
        }
        ok(s.labels[pos].clone())
    })
}

async fn gmail_label_delete(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    let id = path_param(&req, "id");
    api(&st, &req, &body, LABELS_WRITE, |s, _| {
        let Some(pos) = s
            .labels
            .iter()
            .position(|l| l["id"].as_str() == Some(id.as_str()))
        else {
            return not_found();
        };
        if s.labels[pos]["type"] == "system" {
            return bad_request("Invalid delete request");
        }
        s.labels.remove(pos);
        for m in s.messages.iter_mut() {
            m.label_ids.retain(|l| l != &id);
        }
        no_content()
    })
}

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

fn calendar_not_found() -> HttpResponse {
    google_error(404, "NOT_FOUND", "Not Found")
}

async fn calendar_list(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    api(&st, &req, &body, CAL_READ, |s, _| {
        ok(json!({
            "kind": "calendar#calendarList",
            "etag": "\"p33c9fake\"",
            "items": s.calendars,
        }))
    })
}

async fn events_list(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let cid = path_param(&req, "cid");
    api(&st, &req, &body, CAL_EVENTS_READ, |s, ctx| {
        let Some(cid) = s.resolve_calendar(&cid) else {
            return calendar_not_found();
        };
        let items: Vec<Value> = s
            .events
            .iter()
            .filter(|(c, _)| *c == cid)
            .map(|(_, e)| e.clone())
            .collect();
        let (items, next) = page(&items, ctx, 250);
        let summary = s
            .calendars
            .iter()
            .find(|c| c["id"].as_str() == Some(cid.as_str()))
            .map(|c| c["summary"].clone())
            .unwrap_or(Value::Null);
        let mut out = json!({
            "kind": "calendar#events",
            "etag": "\"p33c9fake\"",
            "summary": summary,
            "timeZone": "Europe/London",
            "accessRole": "owner",
            "items": items,
        });
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        ok(out)
    })
}

fn has_time(v: &Value) -> bool {
    v.get("dateTime").is_some_and(Value::is_string) || v.get("date").is_some_and(Value::is_string)
}

async fn event_insert(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let cid = path_param(&req, "cid");
    api(&st, &req, &body, CAL_WRITE, |s, ctx| {
        let Some(cid) = s.resolve_calendar(&cid) else {
            return calendar_not_found();
        };
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        if !has_time(&b["start"]) {
            return bad_request("Missing start time.");
        }
        if !has_time(&b["end"]) {
            return bad_request("Missing end time.");
        }
        let id = s.fresh_id("ev");
        let ev = s.complete_event(&cid, &id, b);
        s.events.push((cid, ev.clone()));
        ok(ev)
    })
}

async fn event_get(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let (cid, eid) = (path_param(&req, "cid"), path_param(&req, "eid"));
    api(&st, &req, &body, CAL_EVENTS_READ, |s, _| {
        let Some(cid) = s.resolve_calendar(&cid) else {
            return calendar_not_found();
        };
        match s
            .events
            .iter()
            .find(|(c, e)| *c == cid && e["id"].as_str() == Some(eid.as_str()))
        {
            Some((_, e)) => ok(e.clone()),
            None => calendar_not_found(),
        }
    })
}

async fn event_update(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let (cid, eid) = (path_param(&req, "cid"), path_param(&req, "eid"));
    let is_put = req.method() == Method::PUT;
    api(&st, &req, &body, CAL_WRITE, |s, ctx| {
        let Some(cid) = s.resolve_calendar(&cid) else {
            return calendar_not_found();
        };
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        let Some(pos) = s
            .events
            .iter()
            .position(|(c, e)| *c == cid && e["id"].as_str() == Some(eid.as_str()))
        else {
            return calendar_not_found();
        };
        let merged = if is_put {
            if !has_time(&b["start"]) || !has_time(&b["end"]) {
                return bad_request("Missing end time.");
            }
            let mut m = b;
            m["created"] = s.events[pos].1["created"].clone();
            m
        } else {
            let mut m = s.events[pos].1.clone();
            if let Some(obj) = b.as_object() {
                for (k, v) in obj {
                    m[k] = v.clone();
                }
            }
            m
        };
        let ev = s.complete_event(&cid, &eid, merged);
        s.events[pos].1 = ev.clone();
        ok(ev)
    })
}

async fn event_delete(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let (cid, eid) = (path_param(&req, "cid"), path_param(&req, "eid"));
    api(&st, &req, &body, CAL_WRITE, |s, _| {
        let Some(cid) = s.resolve_calendar(&cid) else {
            return calendar_not_found();
        };
        let before = s.events.len();
        s.events
            .retain(|(c, e)| !(*c == cid && e["id"].as_str() == Some(eid.as_str())));
        if s.events.len() == before {
            calendar_not_found()
        } else {
            no_content()
        }
    })
}

// ---------------------------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------------------------

/// Keeps `resourceName`, `etag` and the fields named in the mask, as the People API does.
fn masked(person: &Value, mask: &str) -> Value {
    let fields: Vec<&str> = mask.split(',').map(str::trim).collect();
    let mut out = Map::new();
    if let Some(obj) = person.as_object() {
        for (k, v) in obj {
            if k == "resourceName" || k == "etag" || fields.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn mask_required(ctx: &ApiCtx, key: &str) -> Result<String, HttpResponse> {
    match ctx.q(key).filter(|m| !m.trim().is_empty()) {
        Some(m) => Ok(m.to_string()),
        None => Err(bad_request(&format!(
            "{key} mask is required. Please specify one or more valid paths. Valid paths are documented at https://developers.google.com/people/api/rest/v1/people/get."
        ))),
    }
}

async fn people_connections(
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<Shared>,
) -> HttpResponse {
    api(&st, &req, &body, PEOPLE_READ, |s, ctx| {
        let mask = match mask_required(ctx, "personFields") {
            Ok(m) => m,
            Err(e) => return e,
        };
        let all_people: Vec<Value> = s.contacts.iter().map(|p| masked(p, &mask)).collect();
        let (items, next) = page_by(&all_people, ctx, "pageSize", 100);
        let mut out = json!({
            "totalPeople": all_people.len(),
            "totalItems": all_people.len(),
        });
        if !items.is_empty() {
            out["connections"] = Value::Array(items);
        }
        if let Some(n) = next {
            out["nextPageToken"] = json!(n);
        }
        ok(out)
    })
}

fn new_etag() -> String {
    format!("%Eg{}", random(16))
}

async fn people_create(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    api(&st, &req, &body, PEOPLE_WRITE, |s, ctx| {
        let b = match ctx.json() {
            Ok(b) => b.clone(),
            Err(e) => return e,
        };
        if !b.is_object() {
            return bad_request("Invalid JSON payload received.");
        }
        let id = s.fresh_id("c");
        let mut person = b;
        person["resourceName"] = json!(format!("people/{id}"));
        person["etag"] = json!(new_etag());
        s.contacts.push(person.clone());
        match ctx.q("personFields") {
            Some(mask) => ok(masked(&person, mask)),
            None => ok(person),
        }
    })
}

/// `/v1/people/{id}` (get), `/v1/people/{id}:updateContact` (PATCH),
/// `/v1/people/{id}:deleteContact` (DELETE).
async fn people_tail(req: HttpRequest, body: web::Bytes, st: web::Data<Shared>) -> HttpResponse {
    let tail = path_param(&req, "tail");
    let method = req.method().clone();
    if let Some(id) = tail.strip_suffix(":updateContact") {
        if method != Method::PATCH {
            return google_error(404, "NOT_FOUND", "Method not found.");
        }
        let resource = format!("people/{id}");
        return api(&st, &req, &body, PEOPLE_WRITE, |s, ctx| {
            let mask = match mask_required(ctx, "updatePersonFields") {
                Ok(m) => m,
                Err(e) => return e,
            };
            let b = match ctx.json() {
                Ok(b) => b.clone(),
                Err(e) => return e,
            };
            let Some(pos) = s
                .contacts
                .iter()
                .position(|p| p["resourceName"].as_str() == Some(resource.as_str()))
            else {
                return not_found();
            };
            let Some(etag) = b["etag"].as_str() else {
                return bad_request("Request must set person.etag or person.metadata.sources.etag for the source that is being updated.");
            };
            if s.contacts[pos]["etag"].as_str() != Some(etag) {
                return google_error(
                    400,
                    "FAILED_PRECONDITION",
                    "Request person.etag is different than the current person.etag. Clear local cache and get the latest person.",
                );
            }
            for field in mask.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                match b.get(field) {
                    Some(v) => s.contacts[pos][field] = v.clone(),
                    None => {
                        if let Some(obj) = s.contacts[pos].as_object_mut() {
                            obj.remove(field);
                        }
                    }
                }
            }
            s.contacts[pos]["etag"] = json!(new_etag());
            let person = s.contacts[pos].clone();
            match ctx.q("personFields") {
                Some(m) => ok(masked(&person, m)),
                None => ok(person),
            }
        });
    }
    if let Some(id) = tail.strip_suffix(":deleteContact") {
        if method != Method::DELETE {
            return google_error(404, "NOT_FOUND", "Method not found.");
        }
        let resource = format!("people/{id}");
        return api(&st, &req, &body, PEOPLE_WRITE, |s, _| {
            let before = s.contacts.len();
            s.contacts
                .retain(|p| p["resourceName"].as_str() != Some(resource.as_str()));
            if s.contacts.len() == before {
                not_found()
            } else {
                ok(json!({}))
            }
        });
    }
    if method != Method::GET || tail.contains(':') || tail.contains('/') {
        return google_error(404, "NOT_FOUND", "Method not found.");
    }
    let resource = format!("people/{tail}");
    api(&st, &req, &body, PEOPLE_READ, |s, ctx| {
        let mask = match mask_required(ctx, "personFields") {
            Ok(m) => m,
            Err(e) => return e,
        };
        match s
            .contacts
            .iter()
            .find(|p| p["resourceName"].as_str() == Some(resource.as_str()))
        {
            Some(p) => ok(masked(p, &mask)),
            None => not_found(),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The fake's own tests: it behaves as the Scopegate tests rely on
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod self_test {
    use super::*;
    use reqwest::redirect;

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .expect("client")
    }

    fn pkce() -> (String, String) {
        let verifier = random(64);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        (verifier, challenge)
    }

    /// Runs the authorization code flow as Scopegate would and returns the token response.
    async fn code_flow(g: &FakeGoogle, scopes: &[&str]) -> Value {
        let (verifier, challenge) = pkce();
        let redirect_uri = "http://127.0.0.1:1/auth/google/callback";
        let resp = http()
            .get(g.auth_url())
            .query(&[
                ("client_id", SCOPEGATE_GOOGLE_CLIENT_ID),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", &scopes.join(" ")),
                ("state", "st4te"),
                ("nonce", "n0nce"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("access_type", "offline"),
                ("include_granted_scopes", "true"),
            ])
            .send()
            .await
            .expect("auth");
        assert_eq!(resp.status(), 302);
        let to = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st4te");
        let resp = http()
            .post(g.token_url())
            .basic_auth(
                SCOPEGATE_GOOGLE_CLIENT_ID,
                Some(SCOPEGATE_GOOGLE_CLIENT_SECRET),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &verifier),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fake_grants_only_the_configured_scopes_and_enforces_them() {
        let g = FakeGoogle::start().await;
        g.set_consent(Consent::only(&[GMAIL_READONLY]));
        let tokens = code_flow(
            &g,
            &[
                OPENID,
                USERINFO_EMAIL,
                USERINFO_PROFILE,
                GMAIL_READONLY,
                GMAIL_SEND,
            ],
        )
        .await;
        let scope: BTreeSet<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
        assert_eq!(
            scope,
            [OPENID, USERINFO_EMAIL, USERINFO_PROFILE, GMAIL_READONLY].into()
        );
        let at = tokens["access_token"].as_str().unwrap();
        let id_token = tokens["id_token"].as_str().unwrap();
        let payload = id_token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&b64url_decode(payload).unwrap()).unwrap();
        assert_eq!(claims["nonce"], "n0nce");

        let list = http()
            .get(format!("{}/gmail/v1/users/me/messages", g.api_url()))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 200);
        let list: Value = list.json().await.unwrap();
        assert_eq!(list["messages"].as_array().unwrap().len(), 2);

        let raw = b64url(b"To: bob@example.com\r\nSubject: hi\r\n\r\nhello");
        let send = http()
            .post(format!("{}/gmail/v1/users/me/messages/send", g.api_url()))
            .bearer_auth(at)
            .json(&json!({"raw": raw}))
            .send()
            .await
            .unwrap();
        assert_eq!(send.status(), 403);
        let body: Value = send.json().await.unwrap();
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert!(g.sent_messages().is_empty());

        let me = http()
            .get(g.userinfo_url())
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["sub"], g.user().sub.as_str());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fake_refreshes_expires_and_refuses_revoked_tokens() {
        let g = FakeGoogle::start().await;
        let rt = g.issue_refresh_token(
            "app.apps.googleusercontent.com",
            "app-secret",
            &[CALENDAR_READONLY],
        );
        let refresh = |secret: &'static str| {
            http()
                .post(g.token_url())
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("client_id", "app.apps.googleusercontent.com"),
                    ("client_secret", secret),
                ])
                .send()
        };
        assert_eq!(refresh("wrong").await.unwrap().status(), 401);
        let ok: Value = refresh("app-secret").await.unwrap().json().await.unwrap();
        assert_eq!(ok["scope"], CALENDAR_READONLY);
        let at = ok["access_token"].as_str().unwrap().to_string();
        let cal = |t: String| {
            http()
                .get(format!(
                    "{}/calendar/v3/calendars/primary/events",
                    g.api_url()
                ))
                .bearer_auth(t)
                .send()
        };
        assert_eq!(cal(at.clone()).await.unwrap().status(), 200);
        g.expire_access_tokens();
        assert_eq!(cal(at).await.unwrap().status(), 401);
        g.revoke_refresh_token(&rt);
        let refused = refresh("app-secret").await.unwrap();
        assert_eq!(refused.status(), 400);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(g.refresh_count(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fake_people_api_needs_field_masks_and_etags() {
        let g = FakeGoogle::start().await;
        let rt = g.issue_refresh_token("app", "s", &[CONTACTS]);
        let tok: Value = http()
            .post(g.token_url())
            .basic_auth("app", Some("s"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let at = tok["access_token"].as_str().unwrap();
        let base = g.api_url();
        let no_mask = http()
            .get(format!("{base}/v1/people/me/connections"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(no_mask.status(), 400);
        let person: Value = http()
            .get(format!(
                "{base}/v1/people/{}?personFields=names",
                seed::CONTACT_ID
            ))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(person.get("emailAddresses").is_none());
        let etag = person["etag"].as_str().unwrap();
        let updated = http()
            .patch(format!(
                "{base}/v1/people/{}:updateContact?updatePersonFields=names",
                seed::CONTACT_ID
            ))
            .bearer_auth(at)
            .json(&json!({"etag": etag, "names": [{"givenName": "Amazing"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(updated.status(), 200);
        let deleted = http()
            .delete(format!(
                "{base}/v1/people/{}:deleteContact",
                seed::CONTACT_ID
            ))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200);
        assert!(g.with(|s| s.contacts.is_empty()));
    }

    #[test]
    fn mime_parsing_decodes_headers_and_bodies() {
        let mime = "To: Bob <bob@example.com>\r\nSubject: =?UTF-8?B?SGVsbG8gw6lsw6h2ZQ==?=\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGkgdGhlcmU=\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>Hi there</p>\r\n--b1--\r\n";
        let (headers, body) = parse_mime(mime);
        let subject = headers.iter().find(|(k, _)| k == "Subject").unwrap();
        assert_eq!(subject.1, "Hello élève");
        assert_eq!(body, "Hi there");
    }
}
