//! OpenID Connect: the ID token and /userinfo.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

e2e! {
    async fn an_openid_request_returns_an_id_token_with_the_nonce(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let before = now();
        let nonce = format!("n-{}", random_string(16));
        let params = AuthParams::new(&client, "openid email.read_only").set("nonce", &nonce);
        let grant = app.authorize_code_with(&user, &client, &params).await;

        // Act
        let tokens = app.exchange(&grant).await.tokens();

        // Assert
        let id_token = tokens.id_token.as_deref().expect("an id_token with openid");
        let (header, claims) = app.verify_jwt(id_token).await;
        assert_ne!(header.typ.as_deref(), Some("at+jwt"), "an ID token is not an access token");
        assert_eq!(claims["iss"].as_str(), Some(app.issuer().await.as_str()));
        assert_eq!(claims["sub"].as_str(), Some(user.id.as_str()));
        let aud_ok = claims["aud"].as_str() == Some(client.client_id.as_str())
            || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v.as_str() == Some(client.client_id.as_str())));
        assert!(aud_ok, "aud is the client_id: {claims}");
        assert_eq!(claims["nonce"].as_str(), Some(nonce.as_str()));
        let iat = claims["iat"].as_i64().expect("iat");
        let exp = claims["exp"].as_i64().expect("exp");
        assert!(exp > iat);
        assert_eq!(exp - iat, app.settings.id_token_ttl_secs);
        let auth_time = claims["auth_time"].as_i64().expect("auth_time");
        assert!(auth_time >= before - 5 && auth_time <= now() + 5, "auth_time {auth_time} is the login");
        assert!(claims.get("email").is_none(), "no email claim without the email scope: {claims}");
        assert!(claims.get("name").is_none(), "no name claim without the profile scope: {claims}");
    }

    async fn the_email_and_profile_scopes_put_email_and_name_in_the_id_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        // Act
        let tokens = app.tokens(&user, &client, "openid email profile").await;

        // Assert
        let (_, claims) = app.verify_jwt(tokens.id_token.as_deref().expect("id_token")).await;
        assert_eq!(claims["email"].as_str(), Some(user.email.as_str()));
        assert_eq!(claims["name"].as_str(), Some(user.name.as_str()));
    }

    async fn no_id_token_without_openid(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        // Act
        let tokens = app.tokens(&user, &client, "email profile email.read_only").await;

        // Assert
        assert!(tokens.id_token.is_none(), "{}", tokens.body);
    }

    async fn userinfo_returns_the_claims_the_scopes_allow(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid email profile").await;

        // Act
        let resp = app.userinfo(&tokens.access_token).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body["sub"].as_str(), Some(user.id.as_str()));
        assert_eq!(body["email"].as_str(), Some(user.email.as_str()));
        assert_eq!(body["name"].as_str(), Some(user.name.as_str()));
    }

    async fn userinfo_with_openid_only_returns_just_the_subject(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid").await;

        // Act
        let resp = app.userinfo(&tokens.access_token).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body["sub"].as_str(), Some(user.id.as_str()));
        assert!(body.get("email").is_none(), "{body}");
        assert!(body.get("name").is_none(), "{body}");
    }

    async fn userinfo_without_a_token_is_401_with_a_bearer_challenge(app) {
        // Act
        let resp = app.api.get(app.url("/userinfo")).send().await.unwrap();

        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&resp, "www-authenticate").unwrap_or("");
        assert!(challenge.starts_with("Bearer"), "{challenge:?}");
    }

    async fn userinfo_with_another_auth_scheme_is_401_with_a_bare_bearer_challenge(app) {
        // Act: RFC 6750 §3.1, an unsupported method counts as no authentication at all.
        let resp = app.api.get(app.url("/userinfo")).header("Authorization", "Basic YTpi").send().await.unwrap();

        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&resp, "www-authenticate").unwrap_or("");
        assert!(challenge.starts_with("Bearer"), "{challenge:?}");
    }

    async fn userinfo_with_a_bad_token_is_401_with_a_bearer_challenge(app) {
        // Act
        let garbage = app.userinfo("not-a-token").await;

        // Assert
        assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&garbage, "www-authenticate").unwrap_or("").to_string();
        assert!(challenge.starts_with("Bearer"), "{challenge:?}");
        assert!(challenge.contains("invalid_token"), "RFC 6750 §3.1 invalid_token: {challenge:?}");
    }

    async fn userinfo_refuses_a_token_with_a_forged_payload(app) {
        // Arrange
        let user = app.create_user().await;
        let victim = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid email").await;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let parts: Vec<&str> = tokens.access_token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = Value::String(victim.id.clone());
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);

        // Act
        let resp = app.userinfo(&forged).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    async fn userinfo_refuses_an_unsigned_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid email").await;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let parts: Vec<&str> = tokens.access_token.split('.').collect();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
        let unsigned = format!("{header}.{}.", parts[1]);

        // Act
        let resp = app.userinfo(&unsigned).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    #[settings(|s| s.access_token_ttl_secs = 1)]
    async fn userinfo_refuses_an_expired_access_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "openid").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

        // Act
        let resp = app.userinfo(&tokens.access_token).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_refreshed_openid_grant_still_reaches_userinfo(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "openid email").await;
        let second = app.refresh(&client, first.refresh_token(), None).await.tokens();

        // Act
        let resp = app.userinfo(&second.access_token).await;

        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["email"].as_str(), Some(user.email.as_str()));
    }
}
