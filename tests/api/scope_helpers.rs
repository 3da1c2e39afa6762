//! Fixtures for the scope-enforcement tests: resource API calls, introspection and revocation
//! requests, the expected refusal texts (written out here, independently of the server's own
//! formatter), hand-made JWTs, and a second server instance on an existing database.
#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::{Method, Response, StatusCode};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::helpers::*;
use scopegate::crypto::keys::{self, KeyRing, LoadedKey};
use scopegate::crypto::seal::SealKey;
use scopegate::domain::api::ApiRoute;
use scopegate::domain::token::Lifetimes;
use scopegate::oauth::signing::Signing;
use scopegate::startup::Application;

/// The catalogue's resource scopes (everything but the OIDC identity scopes), in order.
pub const RESOURCE_SCOPES: &[&str] = &[
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

/// The id put in place of `{id}` in a route pattern.
pub const SOME_ID: &str = "sg-test-object-1";

/// `names`, in catalogue order, without duplicates.
pub fn catalogue_order<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let names: Vec<&str> = names.into_iter().collect();
    CATALOGUE
        .iter()
        .copied()
        .filter(|c| names.contains(c))
        .collect()
}

/// `['a', 'b']`, as the Nylas SDKs print scope lists.
pub fn python_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The exact 403 body for a token holding `token_scopes` at an operation needing `any_of`.
pub fn insufficient_scope_body(token_scopes: &[&str], any_of: &[&str]) -> String {
    format!(
        "{{\"message\": \"You do not have access to the required scopes. You provided a token which has the following scopes {}. You would need a token with at least one of the following scopes: {}\", \"type\": \"api_error\"}}",
        python_list(&catalogue_order(token_scopes.iter().copied())),
        python_list(&catalogue_order(any_of.iter().copied())),
    )
}

/// The exact 403 `WWW-Authenticate` (RFC 6750 §3.1) for an operation needing `any_of`.
pub fn insufficient_scope_challenge(any_of: &[&str]) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\"",
        catalogue_order(any_of.iter().copied()).join(" ")
    )
}

/// The route's path with `{id}` filled in.
pub fn concrete_path(route: &ApiRoute) -> String {
    route.path.replace("{id}", SOME_ID)
}

