//! "Continue with Google" end to end against the fake Google: what Scopegate asks Google for,
//! full and partial Google consent, asking Google again, linking rules, and every way the
//! round trip can fail (nothing stored half-way).

use std::collections::BTreeSet;

use reqwest::StatusCode;
use url::Url;

use crate::fake_google::*;
use crate::google_helpers::*;
use crate::helpers::*;

/// The Google scopes a recorded request or call names, as a set.
fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Nothing of a Google sign-in was stored: no user, no link, no session.
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
        count_rows(app, "sessions").await,
        0,
        "no session was started"
    );
}

/// A failed round trip ends in an HTML page with a 4xx status that says something.
#[track_caller]
fn assert_clear_failure_page(status: StatusCode, content_type: &str, text: &str) {
    assert!(status.is_client_error(), "a 4xx page, got {status}: {text}");
    assert!(
        content_type.starts_with("text/html"),
        "an HTML page, got {content_type:?}"
    );
    assert!(
        text.contains("Google"),
        "the page says what happened: {text}"
    );
}

/// Exchanges the code of a finished flow and returns the tokens.
async fn exchange_at(app: &TestApp, to: &Url, client: &TestClient, params: &AuthParams) -> Tokens {
    assert_sent_to(to, &client.redirect_uri);
    app.exchange(&code_grant_from(to, client, params))
        .await
        .tokens()
}

e2e! {
    async fn without_a_google_client_id_there_is_no_google_sign_in(app) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let resp = app.get_authorize(&params).await;
        let Step::Login(login) = app.browser.step(resp).await else { panic!("expected the login page") };

        // Act
        let page = app.browser.get(login.as_str()).await;
        let url = page.url().clone();
        let body = page.text().await.unwrap();
        let start = app.browser.get("/auth/google?return_to=%2F").await;

        // Assert
        assert!(google_link(&body, &url).is_none(), "no Google link without a client id: {body}");
        assert!(start.status().is_client_error(), "GET /auth/google: {}", start.status());
        assert!(start.headers().get("location").is_none(), "no redirect to Google");
    }
}

