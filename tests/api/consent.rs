//! The consent page: what it shows, allow / deny / partial grants, stored consent, prompt and
//! incremental authorization.

use crate::helpers::*;
use reqwest::StatusCode;

e2e! {
    async fn the_consent_page_lists_each_requested_scope_as_a_checked_checkbox(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;
        let params = AuthParams::new(&client, "email.read_only email.send calendar");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        assert_frame_ancestors_none(&resp);
        let url = resp.url().clone();
        let page = ConsentPage::parse(&resp.text().await.unwrap(), &url).expect("a consent page");
        assert_eq!(page.form.method, "post");
        assert_eq!(page.form.action.path(), "/oauth/authorize");
        let mut boxes = page.form.scope_boxes.clone();
        boxes.sort();
        assert_eq!(
            boxes,
            vec![
                ("calendar".to_string(), true),
                ("email.read_only".to_string(), true),
                ("email.send".to_string(), true),
            ]
        );
        assert!(page.form.buttons.contains(&("decision".to_string(), "allow".to_string())));
        assert!(page.form.buttons.contains(&("decision".to_string(), "deny".to_string())));
        assert!(page.form.hidden("csrf_token").is_some_and(|t| !t.is_empty()), "csrf_token");
        assert!(page.text.contains(&client.name), "names the application");
        assert!(page.text.contains(&user.email), "names who is signed in");
    }

    async fn allowing_redirects_with_a_code_state_and_iss(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send");
        let page = app.browser.consent_page(&user, &params).await;

        // Act
        let resp = app.browser.decide(&page, &Decision::AllowAll).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_sent_to(&to, &client.redirect_uri);
        let q = query(&to);
        assert!(q.contains_key("code"), "{to}");
        assert_eq!(q.get("state").map(String::as_str), Some(params.state()));
        assert_eq!(q.get("iss"), Some(&app.issuer().await));
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
        assert_eq!(tokens.scope, set_of(&["email.read_only", "email.send"]));
    }

    async fn unchecking_a_scope_grants_only_the_rest(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send contacts");

        // Act
        let to = app.authorize(&user, &params, Decision::allow(&["email.read_only", "contacts"])).await;
        let token = app.exchange(&code_grant_from(&to, &client, &params)).await;

        // Assert
        assert_eq!(token.tokens().scope, set_of(&["email.read_only", "contacts"]));
        let (_, claims) = app.verify_jwt(token.str("access_token")).await;
        assert_eq!(scope_set(claims["scope"].as_str().unwrap()), set_of(&["email.read_only", "contacts"]));
    }

    async fn denying_redirects_with_access_denied_and_the_state(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let to = app.authorize(&user, &params, Decision::Deny).await;

        // Assert
        assert_error_redirect(&to, &client.redirect_uri, "access_denied", params.state(), &app.issuer().await);
    }

    async fn allowing_with_no_scope_checked_is_access_denied(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send");

        // Act
        let to = app.authorize(&user, &params, Decision::allow(&[])).await;

        // Assert
        assert_error_redirect(&to, &client.redirect_uri, "access_denied", params.state(), &app.issuer().await);
    }

    async fn a_scope_added_to_the_form_that_was_not_requested_is_not_granted(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");

        // Act
        let to = app.authorize(&user, &params, Decision::allow(&["email.read_only", "email.send"])).await;

        // Assert
        assert_sent_to(&to, &client.redirect_uri);
        if query(&to).contains_key("code") {
            let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
            assert_eq!(tokens.scope, set_of(&["email.read_only"]));
        } else {
            assert!(query(&to).contains_key("error"), "{to}");
        }
    }

    async fn already_granted_scopes_skip_the_consent_page(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only email.send").await;
        let params = AuthParams::new(&client, "email.send");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_sent_to(&to, &client.redirect_uri);
        assert_eq!(query(&to).get("state").map(String::as_str), Some(params.state()));
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
        assert_eq!(tokens.scope, set_of(&["email.send"]));
    }

    async fn consent_given_to_one_client_does_not_cover_another(app) {
        // Arrange
        let user = app.create_user().await;
        let first = app.confidential_client().await;
        let second = app.confidential_client().await;
        app.authorize_code(&user, &first, "email.read_only").await;

        // Act
        let resp = app.get_authorize(&AuthParams::new(&second, "email.read_only")).await;

        // Assert
        assert!(matches!(app.browser.step(resp).await, Step::Consent(_)), "a consent page for the other client");
    }

    async fn prompt_consent_shows_the_page_even_when_granted(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only").await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "consent");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        match app.browser.step(resp).await {
            Step::Consent(page) => assert_eq!(page.scopes(), vec!["email.read_only".to_string()]),
            other => panic!("expected a consent page, got {other:?}"),
        }
    }

    async fn prompt_none_when_consent_is_needed_answers_consent_required(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "none");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "consent_required", params.state(), &app.issuer().await);
    }

    async fn prompt_none_without_a_session_answers_login_required(app) {
        // Arrange
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "none");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "login_required", params.state(), &app.issuer().await);
    }

    async fn prompt_none_with_consent_granted_returns_a_code(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only").await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "none");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_sent_to(&to, &client.redirect_uri);
        assert!(query(&to).contains_key("code"), "{to}");
    }

    async fn a_partial_grant_asks_again_for_what_was_left_out(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only email.send");
        app.authorize(&user, &params, Decision::allow(&["email.read_only"])).await;

        // Act
        let resp = app.get_authorize(&AuthParams::new(&client, "email.read_only email.send")).await;

        // Assert
        match app.browser.step(resp).await {
            Step::Consent(page) => assert!(page.scopes().contains(&"email.send".to_string()), "{:?}", page.scopes()),
            other => panic!("expected a consent page, got {other:?}"),
        }
    }

    async fn incremental_consent_shows_only_new_scopes_and_the_token_carries_the_union(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only").await;
        let params = AuthParams::new(&client, "calendar").set("include_granted_scopes", "true");

        // Act
        let page = app.browser.consent_page(&user, &params).await;
        let resp = app.browser.decide(&page, &Decision::AllowAll).await;
        let to = assert_redirect(&resp);
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();

        // Assert
        assert_eq!(page.scopes(), vec!["calendar".to_string()], "only the new scope is a checkbox");
        assert!(page.text.contains("email.read_only"), "the old scope is listed as granted: {}", page.text);
        assert_eq!(tokens.scope, set_of(&["email.read_only", "calendar"]));
    }

    async fn include_granted_scopes_with_everything_granted_skips_the_page_and_returns_the_union(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only contacts").await;
        let params = AuthParams::new(&client, "contacts").set("include_granted_scopes", "true");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
        assert_eq!(tokens.scope, set_of(&["email.read_only", "contacts"]));
    }

    async fn a_consent_form_posted_from_another_browser_issues_no_code(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let page = app.browser.consent_page(&user, &params).await;
        let other = app.new_browser();

        // Act
        let resp = other.decide(&page, &Decision::AllowAll).await;

        // Assert
        assert!(resp.status().as_u16() < 500, "{}", resp.status());
        if let Some(to) = location(&resp) {
            assert!(!query(&to).contains_key("code"), "a code for a browser without the session: {to}");
        }
    }
}
