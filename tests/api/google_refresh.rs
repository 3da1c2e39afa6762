//! Google access tokens refreshed upstream: once when expired, once for many concurrent calls,
//! after Google says 401, with the right Google client; a refused refresh marks the account
//! for re-authentication, a Google outage does not.

use std::time::Duration;

use reqwest::StatusCode;

use crate::fake_google::*;
use crate::google_helpers::*;
use crate::helpers::*;

google_e2e! {
    async fn an_expired_google_access_token_is_refreshed_once(app, google) {
        // Arrange: the access token Scopegate holds expires.
        google.set_access_token_ttl(SHORT_TTL_SECS);
        let acct = native_account(&app, &google, &["email.read_only"]).await;
        let_google_tokens_expire(&google).await;
        let before = google.refresh_count();
        google.clear_api_calls();

        // Act
        let first = api_call(&app, "GET", "/labels", &acct.access_token, None).await;
        let second = api_call(&app, "GET", "/labels", &acct.access_token, None).await;

        // Assert
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert_eq!(second.status, StatusCode::OK, "{}", second.text);
        assert_eq!(google.refresh_count(), before + 1, "one refresh, then the new token is reused");
        let latest = google.issued_tokens().into_iter().rfind(|t| t.starts_with("ya29."));
        for call in google.resource_calls() {
            assert_eq!(call.status, 200, "no call went out with the expired token: {call:?}");
            assert_eq!(call.token, latest, "the refreshed token was used");
        }
    }

    async fn concurrent_calls_share_one_refresh(app, google) {
        // Arrange
        google.set_access_token_ttl(SHORT_TTL_SECS);
        let acct = native_account(&app, &google, &["email.read_only", "calendar.read_only"]).await;
        let_google_tokens_expire(&google).await;
        google.set_refresh_delay(Duration::from_millis(400));
        let before = google.refresh_count();
        let paths = ["/labels", "/calendars", "/labels", "/events", "/labels", "/calendars", "/folders", "/labels"];

        // Act
        let calls = paths.iter().map(|p| api_call(&app, "GET", p, &acct.access_token, None));
        let answers = futures_util::future::join_all(calls).await;

        // Assert
        for (p, a) in paths.iter().zip(&answers) {
            assert_eq!(a.status, StatusCode::OK, "GET {p}: {}", a.text);
        }
        assert_eq!(google.refresh_count(), before + 1, "{} concurrent calls, one refresh", paths.len());
    }

    async fn a_token_google_rejects_before_its_expiry_is_refreshed_and_the_call_retried(app, google) {
        // Arrange
        let acct = native_account(&app, &google, &["email.read_only"]).await;
        google.expire_access_tokens();
        let before = google.refresh_count();
        google.clear_api_calls();

        // Act
        let resp = api_call(&app, "GET", "/labels", &acct.access_token, None).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        assert_eq!(google.refresh_count(), before + 1);
        let statuses: Vec<u16> = google.resource_calls().iter().map(|c| c.status).collect();
        assert_eq!(statuses, vec![401, 200], "one rejected call, one retry");
    }

    async fn a_native_account_refreshes_with_the_applications_google_client(app, google) {
        // Arrange
        google.set_access_token_ttl(SHORT_TTL_SECS);
        let acct = native_account(&app, &google, &["email.read_only"]).await;
        let_google_tokens_expire(&google).await;
        let before = google.token_requests().len();

        // Act
        let resp = api_call(&app, "GET", "/labels", &acct.access_token, None).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        let refreshes: Vec<TokenRequest> = google.token_requests().into_iter().skip(before).collect();
        assert_eq!(refreshes.len(), 1);
        assert_eq!(refreshes[0].grant_type, "refresh_token");
        assert_eq!(refreshes[0].client_id.as_deref(), Some(APP_GOOGLE_CLIENT_ID));
        assert!(refreshes[0].form.iter().any(|(k, v)| k == "refresh_token" && *v == acct.google_refresh_token));
    }

    async fn a_google_sign_in_account_refreshes_with_scopegates_google_client(app, google) {
        // Arrange
        google.set_access_token_ttl(SHORT_TTL_SECS);
        let client = app.confidential_client().await;
        let params = AuthParams::new(&client, "email.read_only");
        let to = google_authorize(&app.browser, &params, Decision::AllowAll).await;
        let tokens = app.exchange(&code_grant_from(&to, &client, &params)).await.tokens();
        let_google_tokens_expire(&google).await;
        let before = google.token_requests().len();

        // Act
        let resp = api_call(&app, "GET", "/messages", &tokens.access_token, None).await;

        // Assert
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        let refreshes: Vec<TokenRequest> = google.token_requests().into_iter().skip(before).collect();
        assert_eq!(refreshes.len(), 1, "{refreshes:?}");
        assert_eq!(refreshes[0].grant_type, "refresh_token");
        assert_eq!(refreshes[0].status, 200);
        assert_eq!(refreshes[0].client_id.as_deref(), Some(SCOPEGATE_GOOGLE_CLIENT_ID));
    }

    async fn a_refresh_token_revoked_at_google_marks_the_account_for_reauthentication(app, google) {
        // Arrange
        let acct = native_account(&app, &google, &["email.read_only"]).await;
        google.revoke_refresh_token(&acct.google_refresh_token);
        google.expire_access_tokens();

        // Act
        let first = api_call(&app, "GET", "/messages", &acct.access_token, None).await;
        let refreshes = google.refresh_count();
        let second = api_call(&app, "GET", "/messages", &acct.access_token, None).await;

        // Assert
        for resp in [&first, &second] {
            resp.assert_nylas_error(&[401, 403], &["api_error", "invalid_request_error"]);
            let m = resp.message().to_ascii_lowercase();
            assert!(m.contains("re-authenticat") || m.contains("connected again") || m.contains("reauth"),
                "the error says to re-authenticate: {}", resp.text);
        }
        assert_eq!(google.refresh_count(), refreshes, "a dead grant is not retried at Google");
        assert_eq!(account(&app, &acct.access_token).await["sync_state"], "invalid");
        let links = google_links(&app).await;
        assert_eq!(links.len(), 1);
        assert!(links[0].1, "needs_reauth is stored");
    }

    async fn native_reauthentication_revives_an_account_that_needed_it(app, google) {
        // Arrange
        let acct = native_account(&app, &google, &["email.read_only"]).await;
        google.revoke_refresh_token(&acct.google_refresh_token);
        google.expire_access_tokens();
        api_call(&app, "GET", "/messages", &acct.access_token, None).await;

        // Act
        let again = native_connect(&app, &google, &acct.client, &["email.read_only"], &[GMAIL_READONLY]).await;
        let resp = api_call(&app, "GET", "/messages", &again.access_token, None).await;

        // Assert
        assert_eq!(again.account_id(), acct.account_id());
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
        assert_eq!(account(&app, &again.access_token).await["sync_state"], "running");
    }

    async fn a_google_outage_during_refresh_does_not_require_reauthentication(app, google) {
        // Arrange
        let acct = native_account(&app, &google, &["email.read_only"]).await;
        google.set_refresh_failure(Some(RefreshFailure::ServerError));
        google.expire_access_tokens();

        // Act
        let during = api_call(&app, "GET", "/labels", &acct.access_token, None).await;
        google.set_refresh_failure(None);
        let after = api_call(&app, "GET", "/labels", &acct.access_token, None).await;

        // Assert
        assert!(!during.status.is_success(), "{}", during.text);
        assert_ne!(during.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", during.text);
        assert!(during.body["message"].is_string(), "a clear error: {}", during.text);
        assert_eq!(after.status, StatusCode::OK, "a transient outage is not a revoked grant: {}", after.text);
        assert_eq!(account(&app, &acct.access_token).await["sync_state"], "running");
    }

    #[settings(|s| s.google.api_url = closed_port_url())]
    async fn google_unreachable_during_an_api_call_is_a_clear_error(app, google) {
        // Arrange
        let acct = native_account(&app, &google, &["email.read_only"]).await;

        // Act
        let resp = api_call(&app, "GET", "/messages", &acct.access_token, None).await;

        // Assert
        assert!(matches!(resp.status.as_u16(), 502..=504), "{} {}", resp.status, resp.text);
        assert!(resp.body["message"].is_string(), "{}", resp.text);
        assert_eq!(account(&app, &acct.access_token).await["sync_state"], "running");
    }
}
