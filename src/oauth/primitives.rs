//! oxide-auth's primitives over diesel: one per-request struct that is the `Registrar`,
//! `Authorizer`, `Issuer` and grant extensions for a single flow run.
//!
//! oxide-auth reports failures as `()` or a bare error kind; every refusal here also leaves a
//! [`Refusal`] note so the handler can answer with the RFC code and a real description.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use oxide_auth::code_grant::accesstoken::{
    Extension as AccessTokenExtension, Request as AccessTokenRequest,
};
use oxide_auth::code_grant::authorization::{
    Extension as AuthorizationExtension, Request as AuthorizationRequest,
};
use oxide_auth::code_grant::client_credentials::{
    Extension as ClientCredentialsExtension, Request as ClientCredentialsRequest,
};
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};
use oxide_auth::primitives::scope::Scope as OxideScope;
use oxide_auth::primitives::{authorizer::Authorizer, issuer::Issuer};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::crypto::keys::KeyRing;
use crate::crypto::secret::{self, random_id, OpaqueToken};
use crate::domain::client::{ClientId, RedirectUri};
use crate::domain::scope::ScopeSet;
use crate::domain::token::{
    code_status, refresh_status, AccessClaims, CodeStatus, Lifetimes, RefreshStatus,
    AUTH_CODE_PREFIX, REFRESH_TOKEN_PREFIX,
};
use crate::error::{OAuthError, OAuthErrorKind};
use crate::store::clients::ClientRow;
use crate::store::grants::{self, CodeRow, GrantRow, RefreshRow};
use crate::store::{clients, DbConnection};

/// Why a primitive said no, in RFC terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: OAuthErrorKind,
    pub description: String,
}

/// A client as the flows need it.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_digest: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub allowed_scopes: ScopeSet,
    pub pkce_required: bool,
    pub is_resource_server: bool,
}

impl Client {
    pub fn from_row(row: ClientRow) -> Client {
        Client {
            redirect_uris: row
                .redirect_uris
                .lines()
                .filter_map(|u| RedirectUri::parse(u).ok())
                .collect(),
            // Scopes dropped from the catalogue since registration simply stop being allowed.
            allowed_scopes: row
                .allowed_scopes
                .split(' ')
                .filter_map(|s| ScopeSet::parse(s).ok())
                .fold(ScopeSet::default(), |a, b| a.union(&b)),
            id: row.id,
            name: row.name,
            secret_digest: row.secret_digest,
            pkce_required: row.pkce_required,
            is_resource_server: row.is_resource_server,
        }
    }

    pub fn is_public(&self) -> bool {
        self.secret_digest.is_none()
    }

    /// PKCE is required for public clients always, for confidential ones by default.
    pub fn needs_pkce(&self) -> bool {
        self.is_public() || self.pkce_required
    }
}

/// What the issuer needs to know that is not a per-request choice.
pub struct IssueContext {
    pub issuer: String,
    pub lifetimes: Lifetimes,
    pub ring: Arc<KeyRing>,
}

/// A code consumed by `extract`, remembered for `issue` and for the ID token.
#[derive(Clone, Debug)]
pub struct ConsumedCode {
    pub grant_id: String,
    pub user_id: String,
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
}

/// What `issue` / `refresh` produced, for the response and the audit log.
#[derive(Clone, Debug)]
pub struct Issued {
    pub grant_id: String,
    pub subject: String,
    pub client_id: String,
    pub scope: ScopeSet,
    pub access_token_exp: i64,
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
    pub refresh_issued: bool,
}

/// Which flow the primitives serve; decides a few registrar answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    Authorization,
    AccessToken,
    Refresh,
    ClientCredentials,
}

#[derive(Serialize, Deserialize)]
enum StoredValue {
    Public(Option<String>),
    Private(Option<String>),
}

