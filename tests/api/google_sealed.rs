//! Google credentials are sealed at rest: no Google access or refresh token, and no
//! application Google client secret, appears in plain text anywhere in the database (every
//! column of every table, and for SQLite the raw file bytes and WAL); the master key is not in
//! the database either; a sealed token is bound to its account.

use reqwest::StatusCode;
use serde_json::json;

use crate::fake_google::*;
use crate::google_helpers::*;
use crate::helpers::*;

/// Asserts that none of `secrets` is readable in the database, and that the scan does read
/// it (`visible` is found).
async fn assert_not_in_database(app: &TestApp, secrets: &[String], visible: &str) {
    let text = database_text(app).await;
    assert!(
        text.iter().any(|v| v.contains(visible)),
        "the scan reads the data ({visible} not found)"
    );
    let bytes = sqlite_bytes(app);
    if app.backend == Backend::Sqlite {
        assert!(
            contains_bytes(&bytes, visible.as_bytes()),
            "the file scan reads the data"
        );
    }
    assert!(!secrets.is_empty());
    for secret in secrets {
        assert!(
            !text.iter().any(|v| v.contains(secret.as_str())),
            "{}… is stored in plain text",
            &secret[..12.min(secret.len())]
        );
        assert!(
            !contains_bytes(&bytes, secret.as_bytes()),
            "{}… is in the SQLite file in plain text",
            &secret[..12.min(secret.len())]
        );
    }
}

google_e2e! {
    async fn google_tokens_from_sign_in_are_not_readable_in_the_database(app, google) {
        // Arrange: sign in (code exchange), then force a refresh so a second access token is stored.
        google.set_access_token_ttl(SHORT_TTL_SECS);
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to = google_authorize(&app.browser, &params, Decision::AllowAll).await;
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
        let_google_tokens_expire(&google).await;
        let resp = api_call(&app, "GET", "/labels", &tokens.access_token, None).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        assert_eq!(count_rows(&app, "google_accounts").await, 1);

        // Act
        let issued = google.issued_tokens();

        // Assert
        assert!(issued.len() >= 3, "a refresh token and two access tokens: {}", issued.len());
        assert_not_in_database(&app, &issued, &google.user().email).await;
    }

    async fn native_authentication_secrets_are_not_readable_in_the_database(app, google) {
        // Arrange
        google.set_access_token_ttl(SHORT_TTL_SECS);
        let acct = native_account(&app, &google, &["email.read_only", "email.send"]).await;
        let_google_tokens_expire(&google).await;
        let resp = api_call(&app, "GET", "/labels", &acct.access_token, None).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);

        // Act
        let mut secrets = google.issued_tokens();
        secrets.push(APP_GOOGLE_CLIENT_SECRET.to_string());

        // Assert
        assert!(secrets.contains(&acct.google_refresh_token));
        assert_not_in_database(&app, &secrets, &google.user().email).await;
    }

    async fn the_master_key_is_not_in_the_database(app, google) {
        // Arrange
        native_account(&app, &google, &["email.read_only"]).await;
        let key_file = app.settings.seal_key_file.clone().expect("the tests set a seal key file");
        let key = std::fs::read_to_string(&key_file).unwrap_or_default();
        let key = key.trim();

        // Act / Assert
        if key.len() >= 16 {
            assert_not_in_database(&app, &[key.to_string()], &google.user().email).await;
        } else {
            // A binary key file: look for its bytes.
            let raw = std::fs::read(&key_file).expect("the seal key file exists");
            assert!(raw.len() >= 32, "a 256-bit key");
            assert!(!contains_bytes(&sqlite_bytes(&app), &raw));
        }
    }

    async fn a_sealed_token_copied_to_another_account_does_not_open(app, google) {
        // Arrange: two accounts. Their Google refresh tokens carry no identity scope, so the
        // application's email_address is taken as given.
        let client = app.confidential_client().await;
        let refresh_a = google.issue_refresh_token(APP_GOOGLE_CLIENT_ID, APP_GOOGLE_CLIENT_SECRET, &[GMAIL_READONLY]);
        let refresh_b = google.issue_refresh_token(APP_GOOGLE_CLIENT_ID, APP_GOOGLE_CLIENT_SECRET, &[GMAIL_READONLY]);
        let connect = |refresh: &str, email: &str| {
            let mut body = connect_body(&client, &google, refresh, json!("email.read_only"));
            body["email_address"] = json!(email);
            body
        };
        let a = post_json(&app, "/connect/authorize", &connect(&refresh_a, "alice@example.org"), None).await;
        let b = post_json(&app, "/connect/authorize", &connect(&refresh_b, "bob@example.org"), None).await;
        assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK), "{} / {}", a.text, b.text);
        let token_b = post_json(&app, "/connect/token", &json!({
            "client_id": client.client_id, "client_secret": client.secret(), "code": b.body["code"]}), None).await;
        let token_b = token_b.body["access_token"].as_str().expect("a token").to_string();
        let bob = account(&app, &token_b).await["id"].as_str().expect("an id").to_string();
        let alice = google_links(&app).await.into_iter().map(|l| l.0).find(|id| *id != bob).expect("Alice");
        copy_sealed_access_token(&app, &alice, &bob).await;
        google.clear_api_calls();

        // Act
        let resp = api_call(&app, "GET", "/labels", &token_b, None).await;

        // Assert: Alice's sealed token did not open as Bob's; Bob's own grant was refreshed.
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        let calls = google.resource_calls();
        assert!(!calls.is_empty());
        for call in calls {
            let token = call.token.expect("a bearer token");
            assert_eq!(google.refreshed_from(&token).as_deref(), Some(refresh_b.as_str()),
                "Bob's call went out with a token of another grant");
        }
    }
}

/// Copies `from`'s sealed access token (and its expiry) onto `to`'s Google link.
async fn copy_sealed_access_token(app: &TestApp, from: &str, to: &str) {
    #[derive(diesel::QueryableByName)]
    struct Sealed {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        access_token_sealed: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        access_expires_at: Option<i64>,
    }
    let url = app.settings.database_url.clone();
    let (from, to) = (from.to_string(), to.to_string());
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection as _, RunQueryDsl as _};
        let select = format!(
            "SELECT access_token_sealed, access_expires_at FROM google_accounts WHERE user_id = '{}'",
            from.replace('\'', "")
        );
        let update = |sealed: &str, exp: i64| {
            format!(
                "UPDATE google_accounts SET access_token_sealed = '{}', access_expires_at = {exp} WHERE user_id = '{}'",
                sealed.replace('\'', ""),
                to.replace('\'', "")
            )
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            let mut c = diesel::SqliteConnection::establish(path).expect("open SQLite");
            let row = diesel::sql_query(select).load::<Sealed>(&mut c).expect("select")
                .pop().expect("a row");
            diesel::sql_query(update(&row.access_token_sealed.expect("sealed"), row.access_expires_at.unwrap_or(0)))
                .execute(&mut c).expect("update");
        } else {
            let mut c = diesel::PgConnection::establish(&url).expect("open PostgreSQL");
            let row = diesel::sql_query(select).load::<Sealed>(&mut c).expect("select")
                .pop().expect("a row");
            diesel::sql_query(update(&row.access_token_sealed.expect("sealed"), row.access_expires_at.unwrap_or(0)))
                .execute(&mut c).expect("update");
        }
    })
    .await
    .expect("database task");
}
