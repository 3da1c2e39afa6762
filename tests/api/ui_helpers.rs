//! Helpers for the account page and admin UI tests: admins, pages, forms, token checks.
#![allow(dead_code)]

use reqwest::{Response, StatusCode};
use scraper::{Html, Selector};
use serde_json::Value;
use url::Url;

use crate::helpers::*;
use scopegate::ops;

/// An administrator, created the way the CLI does.
pub async fn create_admin(app: &TestApp) -> TestUser {
    let tag = random_string(8).to_lowercase();
    let email = format!("admin-{tag}@example.test");
    let name = format!("Admin {tag}");
    let password = format!("admin horse {tag} battery");
    let store = app.store.clone();
    let (e, n, p) = (email.clone(), name.clone(), password.clone());
    let id = tokio::task::spawn_blocking(move || ops::add_user(&store, &e, &n, &p, true))
        .await
        .expect("add_user task")
        .unwrap_or_else(|e| panic!("add_user: {e:?}"));
    TestUser {
        id,
        email,
        name,
        password,
    }
}

/// A browser signed in as `user`.
pub async fn signed_in(app: &TestApp, user: &TestUser) -> Browser {
    let b = app.new_browser();
    let resp = b.login(user).await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "{} signs in",
        user.email
    );
    b
}

/// A page as a browser gets it.
pub struct Page {
    pub status: StatusCode,
    pub url: Url,
    pub html: String,
    pub location: Option<Url>,
    pub csp: String,
}

impl Page {
    pub async fn read(resp: Response) -> Page {
        let status = resp.status();
        let url = resp.url().clone();
        let location = location(&resp);
        let csp = header(&resp, "content-security-policy")
            .unwrap_or("")
            .to_string();
        let html = resp.text().await.unwrap_or_default();
        Page {
            status,
            url,
            html,
            location,
            csp,
        }
    }

    pub fn text(&self) -> String {
        visible_text(&self.html)
    }

    /// The first form whose action path is `path`.
    pub fn form(&self, path: &str) -> Form {
        Form::find(&self.html, &self.url, |f| f.action.path() == path)
            .unwrap_or_else(|| panic!("no form posting to {path} on {}:\n{}", self.url, self.html))
    }

    pub fn has_form(&self, path: &str) -> bool {
        Form::find(&self.html, &self.url, |f| f.action.path() == path).is_some()
    }

    pub fn csrf_token(&self) -> String {
        Form::all(&self.html, &self.url)
            .iter()
            .find_map(|f| f.hidden("csrf_token").map(str::to_string))
            .unwrap_or_else(|| panic!("no CSRF token on {}", self.url))
    }

    /// Values of `attr` on every element matching `selector`.
    pub fn attrs(&self, selector: &str, attr: &str) -> Vec<String> {
        let doc = Html::parse_document(&self.html);
        let sel = Selector::parse(selector).expect("selector");
        doc.select(&sel)
            .filter_map(|e| e.value().attr(attr).map(str::to_string))
            .collect()
    }

    /// How many elements match `selector`.
    pub fn count(&self, selector: &str) -> usize {
        let doc = Html::parse_document(&self.html);
        let sel = Selector::parse(selector).expect("selector");
        doc.select(&sel).count()
    }

    /// Inputs, selects and textareas a person fills in, without a label.
    pub fn unlabelled_fields(&self) -> Vec<String> {
        let doc = Html::parse_document(&self.html);
        let fields = Selector::parse("input, select, textarea").expect("selector");
        let labels = Selector::parse("label").expect("selector");
        let for_ids: Vec<String> = doc
            .select(&labels)
            .filter_map(|l| l.value().attr("for").map(str::to_string))
            .collect();
        doc.select(&fields)
            .filter(|f| {
                !matches!(
                    f.value().attr("type"),
                    Some("hidden") | Some("submit") | Some("button")
                )
            })
            .filter(|f| {
                let by_for = f
                    .value()
                    .attr("id")
                    .is_some_and(|id| for_ids.iter().any(|x| x == id));
                let wrapped = f
                    .ancestors()
                    .any(|a| a.value().as_element().is_some_and(|e| e.name() == "label"));
                !(by_for || wrapped)
            })
            .map(|f| f.html())
            .collect()
    }
}

