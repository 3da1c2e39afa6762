//! Native authentication as the Nylas SDKs call it (`POST /connect/authorize`,
//! `POST /connect/token`) against the fake Google: the happy path, the SDKs' Basic header,
//! single-use codes, and every error — with nothing stored when it fails.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fake_google::*;
use crate::google_helpers::*;
use crate::helpers::*;

/// Nothing of a refused `/connect/authorize` was stored.
async fn assert_nothing_stored(app: &TestApp, users_before: i64) {
    assert_eq!(
        count_rows(app, "users").await,
        users_before,
        "no user was created"
    );
    assert_eq!(
        count_rows(app, "google_accounts").await,
        0,
        "no Google link was stored"
    );
    assert_eq!(
        count_rows(app, "connect_codes").await,
        0,
        "no code was issued"
    );
}

/// `/connect/authorize` with `body`, expecting a code.
async fn code_for(app: &TestApp, body: &Value, authorization: Option<&str>) -> String {
    let resp = post_json(app, "/connect/authorize", body, authorization).await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "/connect/authorize: {}",
        resp.text
    );
    assert_eq!(
        keys(&resp.body),
        ["code".to_string()].into(),
        "{}",
        resp.text
    );
    resp.body["code"].as_str().expect("a code").to_string()
}

fn token_body(client: &TestClient, code: &str) -> Value {
    json!({"client_id": client.client_id, "client_secret": client.secret(), "code": code})
}

/// A body with one field replaced (a JSON pointer-ish path of object keys).
fn with(mut body: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut body;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    match value {
        Value::Null => {
            if let Some(obj) = at.as_object_mut() {
                obj.remove(path[path.len() - 1]);
            }
        }
        v => at[path[path.len() - 1]] = v,
    }
    body
}