/// The per-request primitives. `now` is fixed for the request.
pub struct Primitives<'a> {
    conn: RefCell<&'a mut DbConnection>,
    ctx: &'a IssueContext,
    now: i64,
    kind: FlowKind,
    clients: RefCell<HashMap<String, Option<Client>>>,
    refusal: RefCell<Option<Refusal>>,
    /// Whether the authorization request carried `redirect_uri` (RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    /// The sign-in time of the user authorizing, for `auth_time`.
    pub auth_time: Option<i64>,
    consumed: Option<ConsumedCode>,
    pending_refresh: RefCell<Option<RefreshRow>>,
    pub issued: Option<Issued>,
    pub store_errors: RefCell<Vec<String>>,
}

impl<'a> Primitives<'a> {
    pub fn new(
        conn: &'a mut DbConnection,
        ctx: &'a IssueContext,
        now: i64,
        kind: FlowKind,
    ) -> Self {
        Primitives {
            conn: RefCell::new(conn),
            ctx,
            now,
            kind,
            clients: RefCell::new(HashMap::new()),
            refusal: RefCell::new(None),
            redirect_uri_given: true,
            auth_time: None,
            consumed: None,
            pending_refresh: RefCell::new(None),
            issued: None,
            store_errors: RefCell::new(Vec::new()),
        }
    }

    pub fn now(&self) -> i64 {
        self.now
    }

    /// Runs `f` with the connection; a database error is recorded and becomes `Err(())`.
    fn db<T>(&self, f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T>) -> Result<T, ()> {
        let mut conn = self.conn.borrow_mut();
        f(&mut conn).map_err(|e| {
            tracing::error!(error = %e, "database error inside an OAuth flow");
            self.store_errors.borrow_mut().push(e.to_string());
        })
    }

    /// Lets the handler use the same connection between flow runs.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut DbConnection) -> T) -> T {
        let mut conn = self.conn.borrow_mut();
        f(&mut conn)
    }

    fn refuse(&self, kind: OAuthErrorKind, description: impl Into<String>) {
        let mut slot = self.refusal.borrow_mut();
        if slot.is_none() {
            *slot = Some(Refusal {
                kind,
                description: description.into(),
            });
        }
    }

    /// The first refusal recorded during the run, if any.
    pub fn take_refusal(&self) -> Option<Refusal> {
        self.refusal.borrow_mut().take()
    }

    pub fn had_store_error(&self) -> bool {
        !self.store_errors.borrow().is_empty()
    }

    /// Looks a client up once per request.
    #[allow(clippy::result_unit_err)] // oxide-auth primitives speak `Result<_, ()>`
    pub fn client(&self, id: &str) -> Result<Option<Client>, ()> {
        if let Some(c) = self.clients.borrow().get(id) {
            return Ok(c.clone());
        }
        let found = if ClientId::parse(id).is_ok() {
            self.db(|c| clients::find(c, id))?.map(Client::from_row)
        } else {
            None
        };
        self.clients
            .borrow_mut()
            .insert(id.to_string(), found.clone());
        Ok(found)
    }

    fn sign_access(&self, claims: &AccessClaims) -> Result<String, ()> {
        self.ctx.ring.sign(claims, "at+jwt").map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            self.store_errors.borrow_mut().push(e.to_string());
        })
    }

    fn access_claims(
        &self,
        subject: &str,
        client_id: &str,
        scope: &ScopeSet,
        grant_id: &str,
        auth_time: Option<i64>,
    ) -> AccessClaims {
        AccessClaims {
            iss: self.ctx.issuer.clone(),
            sub: subject.to_string(),
            aud: self.ctx.issuer.clone(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            iat: self.now,
            exp: self.now + self.ctx.lifetimes.access,
            jti: random_id("", 16),
            gid: grant_id.to_string(),
            auth_time,
        }
    }

    fn new_refresh(&self, grant_id: &str, scope: &ScopeSet) -> Result<OpaqueToken, ()> {
        let token = OpaqueToken::generate(REFRESH_TOKEN_PREFIX);
        let row = RefreshRow {
            digest: token.digest(),
            grant_id: grant_id.to_string(),
            scopes: scope.to_string(),
            expires_at: self.now + self.ctx.lifetimes.refresh,
            used_at: None,
            created_at: self.now,
        };
        self.db(|c| grants::insert_refresh(c, &row))?;
        Ok(token)
    }

    fn until(&self, ts: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(ts, 0).single().unwrap_or_else(Utc::now)
    }

    fn revoke_family(&self, grant_id: &str) {
        let now = self.now;
        let _ = self.db(|c| grants::revoke_grant(c, grant_id, now));
    }
}

