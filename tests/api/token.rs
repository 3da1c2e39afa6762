//! POST /oauth/token with grant_type=authorization_code: client authentication, the code's
//! rules, the access token, and RFC 6749 §5.2 errors.

use crate::helpers::*;
use reqwest::StatusCode;

e2e! {
    async fn exchanging_a_code_returns_a_bearer_access_token_and_a_refresh_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only email.send").await;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        assert_no_store(&resp.headers);
        assert!(resp.str("token_type").eq_ignore_ascii_case("bearer"));
        assert_eq!(resp.body["expires_in"].as_i64(), Some(app.settings.access_token_ttl_secs));
        assert_eq!(resp.scope(), set_of(&["email.read_only", "email.send"]));
        assert!(!resp.str("access_token").is_empty());
        assert!(resp.str("refresh_token").starts_with("sgr_"), "{}", resp.text);
        assert!(resp.body.get("id_token").is_none(), "no id_token without openid");
    }

    async fn client_secret_post_authenticates_too(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;

        // Act
        let resp = app
            .post_token(
                &client.post_auth(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", grant.code.as_str()),
                    ("redirect_uri", client.redirect_uri.as_str()),
                    ("code_verifier", grant.verifier.as_deref().unwrap()),
                ],
            )
            .await;

        // Assert
        resp.tokens();
    }

    async fn a_public_client_exchanges_with_its_client_id_and_verifier(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.public_client().await;
        let grant = app.authorize_code(&user, &client, "contacts.read_only").await;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        let tokens = resp.tokens();
        assert_eq!(tokens.scope, set_of(&["contacts.read_only"]));
        assert!(tokens.refresh_token().starts_with("sgr_"));
    }

    async fn the_access_token_is_an_at_jwt_signed_with_a_published_key(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let before = now();
        let tokens = app.tokens(&user, &client, "email.read_only calendar").await;

        // Act
        let (header, claims) = app.verify_jwt(&tokens.access_token).await;

        // Assert
        assert_eq!(header.typ.as_deref().map(str::to_ascii_lowercase), Some("at+jwt".to_string()));
        assert_eq!(claims["iss"].as_str(), Some(app.issuer().await.as_str()));
        assert_eq!(claims["sub"].as_str(), Some(user.id.as_str()));
        assert_eq!(claims["client_id"].as_str(), Some(client.client_id.as_str()));
        assert!(claims["aud"].is_string() || claims["aud"].is_array(), "aud: {claims}");
        assert_eq!(scope_set(claims["scope"].as_str().unwrap()), set_of(&["email.read_only", "calendar"]));
        assert!(!claims["jti"].as_str().unwrap_or("").is_empty(), "jti");
        let iat = claims["iat"].as_i64().expect("iat");
        let exp = claims["exp"].as_i64().expect("exp");
        assert!(iat >= before - 5 && iat <= now() + 5, "iat {iat} is now");
        assert_eq!(exp - iat, app.settings.access_token_ttl_secs);
        assert!(
            keys(&claims).iter().any(|k| k.contains("grant") || k == "gid"),
            "a grant id claim: {claims}"
        );
    }

    async fn each_access_token_has_its_own_jti(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let a = app.tokens(&user, &client, "email.read_only").await;
        let b = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let (_, a) = app.verify_jwt(&a.access_token).await;
        let (_, b) = app.verify_jwt(&b.access_token).await;

        // Assert
        assert_ne!(a["jti"], b["jti"]);
    }

    async fn a_replayed_code_is_invalid_grant_and_revokes_what_it_issued(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "openid email email.read_only").await;
        let first = app.exchange(&grant).await.tokens();
        assert_eq!(app.userinfo(&first.access_token).await.status(), StatusCode::OK, "works before the replay");

        // Act
        let replay = app.exchange(&grant).await;

        // Assert
        replay.assert_error(400, "invalid_grant");
        app.refresh(&client, first.refresh_token(), None).await.assert_error(400, "invalid_grant");
        assert_eq!(app.userinfo(&first.access_token).await.status(), StatusCode::UNAUTHORIZED, "access token revoked");
    }

    async fn an_unknown_code_is_invalid_grant(app) {
        // Arrange
        let client = app.confidential_client().await;
        let pkce = Pkce::new();

        // Act
        let resp = app
            .post_token(
                &client.auth(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "sgc_not-a-real-code"),
                    ("redirect_uri", client.redirect_uri.as_str()),
                    ("code_verifier", pkce.verifier.as_str()),
                ],
            )
            .await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    #[settings(|s| s.code_ttl_secs = 1)]
    async fn an_expired_code_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_wrong_code_verifier_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.verifier = Some(Pkce::new().verifier);

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_missing_code_verifier_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.verifier = None;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error_in(400, &["invalid_grant", "invalid_request"]);
    }

    async fn a_code_cannot_be_used_after_a_failed_pkce_check(app) {
        // Arrange: a guessed verifier must not leave the code usable for another guess.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;
        let mut wrong = grant.clone();
        wrong.verifier = Some(Pkce::new().verifier);
        app.exchange(&wrong).await.assert_error(400, "invalid_grant");

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_wrong_redirect_uri_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app
            .create_client(scopegate::ops::ClientSpec {
                redirect_uris: vec![CONFIDENTIAL_REDIRECT.to_string(), "https://client.example/other".to_string()],
                ..confidential_spec()
            })
            .await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.redirect_uri = Some("https://client.example/other".to_string());

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_redirect_uri_sent_at_authorize_is_required_at_the_token_endpoint(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.redirect_uri = None;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error_in(400, &["invalid_grant", "invalid_request"]);
    }

    async fn a_code_issued_to_another_client_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let owner = app.confidential_client().await;
        let thief = app.confidential_client().await;
        let mut grant = app.authorize_code(&user, &owner, "email.read_only").await;
        grant.client = thief.clone();

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_wrong_client_secret_is_invalid_client_with_www_authenticate(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;
        let mut bad = client.clone();
        bad.client_secret = Some(format!("{}x", client.secret()));
        let mut grant_bad = grant.clone();
        grant_bad.client = bad;

        // Act
        let resp = app.exchange(&grant_bad).await;

        // Assert
        resp.assert_error(401, "invalid_client");
        assert!(resp.header("www-authenticate").is_some(), "WWW-Authenticate on 401");
        app.exchange(&grant).await.tokens();
    }

    async fn a_wrong_secret_in_the_body_is_invalid_client(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;

        // Act
        let resp = app
            .post_token(
                &ClientAuth::Post(client.client_id.clone(), "wrong".to_string()),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", grant.code.as_str()),
                    ("redirect_uri", client.redirect_uri.as_str()),
                    ("code_verifier", grant.verifier.as_deref().unwrap()),
                ],
            )
            .await;

        // Assert
        resp.assert_error(401, "invalid_client");
        assert!(resp.header("www-authenticate").is_some(), "WWW-Authenticate on 401");
    }

    async fn an_unknown_client_is_invalid_client(app) {
        // Act
        let resp = app
            .post_token(
                &ClientAuth::Basic("no-such-client".to_string(), "whatever".to_string()),
                &[("grant_type", "authorization_code"), ("code", "x"), ("code_verifier", "y")],
            )
            .await;

        // Assert
        resp.assert_error(401, "invalid_client");
        assert!(resp.header("www-authenticate").is_some());
    }

    async fn a_confidential_client_that_does_not_authenticate_is_invalid_client(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.client.client_secret = None;

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(401, "invalid_client");
    }

    async fn an_unsupported_grant_type_is_refused(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app
            .post_token(&client.auth(), &[("grant_type", "password"), ("username", "a"), ("password", "b")])
            .await;

        // Assert
        resp.assert_error(400, "unsupported_grant_type");
    }

    async fn a_missing_grant_type_is_invalid_request(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app.post_token(&client.auth(), &[("code", "abc")]).await;

        // Assert
        resp.assert_error(400, "invalid_request");
    }

    async fn a_missing_code_is_invalid_request(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app
            .post_token(
                &client.auth(),
                &[("grant_type", "authorization_code"), ("redirect_uri", client.redirect_uri.as_str()), ("code_verifier", "v")],
            )
            .await;

        // Assert
        resp.assert_error(400, "invalid_request");
    }

    async fn a_duplicated_parameter_is_invalid_request(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;

        // Act
        let resp = app
            .post_token(
                &client.auth(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", grant.code.as_str()),
                    ("code", grant.code.as_str()),
                    ("redirect_uri", client.redirect_uri.as_str()),
                    ("code_verifier", grant.verifier.as_deref().unwrap()),
                ],
            )
            .await;

        // Assert
        resp.assert_error(400, "invalid_request");
    }

    async fn a_duplicated_grant_type_is_invalid_request(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app
            .post_token(
                &client.auth(),
                &[("grant_type", "client_credentials"), ("grant_type", "client_credentials"), ("scope", "email.read_only")],
            )
            .await;

        // Assert
        resp.assert_error(400, "invalid_request");
    }

    async fn basic_credentials_are_form_urldecoded(app) {
        // Arrange: a secret encoded with every character escaped still authenticates.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;
        use base64::Engine as _;
        let escaped = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", escaped(&client.client_id), escaped(client.secret())))
        );
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", grant.code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", grant.verifier.as_deref().unwrap()),
        ])
        .unwrap();

        // Act
        let resp = app
            .api
            .post(app.url("/oauth/token"))
            .header("Authorization", header)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();

        // Assert
        TokenResponse::read(resp).await.tokens();
    }

    async fn token_errors_are_json_with_no_store(app) {
        // Act
        let resp = app.post_token(&ClientAuth::None, &[("grant_type", "authorization_code")]).await;

        // Assert
        assert!(resp.status.is_client_error(), "{}", resp.status);
        assert!(resp.body.is_object(), "JSON body: {}", resp.text);
        assert!(resp.body["error"].is_string());
        assert!(resp.header("content-type").unwrap_or("").starts_with("application/json"));
        assert_no_store(&resp.headers);
    }
    async fn a_replayed_code_also_revokes_tokens_refreshed_since(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "openid email.read_only").await;
        let first = app.exchange(&grant).await.tokens();
        let refreshed = app.refresh(&client, first.refresh_token(), None).await.tokens();

        // Act
        app.exchange(&grant).await.assert_error(400, "invalid_grant");

        // Assert
        app.refresh(&client, refreshed.refresh_token(), None).await.assert_error(400, "invalid_grant");
        assert_eq!(app.userinfo(&refreshed.access_token).await.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_code_exchanged_twice_at_once_succeeds_at_most_once(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        for _ in 0..4 {
            let grant = app.authorize_code(&user, &client, "email.read_only").await;

            // Act
            let (a, b) = tokio::join!(app.exchange(&grant), app.exchange(&grant));

            // Assert
            let wins = [&a, &b].iter().filter(|r| r.status == StatusCode::OK).count();
            assert!(wins <= 1, "one code, two token responses:\n{}\n{}", a.text, b.text);
            for r in [&a, &b] {
                assert!(r.status.as_u16() < 500, "{}", r.text);
            }
        }
    }

    async fn a_loopback_redirect_uri_must_match_the_port_used_at_authorize(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.public_client().await;
        let params = AuthParams::new(&client, "email.read_only").set("redirect_uri", "http://127.0.0.1:51234/callback");
        let to = app.authorize(&user, &params, Decision::AllowAll).await;
        let mut grant = code_grant_from(&to, &client, &params);
        grant.redirect_uri = Some(PUBLIC_REDIRECT.to_string());

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_body_client_id_that_contradicts_basic_is_refused(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;

        // Act
        let resp = app
            .post_token(
                &client.auth(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", grant.code.as_str()),
                    ("redirect_uri", client.redirect_uri.as_str()),
                    ("code_verifier", grant.verifier.as_deref().unwrap()),
                    ("client_id", other.client_id.as_str()),
                ],
            )
            .await;

        // Assert
        assert!(matches!(resp.status.as_u16(), 400 | 401), "{}", resp.text);
        assert!(resp.body.get("access_token").is_none());
        assert_no_store(&resp.headers);
    }

    async fn a_too_short_code_verifier_is_refused(app) {
        // Arrange: RFC 7636 §4.1, 43 to 128 characters.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let mut grant = app.authorize_code(&user, &client, "email.read_only").await;
        grant.verifier = Some("short".to_string());

        // Act
        let resp = app.exchange(&grant).await;

        // Assert
        resp.assert_error_in(400, &["invalid_grant", "invalid_request"]);
    }

    async fn token_responses_carry_both_cache_headers_of_rfc_6749_section_5_1(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let grant = app.authorize_code(&user, &client, "email.read_only").await;

        // Act
        let issued = app.exchange(&grant).await;
        let replayed = app.exchange(&grant).await;
        let unauthenticated = app.post_token(&ClientAuth::None, &[("grant_type", "client_credentials")]).await;

        // Assert: success and error alike, `no-store` and `Pragma: no-cache`.
        for resp in [&issued, &replayed, &unauthenticated] {
            assert_no_store(&resp.headers);
            let pragma = resp.headers.get("pragma").and_then(|v| v.to_str().ok()).unwrap_or("");
            assert_eq!(pragma, "no-cache", "{} {}", resp.status, resp.text);
        }
        assert_eq!(issued.status, StatusCode::OK, "{}", issued.text);
        replayed.assert_error(400, "invalid_grant");
        unauthenticated.assert_error(401, "invalid_client");
    }
}
