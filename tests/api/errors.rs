//! No input produces a 500: garbage at every endpoint a stranger can reach.

use crate::helpers::*;
use reqwest::{Response, StatusCode};

#[track_caller]
fn below_500(resp: Result<Response, reqwest::Error>, what: &str) -> Response {
    let resp = resp.unwrap_or_else(|e| panic!("{what}: no HTTP answer ({e})"));
    assert!(resp.status().as_u16() < 500, "{what}: {}", resp.status());
    resp
}

/// Token endpoint errors stay RFC-shaped even for garbage.
async fn assert_oauth_shaped(resp: Response, what: &str) {
    let status = resp.status();
    if matches!(status.as_u16(), 400 | 401) {
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what}: a {status} that is not JSON: {text:?}"));
        assert!(body["error"].is_string(), "{what}: no error field: {text}");
        assert_no_store(&headers);
    }
}

fn garbage_queries(client: &TestClient) -> Vec<String> {
    let id = &client.client_id;
    let uri: String =
        url::form_urlencoded::byte_serialize(client.redirect_uri.as_bytes()).collect();
    let base = format!("response_type=code&client_id={id}&redirect_uri={uri}");
    let long = "a".repeat(6000);
    vec![
        String::new(),
        "response_type=code".into(),
        "%%%%&&&===".into(),
        "client_id=%ff%fe&redirect_uri=%c3%28".into(),
        "client_id=%00&redirect_uri=%00".into(),
        format!("client_id={long}"),
        format!("client_id[]={id}&redirect_uri={uri}"),
        format!("client_id={id}&redirect_uri=not%20a%20url"),
        format!("{base}&scope=%ff%fe&state=%c3%28&code_challenge=%ff&code_challenge_method=S256"),
        format!("{base}&scope={long}&code_challenge=abc&code_challenge_method=S256"),
        format!("{base}&scope=email.read_only&state={long}&code_challenge={long}&code_challenge_method=S256"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&max_age=-1"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&max_age=abc"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&max_age=99999999999999999999999"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&prompt=bogus%20none"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&prompt=none%20login"),
        format!("{base}&scope=,,,%20,&code_challenge=abc&code_challenge_method=S256"),
        format!("{base}&scope=email.read_only&code_challenge=&code_challenge_method=S256"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S512"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&include_granted_scopes=maybe"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&response_type=code"),
        format!("{base}&scope=email.read_only&code_challenge=abc&code_challenge_method=S256&nonce={long}"),
    ]
}

e2e! {
    async fn garbage_at_authorize_without_a_session_is_never_a_500(app) {
        // Arrange
        let client = app.confidential_client().await;

        for q in garbage_queries(&client) {
            // Act
            let resp = app.client.get(app.url(&format!("/oauth/authorize?{q}"))).send().await;

            // Assert
            below_500(resp, &format!("GET /oauth/authorize?{}", &q[..q.len().min(120)]));
        }
    }

    async fn garbage_at_authorize_with_a_session_is_never_a_500(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        app.login(&user).await;

        for q in garbage_queries(&client) {
            // Act
            let resp = app.client.get(app.url(&format!("/oauth/authorize?{q}"))).send().await;

            // Assert
            below_500(resp, &format!("GET /oauth/authorize?{}", &q[..q.len().min(120)]));
        }
    }

    async fn garbage_posted_to_authorize_is_never_a_500(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let page = app.browser.consent_page(&user, &AuthParams::new(&client, "email.read_only")).await;
        let csrf = page.csrf_token().to_string();
        let bodies: Vec<(Option<&str>, String)> = vec![
            (Some("application/x-www-form-urlencoded"), String::new()),
            (None, "decision=allow".into()),
            (Some("application/json"), r#"{"decision":"allow"}"#.into()),
            (Some("application/x-www-form-urlencoded"), "decision=allow&scope=%ff".into()),
            (Some("application/x-www-form-urlencoded"), format!("csrf_token={csrf}&decision=maybe")),
            (Some("application/x-www-form-urlencoded"), format!("csrf_token={csrf}&decision=allow")),
            (Some("application/x-www-form-urlencoded"), format!("csrf_token={csrf}&decision=allow&scope={}", "x".repeat(10_000))),
            (Some("application/x-www-form-urlencoded"), "%%%%&&==".into()),
            (Some("text/plain"), "\u{0}\u{1}\u{2}".into()),
        ];

        for (ct, body) in bodies {
            let mut req = app.client.post(app.url("/oauth/authorize")).body(body.clone());
            if let Some(ct) = ct {
                req = req.header("Content-Type", ct);
            }

            // Act
            let resp = req.send().await;

            // Assert
            below_500(resp, &format!("POST /oauth/authorize {ct:?} {}", &body[..body.len().min(80)]));
        }
        let anonymous = app.new_browser();
        let resp = anonymous.http.post(app.url("/oauth/authorize")).form(&page.form.hidden).send().await;
        below_500(resp, "POST /oauth/authorize without a session");
    }

    async fn garbage_at_the_token_endpoint_is_never_a_500_and_stays_rfc_shaped(app) {
        // Arrange
        let client = app.confidential_client().await;
        let form = Some("application/x-www-form-urlencoded");
        let long = "a".repeat(10_000);
        let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
            (form, Vec::new()),
            (None, Vec::new()),
            (None, b"grant_type=client_credentials".to_vec()),
            (Some("application/json"), br#"{"grant_type":"client_credentials"}"#.to_vec()),
            (Some("text/plain"), b"grant_type=client_credentials".to_vec()),
            (Some("multipart/form-data; boundary=x"), b"--x\r\n\r\n--x--".to_vec()),
            (form, b"grant_type=%ff%fe&code=%zz".to_vec()),
            (form, b"%%%%&&&===".to_vec()),
            (form, b"grant_type=authorization_code&code=%00&code_verifier=%00&redirect_uri=%00".to_vec()),
            (form, format!("grant_type=authorization_code&code={long}&code_verifier={long}").into_bytes()),
            (form, format!("grant_type=refresh_token&refresh_token={long}").into_bytes()),
            (form, b"grant_type=refresh_token&refresh_token=sgr_".to_vec()),
            (form, b"grant_type=client_credentials&scope=%ff%fe".to_vec()),
            (form, b"grant_type=client_credentials&scope=,,,".to_vec()),
            (form, b"grant_type[]=client_credentials".to_vec()),
            (form, vec![0xff, 0xfe, 0x00, 0x80, 0x3d, 0x26]),
            (form, format!("grant_type={long}").into_bytes()),
        ];

        for (ct, body) in bodies {
            for authenticated in [false, true] {
                let what = format!(
                    "POST /oauth/token {ct:?} {:?} (authenticated: {authenticated})",
                    String::from_utf8_lossy(&body[..body.len().min(60)])
                );
                let mut req = app.api.post(app.url("/oauth/token")).body(body.clone());
                if let Some(ct) = ct {
                    req = req.header("Content-Type", ct);
                }
                if authenticated {
                    req = req.header("Authorization", basic_auth(&client.client_id, client.secret()));
                }

                // Act
                let resp = req.send().await;

                // Assert
                let resp = below_500(resp, &what);
                assert_oauth_shaped(resp, &what).await;
            }
        }
    }

    async fn a_huge_token_request_is_refused_without_a_500(app) {
        // Arrange
        let body = format!("grant_type=client_credentials&scope={}", "a".repeat(1_000_000));

        // Act
        let resp = app
            .api
            .post(app.url("/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;

        // Assert
        below_500(resp, "POST /oauth/token with 1 MB");
    }

    async fn a_huge_login_post_is_refused_without_a_500(app) {
        // Arrange
        let body = format!("email=a@b.c&password={}", "a".repeat(1_000_000));

        // Act
        let resp = app
            .client
            .post(app.url("/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;

        // Assert
        below_500(resp, "POST /login with 1 MB");
    }

    async fn garbage_client_authentication_is_never_a_500(app) {
        // Arrange
        let client = app.confidential_client().await;
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        let headers = vec![
            "Basic".to_string(),
            "Basic ".to_string(),
            "Basic !!!!".to_string(),
            format!("Basic {}", STANDARD.encode("no-colon")),
            format!("Basic {}", STANDARD.encode(":")),
            format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x80])),
            format!("Basic {}", STANDARD.encode("%zz:%ff")),
            format!("Basic {}", STANDARD.encode(format!("{}:", client.client_id))),
            format!("Basic {}", STANDARD.encode("a".repeat(6000))),
            "Bearer abc".to_string(),
            "Digest username=x".to_string(),
        ];

        for h in headers {
            // Act
            let resp = app
                .api
                .post(app.url("/oauth/token"))
                .header("Authorization", h.clone())
                .form(&[("grant_type", "client_credentials"), ("scope", "email.read_only")])
                .send()
                .await;

            // Assert
            let resp = below_500(resp, &format!("Authorization: {}", &h[..h.len().min(60)]));
            assert_ne!(resp.status(), StatusCode::OK, "{h} must not authenticate");
            assert_oauth_shaped(resp, &h).await;
        }
        let both = app
            .api
            .post(app.url("/oauth/token"))
            .header("Authorization", basic_auth(&client.client_id, client.secret()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "email.read_only"),
                ("client_id", client.client_id.as_str()),
                ("client_secret", "a-different-secret"),
            ])
            .send()
            .await;
        let both = below_500(both, "Basic and a different client_secret in the body");
        assert_ne!(both.status(), StatusCode::OK, "conflicting credentials must not authenticate");
    }

    async fn garbage_at_login_is_never_a_500(app) {
        // Arrange
        let form = Some("application/x-www-form-urlencoded");
        let long = "a".repeat(10_000);
        let csrf = app.browser.login_form("/login").await.hidden("csrf_token").unwrap_or("").to_string();
        let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
            (form, Vec::new()),
            (None, Vec::new()),
            (Some("application/json"), br#"{"email":"a","password":"b"}"#.to_vec()),
            (form, b"email=a".to_vec()),
            (form, format!("csrf_token={csrf}").into_bytes()),
            (form, format!("csrf_token={csrf}&email=a").into_bytes()),
            (form, format!("csrf_token={csrf}&email={long}&password={long}").into_bytes()),
            (form, format!("csrf_token={csrf}&email=%ff%fe&password=%c3%28").into_bytes()),
            (form, format!("csrf_token={csrf}&email=%00&password=%00&return_to=%00").into_bytes()),
            (form, format!("csrf_token={csrf}&email=a@b&password=c&return_to={long}").into_bytes()),
            (form, format!("csrf_token={csrf}&email=a@b&email=c@d&password=c").into_bytes()),
            (form, b"%%%%&&&===".to_vec()),
            (form, vec![0xff, 0xfe, 0x00, 0x80]),
        ];

        for (ct, body) in bodies {
            let what = format!("POST /login {ct:?} {:?}", String::from_utf8_lossy(&body[..body.len().min(60)]));
            let mut req = app.client.post(app.url("/login")).body(body);
            if let Some(ct) = ct {
                req = req.header("Content-Type", ct);
            }

            // Act
            let resp = req.send().await;

            // Assert
            below_500(resp, &what);
        }
        let long_return_to = format!("return_to={long}");
        for q in ["return_to=%ff%fe", "return_to=%00", long_return_to.as_str(), "return_to[]=x", "%%%"] {
            let resp = app.client.get(app.url(&format!("/login?{q}"))).send().await;
            below_500(resp, &format!("GET /login?{}", &q[..q.len().min(60)]));
        }
    }

    async fn garbage_at_logout_and_userinfo_is_never_a_500(app) {
        // Arrange
        let long = "a".repeat(6000);
        let authorizations = [
            "Bearer".to_string(),
            "Bearer ".to_string(),
            "Bearer a.b.c".to_string(),
            "Bearer ...".to_string(),
            format!("Bearer {long}"),
            "Basic abc".to_string(),
            "bearer eyJhbGciOiJFZERTQSJ9.e30.AAAA".to_string(),
        ];

        for h in authorizations {
            // Act
            let resp = app.api.get(app.url("/userinfo")).header("Authorization", h.clone()).send().await;

            // Assert
            let what = format!("GET /userinfo Authorization: {}", &h[..h.len().min(40)]);
            let resp = below_500(resp, &what);
            // RFC 6750 §3.1: a malformed request may be a 400 invalid_request; a bad token is
            // a 401; either way the answer carries a Bearer challenge.
            assert!(matches!(resp.status().as_u16(), 400 | 401), "{what}: {}", resp.status());
            let challenge = header(&resp, "www-authenticate").unwrap_or("");
            assert!(challenge.starts_with("Bearer"), "{what}: WWW-Authenticate {challenge:?}");
        }
        let long_csrf = format!("csrf_token={long}");
        for body in ["", "csrf_token=%ff", "%%%", long_csrf.as_str()] {
            let resp = app
                .client
                .post(app.url("/logout"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.to_string())
                .send()
                .await;
            below_500(resp, &format!("POST /logout {}", &body[..body.len().min(40)]));
        }
    }

    async fn wrong_methods_and_unknown_paths_are_client_errors(app) {
        // Act + Assert
        for (method, path) in [
            ("GET", "/oauth/token"),
            ("PUT", "/oauth/token"),
            ("DELETE", "/oauth/authorize"),
            ("GET", "/no/such/page"),
            ("POST", "/.well-known/jwks.json"),
            ("GET", "/%ff%fe"),
        ] {
            let resp = app
                .api
                .request(method.parse().unwrap(), app.url(path))
                .send()
                .await;
            let resp = below_500(resp, &format!("{method} {path}"));
            assert!(resp.status().is_client_error(), "{method} {path}: {}", resp.status());
        }
    }
}