/// Our scope set as oxide-auth's `Scope` (never fails: catalogue names are scope-tokens).
pub fn to_oxide_scope(set: &ScopeSet) -> OxideScope {
    #[allow(clippy::expect_used)]
    set.to_string()
        .parse()
        .expect("catalogue names are valid scope-tokens")
}

/// oxide-auth's `Scope` as our set; it may hold comma-separated names, so re-split.
pub fn from_oxide_scope(scope: &OxideScope) -> Result<ScopeSet, crate::domain::scope::ScopeError> {
    ScopeSet::parse(&scope.iter().collect::<Vec<_>>().join(" "))
}

fn extensions_to_json(ext: &Extensions) -> String {
    let mut map: HashMap<String, StoredValue> = HashMap::new();
    for (k, v) in ext.public() {
        map.insert(k.to_string(), StoredValue::Public(v.map(str::to_string)));
    }
    for (k, v) in ext.private() {
        map.insert(k.to_string(), StoredValue::Private(v.map(str::to_string)));
    }
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

fn extensions_from_json(json: &str) -> Extensions {
    let map: HashMap<String, StoredValue> = serde_json::from_str(json).unwrap_or_default();
    let mut ext = Extensions::new();
    for (k, v) in map {
        let value = match v {
            StoredValue::Public(v) => Value::public(v),
            StoredValue::Private(v) => Value::private(v),
        };
        ext.set_raw(k, value);
    }
    ext
}

fn public_ext(ext: &Extensions, key: &str) -> Option<String> {
    ext.public()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.map(str::to_string))
}

impl Registrar for Primitives<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let client = self
            .client(&bound.client_id)
            .map_err(|()| RegistrarError::PrimitiveError)?;
        let Some(client) = client else {
            self.refuse(OAuthErrorKind::InvalidClient, "unknown client");
            return Err(RegistrarError::Unspecified);
        };
        let chosen: Option<String> = match (&bound.redirect_uri, self.kind) {
            (Some(requested), _) => client
                .redirect_uris
                .iter()
                .any(|r| r.matches(requested.as_str()))
                .then(|| requested.as_str().to_string()),
            // One registered URI may be implied (RFC 6749 §3.1.2.3); several must be named.
            (None, FlowKind::Authorization) if client.redirect_uris.len() == 1 => {
                Some(client.redirect_uris[0].as_str().to_string())
            }
            (None, FlowKind::Authorization) => None,
            (None, _) => Some(
                client
                    .redirect_uris
                    .first()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_else(|| "urn:scopegate:no-redirect".into()),
            ),
        };
        let Some(uri) = chosen else {
            self.refuse(
                OAuthErrorKind::InvalidRequest,
                "redirect_uri is missing or not registered for this client",
            );
            return Err(RegistrarError::Unspecified);
        };
        let exact = ExactUrl::new(uri).map_err(|_| RegistrarError::Unspecified)?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)),
        })
    }

    /// Requested ∩ allowed for real: unknown or not-allowed scopes are `invalid_scope`.
    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<OxideScope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = self
            .client(&bound.client_id)
            .map_err(|()| RegistrarError::PrimitiveError)?
            .ok_or(RegistrarError::Unspecified)?;
        let requested = match scope {
            None if self.kind == FlowKind::ClientCredentials => Ok(client.allowed_scopes),
            None => Err(crate::domain::scope::ScopeError::Empty),
            Some(s) => from_oxide_scope(&s).and_then(|set| {
                if set.is_empty() {
                    Err(crate::domain::scope::ScopeError::Empty)
                } else {
                    Ok(set)
                }
            }),
        };
        let requested = requested
            .and_then(|set| set.check_allowed(&client.allowed_scopes).map(|()| set))
            .map_err(|e| {
                self.refuse(OAuthErrorKind::InvalidScope, e.to_string());
                RegistrarError::Unspecified
            })?;
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope: to_oxide_scope(&requested),
        })
    }

    /// Client authentication: a digest compare in constant time; public clients send none.
    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let client = self
            .client(client_id)
            .map_err(|()| RegistrarError::PrimitiveError)?;
        let ok = match (client, passphrase) {
            (Some(c), None) => c.is_public(),
            (Some(c), Some(pass)) => match (&c.secret_digest, std::str::from_utf8(pass)) {
                (Some(digest), Ok(pass)) => secret::matches_digest(pass, digest),
                _ => false,
            },
            (None, _) => {
                // Same work as a real comparison, so unknown ids are not faster.
                let _ = secret::matches_digest("", "");
                false
            }
        };
        if ok {
            Ok(())
        } else {
            self.refuse(
                OAuthErrorKind::InvalidClient,
                "client authentication failed",
            );
            Err(RegistrarError::Unspecified)
        }
    }
}

