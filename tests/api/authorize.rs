//! GET /oauth/authorize: login redirect, error page vs error redirect, parameters.

use crate::helpers::*;
use reqwest::StatusCode;
use url::Url;

/// A user signed in in the default browser, and a confidential client.
async fn signed_in(app: &TestApp) -> (TestUser, TestClient) {
    let user = app.create_user().await;
    let client = app.confidential_client().await;
    let resp = app.login(&user).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login succeeds");
    (user, client)
}

/// `return_to` of a login redirect, resolved against the server.
fn return_to(app: &TestApp, login: &Url) -> Url {
    let rt = query(login)
        .get("return_to")
        .cloned()
        .expect("return_to on the login redirect");
    Url::parse(&app.address)
        .unwrap()
        .join(&rt)
        .expect("return_to resolves")
}

e2e! {
    async fn an_unsigned_in_browser_is_sent_to_login_with_a_return_to(app) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_eq!(to.origin(), Url::parse(&app.address).unwrap().origin());
        assert_eq!(to.path(), "/login");
        let back = return_to(&app, &to);
        assert_eq!(back.path(), "/oauth/authorize");
        let q = query(&back);
        assert_eq!(q.get("client_id"), Some(&client.client_id));
        assert_eq!(q.get("state").map(String::as_str), Some(params.state()));
        assert_eq!(q.get("code_challenge").map(String::as_str), params.get("code_challenge"));
    }

    async fn signing_in_sends_the_browser_back_to_return_to(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let login = assert_redirect(&app.get_authorize(&params).await);

        // Act
        let resp = app.browser.submit_login(login.as_str(), &user.email, &user.password).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp).expect("Location"), return_to(&app, &login));
    }

    async fn an_unknown_client_gets_an_error_page_and_no_redirect(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").set("client_id", "no-such-client");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        assert_error_page(resp).await;
    }

    async fn a_missing_client_id_gets_an_error_page(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").remove("client_id");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        assert_error_page(resp).await;
    }

    async fn an_unregistered_redirect_uri_gets_an_error_page(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let lookalikes = [
            "https://evil.example/oauth/callback",
            "https://client.example/oauth/callback/",
            "https://client.example/oauth/callback?x=1",
            "https://client.example/oauth/callback/../evil",
            "https://client.example/OAUTH/callback",
            "http://client.example/oauth/callback",
            "https://client.example:8443/oauth/callback",
            "https://client.example.evil.example/oauth/callback",
            "https://client.example/oauth/callback#frag",
        ];

        for uri in lookalikes {
            // Act
            let params = AuthParams::new(&client, "email.read_only").set("redirect_uri", uri);
            let resp = app.get_authorize(&params).await;

            // Assert
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "redirect_uri {uri}");
            assert!(resp.headers().get("location").is_none(), "no redirect for {uri}");
        }
    }

    async fn an_unknown_client_is_refused_before_the_login_page(app) {
        // Arrange
        let client = app.confidential_client().await;
        let unknown = AuthParams::new(&client, "email.read_only").set("client_id", "no-such-client");
        let bad_uri = AuthParams::new(&client, "email.read_only").set("redirect_uri", "https://evil.example/cb");

        // Act
        let unknown = app.get_authorize(&unknown).await;
        let bad_uri = app.get_authorize(&bad_uri).await;

        // Assert
        assert_error_page(unknown).await;
        assert_error_page(bad_uri).await;
    }

    async fn an_unsupported_response_type_is_redirected_with_state_and_iss(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").set("response_type", "token");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "unsupported_response_type", params.state(), &app.issuer().await);
    }

    async fn a_missing_response_type_is_an_error_redirect(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").remove("response_type");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_sent_to(&to, &client.redirect_uri);
        let q = query(&to);
        let error = q.get("error").map(String::as_str).unwrap_or("");
        assert!(matches!(error, "invalid_request" | "unsupported_response_type"), "{to}");
        assert_eq!(q.get("state").map(String::as_str), Some(params.state()));
        assert!(!q.contains_key("code"));
    }

    async fn an_unknown_scope_is_invalid_scope(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only email.delete_everything");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_scope", params.state(), &app.issuer().await);
    }

    async fn a_scope_the_client_may_not_ask_for_is_invalid_scope(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.client_with_scopes(&["email.read_only"]).await;
        app.login(&user).await;
        let params = AuthParams::new(&client, "email.read_only email.send");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_scope", params.state(), &app.issuer().await);
    }

    async fn a_missing_code_challenge_is_invalid_request(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").without_pkce();

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_request", params.state(), &app.issuer().await);
    }

    async fn the_plain_challenge_method_is_invalid_request(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let verifier = random_string(50);
        let params = AuthParams::new(&client, "email.read_only")
            .set("code_challenge", &verifier)
            .set("code_challenge_method", "plain");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_request", params.state(), &app.issuer().await);
    }

    async fn a_code_challenge_without_a_method_is_not_taken_as_plain(app) {
        // Arrange: RFC 7636 defaults a missing method to plain, which Scopegate refuses.
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").remove("code_challenge_method");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_request", params.state(), &app.issuer().await);
    }

    async fn a_duplicated_state_is_invalid_request(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only");
        let first = params.state().to_string();
        let params = params.add("state", "second-state");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_sent_to(&to, &client.redirect_uri);
        let q = query(&to);
        assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"), "{to}");
        assert!(!q.contains_key("code"), "{to}");
        let states = query_all(&to, "state");
        assert!(states.len() <= 1, "at most one state echoed: {to}");
        if let Some(s) = states.first() {
            assert!(s == &first || s == "second-state", "{to}");
        }
    }

    async fn a_duplicated_scope_is_invalid_request(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").add("scope", "email.send");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_request", params.state(), &app.issuer().await);
    }

    async fn a_successful_authorization_redirects_with_code_state_and_iss(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;

        // Assert
        assert_sent_to(&to, &client.redirect_uri);
        let q = query(&to);
        assert!(!q.get("code").map(String::as_str).unwrap_or("").is_empty(), "code in {to}");
        assert_eq!(q.get("state").map(String::as_str), Some(params.state()));
        assert_eq!(q.get("iss"), Some(&app.issuer().await));
        assert!(!q.contains_key("error"));
    }

    async fn the_state_is_echoed_exactly(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let state = "a b&c=d/é+%25~\"<>";
        let params = AuthParams::new(&client, "email.read_only").set("state", state);

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;

        // Assert
        assert_eq!(query(&to).get("state").map(String::as_str), Some(state));
    }

    async fn comma_separated_scopes_are_accepted(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        // Act
        let tokens = app.tokens(&user, &client, "email.read_only,email.send").await;

        // Assert
        assert_eq!(tokens.scope, set_of(&["email.read_only", "email.send"]));
        assert_eq!(tokens.body["scope"].as_str().unwrap().split(' ').count(), 2, "space-separated");
    }

    async fn a_client_with_one_redirect_uri_may_omit_it(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only").remove("redirect_uri");

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;
        let grant = code_grant_from(&to, &client, &params);
        let token = app.exchange(&grant).await;

        // Assert
        assert_sent_to(&to, &client.redirect_uri);
        assert!(grant.redirect_uri.is_none());
        token.tokens();
    }

    async fn a_client_with_several_redirect_uris_must_name_one(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app
            .create_client(scopegate::ops::ClientSpec {
                redirect_uris: vec![
                    "https://client.example/a".to_string(),
                    "https://client.example/b".to_string(),
                ],
                ..confidential_spec()
            })
            .await;
        app.login(&user).await;
        let omitted = AuthParams::new(&client, "email.read_only").remove("redirect_uri");
        let second = AuthParams::new(&client, "email.read_only").set("redirect_uri", "https://client.example/b");

        // Act
        let omitted = app.get_authorize(&omitted).await;
        let to = app.authorize(&user, &second, Decision::AllowAll).await;

        // Assert
        assert_error_page(omitted).await;
        assert_sent_to(&to, "https://client.example/b");
        assert!(query(&to).contains_key("code"));
    }
    async fn prompt_none_with_another_value_is_invalid_request(app) {
        // Arrange: OIDC Core §3.1.2.1, none may not be combined.
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "none login");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_request", params.state(), &app.issuer().await);
    }

    async fn scope_names_are_case_sensitive(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;
        let params = AuthParams::new(&client, "Email.Read_Only");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_scope", params.state(), &app.issuer().await);
    }

    async fn mixed_scope_separators_are_accepted(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        // Act
        let tokens = app.tokens(&user, &client, " email.read_only, email.send  calendar,contacts ").await;

        // Assert
        assert_eq!(tokens.scope, set_of(&["email.read_only", "email.send", "calendar", "contacts"]));
    }

    async fn a_scope_named_twice_is_granted_once(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.read_only,email.read_only");

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;

        // Assert
        let q = query(&to);
        if q.contains_key("code") {
            let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await;
            assert_eq!(tokens.str("scope"), "email.read_only");
        } else {
            assert_error_redirect(&to, &client.redirect_uri, "invalid_scope", params.state(), &app.issuer().await);
        }
    }

    async fn every_catalogue_scope_can_be_granted_at_once(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let all = CATALOGUE.join(" ");

        // Act
        let tokens = app.tokens(&user, &client, &all).await;

        // Assert
        assert_eq!(tokens.scope, set_of(CATALOGUE));
        assert!(tokens.id_token.is_some());
    }

    async fn without_a_state_the_redirect_carries_none(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only").remove("state");

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;

        // Assert
        assert_sent_to(&to, &client.redirect_uri);
        assert!(!query(&to).contains_key("state"), "no invented state: {to}");
    }

    async fn malformed_redirect_uris_get_an_error_page(app) {
        // Arrange
        let (_user, client) = signed_in(&app).await;

        for uri in ["not a url", "/oauth/callback", "client.example/oauth/callback", "javascript:alert(1)"] {
            // Act
            let resp = app.get_authorize(&AuthParams::new(&client, "email.read_only").set("redirect_uri", uri)).await;

            // Assert
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "redirect_uri {uri}");
            assert!(resp.headers().get("location").is_none(), "no redirect for {uri}");
        }
    }

    async fn two_users_in_two_browsers_get_their_own_tokens(app) {
        // Arrange
        let alice = app.create_user().await;
        let bob = app.create_user().await;
        let client = app.confidential_client().await;
        let bobs_browser = app.new_browser();
        let alices_request = AuthParams::new(&client, "openid");
        let bobs_request = AuthParams::new(&client, "openid");

        // Act
        let a = app.authorize(&alice, &alices_request, Decision::AllowAll).await;
        let b = bobs_browser.authorize(&bob, &bobs_request, Decision::AllowAll).await;
        let a = app.exchange(&code_grant_from(&a, &client, &alices_request)).await.tokens();
        let b = app.exchange(&code_grant_from(&b, &client, &bobs_request)).await.tokens();

        // Assert
        let (_, a) = app.verify_jwt(&a.access_token).await;
        let (_, b) = app.verify_jwt(&b.access_token).await;
        assert_eq!(a["sub"].as_str(), Some(alice.id.as_str()));
        assert_eq!(b["sub"].as_str(), Some(bob.id.as_str()));
    }
}
