//! grant_type=refresh_token: rotation, reuse detection, scope narrowing.

use crate::helpers::*;
use reqwest::StatusCode;

e2e! {
    async fn a_refresh_token_gives_new_tokens_and_a_new_refresh_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only email.send").await;

        // Act
        let resp = app.refresh(&client, first.refresh_token(), None).await;

        // Assert
        assert_no_store(&resp.headers);
        let second = resp.tokens();
        assert!(second.refresh_token().starts_with("sgr_"));
        assert_ne!(second.refresh_token(), first.refresh_token(), "rotated");
        assert_ne!(second.access_token, first.access_token);
        assert_eq!(second.scope, set_of(&["email.read_only", "email.send"]));
        let (_, claims) = app.verify_jwt(&second.access_token).await;
        assert_eq!(claims["sub"].as_str(), Some(user.id.as_str()));
        assert_eq!(claims["client_id"].as_str(), Some(client.client_id.as_str()));
    }

    async fn a_rotated_refresh_token_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only").await;
        app.refresh(&client, first.refresh_token(), None).await.tokens();

        // Act
        let resp = app.refresh(&client, first.refresh_token(), None).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_reused_refresh_token_revokes_the_family(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "openid email.read_only").await;
        let second = app.refresh(&client, first.refresh_token(), None).await.tokens();
        let third = app.refresh(&client, second.refresh_token(), None).await.tokens();
        assert_eq!(app.userinfo(&third.access_token).await.status(), StatusCode::OK);

        // Act
        app.refresh(&client, first.refresh_token(), None).await.assert_error(400, "invalid_grant");

        // Assert
        app.refresh(&client, third.refresh_token(), None).await.assert_error(400, "invalid_grant");
        assert_eq!(
            app.userinfo(&third.access_token).await.status(),
            StatusCode::UNAUTHORIZED,
            "the family's access tokens are revoked too"
        );
    }

    async fn a_reused_refresh_token_leaves_other_grants_alone(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let other_client = app.confidential_client().await;
        let victim = app.tokens(&user, &client, "email.read_only").await;
        let bystander = app.tokens(&user, &other_client, "email.read_only").await;
        app.refresh(&client, victim.refresh_token(), None).await.tokens();

        // Act
        app.refresh(&client, victim.refresh_token(), None).await.assert_error(400, "invalid_grant");

        // Assert
        app.refresh(&other_client, bystander.refresh_token(), None).await.tokens();
    }

    async fn refresh_may_narrow_the_scope(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only email.send calendar").await;

        // Act
        let resp = app.refresh(&client, first.refresh_token(), Some("email.read_only")).await;

        // Assert
        let narrowed = resp.tokens();
        assert_eq!(narrowed.scope, set_of(&["email.read_only"]));
        let (_, claims) = app.verify_jwt(&narrowed.access_token).await;
        assert_eq!(claims["scope"].as_str(), Some("email.read_only"));
    }

    async fn refresh_cannot_widen_the_scope(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let resp = app.refresh(&client, first.refresh_token(), Some("email.read_only email.send")).await;

        // Assert
        resp.assert_error(400, "invalid_scope");
    }

    async fn refresh_with_an_unknown_scope_is_invalid_scope(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let resp = app.refresh(&client, first.refresh_token(), Some("email.read_everything")).await;

        // Assert
        resp.assert_error(400, "invalid_scope");
    }

    async fn a_refresh_token_of_another_client_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let owner = app.confidential_client().await;
        let thief = app.confidential_client().await;
        let tokens = app.tokens(&user, &owner, "email.read_only").await;

        // Act
        let resp = app.refresh(&thief, tokens.refresh_token(), None).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn refresh_with_a_wrong_secret_is_invalid_client(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let mut bad = client.clone();
        bad.client_secret = Some("not-the-secret".to_string());

        // Act
        let resp = app.refresh(&bad, tokens.refresh_token(), None).await;

        // Assert
        resp.assert_error(401, "invalid_client");
        assert!(resp.header("www-authenticate").is_some());
        app.refresh(&client, tokens.refresh_token(), None).await.tokens();
    }

    async fn refresh_accepts_credentials_in_the_body(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let resp = app
            .post_token(
                &client.post_auth(),
                &[("grant_type", "refresh_token"), ("refresh_token", tokens.refresh_token())],
            )
            .await;

        // Assert
        resp.tokens();
    }

    async fn a_public_client_refreshes_with_its_client_id(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.public_client().await;
        let tokens = app.tokens(&user, &client, "calendar.read_only").await;

        // Act
        let resp = app.refresh(&client, tokens.refresh_token(), None).await;

        // Assert
        let refreshed = resp.tokens();
        assert_eq!(refreshed.scope, set_of(&["calendar.read_only"]));
        assert_ne!(refreshed.refresh_token(), tokens.refresh_token());
    }

    async fn an_unknown_refresh_token_is_invalid_grant(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app.refresh(&client, "sgr_not-a-real-token", None).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    async fn a_missing_refresh_token_is_invalid_request(app) {
        // Arrange
        let client = app.confidential_client().await;

        // Act
        let resp = app.post_token(&client.auth(), &[("grant_type", "refresh_token")]).await;

        // Assert
        resp.assert_error(400, "invalid_request");
    }

    async fn an_access_token_is_not_a_refresh_token(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let resp = app.refresh(&client, &tokens.access_token, None).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }

    #[settings(|s| s.refresh_token_ttl_secs = 1)]
    async fn an_expired_refresh_token_is_invalid_grant(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

        // Act
        let resp = app.refresh(&client, tokens.refresh_token(), None).await;

        // Assert
        resp.assert_error(400, "invalid_grant");
    }
    async fn a_refresh_token_used_twice_at_once_succeeds_at_most_once(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        for _ in 0..4 {
            let tokens = app.tokens(&user, &client, "email.read_only").await;

            // Act
            let (a, b) = tokio::join!(
                app.refresh(&client, tokens.refresh_token(), None),
                app.refresh(&client, tokens.refresh_token(), None)
            );

            // Assert
            let wins = [&a, &b].iter().filter(|r| r.status == StatusCode::OK).count();
            assert!(wins <= 1, "one refresh token, two rotations:\n{}\n{}", a.text, b.text);
            for r in [&a, &b] {
                assert!(r.status.as_u16() < 500, "{}", r.text);
            }
        }
    }
}
