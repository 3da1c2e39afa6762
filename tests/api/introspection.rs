//! Token introspection (RFC 7662) and the metadata that advertises it and revocation.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::scope_helpers::*;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("array of strings").to_string())
        .collect()
}

e2e! {
    async fn an_active_access_token_is_described_in_full(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only email.send").await;
        let issuer = app.metadata().await["issuer"].as_str().unwrap().to_string();

        // Act
        let answer = app.introspect(&client, &tokens.access_token).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert!(answer.cache_control.as_deref().unwrap_or("").contains("no-store"));
        let b = &answer.body;
        assert_eq!(b["active"], Value::Bool(true), "{b}");
        assert_eq!(scope_set(b["scope"].as_str().expect("scope")), set_of(&["email.read_only", "email.send"]));
        assert_eq!(b["client_id"].as_str(), Some(client.client_id.as_str()), "{b}");
        assert_eq!(b["sub"].as_str(), Some(user.id.as_str()), "{b}");
        assert!(b["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{b}");
        assert_eq!(b["iss"].as_str(), Some(issuer.as_str()), "{b}");
        let jwt = jwt_claims(&tokens.access_token);
        assert_eq!(b["aud"], jwt["aud"], "{b}");
        assert_eq!(b["exp"], jwt["exp"], "{b}");
        assert_eq!(b["iat"], jwt["iat"], "{b}");
        let (iat, exp) = (b["iat"].as_i64().expect("iat"), b["exp"].as_i64().expect("exp"));
        assert!((now() - 60..=now() + 5).contains(&iat), "iat is now: {b}");
        assert_eq!(exp - iat, app.settings.access_token_ttl_secs, "{b}");
    }

    async fn client_secret_post_authenticates_the_introspecting_client_too(app) {
        // Arrange
        let client = app.confidential_client().await;
        let token = app.client_token(&client, "calendar").await;

        // Act
        let answer = app
            .post_client_form("/oauth/introspect", &client.post_auth(), &[("token", &token)])
            .await;

        // Assert
        assert_eq!(answer.body["active"], Value::Bool(true), "{}", answer.text);
        assert_eq!(answer.body["sub"].as_str(), Some(client.client_id.as_str()), "a client's own token");
        assert_eq!(answer.body["scope"], "calendar");
    }

    async fn an_active_refresh_token_is_described(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "contacts.read_only").await;

        // Act
        let answer = app.introspect(&client, tokens.refresh_token()).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let b = &answer.body;
        assert_eq!(b["active"], Value::Bool(true), "{b}");
        assert_eq!(b["scope"], "contacts.read_only", "{b}");
        assert_eq!(b["client_id"].as_str(), Some(client.client_id.as_str()), "{b}");
        assert_eq!(b["sub"].as_str(), Some(user.id.as_str()), "{b}");
        assert!(b["exp"].as_i64().is_some_and(|e| e > now()), "{b}");
        assert!(b["iat"].is_i64(), "{b}");
        assert!(b["token_type"].is_string(), "{b}");
    }

    async fn a_rotated_refresh_token_is_inactive_and_its_successor_active(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only").await;
        let second = app.refresh(&client, first.refresh_token(), None).await.tokens();

        // Act
        let old = app.introspect(&client, first.refresh_token()).await;
        let new = app.introspect(&client, second.refresh_token()).await;

        // Assert
        old.assert_inactive();
        assert_eq!(new.body["active"], Value::Bool(true), "{}", new.text);
    }

    #[settings(|s| { s.access_token_ttl_secs = 2; s.refresh_token_ttl_secs = 2; })]
    async fn expired_tokens_are_inactive(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        assert_eq!(app.introspect(&client, &tokens.access_token).await.body["active"], Value::Bool(true));
        assert_eq!(app.introspect(&client, tokens.refresh_token()).await.body["active"], Value::Bool(true));

        // Act
        tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
        let access = app.introspect(&client, &tokens.access_token).await;
        let refresh = app.introspect(&client, tokens.refresh_token()).await;

        // Assert
        access.assert_inactive();
        refresh.assert_inactive();
    }

    async fn revoked_tokens_are_inactive(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        assert_eq!(app.revoke(&client, tokens.refresh_token()).await.status, StatusCode::OK);

        // Act
        let access = app.introspect(&client, &tokens.access_token).await;
        let refresh = app.introspect(&client, tokens.refresh_token()).await;

        // Assert
        access.assert_inactive();
        refresh.assert_inactive();
    }

    async fn unknown_and_malformed_tokens_are_inactive(app) {
        // Arrange
        let client = app.confidential_client().await;
        let real = app.client_token(&client, "email.read_only").await;
        let foreign = sign_with_foreign_key(&jwt_kid(&real), &jwt_claims(&real));
        let cases = [
            ("an unknown refresh token", format!("sgr_{}", random_string(43))),
            ("a flipped signature", with_flipped_signature(&real)),
            ("another key under the same kid", foreign),
            ("not a token at all", "garbage!!".to_string()),
            ("three dots", "...".to_string()),
            ("an authorization-code-looking string", format!("sgc_{}", random_string(43))),
            ("unicode", "tökén ✓".to_string()),
        ];

        for (what, token) in cases {
            // Act
            let answer = app.introspect(&client, &token).await;

            // Assert
            assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.text);
            answer.assert_inactive();
        }
    }

    async fn a_client_cannot_introspect_another_clients_tokens(app) {
        // Arrange
        let user = app.create_user().await;
        let owner = app.confidential_client().await;
        let snoop = app.confidential_client().await;
        let tokens = app.tokens(&user, &owner, "email.read_only").await;

        // Act
        let access = app.introspect(&snoop, &tokens.access_token).await;
        let refresh = app.introspect(&snoop, tokens.refresh_token()).await;

        // Assert
        access.assert_inactive();
        refresh.assert_inactive();
        assert_eq!(app.introspect(&owner, &tokens.access_token).await.body["active"], Value::Bool(true));
    }

    async fn a_resource_server_may_introspect_every_clients_tokens(app) {
        // Arrange
        let user = app.create_user().await;
        let owner = app.confidential_client().await;
        let resource_server = app
            .create_client(scopegate::ops::ClientSpec { resource_server: true, ..confidential_spec() })
            .await;
        let tokens = app.tokens(&user, &owner, "email.read_only").await;

        // Act
        let access = app.introspect(&resource_server, &tokens.access_token).await;
        let refresh = app.introspect(&resource_server, tokens.refresh_token()).await;

        // Assert
        assert_eq!(access.body["active"], Value::Bool(true), "{}", access.text);
        assert_eq!(access.body["client_id"].as_str(), Some(owner.client_id.as_str()));
        assert_eq!(access.body["sub"].as_str(), Some(user.id.as_str()));
        assert_eq!(refresh.body["active"], Value::Bool(true), "{}", refresh.text);
    }

    async fn introspection_without_valid_client_credentials_is_invalid_client(app) {
        // Arrange
        let client = app.confidential_client().await;
        let public = app.public_client().await;
        let token = app.client_token(&client, "email.read_only").await;
        let mut wrong = client.clone();
        wrong.client_secret = Some(format!("sgs_{}", random_string(43)));
        let cases = [
            ("no credentials", ClientAuth::None),
            ("a wrong secret", wrong.auth()),
            ("a wrong secret in the body", wrong.post_auth()),
            ("an unknown client", ClientAuth::Basic("app_nobody".into(), "sgs_nothing".into())),
            ("a public client", public.auth()),
        ];

        for (what, auth) in cases {
            // Act
            let answer = app.post_client_form("/oauth/introspect", &auth, &[("token", &token)]).await;

            // Assert
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.text);
            answer.assert_oauth_error(401, "invalid_client");
            assert!(answer.body.get("active").is_none(), "{what}: says nothing about the token");
        }
    }

    async fn introspection_with_a_malformed_request_is_a_400(app) {
        // Arrange
        let client = app.confidential_client().await;
        let token = app.client_token(&client, "email.read_only").await;
        let basic = basic_auth(&client.client_id, client.secret());
        let json_body = json!({"token": token}).to_string();
        let twice = serde_urlencoded::to_string([("token", &token), ("token", &token)]).unwrap();
        let cases: Vec<(&str, Option<&str>, String)> = vec![
            ("a JSON body", Some("application/json"), json_body),
            ("no content type", None, format!("token={token}")),
            ("text/plain", Some("text/plain"), format!("token={token}")),
            ("no token", Some("application/x-www-form-urlencoded"), String::new()),
            ("an empty token", Some("application/x-www-form-urlencoded"), "token=".to_string()),
            ("the token twice", Some("application/x-www-form-urlencoded"), twice),
        ];

        for (what, content_type, body) in cases {
            // Act
            let answer = app.post_raw("/oauth/introspect", content_type, Some(&basic), body).await;

            // Assert
            answer.assert_oauth_error(400, "invalid_request");
            assert!(answer.body.get("active").is_none(), "{what}: {}", answer.text);
        }
    }

    async fn huge_and_garbage_introspection_requests_are_refused_without_a_500(app) {
        // Arrange
        let client = app.confidential_client().await;
        let basic = basic_auth(&client.client_id, client.secret());
        let form = "application/x-www-form-urlencoded";
        let cases: Vec<RawCase> = vec![
            ("a 100 kB token", Some(form), Some(&basic), format!("token={}", "a".repeat(100_000)).into_bytes()),
            ("a 60 kB token", Some(form), Some(&basic), format!("token={}", "a".repeat(60_000)).into_bytes()),
            ("a 5 kB JWT-shaped token", Some(form), Some(&basic), format!("token={}.{}.{}", "e".repeat(2000), "f".repeat(2000), "g".repeat(1000)).into_bytes()),
            ("binary", Some(form), Some(&basic), vec![0xff, 0xfe, 0x00, 0x01, b'=', b'&', 0x80]),
            ("bad percent-encoding", Some(form), Some(&basic), b"token=%zz%%&&==".to_vec()),
            ("a NUL in the token", Some(form), Some(&basic), b"token=abc%00def".to_vec()),
            ("a 1 MB body without credentials", Some(form), None, vec![b'a'; 1_000_000]),
            ("garbage Basic credentials", Some(form), Some("Basic %%%"), b"token=x".to_vec()),
            ("a Bearer header instead of client credentials", Some(form), Some("Bearer abc"), b"token=x".to_vec()),
            ("a multipart body", Some("multipart/form-data; boundary=x"), Some(&basic), b"--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--x--\r\n".to_vec()),
        ];

        for (what, content_type, authorization, body) in cases {
            // Act
            let answer = app.post_raw("/oauth/introspect", content_type, authorization, body).await;

            // Assert
            answer.assert_refused_without_500(what);
        }
    }

    async fn the_metadata_lists_the_introspection_and_revocation_endpoints(app) {
        // Act
        let meta = app.metadata().await;
        let oidc = app.openid_configuration().await;

        // Assert
        let issuer = meta["issuer"].as_str().expect("issuer");
        assert_eq!(meta["introspection_endpoint"].as_str(), Some(format!("{issuer}/oauth/introspect").as_str()));
        assert_eq!(meta["revocation_endpoint"].as_str(), Some(format!("{issuer}/oauth/revoke").as_str()));
        let introspection_methods = strings(&meta["introspection_endpoint_auth_methods_supported"]);
        let revocation_methods = strings(&meta["revocation_endpoint_auth_methods_supported"]);
        for m in ["client_secret_basic", "client_secret_post"] {
            assert!(introspection_methods.contains(&m.to_string()), "{m}: {introspection_methods:?}");
            assert!(revocation_methods.contains(&m.to_string()), "{m}: {revocation_methods:?}");
        }
        assert!(
            !introspection_methods.contains(&"none".to_string()),
            "introspection needs an authenticated client: {introspection_methods:?}"
        );
        for field in [
            "introspection_endpoint",
            "revocation_endpoint",
            "introspection_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_methods_supported",
        ] {
            assert_eq!(oidc[field], meta[field], "{field} is the same in both documents");
        }
    }

    async fn the_advertised_endpoints_work_as_advertised(app) {
        // Arrange
        let meta = app.metadata().await;
        let client = app.confidential_client().await;
        let token = app.client_token(&client, "email.read_only").await;
        let basic = basic_auth(&client.client_id, client.secret());
        let post = |url: &str| {
            app.api
                .post(url)
                .header("Authorization", basic.clone())
                .form(&[("token", token.as_str())])
                .send()
        };

        // Act
        let introspected = post(meta["introspection_endpoint"].as_str().unwrap()).await.unwrap();
        let introspected: Value = introspected.json().await.unwrap();
        let revoked = post(meta["revocation_endpoint"].as_str().unwrap()).await.unwrap();

        // Assert
        assert_eq!(introspected["active"], Value::Bool(true), "{introspected}");
        assert_eq!(revoked.status(), StatusCode::OK);
        app.introspect(&client, &token).await.assert_inactive();
    }
}
