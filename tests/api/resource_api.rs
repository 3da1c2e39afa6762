//! The Nylas v2-style resource API behind the scope guard: every row of the route table
//! allowed and refused (exact 403 body and challenge), `GET /account`, the Basic form of the
//! token, and every 401 case.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::scope_helpers::*;
use scopegate::domain::api::{ApiRoute, API_ROUTES};

/// Whose token it is: what `GET /account` answers when the guard lets it through.
#[derive(Clone, Copy, Debug)]
enum Subject<'a> {
    User(&'a TestUser),
    /// A client_credentials token: `sub` is the client, no account stands behind it.
    Client,
}

/// The scopes of which the route needs at least one, from the library's own table.
fn any_of(route: &ApiRoute) -> Vec<&'static str> {
    catalogue_order(route.operation.any_of_names().iter().copied())
}

fn route_name(route: &ApiRoute) -> String {
    format!("{} {}", route.method, route.path)
}

/// Outcome counters per route, so that a route never allowed or never refused fails the test.
#[derive(Default)]
struct Seen {
    passed: BTreeMap<String, usize>,
    refused: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Seen {
    #[track_caller]
    fn assert_complete(&self) {
        assert!(
            self.failures.is_empty(),
            "{} route checks failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(!API_ROUTES.is_empty(), "the route table is empty");
        for route in API_ROUTES {
            let name = route_name(route);
            assert!(
                self.passed.get(&name).copied().unwrap_or(0) > 0,
                "{name} was never let through"
            );
            if !any_of(route).is_empty() {
                assert!(
                    self.refused.get(&name).copied().unwrap_or(0) > 0,
                    "{name} was never refused"
                );
            }
        }
    }
}

/// Calls every route of the table with `authorization` (a token holding exactly
/// `token_scopes`) and records whether each answer is the one the table says.
async fn check_every_route(
    app: &TestApp,
    authorization: &str,
    token_scopes: &[&str],
    subject: Subject<'_>,
    seen: &mut Seen,
) {
    for route in API_ROUTES {
        let needs = any_of(route);
        let allowed = needs.is_empty() || needs.iter().any(|s| token_scopes.contains(s));
        let path = concrete_path(route);
        let answer = app.call_api(route.method, &path, Some(authorization)).await;
        let what = format!("{} {} with {:?}", route.method, path, token_scopes);
        let problem = if allowed {
            passed_guard(route, subject, &answer)
        } else {
            refused_for_scope(&needs, token_scopes, &answer)
        };
        match problem {
            Some(problem) => seen.failures.push(format!("{what}: {problem}")),
            None if allowed => *seen.passed.entry(route_name(route)).or_default() += 1,
            None => *seen.refused.entry(route_name(route)).or_default() += 1,
        }
    }
}

/// `None` when the answer is what a request past the guard gets.
fn passed_guard(route: &ApiRoute, subject: Subject<'_>, a: &Answer) -> Option<String> {
    let json = a
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json"));
    let ok = match (route.path, subject) {
        ("/account", Subject::User(user)) => {
            a.status == StatusCode::OK
                && a.body["object"] == "account"
                && a.body["id"].as_str() == Some(user.id.as_str())
        }
        ("/account", Subject::Client) => {
            a.status == StatusCode::NOT_FOUND && json && a.body["type"] == "invalid_request_error"
        }
        _ => {
            a.status == StatusCode::NOT_FOUND
                && json
                && a.body["type"] == "invalid_request_error"
                && a.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no provider account is connected"))
        }
    };
    (!ok).then(|| format!("expected to pass the guard, got {} {}", a.status, a.text))
}

/// `None` when the answer is the exact RFC 6750 §3.1 / Nylas refusal.
fn refused_for_scope(needs: &[&str], token_scopes: &[&str], a: &Answer) -> Option<String> {
    let body = insufficient_scope_body(token_scopes, needs);
    let challenge = insufficient_scope_challenge(needs);
    if a.status != StatusCode::FORBIDDEN {
        return Some(format!("expected 403, got {} {}", a.status, a.text));
    }
    if a.text != body {
        return Some(format!("body\n  got:      {}\n  expected: {body}", a.text));
    }
    if a.www_authenticate.as_deref() != Some(challenge.as_str()) {
        return Some(format!(
            "WWW-Authenticate\n  got:      {:?}\n  expected: {challenge}",
            a.www_authenticate
        ));
    }
    if !a
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Some(format!("content type {:?}", a.content_type));
    }
    None
}

/// The operations' distinct any-of lists.
fn distinct_any_of_lists() -> BTreeSet<Vec<&'static str>> {
    API_ROUTES
        .iter()
        .map(any_of)
        .filter(|l| !l.is_empty())
        .collect()
}