google_e2e! {
    async fn native_authentication_returns_a_code_then_the_account_and_a_token(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY, GMAIL_SEND]);
        let body = connect_body(&client, &google, &refresh, json!("email.read_only,email.send"));

        // Act
        let code = code_for(&app, &body, None).await;
        let resp = post_json(&app, "/connect/token", &token_body(&client, &code), None).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        let b = &resp.body;
        for key in ["id", "object", "account_id", "name", "email_address", "provider",
                    "organization_unit", "sync_state", "linked_at", "granted_scopes",
                    "access_token", "token_type", "scope"] {
            assert!(b.get(key).is_some(), "{key} in {b}");
        }
        assert_eq!(b["object"], "account");
        assert_eq!(b["provider"], "gmail");
        assert_eq!(b["organization_unit"], "label");
        assert_eq!(b["sync_state"], "running");
        assert_eq!(b["email_address"], google.user().email.as_str());
        assert_eq!(b["token_type"], "bearer");
        assert_eq!(scope_set(b["scope"].as_str().unwrap()), set_of(&["email.read_only", "email.send"]));
        let token = b["access_token"].as_str().unwrap();
        let acct = account(&app, token).await;
        assert_eq!(acct["id"], b["id"]);
        assert_eq!(acct["account_id"], b["account_id"]);
        let granted: BTreeSet<String> = acct["granted_scopes"].as_array().unwrap()
            .iter().map(|s| s.as_str().unwrap().to_string()).collect();
        assert_eq!(granted, set_of(&["email.read_only", "email.send"]));
        let (_, claims) = app.verify_jwt(token).await;
        assert_eq!(claims["client_id"], client.client_id.as_str());
        assert_eq!(scope_set(claims["scope"].as_str().unwrap()), set_of(&["email.read_only", "email.send"]));
    }

    async fn the_refresh_token_is_checked_by_refreshing_it_with_the_apps_google_client(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let body = connect_body(&client, &google, &refresh, json!("email.read_only"));

        // Act
        code_for(&app, &body, None).await;

        // Assert
        let refreshes: Vec<TokenRequest> = google.token_requests().into_iter()
            .filter(|r| r.grant_type == "refresh_token").collect();
        assert_eq!(refreshes.len(), 1, "one refresh at Google before the code");
        assert_eq!(refreshes[0].status, 200);
        assert_eq!(refreshes[0].client_id.as_deref(), Some(APP_GOOGLE_CLIENT_ID),
            "refreshed with the application's own Google client");
        assert!(refreshes[0].form.iter().any(|(k, v)| k == "refresh_token" && v == &refresh));
    }

    async fn scopes_may_be_a_list(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY, CALENDAR]);
        let body = connect_body(&client, &google, &refresh, json!(["email.read_only", "calendar"]));

        // Act
        let code = code_for(&app, &body, None).await;
        let resp = post_json(&app, "/connect/token", &token_body(&client, &code), None).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        assert_eq!(scope_set(resp.body["scope"].as_str().unwrap()), set_of(&["email.read_only", "calendar"]));
    }

    async fn the_sdks_basic_client_secret_header_is_accepted_on_both_calls(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let body = connect_body(&client, &google, &refresh, json!("email.read_only"));
        let basic = nylas_basic(client.secret());

        // Act
        let code = code_for(&app, &body, Some(&basic)).await;
        let with_both = post_json(&app, "/connect/token", &token_body(&client, &code), Some(&basic)).await;
        let code = code_for(&app, &body, Some(&basic)).await;
        let basic_only = post_json(&app, "/connect/token",
            &json!({"client_id": client.client_id, "code": code}), Some(&basic)).await;

        // Assert
        assert_eq!(with_both.status, StatusCode::OK, "secret in body and Basic: {}", with_both.text);
        assert_eq!(basic_only.status, StatusCode::OK, "secret in Basic only: {}", basic_only.text);
        assert!(basic_only.body["access_token"].is_string());
    }

    async fn a_code_is_single_use(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let code = code_for(&app, &connect_body(&client, &google, &refresh, json!("email.read_only")), None).await;
        let first = post_json(&app, "/connect/token", &token_body(&client, &code), None).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);

        // Act
        let second = post_json(&app, "/connect/token", &token_body(&client, &code), None).await;

        // Assert
        second.assert_nylas_error(&[400, 401], &["invalid_request_error", "api_error"]);
        assert!(second.body.get("access_token").is_none());
    }

    async fn a_code_belongs_to_the_client_it_was_issued_to(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let code = code_for(&app, &connect_body(&client, &google, &refresh, json!("email.read_only")), None).await;

        // Act
        let stolen = post_json(&app, "/connect/token", &token_body(&other, &code), None).await;
        let rightful = post_json(&app, "/connect/token", &token_body(&client, &code), None).await;

        // Assert
        stolen.assert_nylas_error(&[400, 401], &["invalid_request_error", "api_error"]);
        assert_eq!(rightful.status, StatusCode::OK, "the failed attempt did not spend the code: {}", rightful.text);
    }

    async fn connect_token_refuses_a_wrong_client_secret_or_unknown_code(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let code = code_for(&app, &connect_body(&client, &google, &refresh, json!("email.read_only")), None).await;

        // Act
        let wrong_secret = post_json(&app, "/connect/token",
            &json!({"client_id": client.client_id, "client_secret": "sgs_wrong", "code": code}), None).await;
        let wrong_basic = post_json(&app, "/connect/token",
            &json!({"client_id": client.client_id, "code": code}), Some(&nylas_basic("sgs_wrong"))).await;
        let no_secret = post_json(&app, "/connect/token",
            &json!({"client_id": client.client_id, "code": code}), None).await;
        let unknown_code = post_json(&app, "/connect/token", &token_body(&client, "sgc_unknown"), None).await;
        let no_code = post_json(&app, "/connect/token",
            &json!({"client_id": client.client_id, "client_secret": client.secret()}), None).await;

        // Assert
        wrong_secret.assert_nylas_error(&[401], &["invalid_request_error", "api_error"]);
        wrong_basic.assert_nylas_error(&[401], &["invalid_request_error", "api_error"]);
        no_secret.assert_nylas_error(&[400, 401], &["invalid_request_error", "api_error"]);
        unknown_code.assert_nylas_error(&[400, 401], &["invalid_request_error", "api_error"]);
        no_code.assert_nylas_error(&[400], &["invalid_request_error", "api_error"]);
        let still_good = post_json(&app, "/connect/token", &token_body(&client, &code), None).await;
        assert_eq!(still_good.status, StatusCode::OK, "{}", still_good.text);
    }

    async fn a_refresh_token_without_the_google_scopes_is_a_403_naming_what_is_missing(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let body = connect_body(&client, &google, &refresh, json!("email.read_only,email.send"));

        // Act
        let resp = post_json(&app, "/connect/authorize", &body, None).await;

        // Assert
        resp.assert_nylas_error(&[403], &["api_error"]);
        assert!(resp.message().contains(GMAIL_SEND), "names the missing Google scope: {}", resp.text);
        assert_nothing_stored(&app, users).await;
    }

    async fn a_refused_refresh_token_is_an_error_and_nothing_is_stored(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let revoked = app_refresh_token(&google, &[GMAIL_READONLY]);
        google.revoke_refresh_token(&revoked);
        let bodies = [
            ("unknown refresh token", connect_body(&client, &google, "1//not-issued-by-google", json!("email.read_only"))),
            ("revoked refresh token", connect_body(&client, &google, &revoked, json!("email.read_only"))),
            ("wrong Google client secret", with(
                connect_body(&client, &google, &app_refresh_token(&google, &[GMAIL_READONLY]), json!("email.read_only")),
                &["settings", "google_client_secret"], json!("GOCSPX-wrong"))),
            ("another Google client", with(
                connect_body(&client, &google, &google.issue_refresh_token("other.apps.googleusercontent.com", "other", &[GMAIL_READONLY]), json!("email.read_only")),
                &["settings", "google_client_id"], json!(APP_GOOGLE_CLIENT_ID))),
        ];

        for (what, body) in bodies {
            // Act
            let resp = post_json(&app, "/connect/authorize", &body, None).await;

            // Assert
            resp.assert_nylas_error(&[400, 401], &["invalid_request_error", "api_error"]);
            assert!(resp.body.get("code").is_none(), "{what}: {}", resp.text);
        }
        assert_nothing_stored(&app, users).await;
    }

    #[settings(|s| s.google.token_url = closed_port_url())]
    async fn google_unreachable_during_native_authentication_is_a_clear_error(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);

        // Act
        let resp = post_json(&app, "/connect/authorize",
            &connect_body(&client, &google, &refresh, json!("email.read_only")), None).await;

        // Assert
        resp.assert_nylas_error(&[400, 401, 403], &["invalid_request_error", "api_error"]);
        assert_nothing_stored(&app, users).await;
    }

    async fn malformed_requests_are_400s_and_nothing_is_stored(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY]);
        let good = connect_body(&client, &google, &refresh, json!("email.read_only"));
        let cases = [
            ("unknown client_id", with(good.clone(), &["client_id"], json!("app_doesnotexist"))),
            ("no client_id", with(good.clone(), &["client_id"], Value::Null)),
            ("provider not gmail", with(good.clone(), &["provider"], json!("imap"))),
            ("no provider", with(good.clone(), &["provider"], Value::Null)),
            ("unknown scope", with(good.clone(), &["scopes"], json!("email.read_only,email.everything"))),
            ("empty scopes", with(good.clone(), &["scopes"], json!(""))),
            ("no scopes", with(good.clone(), &["scopes"], Value::Null)),
            ("scopes not text", with(good.clone(), &["scopes"], json!(42))),
            ("no settings", with(good.clone(), &["settings"], Value::Null)),
            ("no refresh token", with(good.clone(), &["settings", "google_refresh_token"], Value::Null)),
            ("no Google client id", with(good.clone(), &["settings", "google_client_id"], Value::Null)),
            ("bad email_address", with(good.clone(), &["email_address"], json!("not an email"))),
            ("someone else's email_address", with(good.clone(), &["email_address"], json!("mallory@example.com"))),
        ];

        for (what, body) in cases {
            // Act
            let resp = post_json(&app, "/connect/authorize", &body, None).await;

            // Assert
            assert!(matches!(resp.status.as_u16(), 400 | 401), "{what}: {} {}", resp.status, resp.text);
            resp.assert_nylas_error(&[400, 401], &["invalid_request_error", "api_error"]);
        }
        let not_json = app.api.post(app.url("/connect/authorize"))
            .header("Content-Type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
        let form = app.api.post(app.url("/connect/authorize"))
            .form(&[("client_id", client.client_id.as_str())]).send().await.unwrap();
        assert_eq!(form.status(), StatusCode::BAD_REQUEST);
        assert_nothing_stored(&app, users).await;
    }

    async fn a_client_may_not_obtain_scopes_it_is_not_allowed(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.client_with_scopes(&["email.read_only"]).await;
        let refresh = app_refresh_token(&google, &[GMAIL_READONLY, GMAIL_SEND]);

        // Act
        let resp = post_json(&app, "/connect/authorize",
            &connect_body(&client, &google, &refresh, json!("email.read_only,email.send")), None).await;

        // Assert
        resp.assert_nylas_error(&[400, 403], &["invalid_request_error", "api_error"]);
        assert_nothing_stored(&app, users).await;
    }

    async fn native_authentication_twice_links_one_account(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let first = native_connect(&app, &google, &client, &["email.read_only"], &[GMAIL_READONLY]).await;

        // Act
        let second = native_connect(&app, &google, &client, &["email.read_only"], &[GMAIL_READONLY]).await;

        // Assert
        assert_eq!(first.account_id(), second.account_id());
        assert_eq!(count_rows(&app, "google_accounts").await, 1);
    }
}

e2e! {
    async fn without_google_configured_the_connect_endpoints_answer_a_clear_error(app) {
        // Arrange
        let client = app.confidential_client().await;
        let body = json!({
            "client_id": client.client_id, "name": "Ada", "email_address": "ada@example.org",
            "provider": "gmail", "scopes": "email.read_only",
            "settings": {"google_client_id": "x", "google_client_secret": "y", "google_refresh_token": "z"},
        });

        // Act
        let authorize = post_json(&app, "/connect/authorize", &body, None).await;
        let token = post_json(&app, "/connect/token", &token_body(&client, "sgc_x"), None).await;

        // Assert
        authorize.assert_nylas_error(&[400, 404, 501, 503], &["invalid_request_error", "api_error"]);
        token.assert_nylas_error(&[400, 404, 501, 503], &["invalid_request_error", "api_error"]);
    }
}