impl Authorizer for Primitives<'_> {
    fn authorize(&mut self, grant: Grant) -> Result<String, ()> {
        let scope = from_oxide_scope(&grant.scope).map_err(|_| ())?;
        let code = OpaqueToken::generate(AUTH_CODE_PREFIX);
        let row = CodeRow {
            digest: code.digest(),
            client_id: grant.client_id.clone(),
            user_id: grant.owner_id.clone(),
            scopes: scope.to_string(),
            redirect_uri: grant.redirect_uri.to_string(),
            redirect_uri_given: self.redirect_uri_given,
            extensions: extensions_to_json(&grant.extensions),
            expires_at: self.now + self.ctx.lifetimes.code,
            used_at: None,
            grant_id: None,
            created_at: self.now,
        };
        self.db(|c| grants::insert_code(c, &row))?;
        Ok(code.reveal().to_string())
    }

    /// Consumes the code. A second use revokes what the first issued (RFC 6749 §4.1.2).
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let digest = secret::digest(code);
        let Some(row) = self.db(|c| grants::find_code(c, &digest))? else {
            self.refuse(OAuthErrorKind::InvalidGrant, "unknown authorization code");
            return Ok(None);
        };
        match code_status(row.expires_at, row.used_at, self.now) {
            CodeStatus::Replayed => {
                if let Some(gid) = &row.grant_id {
                    self.revoke_family(gid);
                }
                self.refuse(
                    OAuthErrorKind::InvalidGrant,
                    "authorization code was already used; tokens issued from it are revoked",
                );
                return Ok(None);
            }
            CodeStatus::Expired => {
                self.refuse(OAuthErrorKind::InvalidGrant, "authorization code expired");
                return Ok(None);
            }
            CodeStatus::Usable => {}
        }
        let grant_id = random_id("", 16);
        let now = self.now;
        if !self.db(|c| grants::consume_code(c, &digest, &grant_id, now))? {
            // Lost a race with a concurrent exchange of the same code: that is a replay too.
            if let Some(gid) = self
                .db(|c| grants::find_code(c, &digest))?
                .and_then(|r| r.grant_id)
            {
                self.revoke_family(&gid);
            }
            self.refuse(
                OAuthErrorKind::InvalidGrant,
                "authorization code was already used",
            );
            return Ok(None);
        }
        let extensions = extensions_from_json(&row.extensions);
        self.consumed = Some(ConsumedCode {
            grant_id,
            user_id: row.user_id.clone(),
            nonce: public_ext(&extensions, "nonce"),
            auth_time: public_ext(&extensions, "auth_time").and_then(|t| t.parse().ok()),
        });
        let scope = ScopeSet::parse(&row.scopes).map_err(|_| ())?;
        Ok(Some(Grant {
            owner_id: row.user_id,
            client_id: row.client_id,
            scope: to_oxide_scope(&scope),
            redirect_uri: Url::parse(&row.redirect_uri).map_err(|_| ())?,
            until: self.until(row.expires_at),
            extensions,
        }))
    }
}

