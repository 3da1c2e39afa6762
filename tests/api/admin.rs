//! The admin UI over HTTP: who may enter, CSRF, and what each action does to tokens and sessions.

use crate::helpers::*;
use crate::ui_helpers::*;
use reqwest::StatusCode;

const ADMIN_PAGES: &[&str] = &[
    "/admin",
    "/admin/clients",
    "/admin/clients/new",
    "/admin/users",
    "/admin/users/new",
    "/admin/grants",
    "/admin/keys",
    "/admin/audit",
];

/// Registers a client through the admin form; returns the page showing the secret.
async fn create_client_in_ui(
    browser: &Browser,
    name: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> Page {
    let form = get_page(browser, "/admin/clients/new")
        .await
        .form("/admin/clients/new");
    let mut fields = vec![("name", name), ("redirect_uris", redirect)];
    fields.extend_from_slice(extra);
    submit(browser, &form, &fields).await
}

fn client_from_secret_page(page: &Page, name: &str, redirect: &str) -> TestClient {
    let doc = scraper::Html::parse_document(&page.html);
    let id_sel = scraper::Selector::parse("#client-id").unwrap();
    let client_id = doc
        .select(&id_sel)
        .next()
        .expect("#client-id")
        .text()
        .collect::<String>();
    let secret = page.attrs("#client-secret", "value").into_iter().next();
    TestClient {
        name: name.to_string(),
        client_id: client_id.trim().to_string(),
        client_secret: secret,
        redirect_uri: redirect.to_string(),
        redirect_uris: vec![redirect.to_string()],
    }
}

async fn count_users(app: &TestApp) -> i64 {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("connection");
        scopegate::store::users::count(&mut conn).expect("count")
    })
    .await
    .expect("count task")
}

