//! grant_type=client_credentials: confidential clients acting for themselves.

use crate::helpers::*;
use reqwest::StatusCode;

e2e! {
    async fn a_confidential_client_gets_a_token_for_itself(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app.client_credentials(&client, Some("email.read_only calendar")).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        assert_no_store(&resp.headers);
        assert!(resp.str("token_type").eq_ignore_ascii_case("bearer"));
        assert_eq!(resp.scope(), set_of(&["email.read_only", "calendar"]));
        assert_eq!(resp.body["expires_in"].as_i64(), Some(app.settings.access_token_ttl_secs));
        assert!(resp.body.get("refresh_token").is_none(), "no refresh_token: {}", resp.text);
        let (header, claims) = app.verify_jwt(resp.str("access_token")).await;
        assert_eq!(header.typ.as_deref().map(str::to_ascii_lowercase), Some("at+jwt".to_string()));
        assert_eq!(claims["sub"].as_str(), Some(client.client_id.as_str()));
        assert_eq!(claims["client_id"].as_str(), Some(client.client_id.as_str()));
        assert_eq!(scope_set(claims["scope"].as_str().unwrap()), set_of(&["email.read_only", "calendar"]));
    }

    async fn client_credentials_accepts_credentials_in_the_body(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app
            .post_token(&client.post_auth(), &[("grant_type", "client_credentials"), ("scope", "contacts")])
            .await;

        // Assert
        assert_eq!(resp.tokens().scope, set_of(&["contacts"]));
    }

    async fn client_credentials_accepts_comma_separated_scopes(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app.client_credentials(&client, Some("email.read_only,email.send")).await;

        // Assert
        assert_eq!(resp.tokens().scope, set_of(&["email.read_only", "email.send"]));
        assert_eq!(resp.str("scope").split(' ').count(), 2, "space-separated on output");
    }

    async fn a_scope_the_client_may_not_ask_for_is_invalid_scope(app) {
        // Arrange
        let client = app.client_with_scopes(&["email.read_only"]).await;

        // Act
        let resp = app.client_credentials(&client, Some("email.read_only email.send")).await;

        // Assert
        resp.assert_error(400, "invalid_scope");
    }

    async fn an_unknown_scope_is_invalid_scope(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app.client_credentials(&client, Some("email.read_only bogus.scope")).await;

        // Assert
        resp.assert_error(400, "invalid_scope");
    }

    async fn a_public_client_may_not_use_client_credentials(app) {
        // Arrange
        let client = app.public_client().await;

        // Act
        let resp = app.client_credentials(&client, Some("email.read_only")).await;

        // Assert
        assert!(
            (resp.status == StatusCode::BAD_REQUEST && resp.error() == "unauthorized_client")
                || (resp.status == StatusCode::UNAUTHORIZED && resp.error() == "invalid_client"),
            "{} {}",
            resp.status,
            resp.text
        );
        assert!(resp.body.get("access_token").is_none());
        assert_no_store(&resp.headers);
    }

    async fn a_wrong_secret_is_invalid_client(app) {
        // Arrange
        let client = app.confidential_client().await;
        let mut bad = client.clone();
        bad.client_secret = Some("nope".to_string());

        // Act
        let resp = app.client_credentials(&bad, Some("email.read_only")).await;

        // Assert
        resp.assert_error(401, "invalid_client");
        assert!(resp.header("www-authenticate").is_some());
    }

    async fn a_client_credentials_token_is_not_accepted_at_userinfo(app) {
        // Arrange: there is no user behind it.
        let client = app.confidential_client().await;
        let token = app.client_credentials(&client, Some("email.read_only")).await.tokens();

        // Act
        let resp = app.userinfo(&token.access_token).await;

        // Assert
        assert!(matches!(resp.status().as_u16(), 401 | 403), "{}", resp.status());
    }
}
