//! The Google upstream through the `oauth2` crate: authorization URL, code exchange,
//! refresh (coalesced per account), userinfo, and authenticated API calls. Google's tokens
//! are sealed at rest under the master key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope as GScope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::GoogleSettings;
use crate::crypto::seal::SealKey;
use crate::domain::google::parse_google_scopes;
use crate::store::google::{self as store, GoogleAccountRow};
use crate::store::Store;

/// Google's token response carries an ID token besides the standard fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type GoogleTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type GoogleOAuth = oauth2::Client<
    BasicErrorResponse,
    GoogleTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a call to Google failed.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("Google refused the grant ({0})")]
    Refused(String),
    #[error("Google could not be reached")]
    Unreachable,
    #[error("Google answered something unexpected: {0}")]
    Protocol(String),
    #[error("the Google account needs to be connected again")]
    NeedsReauth,
    #[error("Google is not configured")]
    NotConfigured,
    #[error("database error: {0}")]
    Store(String),
}

/// Tokens from a code exchange or refresh; `Debug` hides them.
pub struct GoogleTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<i64>,
    /// Full scope URLs; `None` when Google left `scope` out (= as requested, RFC 6749 §5.1).
    pub scopes: Option<Vec<String>>,
    pub id_token: Option<String>,
}

impl std::fmt::Debug for GoogleTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GoogleTokens(scopes: {:?}, expires_in: {:?})",
            self.scopes, self.expires_in
        )
    }
}

/// Whose Google link a sealed row is.
#[derive(Clone, Copy)]
pub struct Identity<'a> {
    pub user_id: &'a str,
    pub sub: &'a str,
    pub email: &'a str,
}

/// OpenID userinfo.
#[derive(Debug, Clone, Deserialize)]
pub struct GoogleUser {
    pub sub: String,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub hd: Option<String>,
}