google_e2e! {
    async fn the_login_page_offers_continue_with_google_for_the_pending_request(app, _google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let resp = app.get_authorize(&params).await;
        let Step::Login(login) = app.browser.step(resp).await else { panic!("expected the login page") };

        // Act
        let page = app.browser.get(login.as_str()).await;
        let url = page.url().clone();
        let body = page.text().await.unwrap();

        // Assert
        let link = google_link(&body, &url).expect("a Continue with Google link");
        assert_eq!(link.origin(), app.browser.origin(), "the link stays on Scopegate");
        let return_to = query(&link).get("return_to").cloned().unwrap_or_default();
        assert!(return_to.starts_with("/oauth/authorize?"), "return_to resumes the request: {return_to}");
        assert!(return_to.contains(&client.client_id), "{return_to}");
        assert!(visible_text(&body).contains("Continue with Google"));
    }

    async fn scopegate_asks_google_for_identity_and_exactly_the_mapped_scopes(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(
            &client,
            "openid email.read_only email.send calendar.read_only contacts",
        );

        // Act
        let to_google = start_google_sign_in(&app.browser, &params).await;
        google_answers(&app.browser, &to_google).await;

        // Assert
        let fake = Url::parse(&google.auth_url()).unwrap();
        assert_eq!((to_google.origin(), to_google.path()), (fake.origin(), fake.path()), "{to_google}");
        let asked = google.last_auth_request();
        assert_eq!(
            asked.scopes(),
            expected_google_request(&["email.read_only", "email.send", "calendar.read_only", "contacts"]),
            "identity + the mapped scopes, nothing else"
        );
        assert_eq!(asked.get("client_id"), Some(SCOPEGATE_GOOGLE_CLIENT_ID));
        assert_eq!(asked.get("response_type"), Some("code"));
        let callback = format!("{}/auth/google/callback", app.issuer().await);
        assert_eq!(asked.get("redirect_uri"), Some(callback.as_str()));
        assert_eq!(asked.get("code_challenge_method"), Some("S256"));
        assert_eq!(asked.get("code_challenge").map(str::len), Some(43), "an S256 challenge");
        assert!(asked.get("state").is_some_and(|s| s.len() >= 16), "an unguessable state");
        assert!(asked.get("nonce").is_some_and(|s| s.len() >= 16), "a nonce");
        assert_eq!(asked.get("access_type"), Some("offline"));
        assert_eq!(asked.get("include_granted_scopes"), Some("true"));
    }

    async fn every_scopegate_scope_maps_to_its_google_scope(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, &CATALOGUE.join(" "));

        // Act
        let to_google = start_google_sign_in(&app.browser, &params).await;
        google_answers(&app.browser, &to_google).await;

        // Assert
        let expected = set(&[
            OPENID, USERINFO_EMAIL, USERINFO_PROFILE,
            GMAIL_MODIFY, GMAIL_READONLY, GMAIL_SEND, GMAIL_LABELS, GMAIL_COMPOSE,
            CALENDAR, CALENDAR_READONLY, CONTACTS, CONTACTS_READONLY,
        ]);
        assert_eq!(google.last_auth_request().scopes(), expected);
        assert_eq!(expected_google_request(ALL_RESOURCE_SCOPES), expected);
    }

    async fn a_request_without_resource_scopes_asks_google_for_identity_only(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "openid profile email offline_access");

        // Act
        let to_google = start_google_sign_in(&app.browser, &params).await;
        google_answers(&app.browser, &to_google).await;

        // Assert
        assert_eq!(google.last_auth_request().scopes(), set(IDENTITY));
    }

    async fn full_google_consent_signs_in_and_the_token_carries_every_scope(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send");

        // Act
        let page = google_consent_page(&app.browser, &params).await;
        let offered: BTreeSet<String> = page.scopes().into_iter().collect();
        let resp = app.browser.decide(&page, &Decision::AllowAll).await;
        let Step::Away(to) = app.browser.step(resp).await else { panic!("expected the client redirect") };
        let tokens = exchange_at(&app, &to, &client, &params).await;

        // Assert
        assert_eq!(offered, set_of(&["email.read_only", "email.send"]));
        assert!(page.text.contains(&google.user().email), "the page names who signed in: {}", page.text);
        assert!(ask_google_link(&page).is_none(), "nothing to ask Google again for");
        assert_eq!(tokens.scope, set_of(&["email.read_only", "email.send"]));
        let acct = account(&app, &tokens.access_token).await;
        assert_eq!(acct["provider"], "gmail");
        assert_eq!(acct["email_address"], google.user().email.as_str());
        assert_eq!(acct["organization_unit"], "label");
        let exchanges: Vec<TokenRequest> = google
            .token_requests()
            .into_iter()
            .filter(|r| r.grant_type == "authorization_code")
            .collect();
        assert_eq!(exchanges.len(), 1, "one code exchange");
        assert_eq!(exchanges[0].status, 200, "PKCE verifier and redirect_uri matched at Google");
        assert_eq!(exchanges[0].client_id.as_deref(), Some(SCOPEGATE_GOOGLE_CLIENT_ID));
    }

    async fn partial_google_consent_offers_only_the_covered_scopes(app, google) {
        // Arrange
        google.set_consent(Consent::only(&[GMAIL_READONLY]));
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send contacts");

        // Act
        let page = google_consent_page(&app.browser, &params).await;
        let resp = app.browser.decide(&page, &Decision::AllowAll).await;
        let Step::Away(to) = app.browser.step(resp).await else { panic!("expected the client redirect") };
        let tokens = exchange_at(&app, &to, &client, &params).await;

        // Assert
        assert_eq!(page.scopes(), vec!["email.read_only".to_string()], "only covered scopes are checkboxes");
        assert!(page.text.contains("email.send") && page.text.contains("contacts"),
            "the withheld scopes are listed as unavailable: {}", page.text);
        let again = ask_google_link(&page).expect("a link to ask Google again");
        assert!(query(&again).get("return_to").is_some_and(|r| r.starts_with("/oauth/authorize?")));
        assert_eq!(tokens.scope, set_of(&["email.read_only"]), "the final token has only what Google covered");
    }

    async fn the_google_token_scopegate_holds_has_no_more_scope_than_google_granted(app, google) {
        // Arrange
        google.set_consent(Consent::only(&[GMAIL_READONLY]));
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send contacts");
        let to = google_authorize(&app.browser, &params, Decision::AllowAll).await;
        let tokens = exchange_at(&app, &to, &client, &params).await;

        // Act
        let messages = api_call(&app, "GET", "/messages", &tokens.access_token, None).await;
        let send = api_call(&app, "POST", "/send", &tokens.access_token,
            Some(serde_json::json!({"to": [{"email": "bob@example.com"}], "subject": "x", "body": "y"}))).await;

        // Assert
        assert_eq!(messages.status, StatusCode::OK, "{}", messages.text);
        assert_scope_refusal(&send, &["email.read_only"], &["email.send"]);
        let calls = google.resource_calls();
        assert!(!calls.is_empty(), "the API went to Google");
        for call in &calls {
            assert_eq!(call.status, 200, "{call:?}");
            assert_eq!(call.token_scopes, set(&[OPENID, USERINFO_EMAIL, USERINFO_PROFILE, GMAIL_READONLY]),
                "{} {} used a Google token with other scopes", call.method, call.path);
        }
        assert!(calls.iter().all(|c| !c.path.ends_with("/send")), "no send reached Google");
        assert!(google.sent_messages().is_empty());
    }

    async fn a_withheld_scope_cannot_be_granted_by_forging_the_consent_form(app, google) {
        // Arrange
        google.set_consent(Consent::only(&[GMAIL_READONLY]));
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send");
        let page = google_consent_page(&app.browser, &params).await;

        // Act
        let resp = app.browser.post_consent(
            &page, "allow", &["email.read_only".to_string(), "email.send".to_string()], true).await;

        // Assert
        match app.browser.step(resp).await {
            Step::Away(to) if query(&to).contains_key("code") => {
                let tokens = exchange_at(&app, &to, &client, &params).await;
                assert!(!tokens.scope.contains("email.send"), "email.send was granted: {:?}", tokens.scope);
            }
            Step::Away(to) => assert!(query(&to).contains_key("error"), "{to}"),
            Step::Other { status, .. } => assert!(status.is_client_error(), "{status}"),
            other => panic!("unexpected answer to a forged consent: {other:?}"),
        }
    }

    async fn asking_google_again_adds_the_scopes_google_first_withheld(app, google) {
        // Arrange
        google.set_consent(Consent::only(&[GMAIL_READONLY]));
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send contacts");
        let first = google_consent_page(&app.browser, &params).await;
        let again = ask_google_link(&first).expect("a link to ask Google again");
        google.set_consent(Consent::All);

        // Act
        let to_google = follow_to_google(&app.browser, &again).await;
        let callback = google_answers(&app.browser, &to_google).await;
        let resp = app.browser.get(callback.as_str()).await;
        let page = follow_to_consent(&app.browser, resp).await;
        let resp = app.browser.decide(&page, &Decision::AllowAll).await;
        let Step::Away(to) = app.browser.step(resp).await else { panic!("expected the client redirect") };
        let tokens = exchange_at(&app, &to, &client, &params).await;

        // Assert
        let asked = google.last_auth_request();
        assert_eq!(asked.scopes(), expected_google_request(&["email.read_only", "email.send", "contacts"]));
        assert_eq!(asked.get("include_granted_scopes"), Some("true"), "incremental authorization");
        let mut offered = page.scopes();
        offered.sort();
        assert_eq!(offered, vec!["contacts", "email.read_only", "email.send"]);
        assert!(ask_google_link(&page).is_none());
        assert_eq!(tokens.scope, set_of(&["email.read_only", "email.send", "contacts"]));
        assert_eq!(count_rows(&app, "google_accounts").await, 1, "the same link, updated");
    }

    async fn signing_in_with_google_again_signs_in_as_the_same_user(app, _google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to = google_authorize(&app.browser, &params, Decision::AllowAll).await;
        let first = account(&app, &exchange_at(&app, &to, &client, &params).await.access_token).await;
        let users = count_rows(&app, "users").await;

        // Act
        let other_browser = app.new_browser();
        let params = AuthParams::new(&client, "email.read_only");
        let resp = sign_in_with_google(&other_browser, &params).await;
        let to = match other_browser.step(resp).await {
            Step::Internal(url) => {
                let resp = other_browser.get(url.as_str()).await;
                match other_browser.step(resp).await {
                    Step::Away(to) => to,
                    Step::Consent(page) => {
                        let resp = other_browser.decide(&page, &Decision::AllowAll).await;
                        let Step::Away(to) = other_browser.step(resp).await else { panic!("no redirect") };
                        to
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        };
        let second = account(&app, &exchange_at(&app, &to, &client, &params).await.access_token).await;

        // Assert
        assert_eq!(first["id"], second["id"], "the Google sub is linked to one user");
        assert_eq!(count_rows(&app, "users").await, users, "no second user");
        assert_eq!(count_rows(&app, "google_accounts").await, 1);
    }

    async fn declining_at_google_shows_a_clear_page_and_stores_nothing(app, google) {
        // Arrange
        google.set_consent(Consent::Deny);
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let resp = sign_in_with_google(&app.browser, &params).await;
        let (status, ct, text) = page_text(resp).await;

        // Assert
        assert_clear_failure_page(status, &ct, &text);
        assert_nothing_stored(&app, users).await;
        assert_eq!(google.token_requests().len(), 0, "no code was exchanged");
        let again = app.get_authorize(&params).await;
        assert!(matches!(app.browser.step(again).await, Step::Login(_)), "still signed out");
    }

    async fn an_invalid_code_from_google_ends_in_a_clear_page_and_stores_nothing(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to_google = start_google_sign_in(&app.browser, &params).await;
        let callback = google_answers(&app.browser, &to_google).await;
        let callback = with_param(&callback, "code", "4/0not-a-real-code");

        // Act
        let (status, ct, text) = page_text(app.browser.get(callback.as_str()).await).await;

        // Assert
        assert_clear_failure_page(status, &ct, &text);
        assert_eq!(google.code_exchange_count(), 1, "Scopegate tried the code once");
        assert_nothing_stored(&app, users).await;
    }

    #[settings(|s| s.google.token_url = closed_port_url())]
    async fn google_unreachable_at_the_token_endpoint_ends_in_a_clear_page(app, _google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let resp = sign_in_with_google(&app.browser, &params).await;
        let (status, ct, text) = page_text(resp).await;

        // Assert: an unreachable upstream is a gateway failure, told on a clear page.
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
        assert!(ct.starts_with("text/html") && text.contains("Google"), "{text}");
        assert_nothing_stored(&app, users).await;
    }

    async fn a_callback_with_a_forged_state_is_refused_before_any_exchange(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to_google = start_google_sign_in(&app.browser, &params).await;
        let callback = google_answers(&app.browser, &to_google).await;
        let callback = with_param(&callback, "state", "forged-state-value-1234");

        // Act
        let (status, ct, text) = page_text(app.browser.get(callback.as_str()).await).await;

        // Assert
        assert_clear_failure_page(status, &ct, &text);
        assert_eq!(google.code_exchange_count(), 0, "the code was not exchanged");
        assert_nothing_stored(&app, users).await;
    }

    async fn a_callback_in_another_browser_is_refused(app, google) {
        // Arrange
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to_google = start_google_sign_in(&app.browser, &params).await;
        let callback = google_answers(&app.browser, &to_google).await;

        // Act
        let attacker = app.new_browser();
        let (status, ct, text) = page_text(attacker.get(callback.as_str()).await).await;

        // Assert
        assert_clear_failure_page(status, &ct, &text);
        assert_eq!(google.code_exchange_count(), 0);
        assert_nothing_stored(&app, users).await;
    }

    async fn a_replayed_callback_does_not_exchange_the_code_again(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to_google = start_google_sign_in(&app.browser, &params).await;
        let callback = google_answers(&app.browser, &to_google).await;
        let first = app.browser.get(callback.as_str()).await;
        assert!(first.status().is_redirection(), "the first callback signs in: {}", first.status());

        // Act
        let replay = app.browser.get(callback.as_str()).await;

        // Assert
        assert!(replay.status().is_client_error(), "a replay is refused: {}", replay.status());
        assert_eq!(google.code_exchange_count(), 1, "the code went to Google once");
    }

    async fn an_id_token_with_the_wrong_nonce_is_refused(app, google) {
        // Arrange
        google.with(|s| s.id_token_nonce_override = Some("replayed-nonce-from-elsewhere".into()));
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let (status, ct, text) = page_text(sign_in_with_google(&app.browser, &params).await).await;

        // Assert
        assert_clear_failure_page(status, &ct, &text);
        assert_nothing_stored(&app, users).await;
    }

    async fn an_existing_user_whose_email_google_is_not_authoritative_for_is_not_taken_over(app, google) {
        // Arrange: the fake's user is ada.lovelace@gmail.test, not a gmail.com address.
        let owner = create_user_with_email(&app, &google.user().email).await;
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let (status, ct, text) = page_text(sign_in_with_google(&app.browser, &params).await).await;

        // Assert
        assert!(status.is_client_error(), "{status}: {text}");
        assert!(ct.starts_with("text/html"));
        assert_eq!(count_rows(&app, "users").await, users);
        assert_eq!(count_rows(&app, "google_accounts").await, 0, "{} was not linked", owner.email);
        assert_eq!(count_rows(&app, "sessions").await, 0);
    }

    async fn a_verified_gmail_address_joins_the_existing_user(app, google) {
        // Arrange
        google.set_user(GoogleUser { email: "ada.lovelace@gmail.com".into(), ..GoogleUser::default() });
        let owner = create_user_with_email(&app, "ada.lovelace@gmail.com").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let to = google_authorize(&app.browser, &params, Decision::AllowAll).await;
        let tokens = exchange_at(&app, &to, &client, &params).await;

        // Assert
        assert_eq!(account(&app, &tokens.access_token).await["id"], owner.id.as_str());
        assert_eq!(count_rows(&app, "google_accounts").await, 1);
    }

    async fn an_unverified_google_email_is_refused(app, google) {
        // Arrange
        google.set_user(GoogleUser { email_verified: false, ..GoogleUser::default() });
        let users = count_rows(&app, "users").await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let (status, ct, _text) = page_text(sign_in_with_google(&app.browser, &params).await).await;

        // Assert
        assert!(status.is_client_error(), "{status}");
        assert!(ct.starts_with("text/html"));
        assert_nothing_stored(&app, users).await;
    }
}