fn strs(set: &BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

e2e! {
    async fn every_route_lets_each_of_its_scopes_through_and_refuses_tokens_without_them(app) {
        // Arrange: a client_credentials token per resource scope, and per operation a token
        // with every resource scope except the ones it needs.
        let client = app.confidential_client().await;
        let mut tokens: Vec<Vec<&str>> = RESOURCE_SCOPES.iter().map(|s| vec![*s]).collect();
        for needs in distinct_any_of_lists() {
            tokens.push(RESOURCE_SCOPES.iter().copied().filter(|s| !needs.contains(s)).collect());
        }
        let mut seen = Seen::default();

        // Act
        for scopes in &tokens {
            let token = app.client_token(&client, &scopes.join(" ")).await;
            check_every_route(&app, &bearer(&token), scopes, Subject::Client, &mut seen).await;
        }

        // Assert
        seen.assert_complete();
    }

    async fn every_route_treats_user_tokens_from_the_consent_flow_by_their_granted_scopes(app) {
        // Arrange
        let user = app.create_user().await;
        let scope_sets: [&[&str]; 5] = [
            &["email.read_only", "email.send"],
            &["email.modify", "email.folders_and_labels", "calendar.read_only"],
            &["email.drafts", "calendar", "contacts.read_only"],
            &["contacts", "openid", "profile", "email"],
            &["openid"],
        ];
        let mut seen = Seen::default();

        // Act
        for scopes in scope_sets {
            let client = app.confidential_client().await;
            let tokens = app.tokens(&user, &client, &scopes.join(" ")).await;
            assert_eq!(tokens.scope, set_of(scopes), "the user granted what was asked");
            let granted = strs(&tokens.scope);
            check_every_route(&app, &bearer(&tokens.access_token), &granted, Subject::User(&user), &mut seen)
                .await;
        }

        // Assert
        seen.assert_complete();
    }

    async fn the_refusal_names_both_sides_exactly_as_the_nylas_api_does(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.send email.read_only").await;

        // Act
        let answer = app
            .call_api("PUT", "/messages/abc123", Some(&bearer(&tokens.access_token)))
            .await;

        // Assert
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
        assert_eq!(
            answer.text,
            r#"{"message": "You do not have access to the required scopes. You provided a token which has the following scopes ['email.read_only', 'email.send']. You would need a token with at least one of the following scopes: ['email.modify']", "type": "api_error"}"#
        );
        assert_eq!(
            answer.www_authenticate.as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="email.modify""#)
        );
    }

    async fn a_missing_scope_is_refused_before_the_body_is_looked_at(app) {
        // Arrange
        let client = app.confidential_client().await;
        let token = app.client_token(&client, "email.read_only").await;

        // Act: a body that is not JSON at all.
        let resp = app
            .api
            .post(app.url("/send"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("POST /send");
        let answer = Answer::read(resp).await;

        // Assert
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
        assert_eq!(answer.text, insufficient_scope_body(&["email.read_only"], &["email.send"]));
    }

    async fn get_account_returns_the_nylas_account_object_with_the_granted_scopes(app) {
        // Arrange
        let started = now();
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid email.read_only calendar").await;

        // Act
        let answer = app.get_account(&tokens.access_token).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let a = &answer.body;
        assert_eq!(a["id"].as_str(), Some(user.id.as_str()), "{a}");
        assert_eq!(a["object"], "account", "{a}");
        assert_eq!(a["account_id"].as_str(), Some(user.id.as_str()), "{a}");
        assert_eq!(a["name"].as_str(), Some(user.name.as_str()), "{a}");
        assert_eq!(a["email_address"].as_str(), Some(user.email.as_str()), "{a}");
        assert_eq!(a["provider"], "scopegate", "a password account: {a}");
        assert!(
            matches!(a["organization_unit"].as_str(), Some("folder") | Some("label")),
            "organization_unit: {a}"
        );
        assert!(a["sync_state"].as_str().is_some_and(|s| !s.is_empty()), "sync_state: {a}");
        let linked_at = a["linked_at"].as_i64().expect("linked_at is a Unix time");
        assert!(
            (started - 5..=now() + 5).contains(&linked_at),
            "linked_at {linked_at} is when the account was created"
        );
        let granted: Vec<&str> = a["granted_scopes"]
            .as_array()
            .expect("granted_scopes is a list")
            .iter()
            .map(|s| s.as_str().expect("scope names"))
            .collect();
        assert_eq!(granted.len(), 3, "no duplicates: {a}");
        assert_eq!(
            granted.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            set_of(&["openid", "email.read_only", "calendar"])
        );
    }

    async fn get_account_lists_the_scopes_the_user_granted_not_those_asked_for(app) {
        // Arrange: the user unchecks email.send on the consent page.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send");
        let url = app
            .authorize(&user, &params, Decision::allow(&["email.read_only"]))
            .await;
        let tokens = app.exchange(&code_grant_from(&url, &client, &params)).await.tokens();

        // Act
        let answer = app.get_account(&tokens.access_token).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["granted_scopes"], serde_json::json!(["email.read_only"]));
        let send = app.call_api("POST", "/send", Some(&bearer(&tokens.access_token))).await;
        assert_eq!(send.text, insufficient_scope_body(&["email.read_only"], &["email.send"]));
    }

    async fn the_nylas_basic_form_of_the_token_is_accepted(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let basic = basic_token(&tokens.access_token, "");

        // Act
        let account = app.call_api("GET", "/account", Some(&basic)).await;
        let messages = app.call_api("GET", "/messages", Some(&basic)).await;
        let send = app.call_api("POST", "/send", Some(&basic)).await;

        // Assert
        assert_eq!(account.status, StatusCode::OK, "{}", account.text);
        assert_eq!(account.body["id"].as_str(), Some(user.id.as_str()));
        messages.assert_nylas_error(404, "invalid_request_error");
        assert!(messages.text.contains("no provider account is connected"), "{}", messages.text);
        assert_eq!(send.status, StatusCode::FORBIDDEN, "{}", send.text);
        assert_eq!(send.text, insufficient_scope_body(&["email.read_only"], &["email.send"]));
    }

    async fn the_basic_form_with_a_password_is_an_invalid_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let with_password = basic_token(&tokens.access_token, "hunter2");
        let without_colon = format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &tokens.access_token)
        );

        for (what, value) in [("a password", with_password), ("no colon", without_colon)] {
            // Act
            let answer = app.call_api("GET", "/account", Some(&value)).await;

            // Assert
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.text);
            answer.assert_invalid_token();
        }
    }

    async fn the_basic_form_of_the_token_is_not_accepted_outside_the_resource_api(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid email").await;
        assert_eq!(app.userinfo(&tokens.access_token).await.status(), StatusCode::OK);

        // Act
        let resp = app
            .api
            .get(app.url("/userinfo"))
            .header("Authorization", basic_token(&tokens.access_token, ""))
            .send()
            .await
            .expect("GET /userinfo");

        // Assert
        assert!(
            matches!(resp.status().as_u16(), 400 | 401),
            "userinfo takes Bearer only, got {}",
            resp.status()
        );
    }

    async fn the_bearer_scheme_name_is_case_insensitive(app) {
        // Arrange (RFC 7235 §2.1)
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let answer = app
            .call_api("GET", "/account", Some(&format!("bearer {}", tokens.access_token)))
            .await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }

    async fn no_token_is_a_401_with_the_realm_challenge(app) {
        for route in API_ROUTES {
            // Act
            let answer = app.call_api(route.method, &concrete_path(route), None).await;

            // Assert
            answer.assert_nylas_error(401, "invalid_request_error");
            assert_eq!(
                answer.www_authenticate.as_deref(),
                Some(r#"Bearer realm="scopegate""#),
                "{}",
                route_name(route)
            );
        }
    }

    async fn a_malformed_token_is_an_invalid_token(app) {
        // Arrange
        let client = app.confidential_client().await;
        let real = app.client_token(&client, "email.read_only").await;
        let header_b64 = real.split('.').next().unwrap().to_string();
        let unsigned = real.rsplit_once('.').unwrap().0.to_string();
        let alg_none = {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            use base64::Engine as _;
            let h = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#,
                jwt_kid(&real)
            ));
            let p = real.split('.').nth(1).unwrap();
            format!("{h}.{p}.")
        };
        let hs256 = {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.typ = Some("at+jwt".into());
            h.kid = Some(jwt_kid(&real));
            jsonwebtoken::encode(&h, &jwt_claims(&real), &jsonwebtoken::EncodingKey::from_secret(b"guess"))
                .unwrap()
        };
        let cases = vec![
            ("not a JWT", bearer("not-a-jwt")),
            ("three garbage parts", bearer("a.b.c")),
            ("no signature", bearer(&unsigned)),
            ("header only", bearer(&header_b64)),
            ("alg none", bearer(&alg_none)),
            ("HS256 with a guessed secret", bearer(&hs256)),
            ("a refresh-token-looking string", bearer("sgr_0123456789abcdef")),
            ("an unknown scheme", format!("Token {real}")),
            ("Basic that is not base64", "Basic !!!".to_string()),
            ("10 kB of junk", bearer(&"x".repeat(10_000))),
        ];
        let sanity = app.call_api("GET", "/messages", Some(&bearer(&real))).await;
        assert_eq!(sanity.status, StatusCode::NOT_FOUND, "the real token passes: {}", sanity.text);

        for (what, value) in cases {
            // Act
            let answer = app.call_api("GET", "/messages", Some(&value)).await;

            // Assert
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.text);
            answer.assert_invalid_token();
        }
    }

    #[settings(|s| s.access_token_ttl_secs = 2)]
    async fn an_expired_token_is_an_invalid_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let fresh = app.get_account(&tokens.access_token).await;
        assert_eq!(fresh.status, StatusCode::OK, "valid before it expires: {}", fresh.text);

        // Act
        tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
        let account = app.get_account(&tokens.access_token).await;
        let messages = app.call_api("GET", "/messages", Some(&bearer(&tokens.access_token))).await;

        // Assert
        account.assert_invalid_token();
        messages.assert_invalid_token();
    }

    async fn a_badly_signed_token_is_an_invalid_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let claims = jwt_claims(&tokens.access_token);
        let kid = jwt_kid(&tokens.access_token);
        let cases = [
            ("a flipped signature character", with_flipped_signature(&tokens.access_token)),
            ("a different key under the same kid", sign_with_foreign_key(&kid, &claims)),
        ];

        for (what, token) in cases {
            // Act
            let answer = app.get_account(&token).await;

            // Assert
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.text);
            answer.assert_invalid_token();
        }
    }

    async fn a_token_for_another_audience_or_issuer_is_an_invalid_token(app) {
        // Arrange: the server's own key signs claims that differ only in aud or iss.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let claims = jwt_claims(&tokens.access_token);
        let resigned = app.sign_with_server_key(&claims).await;
        let control = app.get_account(&resigned).await;
        assert_eq!(control.status, StatusCode::OK, "re-signed unchanged claims pass: {}", control.text);
        let with = |key: &str, value: &str| {
            let mut c = claims.clone();
            c[key] = Value::String(value.to_string());
            c
        };
        let cases = [
            ("another audience", with("aud", "https://mail.other.example")),
            ("another issuer", with("iss", "https://scopegate.other.example")),
            ("a scope outside the catalogue", with("scope", "email.read_only email.everything")),
        ];

        for (what, claims) in cases {
            let token = app.sign_with_server_key(&claims).await;

            // Act
            let answer = app.get_account(&token).await;

            // Assert
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.text);
            answer.assert_invalid_token();
        }
    }

    async fn a_token_from_another_scopegate_is_an_invalid_token(app) {
        // Arrange
        let other = spawn_app(Backend::Sqlite).await;
        let user = other.create_user().await;
        let client = other.confidential_client().await;
        let tokens = other.tokens(&user, &client, "email.read_only").await;
        assert_ne!(jwt_claims(&tokens.access_token)["iss"].as_str(), Some(app.address.as_str()));

        // Act
        let answer = app.get_account(&tokens.access_token).await;

        // Assert
        answer.assert_invalid_token();
    }

    async fn an_id_token_is_not_an_access_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid email.read_only").await;
        let id_token = tokens.id_token.clone().expect("an ID token with openid");

        // Act
        let answer = app.get_account(&id_token).await;

        // Assert
        answer.assert_invalid_token();
    }

    async fn a_revoked_token_is_an_invalid_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        assert_eq!(app.get_account(&tokens.access_token).await.status, StatusCode::OK);
        let revoked = app.revoke(&client, &tokens.access_token).await;
        assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);

        // Act
        let account = app.get_account(&tokens.access_token).await;
        let messages = app.call_api("GET", "/messages", Some(&bearer(&tokens.access_token))).await;

        // Assert
        account.assert_invalid_token();
        messages.assert_invalid_token();
    }

    async fn an_unlisted_method_on_a_resource_path_is_405_not_500(app) {
        // Arrange
        let client = app.confidential_client().await;
        let token = app.client_token(&client, "email.modify").await;

        for (method, path) in [("PATCH", "/messages/abc"), ("POST", "/account"), ("DELETE", "/send")] {
            // Act
            let answer = app.call_api(method, path, Some(&bearer(&token))).await;

            // Assert
            answer.assert_nylas_error(405, "invalid_request_error");
        }
    }
}
