//! The account page: connected apps and removing access, password, sessions.

use crate::helpers::*;
use crate::ui_helpers::*;
use reqwest::StatusCode;

e2e! {
    async fn a_signed_out_browser_is_sent_to_login_from_the_account_page(app) {
        // Act
        let page = get_page(&app.new_browser(), "/account").await;

        // Assert
        assert_to_login(&page, "/account");
    }

    async fn the_api_account_endpoint_still_answers_a_request_without_a_token(app) {
        // Act: an API client, no browser headers, no token.
        let resp = app.get("/account").await;

        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(header(&resp, "www-authenticate").unwrap_or("").starts_with("Bearer"));
    }

    async fn signing_in_lands_on_the_account_page(app) {
        // Arrange
        let user = app.create_user().await;
        let browser = app.new_browser();

        // Act
        let resp = browser.login(&user).await;
        let to = assert_redirect(&resp);
        let page = get_page(&browser, to.as_str()).await;

        // Assert
        assert_eq!(page.status, StatusCode::OK);
        let text = page.text();
        assert!(text.contains("Connected apps"), "{text}");
        assert!(text.contains(&user.email), "{text}");
        assert!(page.has_form("/logout"));
        assert!(page.has_form("/account/sessions/end-all"));
        assert!(page.unlabelled_fields().is_empty(), "{:?}", page.unlabelled_fields());
        assert!(page.csp.contains("frame-ancestors 'none'"));
    }

    async fn connected_apps_lists_each_app_with_exactly_the_granted_scopes(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "openid email.read_only email.send");
        let to = app.authorize(&user, &params, Decision::allow(&["openid", "email.read_only"])).await;
        app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();

        // Act
        let page = get_page(&app.browser, "/account").await;

        // Assert
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.attrs("li.app", "data-client-id"), vec![client.client_id.clone()]);
        let mut scopes = page.attrs("li.app li[data-scope]", "data-scope");
        scopes.sort();
        assert_eq!(scopes, vec!["email.read_only", "openid"]);
        let text = page.text();
        assert!(text.contains(&client.name), "{text}");
        assert!(text.contains("Read your messages"), "plain-language scopes: {text}");
        assert!(!text.contains("Last used never"), "a used grant shows when: {text}");
    }

    async fn removing_access_revokes_the_apps_refresh_and_access_tokens_at_once(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let kept = app.tokens(&user, &other, "email.read_only").await;
        assert_tokens_alive(&app, &client, &tokens).await;
        let page = get_page(&app.browser, "/account").await;
        let form = Form::find(&page.html, &page.url, |f| {
            f.action.path() == "/account/apps/remove" && f.hidden("client_id") == Some(client.client_id.as_str())
        })
        .expect("a remove-access form for the app");

        // Act
        let resp = submit(&app.browser, &form, &[]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_tokens_dead(&app, &client, &tokens).await;
        assert_tokens_alive(&app, &other, &kept).await;
        let page = get_page(&app.browser, "/account").await;
        assert_eq!(page.attrs("li.app", "data-client-id"), vec![other.client_id.clone()]);
        let events = audit_events(&app, "consent.revoked").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor.as_deref(), Some(user.id.as_str()));
        assert_eq!(events[0].target.as_deref(), Some(client.client_id.as_str()));
    }

    async fn after_removing_access_the_app_must_ask_for_consent_again(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.tokens(&user, &client, "email.read_only").await;
        let page = get_page(&app.browser, "/account").await;
        submit(&app.browser, &page.form("/account/apps/remove"), &[]).await;

        // Act
        let resp = app.browser.get_authorize(&AuthParams::new(&client, "email.read_only")).await;

        // Assert
        assert!(matches!(app.browser.step(resp).await, Step::Consent(_)), "the consent page again");
    }

    async fn removing_access_without_the_csrf_token_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let resp = post(&app.browser, "/account/apps/remove", &[("client_id", &client.client_id)]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::FORBIDDEN);
        assert_tokens_alive(&app, &client, &tokens).await;
    }

    async fn changing_the_password_needs_the_current_one(app) {
        // Arrange
        let user = app.create_user().await;
        let browser = signed_in(&app, &user).await;
        let form = get_page(&browser, "/account").await.form("/account/password");

        // Act
        let page = submit(&browser, &form, &[
            ("current_password", "not my password"),
            ("new_password", "a brand new password"),
            ("confirm_password", "a brand new password"),
        ]).await;

        // Assert
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.text().contains("current password is not correct"), "{}", page.text());
        let again = app.new_browser();
        assert_eq!(again.login(&user).await.status(), StatusCode::SEE_OTHER, "the old password still works");
    }

    async fn a_new_password_that_is_too_short_or_mistyped_is_shown_in_the_page(app) {
        // Arrange
        let user = app.create_user().await;
        let browser = signed_in(&app, &user).await;
        let form = get_page(&browser, "/account").await.form("/account/password");

        // Act
        let short = submit(&browser, &form, &[
            ("current_password", &user.password), ("new_password", "short"), ("confirm_password", "short"),
        ]).await;
        let mistyped = submit(&browser, &form, &[
            ("current_password", &user.password), ("new_password", "long enough one"), ("confirm_password", "long enough two"),
        ]).await;

        // Assert
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        assert!(short.text().contains("8 to 1024 characters"), "{}", short.text());
        assert_eq!(mistyped.status, StatusCode::BAD_REQUEST);
        assert!(mistyped.text().contains("do not match"), "{}", mistyped.text());
    }

    async fn changing_the_password_signs_out_the_other_sessions(app) {
        // Arrange
        let user = app.create_user().await;
        let browser = signed_in(&app, &user).await;
        let elsewhere = signed_in(&app, &user).await;
        let form = get_page(&browser, "/account").await.form("/account/password");
        let new_password = "a brand new password";

        // Act
        let resp = submit(&browser, &form, &[
            ("current_password", &user.password), ("new_password", new_password), ("confirm_password", new_password),
        ]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_eq!(get_page(&browser, "/account").await.status, StatusCode::OK, "this session stays");
        assert_to_login(&get_page(&elsewhere, "/account").await, "/account");
        let old = app.new_browser();
        assert_eq!(old.login(&user).await.status(), StatusCode::UNAUTHORIZED, "the old password fails");
        let new = app.new_browser();
        let with_new = TestUser { password: new_password.to_string(), ..user.clone() };
        assert_eq!(new.login(&with_new).await.status(), StatusCode::SEE_OTHER);
    }

    async fn signing_out_everywhere_ends_every_session(app) {
        // Arrange
        let user = app.create_user().await;
        let browser = signed_in(&app, &user).await;
        let elsewhere = signed_in(&app, &user).await;
        let form = get_page(&browser, "/account").await.form("/account/sessions/end-all");

        // Act
        let resp = submit(&browser, &form, &[]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_eq!(resp.location.as_ref().map(|u| u.path()), Some("/login"));
        assert_to_login(&get_page(&browser, "/account").await, "/account");
        assert_to_login(&get_page(&elsewhere, "/account").await, "/account");
    }
}