impl Issuer for Primitives<'_> {
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let scope = from_oxide_scope(&grant.scope).map_err(|_| ())?;
        let (grant_id, user_id, nonce, auth_time) = match (self.kind, &self.consumed) {
            (FlowKind::AccessToken, Some(c)) => (
                c.grant_id.clone(),
                Some(c.user_id.clone()),
                c.nonce.clone(),
                c.auth_time,
            ),
            (FlowKind::ClientCredentials, _) => (random_id("", 16), None, None, None),
            _ => return Err(()),
        };
        let row = GrantRow {
            id: grant_id.clone(),
            client_id: grant.client_id.clone(),
            user_id: user_id.clone(),
            scopes: scope.to_string(),
            redirect_uri: user_id.as_ref().map(|_| grant.redirect_uri.to_string()),
            auth_time,
            created_at: self.now,
            last_used_at: self.now,
            revoked_at: None,
        };
        self.db(|c| grants::insert_grant(c, &row))?;
        let subject = user_id.clone().unwrap_or_else(|| grant.client_id.clone());
        let claims = self.access_claims(&subject, &grant.client_id, &scope, &grant_id, auth_time);
        let access = self.sign_access(&claims)?;
        // Client credentials get no refresh token (RFC 6749 §4.4.3).
        let refresh = match user_id {
            Some(_) => Some(self.new_refresh(&grant_id, &scope)?.reveal().to_string()),
            None => None,
        };
        self.issued = Some(Issued {
            grant_id,
            subject,
            client_id: grant.client_id,
            scope,
            access_token_exp: claims.exp,
            nonce,
            auth_time,
            refresh_issued: refresh.is_some(),
        });
        Ok(IssuedToken {
            token: access,
            refresh,
            until: self.until(claims.exp),
            token_type: TokenType::Bearer,
        })
    }

    /// Rotates: the presented refresh token is spent, a new one with the same scope takes its
    /// place (RFC 6749 §6), and the access token carries the (possibly narrowed) scope.
    fn refresh(&mut self, refresh: &str, grant: Grant) -> Result<RefreshedToken, ()> {
        let old = self.pending_refresh.borrow().clone().ok_or(())?;
        let digest = secret::digest(refresh);
        let now = self.now;
        if !self.db(|c| grants::consume_refresh(c, &digest, now))? {
            self.revoke_family(&old.grant_id);
            self.refuse(
                OAuthErrorKind::InvalidGrant,
                "refresh token was already used; the grant is revoked",
            );
            return Err(());
        }
        let family = self
            .db(|c| grants::find_grant(c, &old.grant_id))?
            .ok_or(())?;
        let scope = from_oxide_scope(&grant.scope).map_err(|_| ())?;
        let old_scope = ScopeSet::parse(&old.scopes).map_err(|_| ())?;
        let new_refresh = self.new_refresh(&old.grant_id, &old_scope)?;
        let subject = family
            .user_id
            .clone()
            .unwrap_or_else(|| family.client_id.clone());
        let claims = self.access_claims(
            &subject,
            &family.client_id,
            &scope,
            &family.id,
            family.auth_time,
        );
        let access = self.sign_access(&claims)?;
        let gid = family.id.clone();
        self.db(|c| grants::touch_grant(c, &gid, now))?;
        self.issued = Some(Issued {
            grant_id: family.id,
            subject,
            client_id: family.client_id,
            scope,
            access_token_exp: claims.exp,
            nonce: None,
            auth_time: family.auth_time,
            refresh_issued: true,
        });
        Ok(RefreshedToken {
            token: access,
            refresh: Some(new_refresh.reveal().to_string()),
            until: self.until(claims.exp),
            token_type: TokenType::Bearer,
        })
    }

    fn recover_token(&self, token: &str) -> Result<Option<Grant>, ()> {
        let issuer = &self.ctx.issuer;
        let Ok(claims) =
            self.ctx
                .ring
                .verify::<AccessClaims>(token, "at+jwt", issuer, issuer, self.now, |c| c.exp)
        else {
            return Ok(None);
        };
        let gid = claims.gid.clone();
        let jti = claims.jti.clone();
        if self.db(|c| grants::is_grant_revoked(c, &gid))?
            || self.db(|c| grants::is_jti_revoked(c, &jti))?
        {
            return Ok(None);
        }
        let Some(family) = self.db(|c| grants::find_grant(c, &gid))? else {
            return Ok(None);
        };
        let scope = ScopeSet::parse(&claims.scope).map_err(|_| ())?;
        Ok(Some(Grant {
            owner_id: claims.sub,
            client_id: claims.client_id,
            scope: to_oxide_scope(&scope),
            redirect_uri: family
                .redirect_uri
                .and_then(|u| Url::parse(&u).ok())
                .or_else(|| Url::parse("urn:scopegate:no-redirect").ok())
                .ok_or(())?,
            until: self.until(claims.exp),
            extensions: Extensions::new(),
        }))
    }

    fn recover_refresh(&self, token: &str) -> Result<Option<Grant>, ()> {
        let digest = secret::digest(token);
        let Some(row) = self.db(|c| grants::find_refresh(c, &digest))? else {
            self.refuse(OAuthErrorKind::InvalidGrant, "unknown refresh token");
            return Ok(None);
        };
        let gid = row.grant_id.clone();
        let Some(family) = self.db(|c| grants::find_grant(c, &gid))? else {
            self.refuse(OAuthErrorKind::InvalidGrant, "unknown refresh token");
            return Ok(None);
        };
        match refresh_status(
            row.expires_at,
            row.used_at,
            family.revoked_at.is_some(),
            self.now,
        ) {
            RefreshStatus::Usable => {}
            RefreshStatus::Reused => {
                self.revoke_family(&family.id);
                self.refuse(
                    OAuthErrorKind::InvalidGrant,
                    "refresh token was already used; the grant is revoked",
                );
                return Ok(None);
            }
            RefreshStatus::Expired => {
                self.refuse(OAuthErrorKind::InvalidGrant, "refresh token expired");
                return Ok(None);
            }
            RefreshStatus::Revoked => {
                self.refuse(OAuthErrorKind::InvalidGrant, "refresh token was revoked");
                return Ok(None);
            }
        }
        let scope = ScopeSet::parse(&row.scopes).map_err(|_| ())?;
        let grant = Grant {
            owner_id: family
                .user_id
                .clone()
                .unwrap_or_else(|| family.client_id.clone()),
            client_id: family.client_id.clone(),
            scope: to_oxide_scope(&scope),
            redirect_uri: family
                .redirect_uri
                .as_deref()
                .and_then(|u| Url::parse(u).ok())
                .or_else(|| Url::parse("urn:scopegate:no-redirect").ok())
                .ok_or(())?,
            until: self.until(row.expires_at),
            extensions: Extensions::new(),
        };
        self.pending_refresh.replace(Some(row));
        Ok(Some(grant))
    }
}

