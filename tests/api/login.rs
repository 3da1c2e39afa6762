//! /login and /logout: the form, the session cookie, prompt=login / max_age.

use crate::helpers::*;
use reqwest::StatusCode;

/// Where a browser without a session is sent by an authorization request.
async fn assert_sent_to_login(app: &TestApp, browser: &Browser, client: &TestClient) {
    let resp = browser
        .get_authorize(&AuthParams::new(client, "email.read_only"))
        .await;
    match browser.step(resp).await {
        Step::Login(_) => {}
        other => panic!("expected the login page, got {other:?}"),
    }
    let _ = app;
}

e2e! {
    async fn the_login_page_has_a_csrf_token_and_refuses_framing(app) {
        // Act
        let resp = app.browser.get("/login").await;

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        assert_frame_ancestors_none(&resp);
        let url = resp.url().clone();
        let body = resp.text().await.unwrap();
        let form = Form::find(&body, &url, |f| f.has_input("password")).expect("a login form");
        assert_eq!(form.method, "post");
        assert!(form.has_input("email"));
        assert!(form.hidden("csrf_token").is_some_and(|t| !t.is_empty()), "csrf_token");
    }

    async fn a_user_added_by_ops_signs_in_and_is_sent_to_return_to(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let login = assert_redirect(&app.get_authorize(&params).await);
        let return_to = query(&login).get("return_to").cloned().expect("return_to");

        // Act
        let resp = app.browser.submit_login(login.as_str(), &user.email, &user.password).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let to = location(&resp).unwrap();
        assert_eq!(to, url::Url::parse(&app.address).unwrap().join(&return_to).unwrap());
        let next = app.browser.step(app.browser.get(to.as_str()).await).await;
        assert!(matches!(next, Step::Consent(_)), "signed in: the consent page, got {next:?}");
    }

    async fn the_session_cookie_is_httponly_and_samesite_lax(app) {
        // Arrange
        let user = app.create_user().await;

        // Act
        let resp = app.login(&user).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(!cookies.is_empty(), "login sets a session cookie");
        for c in &cookies {
            let lower = c.to_ascii_lowercase();
            if lower.contains("max-age=0") || lower.contains("=;") {
                continue; // a removal
            }
            assert!(lower.contains("httponly"), "HttpOnly: {c}");
            assert!(lower.contains("samesite=lax"), "SameSite=Lax: {c}");
            assert!(!lower.contains("; secure"), "no Secure on plain http: {c}");
        }
    }

    async fn wrong_password_and_unknown_email_read_the_same(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let login = assert_redirect(&app.get_authorize(&AuthParams::new(&client, "email.read_only")).await);

        // Act
        let wrong_password = app.browser.submit_login(login.as_str(), &user.email, "not the password").await;
        let unknown_email = app.browser.submit_login(login.as_str(), "nobody@example.test", "not the password").await;

        // Assert
        let (s1, s2) = (wrong_password.status(), unknown_email.status());
        assert_eq!(s1, s2, "same status");
        assert!(!s1.is_redirection(), "a failed login is not a redirect ({s1})");
        assert!(s1.as_u16() < 500);
        let t1 = visible_text(&wrong_password.text().await.unwrap());
        let t2 = visible_text(&unknown_email.text().await.unwrap());
        assert_eq!(t1, t2, "the same message");
        assert!(!t1.is_empty());
        assert_sent_to_login(&app, &app.browser, &client).await;
    }

    async fn an_empty_password_does_not_sign_in(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        // Act
        let resp = app.browser.submit_login("/login", &user.email, "").await;

        // Assert
        assert!(!resp.status().is_redirection() && resp.status().as_u16() < 500, "{}", resp.status());
        assert_sent_to_login(&app, &app.browser, &client).await;
    }

    async fn a_login_without_the_csrf_token_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.browser.get("/login").await;

        // Act
        let resp = app
            .browser
            .post_form("/login", &[("email", user.email.as_str()), ("password", user.password.as_str())])
            .await;

        // Assert
        assert!(matches!(resp.status().as_u16(), 400 | 403), "{}", resp.status());
        assert_sent_to_login(&app, &app.browser, &client).await;
    }

    async fn a_login_with_another_browsers_csrf_token_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let attacker = app.new_browser();
        let form = attacker.login_form("/login").await;
        let victim = app.new_browser();
        victim.get("/login").await;
        let mut fields = form.hidden.clone();
        fields.push(("email".to_string(), user.email.clone()));
        fields.push(("password".to_string(), user.password.clone()));

        // Act
        let resp = victim.post_form("/login", &fields).await;

        // Assert
        assert!(matches!(resp.status().as_u16(), 400 | 403), "{}", resp.status());
        assert_sent_to_login(&app, &victim, &client).await;
    }

    async fn logout_ends_the_session(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;

        // Act
        let resp = app.browser.logout(page.csrf_token()).await;

        // Assert
        assert!(resp.status().is_success() || resp.status().is_redirection(), "{}", resp.status());
        assert_sent_to_login(&app, &app.browser, &client).await;
    }

    async fn logout_without_the_csrf_token_is_refused_and_keeps_the_session(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;

        // Act
        let resp = app.browser.post_form("/logout", &[("csrf_token", "forged")]).await;

        // Assert
        assert!(matches!(resp.status().as_u16(), 400 | 403), "{}", resp.status());
        let still = app.browser.get_authorize(&AuthParams::new(&client, "email.read_only")).await;
        assert!(matches!(app.browser.step(still).await, Step::Consent(_)), "still signed in");
    }

    async fn prompt_login_sends_a_signed_in_user_to_login_again(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only").await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "login");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let login = match app.browser.step(resp).await {
            Step::Login(login) => login,
            other => panic!("expected the login page, got {other:?}"),
        };
        let to = app.browser.drive(app.browser.submit_login(login.as_str(), &user.email, &user.password).await, &user, Decision::AllowAll).await;
        assert!(query(&to).contains_key("code"), "a code after signing in again: {to}");
    }

    async fn max_age_zero_sends_a_signed_in_user_to_login_again(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "openid").await;
        let params = AuthParams::new(&client, "openid").set("max_age", "0");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        assert!(matches!(app.browser.step(resp).await, Step::Login(_)));
    }

    async fn max_age_zero_does_not_loop_back_to_login_after_signing_in(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "openid").await;
        let nonce = random_string(12);
        let params = AuthParams::new(&client, "openid").set("max_age", "0").set("nonce", &nonce);

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();

        // Assert
        let (_, claims) = app.verify_jwt(tokens.id_token.as_deref().expect("id_token")).await;
        assert_eq!(claims["nonce"].as_str(), Some(nonce.as_str()));
        assert!(claims["auth_time"].as_i64().is_some(), "auth_time is required with max_age");
    }

    async fn prompt_login_does_not_loop_back_to_login_after_signing_in(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.authorize_code(&user, &client, "email.read_only").await;
        let params = AuthParams::new(&client, "email.read_only").set("prompt", "login");
        let login = assert_redirect(&app.get_authorize(&params).await);

        // Act
        let back = app.browser.submit_login(login.as_str(), &user.email, &user.password).await;
        let next = app.browser.follow(&back).await;

        // Assert
        match app.browser.step(next).await {
            Step::Away(to) => assert!(query(&to).contains_key("code"), "{to}"),
            Step::Consent(_) => {}
            other => panic!("signing in again must end the prompt=login loop, got {other:?}"),
        }
    }

    async fn a_sign_in_in_one_browser_does_not_sign_in_another(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;
        let other = app.new_browser();

        // Act + Assert
        assert_sent_to_login(&app, &other, &client).await;
    }
    async fn logout_from_the_home_page_ends_the_session(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;
        let home = app.browser.get("/").await;
        assert_eq!(home.status(), StatusCode::OK);
        let url = home.url().clone();
        let form = Form::find(&home.text().await.unwrap(), &url, |f| f.action.path() == "/logout")
            .expect("a sign-out form on the home page");

        // Act
        let resp = app.browser.post_form(form.action.as_str(), &form.hidden).await;

        // Assert
        assert!(resp.status().as_u16() < 400, "{}", resp.status());
        assert_sent_to_login(&app, &app.browser, &client).await;
    }

    async fn a_session_cookie_is_dead_after_logout(app) {
        // Arrange: keep a copy of the signed-in cookies, as a thief would.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let login = app.login(&user).await;
        let stolen = set_cookies(&login);
        let page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;
        app.browser.logout(page.csrf_token()).await;

        // Act
        let thief = Browser::with_cookies(&app.address, &stolen);

        // Assert
        assert_sent_to_login(&app, &thief, &client).await;
    }

    async fn a_cookie_planted_before_login_does_not_become_a_session(app) {
        // Arrange: session fixation. The attacker plants its pre-login cookies in the victim's
        // browser; the victim signs in; the attacker's copy must stay signed out.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let attacker = app.new_browser();
        let planted = set_cookies(&attacker.get("/login").await);
        let victim = Browser::with_cookies(&app.address, &planted);
        let resp = victim.login(&user).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "the victim signs in");

        // Act
        let attackers_copy = Browser::with_cookies(&app.address, &planted);

        // Assert
        assert_sent_to_login(&app, &attackers_copy, &client).await;
    }

    #[settings(|s| s.session_ttl_secs = 1)]
    async fn an_expired_session_is_sent_to_login_again(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

        // Act + Assert
        assert_sent_to_login(&app, &app.browser, &client).await;
    }
    async fn passwords_are_stored_as_argon2id(app) {
        // Arrange
        let user = app.create_user().await;
        let store = app.store.clone();
        let email = user.email.clone();

        // Act
        let stored = tokio::task::spawn_blocking(move || {
            let mut conn = store.conn().expect("a connection");
            scopegate::store::users::find_by_email(&mut conn, &email).expect("query")
        })
        .await
        .unwrap()
        .expect("the user exists");

        // Assert
        let hash = stored.password_hash.expect("a password hash");
        assert!(hash.starts_with("$argon2id$"), "argon2id PHC string, got {}", &hash[..hash.len().min(12)]);
        assert!(!hash.contains(&user.password));
    }

    async fn an_unknown_email_takes_about_as_long_as_a_wrong_password(app) {
        // Arrange: an unknown user must still cost a hash, or timing tells who has an account.
        let user = app.create_user().await;
        let form = app.browser.login_form("/login").await;
        let attempt = |email: String| {
            let mut fields = form.hidden.clone();
            fields.push(("email".to_string(), email));
            fields.push(("password".to_string(), "definitely wrong".to_string()));
            let browser = app.browser.clone();
            let action = form.action.clone();
            async move {
                let started = std::time::Instant::now();
                let resp = browser.post_form(action.as_str(), &fields).await;
                assert!(!resp.status().is_redirection());
                started.elapsed()
            }
        };
        let mut wrong = Vec::new();
        let mut unknown = Vec::new();

        // Act
        for i in 0..5 {
            wrong.push(attempt(user.email.clone()).await);
            unknown.push(attempt(format!("nobody-{i}@example.test")).await);
        }

        // Assert
        wrong.sort();
        unknown.sort();
        let (w, u) = (wrong[2], unknown[2]);
        assert!(u * 3 >= w, "unknown email {u:?} vs wrong password {w:?} (medians)");
    }
}