e2e! {
    async fn a_signed_out_visitor_is_sent_to_login_with_the_page_to_return_to(app) {
        // Act
        let page = get_page(&app.new_browser(), "/admin/users?q=ada").await;

        // Assert
        assert_to_login(&page, "/admin/users?q=ada");
    }

    async fn a_user_who_is_not_an_admin_gets_403_on_every_admin_page(app) {
        // Arrange
        let user = app.create_user().await;
        let browser = signed_in(&app, &user).await;
        let token = get_page(&browser, "/account").await.csrf_token();

        // Act + Assert
        for path in ADMIN_PAGES {
            assert_eq!(get_page(&browser, path).await.status, StatusCode::FORBIDDEN, "GET {path}");
        }
        let resp = post(&browser, "/admin/keys/rotate", &[("csrf_token", &token)]).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "POST as a non-admin");
        assert_eq!(app.jwks().await["keys"].as_array().map(Vec::len), Some(1), "no rotation");
    }

    async fn every_admin_page_has_a_strict_csp_and_a_label_for_every_field(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let client = app.confidential_client().await;

        // Act + Assert
        let mut pages: Vec<String> = ADMIN_PAGES.iter().map(|p| p.to_string()).collect();
        pages.push(format!("/admin/users/{}", user.id));
        pages.push(format!("/admin/clients/{}", client.client_id));
        for path in &pages {
            let page = get_page(&browser, path).await;
            assert_eq!(page.status, StatusCode::OK, "GET {path}");
            assert!(page.csp.contains("frame-ancestors 'none'"), "CSP of {path}: {}", page.csp);
            assert!(page.csp.contains("script-src 'self'"), "CSP of {path}");
            assert_eq!(page.unlabelled_fields(), Vec::<String>::new(), "unlabelled fields on {path}");
            for form in Form::all(&page.html, &page.url) {
                if form.method == "post" {
                    assert!(form.hidden("csrf_token").is_some(), "a POST form without CSRF on {path}: {}", form.action);
                }
            }
        }
    }

    async fn an_admin_post_without_the_csrf_token_is_refused(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;

        // Act
        let resp = post(&browser, "/admin/clients/new", &[
            ("name", "Sneaky"), ("redirect_uris", "https://sneaky.example/cb"), ("scope", "openid"),
        ]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::FORBIDDEN);
        let list = get_page(&browser, "/admin/clients?q=Sneaky").await;
        assert!(list.attrs("tbody tr a", "href").is_empty(), "no client was created");
        assert!(audit_events(&app, "client.created").await.is_empty());
    }

    async fn an_admin_registers_a_client_and_sees_its_secret_once(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let redirect = "https://acme.example/callback";

        // Act
        let page = create_client_in_ui(&browser, "Acme CRM", redirect, &[
            ("type", "confidential"), ("scope", "openid"), ("scope", "email.read_only"), ("pkce_required", "yes"),
        ]).await;

        // Assert
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let client = client_from_secret_page(&page, "Acme CRM", redirect);
        let secret = client.secret().to_string();
        assert!(secret.starts_with("sgs_"), "{secret}");
        assert!(page.html.contains("data-copy=\"client-secret\""), "a copy button");
        assert!(page.html.contains("/static/copy.js"));
        let (status, _) = introspect(&app, &client, "not-a-token").await;
        assert_eq!(status, StatusCode::OK, "the shown secret authenticates the client");
        let settings = get_page(&browser, &format!("/admin/clients/{}", client.client_id)).await;
        assert!(!settings.html.contains(&secret), "the secret is never shown again");
        let boxes = settings.attrs("input[name=scope][checked]", "value");
        assert_eq!(boxes, vec!["email.read_only", "openid"]);
        let events = audit_events(&app, "client.created").await;
        assert_eq!(events[0].actor.as_deref(), Some(admin.id.as_str()));
        let script = app.get("/static/copy.js").await;
        assert_eq!(script.status(), StatusCode::OK);
        assert!(header(&script, "content-type").unwrap_or("").starts_with("text/javascript"));
    }

    async fn bad_client_input_is_shown_in_the_form_not_a_server_error(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;

        // Act
        let bad_uri = create_client_in_ui(&browser, "Acme", "not a url", &[("scope", "openid")]).await;
        let plain_http = create_client_in_ui(&browser, "Acme", "http://acme.example/cb", &[("scope", "openid")]).await;
        let no_scope = create_client_in_ui(&browser, "Acme", "https://acme.example/cb", &[]).await;
        let no_name = create_client_in_ui(&browser, "  ", "https://acme.example/cb", &[("scope", "openid")]).await;
        let unknown_scope = create_client_in_ui(&browser, "Acme", "https://acme.example/cb", &[("scope", "root")]).await;

        // Assert
        for (page, words) in [
            (&bad_uri, "not an absolute URL"),
            (&plain_http, "only for loopback"),
            (&no_scope, "at least one scope"),
            (&no_name, "1 to 100 characters"),
            (&unknown_scope, "at least one scope"),
        ] {
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text());
            assert!(page.text().contains(words), "expected {words:?} in {}", page.text());
            assert!(page.has_form("/admin/clients/new"), "the form again");
        }
        assert!(bad_uri.html.contains("not a url"), "what was typed is kept");
    }

    async fn an_admin_edits_a_client(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let client = app.confidential_client().await;
        let path = format!("/admin/clients/{}", client.client_id);
        let form = get_page(&browser, &path).await.form(&path);

        // Act
        let resp = submit(&browser, &form, &[
            ("name", "Renamed"), ("redirect_uris", "https://a.example/cb\r\nhttps://b.example/cb"), ("scope", "calendar"),
        ]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.text());
        let back = resp.location.clone().expect("back to the client");
        assert_eq!(back.path(), path);
        let page = get_page(&browser, back.as_str()).await;
        assert!(page.text().contains("Client saved"), "{}", page.text());
        assert!(page.text().contains("Renamed"));
        assert_eq!(page.attrs("input[name=scope][checked]", "value"), vec!["calendar"]);
        assert!(page.attrs("input[name=pkce_required][checked]", "value").is_empty(), "PKCE unticked");
        let resp = app.get_authorize(&AuthParams::new(&client, "email.read_only")).await;
        assert!(resp.status().as_u16() < 500);
        assert_eq!(audit_events(&app, "client.updated").await.len(), 1);
    }

    async fn rotating_a_secret_shows_the_new_one_and_the_old_one_stops_working(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let client = app.confidential_client().await;
        let path = format!("/admin/clients/{}", client.client_id);
        let form = get_page(&browser, &path).await.form(&format!("{path}/rotate"));

        // Act
        let page = submit(&browser, &form, &[]).await;

        // Assert
        assert_eq!(page.status, StatusCode::OK);
        let rotated = client_from_secret_page(&page, &client.name, &client.redirect_uri);
        assert_ne!(rotated.secret(), client.secret());
        assert_eq!(introspect(&app, &client, "x").await.0, StatusCode::UNAUTHORIZED, "the old secret");
        assert_eq!(introspect(&app, &rotated, "x").await.0, StatusCode::OK, "the new secret");
        assert_eq!(audit_events(&app, "client.secret_rotated").await.len(), 1);
    }

    async fn deleting_a_client_revokes_its_tokens(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let path = format!("/admin/clients/{}", client.client_id);
        let form = get_page(&browser, &path).await.form(&format!("{path}/delete"));

        // Act
        let unconfirmed = submit(&browser, &form, &[]).await;
        let resp = submit(&browser, &form, &[("confirm", "yes")]).await;

        // Assert
        assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST, "needs the confirmation box");
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_eq!(api_account(&app, &tokens.access_token).await, StatusCode::UNAUTHORIZED);
        let refreshed = app.refresh(&client, tokens.refresh_token(), None).await;
        assert!(refreshed.status.is_client_error(), "{}", refreshed.text);
        assert_eq!(get_page(&browser, &path).await.status, StatusCode::NOT_FOUND);
        let account = get_page(&app.browser, "/account").await;
        assert!(account.attrs("li.app", "data-client-id").is_empty(), "gone from connected apps");
        assert_eq!(audit_events(&app, "client.deleted").await.len(), 1);
    }

    async fn disabling_a_user_ends_their_sessions_and_revokes_their_grants(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        assert_eq!(get_page(&app.browser, "/account").await.status, StatusCode::OK);
        let path = format!("/admin/users/{}", user.id);
        let form = get_page(&browser, &path).await.form(&format!("{path}/status"));
        assert_eq!(form.hidden("status"), Some("disabled"));

        // Act
        let resp = submit(&browser, &form, &[]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_to_login(&get_page(&app.browser, "/account").await, "/account");
        assert_tokens_dead(&app, &client, &tokens).await;
        assert_eq!(app.new_browser().login(&user).await.status(), StatusCode::UNAUTHORIZED, "cannot sign in");
        let page = get_page(&browser, &path).await;
        assert!(page.text().contains("disabled"), "{}", page.text());
        let events = audit_events(&app, "user.disabled").await;
        assert_eq!(events[0].actor.as_deref(), Some(admin.id.as_str()));

        // And enabling lets them back in.
        let resp = submit(&browser, &page.form(&format!("{path}/status")), &[]).await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_eq!(app.new_browser().login(&user).await.status(), StatusCode::SEE_OTHER);
    }

    async fn an_admin_cannot_disable_themselves(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let path = format!("/admin/users/{}", admin.id);
        let token = get_page(&browser, &path).await.csrf_token();

        // Act
        let page = post(&browser, &format!("{path}/status"), &[("csrf_token", &token), ("status", "disabled")]).await;

        // Assert
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.text().contains("cannot disable your own account"));
        assert_eq!(get_page(&browser, "/admin").await.status, StatusCode::OK);
    }

    async fn an_admin_creates_users_grants_admin_and_resets_passwords(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let form = get_page(&browser, "/admin/users/new").await.form("/admin/users/new");

        // Act: create
        let created = submit(&browser, &form, &[
            ("email", "Grace@Example.test"), ("name", "Grace Hopper"), ("password", "cobol forever"),
        ]).await;

        // Assert
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text());
        let path = created.location.clone().expect("to the user's page").path().to_string();
        let grace = TestUser {
            id: path.trim_start_matches("/admin/users/").to_string(),
            email: "grace@example.test".into(),
            name: "Grace Hopper".into(),
            password: "cobol forever".into(),
        };
        let grace_browser = signed_in(&app, &grace).await;
        assert_eq!(get_page(&grace_browser, "/admin").await.status, StatusCode::FORBIDDEN);

        // Act: make admin
        let page = get_page(&browser, &path).await;
        let resp = submit(&browser, &page.form(&format!("{path}/admin")), &[]).await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_eq!(get_page(&grace_browser, "/admin").await.status, StatusCode::OK, "now an admin");

        // Act: reset password
        let page = get_page(&browser, &path).await;
        let resp = submit(&browser, &page.form(&format!("{path}/password")), &[("new_password", "fortran too")]).await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_to_login(&get_page(&grace_browser, "/admin").await, "/admin");
        assert_eq!(app.new_browser().login(&grace).await.status(), StatusCode::UNAUTHORIZED);
        let new = TestUser { password: "fortran too".into(), ..grace.clone() };
        assert_eq!(app.new_browser().login(&new).await.status(), StatusCode::SEE_OTHER);

        // A duplicate email is shown in the form.
        let again = submit(&browser, &form, &[
            ("email", "grace@example.test"), ("name", "Grace"), ("password", "cobol forever"),
        ]).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.text().contains("already exists"), "{}", again.text());
        for action in ["user.created", "user.admin_granted", "user.password_reset"] {
            let events = audit_events(&app, action).await;
            assert!(events.iter().any(|e| e.actor.as_deref() == Some(admin.id.as_str())), "{action} by the admin");
        }
    }

    async fn users_are_searched_and_paged(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let mut users = Vec::new();
        for _ in 0..27 {
            users.push(app.create_user().await);
        }

        // Act
        let first = get_page(&browser, "/admin/users").await;
        let second = get_page(&browser, "/admin/users?page=2").await;
        let needle = users[3].email.split('@').next().unwrap().to_uppercase();
        let found = get_page(&browser, &format!("/admin/users?q={needle}")).await;
        let nothing = get_page(&browser, "/admin/users?q=%25_nobody").await;
        let silly = get_page(&browser, "/admin/users?page=-4").await;

        // Assert
        let rows = |p: &Page| p.attrs("tbody tr a", "href").len();
        let total = count_users(&app).await;
        assert!(total > 25);
        assert_eq!(rows(&first), 25);
        assert_eq!(rows(&second) as i64, total - 25);
        assert!(first.html.contains("rel=\"next\""));
        assert_eq!(found.attrs("tbody tr a", "href"), vec![format!("/admin/users/{}", users[3].id)]);
        assert_eq!(rows(&nothing), 0, "LIKE wildcards are literal");
        assert_eq!(silly.status, StatusCode::OK);
    }

    async fn an_admin_lists_grants_by_user_and_client_and_revokes_one(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let kept = app.tokens(&user, &other, "email.read_only").await;

        // Act
        let by_user = get_page(&browser, &format!("/admin/grants?user={}", user.email)).await;
        let by_client = get_page(&browser, &format!("/admin/grants?client={}", client.client_id)).await;
        let unknown = get_page(&browser, "/admin/grants?user=nobody@example.test").await;
        let form = by_client.form(&by_client.attrs("form[action^='/admin/grants/']", "action")[0]);
        let resp = submit(&browser, &form, &[]).await;

        // Assert
        assert_eq!(by_user.attrs("form[action^='/admin/grants/']", "action").len(), 2);
        assert_eq!(by_client.attrs("form[action^='/admin/grants/']", "action").len(), 1);
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        assert!(unknown.text().contains("No user has the email"));
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert!(resp.location.as_ref().unwrap().as_str().contains("client="), "back to the filtered list");
        assert_tokens_dead(&app, &client, &tokens).await;
        assert_tokens_alive(&app, &other, &kept).await;
        let all = get_page(&browser, &format!("/admin/grants?client={}&status=all", client.client_id)).await;
        assert!(all.text().contains("revoked"));
        let events = audit_events(&app, "grant.revoked").await;
        assert_eq!(events[0].actor.as_deref(), Some(admin.id.as_str()));
    }

    async fn an_admin_revokes_a_grant_from_the_users_page(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        let path = format!("/admin/users/{}", user.id);
        let page = get_page(&browser, &path).await;
        let action = page.attrs("form[action^='/admin/grants/']", "action");

        // Act
        let resp = submit(&browser, &page.form(&action[0]), &[]).await;

        // Assert
        assert_eq!(resp.location.as_ref().map(|u| u.path().to_string()), Some(path));
        assert_tokens_dead(&app, &client, &tokens).await;
    }

    async fn an_admin_rotates_the_signing_key_and_both_stay_published(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let before = get_page(&browser, "/admin/keys").await;
        let old_kid = app.jwks().await["keys"][0]["kid"].as_str().unwrap().to_string();

        // Act
        let resp = submit(&browser, &before.form("/admin/keys/rotate"), &[]).await;

        // Assert
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        let kids: Vec<String> = app.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.contains(&old_kid));
        let page = get_page(&browser, "/admin/keys").await;
        assert!(page.text().contains(&old_kid));
        assert_eq!(page.text().matches("EdDSA").count(), 2);
        assert_eq!(audit_events(&app, "key.rotated").await.len(), 1);
    }

    async fn the_audit_log_filters_by_actor_action_and_date(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let wrong = TestUser { password: "wrong password".into(), ..user.clone() };
        app.new_browser().login(&wrong).await;
        app.new_browser().login(&user).await;
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();

        // Act
        let failures = get_page(&browser, "/admin/audit?action=login.failure").await;
        let logins = get_page(&browser, &format!("/admin/audit?action=login&actor={}", user.email)).await;
        let dated = get_page(&browser, &format!("/admin/audit?from={today}&to={today}&action=login")).await;
        let past = get_page(&browser, "/admin/audit?to=2001-01-01").await;
        let bad = get_page(&browser, "/admin/audit?from=yesterday").await;

        // Assert
        let rows = |p: &Page| p.count("table.events tbody tr");
        assert_eq!(failures.status, StatusCode::OK);
        assert_eq!(rows(&failures), 1, "{}", failures.text());
        assert_eq!(rows(&logins), 2, "{}", logins.text());
        assert!(logins.text().contains(&user.email), "actor shown by email");
        assert_eq!(rows(&dated), 3, "{}", dated.text());
        assert!(past.text().contains("No events"));
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.text().contains("is not a date"));
    }

    async fn the_dashboard_counts_users_clients_grants_and_todays_tokens(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;
        app.refresh(&client, tokens.refresh_token(), None).await.tokens();

        // Act
        let page = get_page(&browser, "/admin").await;

        // Assert
        assert_eq!(page.status, StatusCode::OK);
        let text = page.text();
        let users = count_users(&app).await;
        assert!(text.contains(&format!("{users} users")), "{text}");
        assert!(text.contains("1 clients"), "{text}");
        assert!(text.contains("1 active grants"), "{text}");
        assert!(text.contains("2 tokens issued today"), "{text}");
        assert!(text.contains("token.refreshed"), "recent events: {text}");
    }

    #[settings(|s| s.admin_idle_timeout_secs = 600)]
    async fn an_idle_admin_session_times_out(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        assert_eq!(get_page(&browser, "/admin").await.status, StatusCode::OK);
        age_sessions(&app, 300).await;
        assert_eq!(get_page(&browser, "/admin/users").await.status, StatusCode::OK, "active within the timeout");

        // Act
        age_sessions(&app, 601).await;
        let page = get_page(&browser, "/admin/users").await;

        // Assert
        assert_to_login(&page, "/admin/users");
        assert_to_login(&get_page(&browser, "/account").await, "/account");
        assert_eq!(audit_events(&app, "session.timed_out").await.len(), 1);
        let again = signed_in(&app, &admin).await;
        assert_eq!(get_page(&again, "/admin").await.status, StatusCode::OK, "signing in again works");
    }

    async fn an_unknown_id_is_a_404_page_not_an_error(app) {
        // Arrange
        let admin = create_admin(&app).await;
        let browser = signed_in(&app, &admin).await;
        let token = get_page(&browser, "/admin").await.csrf_token();

        // Act + Assert
        for path in ["/admin/users/usr_nope", "/admin/clients/app_nope"] {
            assert_eq!(get_page(&browser, path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        for path in ["/admin/users/usr_nope/status", "/admin/clients/app_nope/rotate", "/admin/grants/nope/revoke"] {
            let page = post(&browser, path, &[("csrf_token", &token), ("status", "enabled")]).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "POST {path}");
        }
    }
}