/// PKCE (RFC 7636) by client policy, `plain` never; plus `nonce` and `auth_time` for OIDC.
impl AuthorizationExtension for Primitives<'_> {
    fn extend(&mut self, request: &dyn AuthorizationRequest) -> Result<Extensions, ()> {
        let client_id = request.client_id().ok_or(())?;
        let client = self.client(&client_id)?.ok_or(())?;
        let pkce = if client.needs_pkce() {
            Pkce::required()
        } else {
            Pkce::optional()
        };
        let method = request.extension("code_challenge_method");
        let challenge = request.extension("code_challenge");
        if challenge.is_some() && method.as_deref() != Some("S256") {
            self.refuse(
                OAuthErrorKind::InvalidRequest,
                "code_challenge_method must be S256",
            );
            return Err(());
        }
        if challenge.as_deref().is_some_and(|c| !is_pkce_value(c)) {
            self.refuse(
                OAuthErrorKind::InvalidRequest,
                "code_challenge is malformed",
            );
            return Err(());
        }
        let value = pkce.challenge(method, challenge).map_err(|()| {
            self.refuse(
                OAuthErrorKind::InvalidRequest,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        })?;
        let mut ext = Extensions::new();
        if let Some(value) = value {
            ext.set(&pkce, value);
        }
        if let Some(nonce) = request.extension("nonce") {
            ext.set_raw("nonce".into(), Value::public(Some(nonce.into_owned())));
        }
        if let Some(t) = self.auth_time {
            ext.set_raw("auth_time".into(), Value::public(Some(t.to_string())));
        }
        Ok(ext)
    }
}