/// A new authorization request: where to send the browser and what to remember.
pub struct AuthStart {
    pub url: url::Url,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

pub struct Google {
    pub settings: GoogleSettings,
    client_id: String,
    client_secret: SecretString,
    http: reqwest::Client,
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Seal contexts bind each sealed value to its account and purpose.
fn ctx(purpose: &str, user_id: &str) -> String {
    format!("google-{purpose}:{user_id}")
}

impl Google {
    /// `None` without a configured client id.
    pub fn new(settings: &GoogleSettings) -> Result<Option<Google>, String> {
        let Some(client_id) = settings.client_id.clone() else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            // Never follow redirects from an upstream (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Some(Google {
            client_secret: settings
                .client_secret
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
            settings: settings.clone(),
            client_id,
            http,
            refresh_locks: Mutex::new(HashMap::new()),
        }))
    }

    fn oauth(
        &self,
        client_id: &str,
        client_secret: &str,
        redirect: Option<&str>,
    ) -> Result<GoogleOAuth, GoogleError> {
        let auth = AuthUrl::new(self.settings.auth_url.clone())
            .map_err(|e| GoogleError::Protocol(e.to_string()))?;
        let token = TokenUrl::new(self.settings.token_url.clone())
            .map_err(|e| GoogleError::Protocol(e.to_string()))?;
        let mut client: GoogleOAuth = oauth2::Client::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.to_string()))
            .set_auth_uri(auth)
            .set_token_uri(token);
        if let Some(r) = redirect {
            client = client.set_redirect_uri(
                RedirectUrl::new(r.to_string())
                    .map_err(|e| GoogleError::Protocol(e.to_string()))?,
            );
        }
        Ok(client)
    }

    /// Authorization code + PKCE + state + nonce, offline, incremental (DESIGN.md).
    pub fn start(&self, redirect_uri: &str, scopes: &[String]) -> Result<AuthStart, GoogleError> {
        let client = self.oauth(
            &self.client_id,
            self.client_secret.expose_secret(),
            Some(redirect_uri),
        )?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| GScope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("include_granted_scopes", "true")
            .add_extra_param("prompt", "consent")
            .add_extra_param("nonce", nonce.clone())
            .url();
        Ok(AuthStart {
            url,
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce,
        })
    }

    fn tokens(r: GoogleTokenResponse) -> GoogleTokens {
        GoogleTokens {
            access_token: SecretString::from(r.access_token().secret().clone()),
            refresh_token: r
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone())),
            expires_in: r.expires_in().map(|d| d.as_secs() as i64),
            scopes: r
                .scopes()
                .map(|v| v.iter().flat_map(|s| parse_google_scopes(s)).collect()),
            id_token: r.extra_fields().id_token.clone(),
        }
    }

    fn map_error<E: std::error::Error>(e: RequestTokenError<E, BasicErrorResponse>) -> GoogleError {
        match e {
            RequestTokenError::ServerResponse(r) => match r.error() {
                BasicErrorResponseType::InvalidGrant => {
                    GoogleError::Refused("invalid_grant".into())
                }
                BasicErrorResponseType::InvalidClient => {
                    GoogleError::Refused("invalid_client".into())
                }
                other => GoogleError::Refused(other.as_ref().to_string()),
            },
            RequestTokenError::Request(_) => GoogleError::Unreachable,
            RequestTokenError::Parse(e, _) => GoogleError::Protocol(e.to_string()),
            RequestTokenError::Other(e) => GoogleError::Protocol(e),
        }
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<GoogleTokens, GoogleError> {
        let client = self.oauth(
            &self.client_id,
            self.client_secret.expose_secret(),
            Some(redirect_uri),
        )?;
        client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map(Self::tokens)
            .map_err(Self::map_error)
    }

    /// Refreshes with the given Google client (ours, or a native-auth application's).
    pub async fn refresh_with(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<GoogleTokens, GoogleError> {
        let client = self.oauth(client_id, client_secret, None)?;
        client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .request_async(&self.http)
            .await
            .map(Self::tokens)
            .map_err(Self::map_error)
    }

    pub async fn userinfo(&self, access_token: &str) -> Result<GoogleUser, GoogleError> {
        let res = self
            .http
            .get(&self.settings.userinfo_url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|_| GoogleError::Unreachable)?;
        if !res.status().is_success() {
            return Err(GoogleError::Refused(format!(
                "userinfo answered {}",
                res.status().as_u16()
            )));
        }
        res.json()
            .await
            .map_err(|e| GoogleError::Protocol(e.to_string()))
    }

    /// One authenticated API call; returns Google's status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        access_token: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), GoogleError> {
        let mut req = self.http.request(method, url).bearer_auth(access_token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|_| GoogleError::Unreachable)?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|_| GoogleError::Unreachable)?;
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
        };
        Ok((status, json))
    }

    pub fn seal_row(
        seal: &SealKey,
        who: &Identity<'_>,
        tokens: &GoogleTokens,
        granted: &[String],
        app_client: Option<(&str, &str)>,
        previous: Option<&GoogleAccountRow>,
        now: i64,
    ) -> GoogleAccountRow {
        let Identity {
            user_id,
            sub,
            email,
        } = *who;
        // Google sends a refresh token only on first consent; keep the one we hold otherwise.
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|r| seal.seal(r.expose_secret().as_bytes(), &ctx("refresh", user_id)))
            .or_else(|| previous.and_then(|p| p.refresh_token_sealed.clone()));
        GoogleAccountRow {
            user_id: user_id.to_string(),
            google_sub: sub.to_string(),
            email: email.to_string(),
            oauth_client_id: app_client.map(|(id, _)| id.to_string()),
            oauth_client_secret_sealed: app_client
                .map(|(_, s)| seal.seal(s.as_bytes(), &ctx("client-secret", user_id))),
            refresh_token_sealed: refresh,
            access_token_sealed: Some(seal.seal(
                tokens.access_token.expose_secret().as_bytes(),
                &ctx("access", user_id),
            )),
            access_expires_at: Some(now + tokens.expires_in.unwrap_or(3600)),
            granted_scopes: granted.join(" "),
            needs_reauth: false,
            created_at: previous.map(|p| p.created_at).unwrap_or(now),
            updated_at: now,
        }
    }

    fn lock_for(&self, user_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.refresh_locks.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        locks.entry(user_id.to_string()).or_default().clone()
    }

    /// A usable Google access token for the account: the stored one while it lasts, else a
    /// refreshed one. Concurrent callers for one account share a single refresh.
    pub async fn access_token(
        &self,
        store: &Store,
        seal: &SealKey,
        user_id: &str,
    ) -> Result<SecretString, GoogleError> {
        if let Some(t) = self.stored_token(store, seal, user_id).await? {
            return Ok(t);
        }
        let lock = self.lock_for(user_id);
        let _guard = lock.lock().await;
        // Another task may have refreshed while we waited.
        if let Some(t) = self.stored_token(store, seal, user_id).await? {
            return Ok(t);
        }
        let row = load(store, user_id)
            .await?
            .ok_or(GoogleError::NeedsReauth)?;
        let refresh = row
            .refresh_token_sealed
            .as_deref()
            .and_then(|s| seal.open(s, &ctx("refresh", user_id)).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(GoogleError::NeedsReauth)?;
        let (cid, csecret) = match (&row.oauth_client_id, &row.oauth_client_secret_sealed) {
            (Some(id), Some(sealed)) => {
                let secret = seal
                    .open(sealed, &ctx("client-secret", user_id))
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(GoogleError::NeedsReauth)?;
                (id.clone(), secret)
            }
            _ => (
                self.client_id.clone(),
                self.client_secret.expose_secret().to_string(),
            ),
        };
        let now = chrono::Utc::now().timestamp();
        match self.refresh_with(&cid, &csecret, &refresh).await {
            Ok(tokens) => {
                let access = seal.seal(
                    tokens.access_token.expose_secret().as_bytes(),
                    &ctx("access", user_id),
                );
                let rotated = tokens
                    .refresh_token
                    .as_ref()
                    .map(|r| seal.seal(r.expose_secret().as_bytes(), &ctx("refresh", user_id)));
                let expires = now + tokens.expires_in.unwrap_or(3600);
                let uid = user_id.to_string();
                store
                    .run(move |c| {
                        store::update_tokens(c, &uid, &access, expires, rotated.as_deref(), now)
                            .map_err(|e| GoogleError::Store(e.to_string()))
                    })
                    .await?;
                tracing::info!(user_id, "refreshed the Google access token");
                // Google may hand back less than before (the user withdrew some access).
                if let Some(scopes) = tokens.scopes.clone() {
                    let uid = user_id.to_string();
                    let granted = scopes.join(" ");
                    store
                        .run(move |c| {
                            store::set_granted_scopes(c, &uid, &granted)
                                .map_err(|e| GoogleError::Store(e.to_string()))
                        })
                        .await?;
                }
                Ok(tokens.access_token)
            }
            // Only a refused grant means the user must connect again; anything else
            // (an outage, a 500) is temporary.
            Err(GoogleError::Refused(why))
                if why == "invalid_grant"
                    || why == "invalid_client"
                    || why == "unauthorized_client" =>
            {
                let uid = user_id.to_string();
                store
                    .run(move |c| {
                        store::mark_needs_reauth(c, &uid, now)
                            .map_err(|e| GoogleError::Store(e.to_string()))
                    })
                    .await?;
                tracing::warn!(user_id, %why, "Google refused the refresh token; the account needs re-authentication");
                Err(GoogleError::NeedsReauth)
            }
            Err(GoogleError::Refused(why)) => {
                tracing::warn!(user_id, %why, "Google failed to refresh a token; treating it as temporary");
                Err(GoogleError::Unreachable)
            }
            Err(e) => Err(e),
        }
    }

    async fn stored_token(
        &self,
        store: &Store,
        seal: &SealKey,
        user_id: &str,
    ) -> Result<Option<SecretString>, GoogleError> {
        let Some(row) = load(store, user_id).await? else {
            return Err(GoogleError::NeedsReauth);
        };
        if row.needs_reauth {
            return Err(GoogleError::NeedsReauth);
        }
        let now = chrono::Utc::now().timestamp();
        // A minute of margin so a token does not expire in flight.
        if row.access_expires_at.is_some_and(|exp| exp > now + 60) {
            if let Some(t) = row
                .access_token_sealed
                .as_deref()
                .and_then(|s| seal.open(s, &ctx("access", user_id)).ok())
                .and_then(|b| String::from_utf8(b).ok())
            {
                return Ok(Some(SecretString::from(t)));
            }
        }
        Ok(None)
    }

    /// Forgets the stored access token after Google said 401, so the next call refreshes.
    pub async fn expire_access(&self, store: &Store, user_id: &str) -> Result<(), GoogleError> {
        let uid = user_id.to_string();
        store
            .run(move |c| {
                let now = chrono::Utc::now().timestamp();
                store::update_tokens(c, &uid, "", 0, None, now)
                    .map(|_| ())
                    .map_err(|e| GoogleError::Store(e.to_string()))
            })
            .await
    }
}

impl From<crate::store::StoreError> for GoogleError {
    fn from(e: crate::store::StoreError) -> Self {
        GoogleError::Store(e.to_string())
    }
}

async fn load(store: &Store, user_id: &str) -> Result<Option<GoogleAccountRow>, GoogleError> {
    let uid = user_id.to_string();
    store
        .run(move |c| store::find_by_user(c, &uid).map_err(|e| GoogleError::Store(e.to_string())))
        .await
}

/// The `nonce` claim of an ID token that came straight from Google's token endpoint over
/// TLS (OIDC Core §3.1.3.7 allows TLS in place of the signature check there).
pub fn id_token_nonce(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("nonce")?.as_str().map(str::to_string)
}
