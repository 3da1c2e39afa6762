//! Token revocation (RFC 7009): a refresh token takes its whole family with it, an access
//! token only itself, at once — also on another instance sharing the PostgreSQL database.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::scope_helpers::*;

#[track_caller]
fn assert_active(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["active"], Value::Bool(true), "{}", answer.text);
}

e2e! {
    async fn revoking_a_refresh_token_revokes_its_whole_family_at_once(app) {
        // Arrange: a family with two access tokens and a rotated refresh token.
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only").await;
        let second = app.refresh(&client, first.refresh_token(), None).await.tokens();
        assert_eq!(app.get_account(&first.access_token).await.status, StatusCode::OK);
        assert_eq!(app.get_account(&second.access_token).await.status, StatusCode::OK);

        // Act
        let answer = app.revoke(&client, second.refresh_token()).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert!(answer.cache_control.as_deref().unwrap_or("").contains("no-store"));
        for token in [&first.access_token, &second.access_token] {
            app.introspect(&client, token).await.assert_inactive();
            app.get_account(token).await.assert_invalid_token();
        }
        app.introspect(&client, second.refresh_token()).await.assert_inactive();
        app.refresh(&client, second.refresh_token(), None).await.assert_error(400, "invalid_grant");
    }

    async fn revoking_an_access_token_revokes_that_token_only(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let answer = app.revoke(&client, &tokens.access_token).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        app.introspect(&client, &tokens.access_token).await.assert_inactive();
        app.get_account(&tokens.access_token).await.assert_invalid_token();
        assert_active(&app.introspect(&client, tokens.refresh_token()).await);
        let renewed = app.refresh(&client, tokens.refresh_token(), None).await.tokens();
        assert_eq!(app.get_account(&renewed.access_token).await.status, StatusCode::OK);
        assert_active(&app.introspect(&client, &renewed.access_token).await);
    }

    async fn revoking_one_access_token_leaves_its_siblings_alone(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let first = app.tokens(&user, &client, "email.read_only").await;
        let second = app.refresh(&client, first.refresh_token(), None).await.tokens();

        // Act
        app.revoke(&client, &first.access_token).await;

        // Assert
        app.get_account(&first.access_token).await.assert_invalid_token();
        assert_eq!(app.get_account(&second.access_token).await.status, StatusCode::OK);
    }

    async fn a_wrong_token_type_hint_does_not_stop_the_revocation(app) {
        // Arrange (RFC 7009 §2.1: the hint may be wrong; the server looks further)
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let a = app.tokens(&user, &client, "email.read_only").await;
        let b = app.tokens(&user, &other, "email.read_only").await;

        // Act
        let access = app
            .post_client_form(
                "/oauth/revoke",
                &client.auth(),
                &[("token", &a.access_token), ("token_type_hint", "refresh_token")],
            )
            .await;
        let refresh = app
            .post_client_form(
                "/oauth/revoke",
                &client.auth(),
                &[("token", a.refresh_token()), ("token_type_hint", "access_token")],
            )
            .await;

        // Assert
        assert_eq!(access.status, StatusCode::OK, "{}", access.text);
        assert_eq!(refresh.status, StatusCode::OK, "{}", refresh.text);
        app.get_account(&a.access_token).await.assert_invalid_token();
        app.introspect(&client, a.refresh_token()).await.assert_inactive();
        assert_eq!(app.get_account(&b.access_token).await.status, StatusCode::OK, "another grant is untouched");
    }

    async fn an_unknown_token_answers_200(app) {
        // Arrange
        let client = app.confidential_client().await;
        let real = app.client_token(&client, "email.read_only").await;
        let cases = [
            format!("sgr_{}", random_string(43)),
            with_flipped_signature(&real),
            "garbage!!".to_string(),
            "a.b.c".to_string(),
        ];

        for token in cases {
            // Act
            let answer = app.revoke(&client, &token).await;

            // Assert
            assert_eq!(answer.status, StatusCode::OK, "{token}: {}", answer.text);
        }
        assert_eq!(app.call_api("GET", "/messages", Some(&bearer(&real))).await.status, StatusCode::NOT_FOUND);
    }

    async fn revoking_an_already_revoked_token_answers_200(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        app.revoke(&client, tokens.refresh_token()).await;

        // Act
        let again = app.revoke(&client, tokens.refresh_token()).await;
        let access = app.revoke(&client, &tokens.access_token).await;

        // Assert
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(access.status, StatusCode::OK, "{}", access.text);
    }

    async fn a_client_cannot_revoke_another_clients_tokens(app) {
        // Arrange
        let user = app.create_user().await;
        let owner = app.confidential_client().await;
        let other = app.confidential_client().await;
        let tokens = app.tokens(&user, &owner, "email.read_only").await;

        // Act
        let access = app.revoke(&other, &tokens.access_token).await;
        let refresh = app.revoke(&other, tokens.refresh_token()).await;

        // Assert: the answer does not tell, and nothing was revoked.
        assert_eq!(access.status, StatusCode::OK, "{}", access.text);
        assert_eq!(refresh.status, StatusCode::OK, "{}", refresh.text);
        assert_eq!(app.get_account(&tokens.access_token).await.status, StatusCode::OK);
        assert_active(&app.introspect(&owner, tokens.refresh_token()).await);
    }

    async fn a_public_client_revokes_its_own_refresh_token_with_its_client_id(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.public_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let answer = app.revoke(&client, tokens.refresh_token()).await;

        // Assert
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        app.get_account(&tokens.access_token).await.assert_invalid_token();
        app.refresh(&client, tokens.refresh_token(), None).await.assert_error(400, "invalid_grant");
    }

    async fn a_user_tokens_revocation_shows_at_the_resource_api_in_the_basic_form_too(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let basic = basic_token(&tokens.access_token, "");
        assert_eq!(app.call_api("GET", "/account", Some(&basic)).await.status, StatusCode::OK);

        // Act
        app.revoke(&client, tokens.refresh_token()).await;

        // Assert
        app.call_api("GET", "/account", Some(&basic)).await.assert_invalid_token();
    }

    async fn revocation_without_valid_client_credentials_is_invalid_client(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let mut wrong = client.clone();
        wrong.client_secret = Some(format!("sgs_{}", random_string(43)));
        let cases = [
            ("no credentials", ClientAuth::None),
            ("a wrong secret", wrong.auth()),
            ("a wrong secret in the body", wrong.post_auth()),
            ("a confidential client's id alone", ClientAuth::Public(client.client_id.clone())),
            ("an unknown client", ClientAuth::Basic("app_nobody".into(), "sgs_nothing".into())),
        ];

        for (what, auth) in cases {
            // Act
            let answer = app
                .post_client_form("/oauth/revoke", &auth, &[("token", tokens.refresh_token())])
                .await;

            // Assert
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.text);
            answer.assert_oauth_error(401, "invalid_client");
        }
        assert_active(&app.introspect(&client, tokens.refresh_token()).await);
    }

    async fn revocation_with_a_malformed_request_is_a_400(app) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let rt = tokens.refresh_token().to_string();
        let basic = basic_auth(&client.client_id, client.secret());
        let twice = serde_urlencoded::to_string([("token", &rt), ("token", &rt)]).unwrap();
        let cases: Vec<(&str, Option<&str>, String)> = vec![
            ("a JSON body", Some("application/json"), serde_json::json!({"token": rt}).to_string()),
            ("no content type", None, format!("token={rt}")),
            ("no token", Some("application/x-www-form-urlencoded"), String::new()),
            ("the token twice", Some("application/x-www-form-urlencoded"), twice),
        ];

        for (what, content_type, body) in cases {
            // Act
            let answer = app.post_raw("/oauth/revoke", content_type, Some(&basic), body).await;

            // Assert
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}: {}", answer.text);
            answer.assert_oauth_error(400, "invalid_request");
        }
        assert_active(&app.introspect(&client, &rt).await);
    }

    async fn huge_and_garbage_revocation_requests_are_refused_without_a_500(app) {
        // Arrange
        let client = app.confidential_client().await;
        let basic = basic_auth(&client.client_id, client.secret());
        let form = "application/x-www-form-urlencoded";
        let cases: Vec<RawCase> = vec![
            ("a 100 kB token", Some(form), Some(&basic), format!("token={}", "a".repeat(100_000)).into_bytes()),
            ("a 60 kB token", Some(form), Some(&basic), format!("token={}", "a".repeat(60_000)).into_bytes()),
            ("a 4 kB refresh-token-looking string", Some(form), Some(&basic), format!("token=sgr_{}", "b".repeat(4_000)).into_bytes()),
            ("a 4 kB JWT-shaped token", Some(form), Some(&basic), format!("token={}.{}.{}", "e".repeat(2000), "f".repeat(1000), "g".repeat(1000)).into_bytes()),
            ("binary", Some(form), Some(&basic), vec![0xff, 0xfe, 0x00, 0x01, b'=', b'&', 0x80]),
            ("bad percent-encoding", Some(form), Some(&basic), b"token=%zz%%&&==".to_vec()),
            ("a 1 MB body without credentials", Some(form), None, vec![b'a'; 1_000_000]),
            ("garbage Basic credentials", Some(form), Some("Basic %%%"), b"token=x".to_vec()),
            ("a multipart body", Some("multipart/form-data; boundary=x"), Some(&basic), b"--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--x--\r\n".to_vec()),
        ];

        for (what, content_type, authorization, body) in cases {
            // Act
            let answer = app.post_raw("/oauth/revoke", content_type, authorization, body).await;

            // Assert
            answer.assert_refused_without_500(what);
        }
    }
}

