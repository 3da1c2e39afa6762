//! The authorization endpoint (RFC 6749 §4.1.1) and the consent form that posts back to it.
//!
//! oxide-auth's authorization flow validates client, redirect URI, response type, scope and
//! PKCE; this module adds what it lacks: the error page for an unverifiable client or URI,
//! duplicated parameters, `prompt` / `max_age`, remembered and granular consent, and `iss`
//! in every response (RFC 9207).

use std::borrow::Cow;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hmac::{Hmac, Mac};
use oxide_auth::code_grant::authorization::{
    authorization_code, Error as AuthorizationError, Pending,
};
use oxide_auth::primitives::registrar::{ClientUrl, ExactUrl, Registrar};
use sha2::Sha256;
use url::Url;

use crate::domain::google::{covered_by, parse_google_scopes};
use crate::domain::scope::{Scope, ScopeInfo, ScopeSet};
use crate::domain::token::login_too_old;
use crate::error::{AppError, OAuthError, OAuthErrorKind};
use crate::oauth::params::{AuthorizeRequest, Params};
use crate::oauth::primitives::{refusal_or, FlowKind, IssueContext, Primitives};
use crate::startup::AppState;
use crate::store::{audit, google as google_store, grants};
use crate::web::session::{self, SignedIn};
use crate::web::{csrf, login, pages};

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    pub user_email: String,
    pub csrf_token: String,
    /// The authorization request being answered, as a query string.
    pub request: String,
    /// HMAC binding `request` to this session, so the form cannot be replayed elsewhere.
    pub binding: String,
    pub choices: Vec<&'static ScopeInfo>,
    pub already: Vec<&'static ScopeInfo>,
    /// Scopes the linked Google account has not granted: shown, but not offered.
    pub unavailable: Vec<&'static ScopeInfo>,
    /// "Ask Google again" for the unavailable ones.
    pub ask_google: Option<String>,
}

/// The user's answer on the consent page.
struct Decision {
    allow: bool,
    checked: Vec<String>,
}

/// What the endpoint answers.
enum Outcome {
    /// The client or redirect URI cannot be trusted: never redirect (RFC 6749 §4.1.2.1).
    ErrorPage(String),
    Redirect(Url),
    Login(String),
    Consent(ConsentView),
}

struct ConsentView {
    client_name: String,
    user_email: String,
    session_digest: String,
    request: String,
    choices: ScopeSet,
    already: ScopeSet,
    unavailable: ScopeSet,
}

/// Parsed `prompt` (OIDC Core §3.1.2.1).
#[derive(Default, Debug)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

impl Prompt {
    fn parse(value: Option<&str>) -> Result<Prompt, OAuthError> {
        let mut p = Prompt::default();
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => {}
                other => {
                    return Err(OAuthError::invalid_request(format!(
                        "unsupported prompt value {:?}",
                        other.chars().take(40).collect::<String>()
                    )))
                }
            }
        }
        if p.none && (p.login || p.consent) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
        Ok(p)
    }
}

pub async fn authorize_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = Params::parse(req.query_string().as_bytes());
    respond(&req, &state, run(&req, &state, params, None).await)
}

pub async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let mut form = Params::default();
    let mut checked = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        if k == "scope" {
            checked.push(v.chars().take(64).collect());
        } else {
            form.set(&k, v.into_owned());
        }
    }
    let outcome = async {
        csrf::verify(&req, &state, form.get("csrf_token"))?;
        let Some(signed_in) = session::current(&req, &state).await? else {
            return Err(AppError::BadRequest(
                "Your session ended before you answered. Start again from the application.".into(),
            ));
        };
        let request = form.get("request").unwrap_or("").to_string();
        if !binding_matches(
            &state,
            &signed_in,
            &request,
            form.get("binding").unwrap_or(""),
        ) {
            return Err(AppError::BadRequest(
                "This consent form does not belong to your session.".into(),
            ));
        }
        let allow = match form.get("decision") {
            Some("allow") => true,
            Some("deny") => false,
            _ => return Err(AppError::BadRequest("Choose Allow or Deny.".into())),
        };
        let params = Params::parse(request.as_bytes());
        run(&req, &state, params, Some(Decision { allow, checked })).await
    }
    .await;
    respond(&req, &state, outcome)
}