/// `Basic base64(<token>:<password>)`, the Nylas SDKs' way of sending a token (password empty).
pub fn basic_token(token: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{token}:{password}")))
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A raw request case: what it is, content type, Authorization header, body.
pub type RawCase<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<u8>);

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub www_authenticate: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub async fn read(resp: Response) -> Answer {
        let status = resp.status();
        let h = |name: &str| header(&resp, name).map(str::to_string);
        let www_authenticate = h("www-authenticate");
        let content_type = h("content-type");
        let cache_control = h("cache-control");
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            www_authenticate,
            content_type,
            cache_control,
            text,
            body,
        }
    }

    /// A Nylas-shaped error: `{"message": <non-empty string>, "type": kind}`, nothing else.
    #[track_caller]
    pub fn assert_nylas_error(&self, status: u16, kind: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert!(
            self.content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "JSON content type, got {:?}",
            self.content_type
        );
        assert_eq!(
            self.body["type"].as_str(),
            Some(kind),
            "type; body: {}",
            self.text
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a message; body: {}",
            self.text
        );
        let expected: std::collections::HashSet<String> =
            ["message", "type"].iter().map(|k| k.to_string()).collect();
        assert_eq!(
            keys(&self.body),
            expected,
            "only message and type: {}",
            self.text
        );
    }

    /// RFC 6750 §3.1 `invalid_token`: 401, the error in the challenge, a Nylas-shaped body.
    #[track_caller]
    pub fn assert_invalid_token(&self) {
        self.assert_nylas_error(401, "invalid_request_error");
        let www = self.www_authenticate.as_deref().unwrap_or("");
        assert!(
            www.starts_with("Bearer ") && www.contains("error=\"invalid_token\""),
            "WWW-Authenticate with error=\"invalid_token\", got {www:?}"
        );
    }

    /// Exactly `{"active": false}` (RFC 7662 §2.2).
    #[track_caller]
    pub fn assert_inactive(&self) {
        assert_eq!(self.status, StatusCode::OK, "status; body: {}", self.text);
        assert_eq!(
            self.body,
            serde_json::json!({"active": false}),
            "body: {}",
            self.text
        );
    }

    /// An RFC 6749 §5.2-shaped error, `Cache-Control: no-store`.
    #[track_caller]
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(
            self.body["error"].as_str(),
            Some(error),
            "error; body: {}",
            self.text
        );
        assert!(
            self.body["error_description"].is_string(),
            "error_description; body: {}",
            self.text
        );
        assert!(
            self.cache_control
                .as_deref()
                .unwrap_or("")
                .contains("no-store"),
            "Cache-Control: no-store, got {:?}",
            self.cache_control
        );
    }

    /// A 4xx with an RFC 6749 §5.2 JSON error, or a 200 that tells nothing: never a 5xx,
    /// never a plain-text error.
    #[track_caller]
    pub fn assert_refused_without_500(&self, what: &str) {
        assert!(
            self.status.is_client_error() || self.status == StatusCode::OK,
            "{what}: expected a 4xx (or 200), got {}: {}",
            self.status,
            self.text
        );
        if self.status.is_client_error() {
            assert!(
                self.content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("application/json")),
                "{what}: a JSON error, got {} {:?}: {}",
                self.status,
                self.content_type,
                self.text
            );
            assert!(self.body["error"].is_string(), "{what}: {}", self.text);
            assert!(
                self.body["error_description"].is_string(),
                "{what}: {}",
                self.text
            );
        } else {
            assert!(
                self.body == serde_json::json!({"active": false}) || self.text.is_empty(),
                "{what}: a 200 may only say nothing (revoke) or {{\"active\": false}}: {}",
                self.text
            );
        }
    }
}

impl TestApp {
    /// One resource API request; `authorization` is the whole header value. POST and PUT
    /// carry an empty JSON object.
    pub async fn call_api(&self, method: &str, path: &str, authorization: Option<&str>) -> Answer {
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let with_body = method == Method::POST || method == Method::PUT;
        let mut req = self.api.request(method, self.url(path));
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        if with_body {
            req = req.header("Content-Type", "application/json").body("{}");
        }
        Answer::read(req.send().await.expect("resource API request")).await
    }

    /// `GET /account` with a bearer token.
    pub async fn get_account(&self, access_token: &str) -> Answer {
        self.call_api("GET", "/account", Some(&bearer(access_token)))
            .await
    }

    /// A form POST to `path` authenticated as `auth` (Basic or in the body).
    pub async fn post_client_form(
        &self,
        path: &str,
        auth: &ClientAuth,
        form: &[(&str, &str)],
    ) -> Answer {
        let mut pairs: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match auth {
            ClientAuth::Post(id, secret) => {
                pairs.push(("client_id".into(), id.clone()));
                pairs.push(("client_secret".into(), secret.clone()));
            }
            ClientAuth::Public(id) => pairs.push(("client_id".into(), id.clone())),
            ClientAuth::Basic(..) | ClientAuth::None => {}
        }
        let body = serde_urlencoded::to_string(&pairs).expect("form encodes");
        let mut req = self
            .api
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let ClientAuth::Basic(id, secret) = auth {
            req = req.header("Authorization", basic_auth(id, secret));
        }
        Answer::read(req.send().await.expect("POST")).await
    }