/// Verifies the PKCE `code_verifier` against the stored challenge.
impl AccessTokenExtension for Primitives<'_> {
    fn extend(
        &mut self,
        request: &dyn AccessTokenRequest,
        mut data: Extensions,
    ) -> Result<Extensions, ()> {
        let pkce = Pkce::optional();
        let stored = data.remove(&pkce);
        let verifier = request.extension("code_verifier");
        if verifier.as_deref().is_some_and(|v| !is_pkce_value(v)) {
            self.refuse(OAuthErrorKind::InvalidGrant, "code_verifier is malformed");
            return Err(());
        }
        if stored.is_none() && verifier.is_some() {
            self.refuse(
                OAuthErrorKind::InvalidGrant,
                "code_verifier sent but the authorization request had no code_challenge",
            );
            return Err(());
        }
        pkce.verify(stored, verifier).map_err(|()| {
            self.refuse(OAuthErrorKind::InvalidGrant, "PKCE verification failed");
        })?;
        Ok(data)
    }
}

impl ClientCredentialsExtension for Primitives<'_> {
    fn extend(&mut self, _: &dyn ClientCredentialsRequest) -> Result<Extensions, ()> {
        Ok(Extensions::new())
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl oxide_auth::code_grant::authorization::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn extension(&mut self) -> &mut dyn AuthorizationExtension {
        self
    }
}

impl oxide_auth::code_grant::accesstoken::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn authorizer(&mut self) -> &mut dyn Authorizer {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
    fn extension(&mut self) -> &mut dyn AccessTokenExtension {
        self
    }
}

impl oxide_auth::code_grant::refresh::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
}

impl oxide_auth::code_grant::client_credentials::Endpoint for Primitives<'_> {
    fn registrar(&self) -> &dyn Registrar {
        self
    }
    fn issuer(&mut self) -> &mut dyn Issuer {
        self
    }
    fn extension(&mut self) -> &mut dyn ClientCredentialsExtension {
        self
    }
}

/// Turns the note left by a primitive (or a fallback) into the wire error.
pub fn refusal_or(prims: &Primitives<'_>, fallback: OAuthError) -> OAuthError {
    if prims.had_store_error() {
        return OAuthError::server_error();
    }
    match prims.take_refusal() {
        Some(r) => OAuthError::new(r.kind, r.description),
        None => fallback,
    }
}

/// An access token issued outside the OAuth flows (native authentication).
pub struct DirectIssue {
    pub access_token: String,
    pub grant_id: String,
    pub exp: i64,
}

/// Starts a token family for (user, client) and signs its first access token.
pub fn issue_access_token(
    conn: &mut DbConnection,
    ctx: &IssueContext,
    now: i64,
    client_id: &str,
    user_id: &str,
    scope: &ScopeSet,
) -> Result<DirectIssue, crate::error::AppError> {
    let grant_id = random_id("", 16);
    grants::insert_grant(
        conn,
        &GrantRow {
            id: grant_id.clone(),
            client_id: client_id.to_string(),
            user_id: Some(user_id.to_string()),
            scopes: scope.to_string(),
            redirect_uri: None,
            auth_time: None,
            created_at: now,
            last_used_at: now,
            revoked_at: None,
        },
    )?;
    let claims = AccessClaims {
        iss: ctx.issuer.clone(),
        sub: user_id.to_string(),
        aud: ctx.issuer.clone(),
        client_id: client_id.to_string(),
        scope: scope.to_string(),
        iat: now,
        exp: now + ctx.lifetimes.access,
        jti: random_id("", 16),
        gid: grant_id.clone(),
        auth_time: None,
    };
    let access_token = ctx
        .ring
        .sign(&claims, "at+jwt")
        .map_err(|e| anyhow::anyhow!("signing an access token: {e}"))?;
    Ok(DirectIssue {
        access_token,
        grant_id,
        exp: claims.exp,
    })
}