/// Two Scopegate processes on one fresh PostgreSQL database, the same seal key and public URL
/// (as behind one load balancer): a revocation on A holds at once on B. PostgreSQL only; skips
/// without `SCOPEGATE_TEST_DATABASE_URL`, fails without it in CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_holds_at_once_on_another_sharing_the_database() {
    // Arrange
    let seal_key = fresh_seal_key();
    let key_for_a = seal_key.clone();
    let Some(a) = spawn_app_with(Backend::Postgres, move |s| {
        s.seal_key = Some(key_for_a.into());
    })
    .await
    else {
        return;
    };
    let mut settings_b = test_settings(a.settings.database_url.clone());
    settings_b.seal_key = Some(seal_key.into());
    settings_b.public_url = Some(a.address.clone());
    let b = Instance::start(settings_b).await;
    let user = a.create_user().await;
    let client = a.confidential_client().await;
    let family = a.tokens(&user, &client, "email.read_only").await;
    let other = a.confidential_client().await;
    let single = a.tokens(&user, &other, "calendar").await;
    assert_active(&b.introspect(&client, &family.access_token).await);
    assert_active(&b.introspect(&client, family.refresh_token()).await);
    assert_eq!(
        b.get_account(&family.access_token).await.status,
        StatusCode::OK,
        "B accepts A's tokens"
    );
    assert_eq!(
        b.get_account(&single.access_token).await.status,
        StatusCode::OK
    );

    // Act: revoke a refresh token (its whole family) on A.
    let family_revoked = a.revoke(&client, family.refresh_token()).await;

    // Assert
    assert_eq!(
        family_revoked.status,
        StatusCode::OK,
        "{}",
        family_revoked.text
    );
    b.introspect(&client, &family.access_token)
        .await
        .assert_inactive();
    b.introspect(&client, family.refresh_token())
        .await
        .assert_inactive();
    b.get_account(&family.access_token)
        .await
        .assert_invalid_token();
    b.refresh(&client, family.refresh_token())
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_eq!(
        b.get_account(&single.access_token).await.status,
        StatusCode::OK,
        "another grant is untouched"
    );

    // Act: revoke a single access token on A.
    let token_revoked = a.revoke(&other, &single.access_token).await;

    // Assert
    assert_eq!(
        token_revoked.status,
        StatusCode::OK,
        "{}",
        token_revoked.text
    );
    b.introspect(&other, &single.access_token)
        .await
        .assert_inactive();
    b.get_account(&single.access_token)
        .await
        .assert_invalid_token();
    assert_active(&b.introspect(&other, single.refresh_token()).await);
}