fn respond(
    req: &HttpRequest,
    state: &AppState,
    outcome: Result<Outcome, AppError>,
) -> HttpResponse {
    match outcome {
        Ok(Outcome::ErrorPage(message)) => pages::error_page(StatusCode::BAD_REQUEST, &message),
        Ok(Outcome::Redirect(url)) => HttpResponse::Found()
            .insert_header((header::LOCATION, url.to_string()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Ok(Outcome::Login(return_to)) => login::login_redirect(&return_to),
        Ok(Outcome::Consent(view)) => render_consent(req, state, view),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

fn render_consent(req: &HttpRequest, state: &AppState, view: ConsentView) -> HttpResponse {
    let c = csrf::issue(req, state);
    let ask_google = (!view.unavailable.is_empty() && state.google.is_some()).then(|| {
        let back = format!("/oauth/authorize?{}", view.request);
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &back)
            .finish();
        format!("/auth/google?{q}")
    });
    let page = ConsentPage {
        binding: binding_for(state, &view.session_digest, &view.request),
        client_name: view.client_name,
        user_email: view.user_email,
        csrf_token: c.token,
        request: view.request,
        choices: view.choices.iter().map(Scope::info).collect(),
        already: view.already.iter().map(Scope::info).collect(),
        unavailable: view.unavailable.iter().map(Scope::info).collect(),
        ask_google,
    };
    let mut res = pages::render(StatusCode::OK, &page);
    if let Some(cookie) = c.cookie {
        let _ = res.add_cookie(&cookie);
    }
    res
}

fn binding_for(state: &AppState, session_digest: &str, request: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(state.cookie_key.signing()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"consent\n");
    mac.update(session_digest.as_bytes());
    mac.update(b"\n");
    mac.update(request.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn binding_matches(state: &AppState, s: &SignedIn, request: &str, presented: &str) -> bool {
    let Ok(presented) = hex::decode(presented) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(state.cookie_key.signing()) else {
        return false;
    };
    mac.update(b"consent\n");
    mac.update(s.digest.as_bytes());
    mac.update(b"\n");
    mac.update(request.as_bytes());
    mac.verify_slice(&presented).is_ok()
}

/// Appends the error parameters (and `state`, `iss`) to the client's redirect URI.
fn error_redirect(
    mut redirect: Url,
    err: &OAuthError,
    state_param: Option<&str>,
    issuer: &str,
) -> Url {
    {
        let mut q = redirect.query_pairs_mut();
        q.append_pair("error", err.kind.as_str());
        q.append_pair("error_description", &err.description);
        if let Some(s) = state_param {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    redirect
}

fn kind_from_wire(code: &str) -> OAuthErrorKind {
    match code {
        "unauthorized_client" => OAuthErrorKind::UnauthorizedClient,
        "access_denied" => OAuthErrorKind::AccessDenied,
        "unsupported_response_type" => OAuthErrorKind::UnsupportedResponseType,
        "invalid_scope" => OAuthErrorKind::InvalidScope,
        "server_error" => OAuthErrorKind::ServerError,
        "temporarily_unavailable" => OAuthErrorKind::TemporarilyUnavailable,
        _ => OAuthErrorKind::InvalidRequest,
    }
}

fn default_description(kind: OAuthErrorKind) -> &'static str {
    match kind {
        OAuthErrorKind::UnsupportedResponseType => "only response_type=code is supported",
        OAuthErrorKind::InvalidScope => "the requested scope is invalid",
        OAuthErrorKind::ServerError => "the server could not complete the request",
        _ => "the authorization request is malformed",
    }
}

async fn run(
    req: &HttpRequest,
    state: &AppState,
    params: Params,
    decision: Option<Decision>,
) -> Result<Outcome, AppError> {
    let signed_in = session::current(req, state).await?;
    let ctx = IssueContext {
        issuer: state.issuer.clone(),
        lifetimes: state.lifetimes,
        ring: state.signing.ring(),
    };
    let now = state.now();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    state
        .store
        .run(move |conn| -> Result<Outcome, AppError> {
            let mut prims = Primitives::new(conn, &ctx, now, FlowKind::Authorization);
            decide(
                &mut prims,
                &ctx.issuer,
                params,
                signed_in,
                decision,
                ip.as_deref(),
            )
        })
        .await
}

/// Runs oxide-auth's flow over `params`, mapping its errors onto ours.
fn flow(
    prims: &mut Primitives<'_>,
    params: &Params,
    fail: &dyn Fn(OAuthError) -> Outcome,
) -> Result<Pending, Outcome> {
    match authorization_code(prims, &AuthorizeRequest(params)) {
        Ok(pending) => Ok(pending),
        Err(AuthorizationError::Ignore) => Err(Outcome::ErrorPage(
            refusal_or(
                prims,
                OAuthError::invalid_request("unknown client or redirect URI"),
            )
            .description
            .into_owned(),
        )),
        Err(AuthorizationError::Redirect(mut e)) => {
            let kind = kind_from_wire(e.description().kind().as_ref());
            Err(fail(refusal_or(
                prims,
                OAuthError::new(kind, default_description(kind)),
            )))
        }
        Err(AuthorizationError::PrimitiveError) => Err(fail(OAuthError::server_error())),
    }
}

fn decide(
    prims: &mut Primitives<'_>,
    issuer: &str,
    params: Params,
    signed_in: Option<SignedIn>,
    decision: Option<Decision>,
    ip: Option<&str>,
) -> Result<Outcome, AppError> {
    let now = prims.now();
    // 1. Client and redirect URI first: until both are verified, errors go to a page.
    if params.is_duplicated("client_id") || params.is_duplicated("redirect_uri") {
        return Ok(Outcome::ErrorPage(
            "client_id and redirect_uri must not be repeated.".into(),
        ));
    }
    let Some(client_id) = params.get("client_id") else {
        return Ok(Outcome::ErrorPage("The request has no client_id.".into()));
    };
    let requested_uri = match params
        .get("redirect_uri")
        .map(|u| ExactUrl::new(u.to_string()))
    {
        Some(Ok(u)) => Some(Cow::Owned(u)),
        Some(Err(_)) => {
            return Ok(Outcome::ErrorPage(
                "The redirect_uri is not a valid URL.".into(),
            ))
        }
        None => None,
    };
    let bound = match prims.bound_redirect(ClientUrl {
        client_id: Cow::Borrowed(client_id),
        redirect_uri: requested_uri,
    }) {
        Ok(b) => b.redirect_uri.to_url(),
        Err(_) => {
            let reason = match prims.take_refusal() {
                Some(r) if r.kind == OAuthErrorKind::InvalidClient => {
                    "The application (client_id) is not registered here."
                }
                Some(_) => "The redirect_uri is missing or is not registered for this application.",
                None => "The application could not be verified.",
            };
            if prims.had_store_error() {
                return Err(AppError::Unexpected(anyhow::anyhow!(
                    "database error while binding the client"
                )));
            }
            return Ok(Outcome::ErrorPage(reason.into()));
        }
    };
    let client = prims
        .client(client_id)
        .map_err(|()| anyhow::anyhow!("client lookup failed"))?
        .ok_or(AppError::NotFound)?;
    let state_param = params.get("state").map(str::to_string);
    let fail = |e: OAuthError| {
        Outcome::Redirect(error_redirect(
            bound.clone(),
            &e,
            state_param.as_deref(),
            issuer,
        ))
    };

    // 2. The rest of the request's shape.
    if let Err(e) = params.check_shape() {
        return Ok(fail(e));
    }
    if params.get("response_type").is_none() {
        return Ok(fail(OAuthError::invalid_request(
            "response_type is required",
        )));
    }
    let prompt = match Prompt::parse(params.get("prompt")) {
        Ok(p) => p,
        Err(e) => return Ok(fail(e)),
    };
    let max_age = match params.get("max_age").map(|v| v.parse::<i64>()) {
        None => None,
        Some(Ok(v)) if v >= 0 => Some(v),
        Some(_) => {
            return Ok(fail(OAuthError::invalid_request(
                "max_age must be a non-negative integer",
            )))
        }
    };
    // A validation run: scope, response type and PKCE are checked before anyone signs in.
    if let Err(outcome) = flow(prims, &params, &fail) {
        return Ok(outcome);
    }

    // 3. Who is authorizing.
    let user = signed_in.filter(|s| !prompt.login && !login_too_old(s.auth_time, max_age, now));
    let Some(user) = user else {
        if prompt.none {
            return Ok(fail(OAuthError::new(
                OAuthErrorKind::LoginRequired,
                "the user is not signed in",
            )));
        }
        let mut again = params.clone();
        // A fresh sign-in satisfies max_age; keeping it would send the user back forever.
        again.remove("max_age");
        if prompt.login {
            // Sign in once, then continue without asking again.
            let rest: Vec<&str> = params
                .get("prompt")
                .unwrap_or("")
                .split(' ')
                .filter(|v| *v != "login" && !v.is_empty())
                .collect();
            again.remove("prompt");
            if !rest.is_empty() {
                again.set("prompt", rest.join(" "));
            }
        }
        return Ok(Outcome::Login(format!(
            "/oauth/authorize?{}",
            again.to_query()
        )));
    };
    prims.auth_time = Some(user.auth_time);

    // 4. Consent.
    let requested = ScopeSet::parse(params.get("scope").unwrap_or("")).unwrap_or_default();
    let user_id = user.user.id.clone();
    let granted = prims
        .with_conn(|c| grants::find_consent(c, &user_id, &client.id))?
        .map(|row| ScopeSet::parse(&row.scopes).unwrap_or_default())
        .unwrap_or_default()
        .intersection(&client.allowed_scopes);
    let include_granted = params.get("include_granted_scopes") == Some("true");
    let choices = if prompt.consent {
        requested
    } else {
        requested.difference(&granted)
    };
    let already = requested.difference(&choices).union(&if include_granted {
        granted.difference(&choices)
    } else {
        ScopeSet::default()
    });
    let extra = if include_granted {
        granted
    } else {
        ScopeSet::default()
    };
    // A Google-linked account can only grant what Google granted Scopegate.
    let google_link = prims.with_conn(|c| google_store::find_by_user(c, &user_id))?;
    let available = match &google_link {
        Some(g) => covered_by(&parse_google_scopes(&g.granted_scopes)),
        None => ScopeSet::all(),
    };
    let unavailable = choices.difference(&available);

    let final_scope = match decision {
        None => {
            if !choices.is_empty() || prompt.consent {
                if prompt.none {
                    return Ok(fail(OAuthError::new(
                        OAuthErrorKind::ConsentRequired,
                        "the user has not consented to these scopes",
                    )));
                }
                return Ok(Outcome::Consent(ConsentView {
                    client_name: client.name.clone(),
                    user_email: user.user.email.clone(),
                    session_digest: user.digest.clone(),
                    request: params.to_query(),
                    choices: choices.intersection(&available),
                    already,
                    unavailable,
                }));
            }
            requested.union(&extra)
        }
        Some(Decision { allow: false, .. }) => {
            prims.with_conn(|c| {
                audit::record(
                    c,
                    now,
                    Some(&user_id),
                    "consent.denied",
                    Some(&client.id),
                    serde_json::json!({"scopes": requested.to_string()}),
                    ip,
                )
            })?;
            return Ok(fail(OAuthError::new(
                OAuthErrorKind::AccessDenied,
                "the user denied the request",
            )));
        }
        Some(Decision {
            allow: true,
            checked,
        }) => {
            let mut accepted = ScopeSet::default();
            for name in &checked {
                match Scope::parse(name) {
                    Ok(s) if choices.contains(s) && available.contains(s) => accepted.insert(s),
                    _ => {
                        return Ok(fail(OAuthError::invalid_request(
                            "a scope outside the request was submitted",
                        )))
                    }
                }
            }
            if accepted.is_empty() {
                prims.with_conn(|c| {
                    audit::record(
                        c,
                        now,
                        Some(&user_id),
                        "consent.denied",
                        Some(&client.id),
                        serde_json::json!({"scopes": ""}),
                        ip,
                    )
                })?;
                return Ok(fail(OAuthError::new(
                    OAuthErrorKind::AccessDenied,
                    "no scope was granted",
                )));
            }
            let remembered = granted.difference(&choices).union(&accepted);
            prims.with_conn(|c| -> Result<(), AppError> {
                grants::save_consent(c, &user_id, &client.id, &remembered.to_string(), now)?;
                audit::record(c, now, Some(&user_id), "consent.granted", Some(&client.id), serde_json::json!({"granted": accepted.to_string(), "requested": requested.to_string()}), ip)?;
                Ok(())
            })?;
            accepted
                .union(&requested.difference(&choices))
                .union(&extra)
        }
    };

    // 5. Issue the code for exactly the final scope.
    let mut issuing = params.clone();
    issuing.set("scope", final_scope.to_string());
    prims.redirect_uri_given = params.get("redirect_uri").is_some();
    let pending = match flow(prims, &issuing, &fail) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    match pending.authorize(prims, Cow::Borrowed(&user_id)) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("iss", issuer);
            prims.with_conn(|c| {
                audit::record(
                    c,
                    now,
                    Some(&user_id),
                    "authorize.code_issued",
                    Some(&client.id),
                    serde_json::json!({"scopes": final_scope.to_string()}),
                    ip,
                )
            })?;
            Ok(Outcome::Redirect(url))
        }
        Err(_) => Ok(fail(OAuthError::server_error())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_none_stands_alone() {
        assert!(Prompt::parse(Some("none consent")).is_err());
        assert!(Prompt::parse(Some("login consent")).expect("valid").consent);
        assert!(Prompt::parse(Some("bogus")).is_err());
        assert!(!Prompt::parse(None).expect("valid").none);
    }

    #[test]
    fn error_redirects_carry_state_and_iss() {
        let url = Url::parse("https://app.example/cb?keep=1").expect("url");
        let e = OAuthError::new(OAuthErrorKind::AccessDenied, "no");
        let out = error_redirect(url, &e, Some("xyz"), "https://sg.example");
        assert_eq!(
            out.as_str(),
            "https://app.example/cb?keep=1&error=access_denied&error_description=no&state=xyz&iss=https%3A%2F%2Fsg.example"
        );
    }
}