    /// A POST to `path` with a raw body, content type and Authorization header.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req = self.api.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        Answer::read(req.send().await.expect("POST")).await
    }

    /// `POST /oauth/introspect` with `token`, the client authenticating its default way.
    pub async fn introspect(&self, client: &TestClient, token: &str) -> Answer {
        self.post_client_form("/oauth/introspect", &client.auth(), &[("token", token)])
            .await
    }

    /// `POST /oauth/revoke` with `token`, the client authenticating its default way.
    pub async fn revoke(&self, client: &TestClient, token: &str) -> Answer {
        self.post_client_form("/oauth/revoke", &client.auth(), &[("token", token)])
            .await
    }

    /// A client_credentials access token for `scope` (`sub` is the client).
    pub async fn client_token(&self, client: &TestClient, scope: &str) -> String {
        self.client_credentials(client, Some(scope))
            .await
            .tokens()
            .access_token
    }

    /// The server's current signing key ring, unsealed with the test's seal key.
    pub async fn server_key_ring(&self) -> std::sync::Arc<KeyRing> {
        let settings = self.settings.clone();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let seal = match (&settings.seal_key, &settings.seal_key_file) {
                (Some(key), _) => SealKey::from_base64(key.expose_secret()),
                (None, Some(path)) => {
                    SealKey::from_base64(&std::fs::read_to_string(path).expect("the seal key file"))
                }
                (None, None) => panic!("the test app has neither seal_key nor seal_key_file"),
            }
            .expect("a valid seal key");
            let lifetimes = Lifetimes {
                access: settings.access_token_ttl_secs,
                refresh: settings.refresh_token_ttl_secs,
                code: settings.code_ttl_secs,
                id_token: settings.id_token_ttl_secs,
            };
            let mut conn = store.conn().expect("a database connection");
            Signing::load(&mut conn, seal, lifetimes, now())
                .expect("the server's signing keys")
                .ring()
        })
        .await
        .expect("key ring task")
    }

    /// `claims` signed as an access token with the server's own current key.
    pub async fn sign_with_server_key(&self, claims: &Value) -> String {
        self.server_key_ring()
            .await
            .sign(claims, "at+jwt")
            .expect("signing")
    }
}

/// The claims of a JWT, not verified.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

pub fn jwt_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("a kid")
}

/// `claims` signed as an access token by a fresh Ed25519 key that claims to be `kid`.
pub fn sign_with_foreign_key(kid: &str, claims: &Value) -> String {
    let generated = keys::generate().expect("an Ed25519 key");
    let ring = KeyRing::new(vec![LoadedKey {
        kid: kid.to_string(),
        pkcs8: Some(generated.pkcs8),
        public_x: generated.public_x,
        created_at: now(),
        retired_at: None,
    }])
    .expect("a key ring");
    ring.sign(claims, "at+jwt").expect("signing")
}

/// The token with one character in the middle of its signature changed.
pub fn with_flipped_signature(token: &str) -> String {
    let sig_start = token.rfind('.').expect("a JWT") + 1;
    let i = sig_start + (token.len() - sig_start) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// A fresh base64 32-byte seal key.
pub fn fresh_seal_key() -> String {
    SealKey::generate().to_base64()
}

/// Another Scopegate process on an existing database (a second instance behind the same load
/// balancer): its own listener, the settings given.
pub struct Instance {
    pub address: String,
    pub api: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Instance {
    pub async fn start(settings: Settings) -> Instance {
        let application = Application::build(settings)
            .await
            .unwrap_or_else(|e| panic!("Application::build failed: {e:?}"));
        let address = format!("http://127.0.0.1:{}", application.port());
        let server = tokio::spawn(async move {
            let _ = application.run_until_stopped().await;
        });
        let api = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        Instance {
            address,
            api,
            server,
        }
    }

    pub async fn get_account(&self, access_token: &str) -> Answer {
        let resp = self
            .api
            .get(format!("{}/account", self.address))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("GET /account");
        Answer::read(resp).await
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> Answer {
        let resp = self
            .api
            .post(format!("{}/oauth/introspect", self.address))
            .header(
                "Authorization",
                basic_auth(&client.client_id, client.secret()),
            )
            .form(&[("token", token)])
            .send()
            .await
            .expect("POST /oauth/introspect");
        Answer::read(resp).await
    }

    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> Answer {
        let resp = self
            .api
            .post(format!("{}/oauth/token", self.address))
            .header(
                "Authorization",
                basic_auth(&client.client_id, client.secret()),
            )
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .expect("POST /oauth/token");
        Answer::read(resp).await
    }
}
