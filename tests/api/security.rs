//! The security rules of DESIGN.md that are not covered by one endpoint's module: CSRF on the
//! consent form, open redirects, loopback redirect URIs, PKCE policy, escaping, rate limits.

use crate::helpers::*;
use reqwest::StatusCode;

e2e! {
    async fn a_consent_post_without_the_csrf_token_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;

        // Act
        let resp = app.browser.post_consent(&page, "allow", &page.checked_scopes(), false).await;

        // Assert
        assert!(matches!(resp.status().as_u16(), 400 | 403), "{}", resp.status());
        assert!(location(&resp).map_or(true, |to| !query(&to).contains_key("code")));
    }

    async fn a_consent_post_with_a_forged_csrf_token_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let mut page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;
        for (k, v) in page.form.hidden.iter_mut() {
            if k == "csrf_token" {
                *v = format!("{v}x");
            }
        }

        // Act
        let resp = app.browser.post_consent(&page, "allow", &page.checked_scopes(), true).await;

        // Assert
        assert!(matches!(resp.status().as_u16(), 400 | 403), "{}", resp.status());
        assert!(location(&resp).map_or(true, |to| !query(&to).contains_key("code")));
    }

    async fn a_consent_post_for_another_client_issues_no_code(app) {
        // Arrange: the form's hidden fields carry the request; pointing them at a client the
        // user never saw must not produce a code.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let mut page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;
        let field = page
            .form
            .hidden
            .iter_mut()
            .find(|(k, v)| k != "csrf_token" && v.contains(&client.client_id))
            .expect("a hidden field of the consent form carries the client_id");
        field.1 = field.1.replace(&client.client_id, &other.client_id);

        // Act
        let resp = app.browser.post_consent(&page, "allow", &page.checked_scopes(), true).await;

        // Assert
        assert!(resp.status().as_u16() < 500, "{}", resp.status());
        assert!(location(&resp).map_or(true, |to| !query(&to).contains_key("code")), "a code for a tampered request");
    }

    async fn a_consent_post_with_a_widened_request_grants_nothing_more(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let mut page = app.browser.consent_page(&user, &params).await;
        let field = page
            .form
            .hidden
            .iter_mut()
            .find(|(k, v)| k != "csrf_token" && v.contains("scope=email.read_only"))
            .expect("a hidden field of the consent form carries the scope");
        field.1 = field.1.replace("scope=email.read_only", "scope=email.read_only+email.send");

        // Act
        let resp = app
            .browser
            .post_consent(&page, "allow", &["email.read_only".to_string(), "email.send".to_string()], true)
            .await;

        // Assert
        assert!(resp.status().as_u16() < 500, "{}", resp.status());
        if let Some(to) = location(&resp).filter(|to| query(to).contains_key("code")) {
            let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
            assert_eq!(tokens.scope, set_of(&["email.read_only"]), "a tampered request widened the grant");
        }
    }

    async fn login_never_redirects_off_site(app) {
        // Arrange
        let user = app.create_user().await;
        let targets = [
            "https://evil.example/steal",
            "//evil.example/steal",
            "/\\evil.example/steal",
            "http:evil.example",
            "javascript:alert(1)",
        ];

        for target in targets {
            let browser = app.new_browser();
            let form = browser.login_form(&format!("/login?return_to={}", urlencode(target))).await;
            let mut fields: Vec<(String, String)> =
                form.hidden.iter().filter(|(k, _)| k != "return_to").cloned().collect();
            fields.push(("return_to".to_string(), target.to_string()));
            fields.push(("email".to_string(), user.email.clone()));
            fields.push(("password".to_string(), user.password.clone()));

            // Act
            let resp = browser.post_form(form.action.as_str(), &fields).await;

            // Assert
            assert!(resp.status().as_u16() < 500, "{target}: {}", resp.status());
            if let Some(to) = location(&resp) {
                assert_eq!(to.origin(), browser.origin(), "return_to {target:?} sent the browser to {to}");
            }
        }
    }

    async fn a_native_client_may_use_any_loopback_port(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.public_client().await;
        let redirect = "http://127.0.0.1:51234/callback";
        let params = AuthParams::new(&client, "email.read_only").set("redirect_uri", redirect);

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await;

        // Assert
        assert_sent_to(&to, redirect);
        tokens.tokens();
    }

    async fn a_native_client_loopback_path_must_still_match(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.public_client().await;
        app.login(&user).await;
        let params = AuthParams::new(&client, "email.read_only").set("redirect_uri", "http://127.0.0.1:7777/other");

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        assert_error_page(resp).await;
    }

    async fn a_bad_redirect_uri_wins_over_every_other_error(app) {
        // Arrange: with an unregistered redirect URI nothing may redirect, whatever else is wrong.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;
        let params = AuthParams::new(&client, "no.such.scope")
            .set("redirect_uri", "https://evil.example/cb")
            .set("response_type", "token")
            .without_pkce();

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        assert_error_page(resp).await;
    }

    async fn a_public_client_needs_pkce_whatever_its_policy_says(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app
            .create_client(scopegate::ops::ClientSpec { pkce_required: false, ..public_spec() })
            .await;
        app.login(&user).await;
        let params = AuthParams::new(&client, "email.read_only").without_pkce();

        // Act
        let resp = app.get_authorize(&params).await;

        // Assert
        let to = assert_redirect(&resp);
        assert_error_redirect(&to, &client.redirect_uri, "invalid_request", params.state(), &app.issuer().await);
    }

    async fn a_confidential_client_with_pkce_optional_may_omit_it(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app
            .create_client(scopegate::ops::ClientSpec { pkce_required: false, ..confidential_spec() })
            .await;
        let params = AuthParams::new(&client, "email.read_only").without_pkce();

        // Act
        let to = app.authorize(&user, &params, Decision::AllowAll).await;
        let resp = app.exchange(&code_grant_from(&to, &client, &params)).await;

        // Assert
        resp.tokens();
    }

    async fn a_challenge_sent_by_a_pkce_optional_client_is_still_enforced(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app
            .create_client(scopegate::ops::ClientSpec { pkce_required: false, ..confidential_spec() })
            .await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.verifier = None;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error_in(400, &["invalid_grant", "invalid_request"]);
    }

    async fn the_consent_page_escapes_the_client_name(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app
            .create_client(scopegate::ops::ClientSpec {
                name: "<script>alert('x')</script>".to_string(),
                ..confidential_spec()
            })
            .await;

        // Act
        let page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;

        // Assert
        assert!(!page.html.contains("<script>alert('x')</script>"), "the name is escaped");
        assert!(page.text.contains("<script>alert('x')</script>"), "and still shown as text");
    }

    async fn the_login_page_escapes_what_it_echoes(app) {
        // Arrange
        let probe = "\"><script>alert(1)</script>";

        // Act
        let login = app.browser.get(&format!("/login?return_to={}", urlencode(probe))).await;
        let login_html = login.text().await.unwrap();
        let failed = app.browser.submit_login("/login", probe, "whatever").await;
        let failed_html = failed.text().await.unwrap();

        // Assert
        assert!(!login_html.contains("<script>alert(1)</script>"));
        assert!(!failed_html.contains("<script>alert(1)</script>"));
    }

    #[settings(|s| s.login_rate_limit_per_minute = 3)]
    async fn login_is_rate_limited_with_retry_after(app) {
        // Arrange
        let user = app.create_user().await;
        let form = app.browser.login_form("/login").await;
        let mut fields = form.hidden.clone();
        fields.push(("email".to_string(), user.email.clone()));
        fields.push(("password".to_string(), "wrong".to_string()));
        let mut statuses = Vec::new();
        let mut retry_after = None;

        // Act
        for _ in 0..8 {
            let resp = app.browser.post_form(form.action.as_str(), &fields).await;
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                retry_after = header(&resp, "retry-after").map(str::to_string);
            }
            statuses.push(resp.status().as_u16());
        }

        // Assert
        assert!(statuses.contains(&429), "some attempt is refused with 429: {statuses:?}");
        let secs: u64 = retry_after.expect("Retry-After on 429").parse().expect("Retry-After in seconds");
        assert!((1..=60).contains(&secs), "Retry-After {secs}");
    }

    #[settings(|s| s.token_rate_limit_per_minute = 3)]
    async fn the_token_endpoint_is_rate_limited_with_retry_after(app) {
        // Arrange
        let client = app.confidential_client().await;
        let mut last = None;

        // Act
        for _ in 0..8 {
            let resp = app.client_credentials(&client, Some("email.read_only")).await;
            if resp.status == StatusCode::TOO_MANY_REQUESTS {
                last = Some(resp);
                break;
            }
        }

        // Assert
        let limited = last.expect("a 429 after the limit");
        assert!(limited.header("retry-after").is_some(), "Retry-After on 429");
    }

    async fn the_server_does_not_reveal_its_stack_in_error_pages(app) {
        // Act
        let resp = app.browser.get("/oauth/authorize?client_id=nope").await;
        let body = resp.text().await.unwrap();

        // Assert
        for leak in ["panicked", "diesel", "DatabaseError", "RUST_BACKTRACE", "src/"] {
            assert!(!body.contains(leak), "error page mentions {leak:?}: {body}");
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