pub async fn get_page(browser: &Browser, path: &str) -> Page {
    Page::read(
        browser
            .http
            .get(browser.url(path))
            .header("Accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .expect("GET"),
    )
    .await
}

/// Posts `form` with its hidden fields plus `fields`.
pub async fn submit(browser: &Browser, form: &Form, fields: &[(&str, &str)]) -> Page {
    let mut all: Vec<(String, String)> = form.hidden.clone();
    all.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Page::read(browser.post_form(form.action.as_str(), &all).await).await
}

/// Posts to `path` with exactly `fields` (no hidden fields taken from a page).
pub async fn post(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> Page {
    Page::read(browser.post_form(path, &fields).await).await
}

#[track_caller]
pub fn assert_to_login(page: &Page, return_to: &str) {
    assert!(
        page.status.is_redirection(),
        "expected a redirect to the login page, got {} at {}",
        page.status,
        page.url
    );
    let to = page.location.clone().expect("Location");
    assert_eq!(to.path(), "/login", "sent to {to}");
    assert_eq!(
        query(&to).get("return_to").map(String::as_str),
        Some(return_to),
        "return_to in {to}"
    );
}

/// RFC 7662 introspection as `client`.
pub async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> (StatusCode, Value) {
    let resp = app
        .api
        .post(app.url("/oauth/introspect"))
        .header(
            "Authorization",
            basic_auth(&client.client_id, client.secret()),
        )
        .form(&[("token", token)])
        .send()
        .await
        .expect("POST /oauth/introspect");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /account` of the resource API with a bearer token.
pub async fn api_account(app: &TestApp, access_token: &str) -> StatusCode {
    app.api
        .get(app.url("/account"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("GET /account")
        .status()
}

/// Every token of `tokens` is dead: refresh is invalid_grant, introspection inactive, the API 401.
pub async fn assert_tokens_dead(app: &TestApp, client: &TestClient, tokens: &Tokens) {
    let refreshed = app.refresh(client, tokens.refresh_token(), None).await;
    refreshed.assert_error(400, "invalid_grant");
    let (status, body) = introspect(app, client, &tokens.access_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"active": false}),
        "access token inactive"
    );
    assert_eq!(
        api_account(app, &tokens.access_token).await,
        StatusCode::UNAUTHORIZED,
        "the API refuses the access token"
    );
}

/// Every token of `tokens` still works.
pub async fn assert_tokens_alive(app: &TestApp, client: &TestClient, tokens: &Tokens) {
    let (_, body) = introspect(app, client, &tokens.access_token).await;
    assert_eq!(
        body["active"],
        Value::Bool(true),
        "access token active: {body}"
    );
    assert_eq!(api_account(app, &tokens.access_token).await, StatusCode::OK);
}

/// Moves every session's last activity `secs` into the past.
pub async fn age_sessions(app: &TestApp, secs: i64) {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::RunQueryDsl as _;
        let mut conn = store.conn().expect("connection");
        diesel::sql_query(format!(
            "UPDATE sessions SET last_seen_at = last_seen_at - {secs}"
        ))
        .execute(&mut *conn)
        .expect("age sessions");
    })
    .await
    .expect("age sessions task");
}

/// Audit events with `action`, newest first.
pub async fn audit_events(app: &TestApp, action: &str) -> Vec<scopegate::store::audit::AuditEvent> {
    let store = app.store.clone();
    let action = action.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("connection");
        scopegate::store::audit::with_action(&mut conn, &action).expect("audit query")
    })
    .await
    .expect("audit task")
}
