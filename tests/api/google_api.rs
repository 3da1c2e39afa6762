//! The Google-backed resource API: each operation's happy path through the fake Google (the
//! Google call it makes, and the Nylas v2 shape it answers), each route's scope refusal before
//! any Google call, and the fake's own scope check proving that the Google token Scopegate
//! uses carries no more access than was granted.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use scopegate::domain::api::API_ROUTES;
use serde_json::{json, Value};

use crate::fake_google::*;
use crate::google_helpers::*;
use crate::helpers::*;

/// A Google-linked account whose token holds every resource scope.
async fn full_account(app: &TestApp, google: &FakeGoogle) -> NativeAccount {
    native_account(app, google, ALL_RESOURCE_SCOPES).await
}

#[track_caller]
fn ok(resp: &JsonResponse) -> &Value {
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    &resp.body
}

/// The Google calls made since the last `clear_api_calls`, as `METHOD path`.
fn calls(google: &FakeGoogle) -> Vec<String> {
    google
        .resource_calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn emails(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["email"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const GMAIL: &str = "/gmail/v1/users/me";

google_e2e! {
    async fn messages_are_listed_from_gmail_in_nylas_shape(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        google.clear_api_calls();

        // Act
        let resp = api_call(&app, "GET", "/messages", &acct.access_token, None).await;

        // Assert
        let list = ok(&resp).as_array().expect("a list of messages").clone();
        assert_eq!(list.len(), 2, "{}", resp.text);
        let m1 = list.iter().find(|m| m["id"] == seed::MESSAGE_1).expect("the seeded message");
        assert_eq!(m1["object"], "message");
        assert_eq!(m1["thread_id"], seed::THREAD_ID);
        assert_eq!(m1["account_id"], acct.account_id());
        assert_eq!(m1["subject"], seed::SUBJECT);
        assert_eq!(m1["from"], json!([{"name": seed::FROM_NAME, "email": seed::FROM_EMAIL}]));
        assert_eq!(emails(&m1["to"]), vec![google.user().email]);
        assert_eq!(m1["date"], 1_735_725_600);
        assert_eq!(m1["unread"], true);
        assert!(m1["snippet"].as_str().is_some_and(|s| s.contains("lunch")), "{m1}");
        let m2 = list.iter().find(|m| m["id"] == seed::MESSAGE_2).expect("the reply");
        assert_eq!(m2["unread"], false);
        let seen = calls(&google);
        assert_eq!(seen[0], format!("GET {GMAIL}/messages"));
        assert!(seen.contains(&format!("GET {GMAIL}/messages/{}", seed::MESSAGE_1)), "{seen:?}");
    }

    async fn a_message_is_read_with_its_body(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;

        // Act
        let multipart = api_call(&app, "GET", &format!("/messages/{}", seed::MESSAGE_1), &acct.access_token, None).await;
        let plain = api_call(&app, "GET", &format!("/messages/{}", seed::MESSAGE_2), &acct.access_token, None).await;
        let missing = api_call(&app, "GET", "/messages/18c0ffee0000dead", &acct.access_token, None).await;

        // Assert
        let m1 = ok(&multipart);
        assert_eq!(m1["id"], seed::MESSAGE_1);
        assert!(m1["body"].as_str().is_some_and(|b| b.contains("still on for lunch")), "the text part: {m1}");
        let m2 = ok(&plain);
        assert_eq!(m2["subject"], format!("Re: {}", seed::SUBJECT));
        assert!(m2["body"].as_str().is_some_and(|b| b.contains("noon")), "{m2}");
        missing.assert_nylas_error(&[404], &["invalid_request_error", "api_error"]);
    }

    async fn marking_a_message_read_removes_gmails_unread_label(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        google.clear_api_calls();

        // Act
        let resp = api_call(&app, "PUT", &format!("/messages/{}", seed::MESSAGE_1), &acct.access_token,
            Some(json!({"unread": false, "starred": true}))).await;

        // Assert
        let m = ok(&resp);
        assert_eq!(m["id"], seed::MESSAGE_1);
        assert_eq!(m["unread"], false);
        assert_eq!(m["starred"], true);
        let labels = google.message(seed::MESSAGE_1).unwrap().label_ids;
        assert!(!labels.contains(&"UNREAD".to_string()) && labels.contains(&"STARRED".to_string()), "{labels:?}");
        assert!(calls(&google).contains(&format!("POST {GMAIL}/messages/{}/modify", seed::MESSAGE_1)));
        assert_eq!(m["subject"], seed::SUBJECT, "the answer is the whole message, as Nylas answers: {m}");
    }

    async fn deleting_a_message_moves_it_to_gmails_trash(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        google.clear_api_calls();

        // Act
        let resp = api_call(&app, "DELETE", &format!("/messages/{}", seed::MESSAGE_2), &acct.access_token, None).await;

        // Assert
        ok(&resp);
        assert!(google.message(seed::MESSAGE_2).unwrap().label_ids.contains(&"TRASH".to_string()));
        assert_eq!(calls(&google), vec![format!("POST {GMAIL}/messages/{}/trash", seed::MESSAGE_2)],
            "trash (gmail.modify), never a permanent delete (which needs full mail access)");
        let listed = api_call(&app, "GET", "/messages", &acct.access_token, None).await;
        assert!(ok(&listed).as_array().unwrap().iter().all(|m| m["id"] != seed::MESSAGE_2));
    }

    async fn threads_are_listed_and_read(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;

        // Act
        let list = api_call(&app, "GET", "/threads", &acct.access_token, None).await;
        let one = api_call(&app, "GET", &format!("/threads/{}", seed::THREAD_ID), &acct.access_token, None).await;

        // Assert
        let threads = ok(&list).as_array().expect("a list").clone();
        assert_eq!(threads.len(), 1, "{}", list.text);
        let t = ok(&one);
        for thread in [&threads[0], t] {
            assert_eq!(thread["object"], "thread");
            assert_eq!(thread["id"], seed::THREAD_ID);
            assert_eq!(thread["subject"], seed::SUBJECT);
            assert_eq!(thread["message_ids"], json!([seed::MESSAGE_1, seed::MESSAGE_2]));
            assert_eq!(thread["unread"], true);
        }
        for thread in [&threads[0], t] {
            assert!(thread["snippet"].as_str().is_some_and(|s| !s.is_empty()), "a thread has a snippet: {thread}");
        }
    }

    async fn marking_a_thread_read_modifies_every_message(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;

        // Act
        let resp = api_call(&app, "PUT", &format!("/threads/{}", seed::THREAD_ID), &acct.access_token,
            Some(json!({"unread": false}))).await;

        // Assert
        let t = ok(&resp);
        assert_eq!(t["unread"], false);
        assert!(!google.message(seed::MESSAGE_1).unwrap().label_ids.contains(&"UNREAD".to_string()));
        assert!(calls(&google).contains(&format!("POST {GMAIL}/threads/{}/modify", seed::THREAD_ID)));
    }

    async fn an_attachment_is_served_as_a_file(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        let file_id = format!("{}:{}", seed::MESSAGE_1, seed::ATTACHMENT_ID);

        // Act
        let resp = api_call(&app, "GET", &format!("/files/{file_id}"), &acct.access_token, None).await;
        let malformed = api_call(&app, "GET", "/files/nocolon", &acct.access_token, None).await;

        // Assert
        let f = ok(&resp);
        assert_eq!(f["object"], "file");
        assert_eq!(f["id"], file_id.as_str());
        assert_eq!(f["size"], seed::ATTACHMENT_DATA.len());
        let data = b64url_decode(f["data"].as_str().expect("data")).expect("base64url");
        assert_eq!(data, seed::ATTACHMENT_DATA);
        malformed.assert_nylas_error(&[400, 404], &["invalid_request_error"]);
    }

    async fn sending_builds_a_mime_message_for_gmail(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        google.clear_api_calls();

        // Act
        let resp = api_call(&app, "POST", "/send", &acct.access_token, Some(json!({
            "to": [{"name": "Bob Babbage", "email": "bob@example.com"}],
            "cc": [{"email": "carol@example.com"}],
            "subject": "Déjeuner jeudi ?",
            "body": "See you at noon.\nAda",
        }))).await;

        // Assert
        let sent_obj = ok(&resp);
        assert_eq!(sent_obj["object"], "message");
        let sent = google.sent_messages();
        assert_eq!(sent.len(), 1, "one message reached Gmail");
        let m = &sent[0];
        assert_eq!(sent_obj["id"], m.id.as_str());
        assert!(m.header("To").is_some_and(|t| t.contains("bob@example.com")), "{}", m.mime);
        assert!(m.header("Cc").is_some_and(|t| t.contains("carol@example.com")), "{}", m.mime);
        assert_eq!(m.header("Subject"), Some("Déjeuner jeudi ?"));
        assert_eq!(m.body.replace("\r\n", "\n").trim_end(), "See you at noon.\nAda");
        assert_eq!(calls(&google), vec![format!("POST {GMAIL}/messages/send")]);
    }

    async fn sending_without_a_recipient_is_a_400_and_reaches_no_one(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        google.clear_api_calls();

        // Act
        let none = api_call(&app, "POST", "/send", &acct.access_token, Some(json!({"subject": "x", "body": "y"}))).await;
        let bad = api_call(&app, "POST", "/send", &acct.access_token,
            Some(json!({"to": [{"email": "bob@example.com>\r\nBcc: eve@example.com"}], "body": "y"}))).await;

        // Assert
        none.assert_nylas_error(&[400], &["invalid_request_error"]);
        bad.assert_nylas_error(&[400], &["invalid_request_error"]);
        assert!(google.sent_messages().is_empty());
        assert!(calls(&google).is_empty());
    }

    async fn drafts_are_created_listed_read_updated_and_deleted(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        let t = &acct.access_token;

        // Act
        let created = api_call(&app, "POST", "/drafts", t, Some(json!({
            "to": [{"email": "bob@example.com"}], "subject": "Plan", "body": "First draft"}))).await;
        let id = ok(&created)["id"].as_str().expect("a draft id").to_string();
        let listed = api_call(&app, "GET", "/drafts", t, None).await;
        let read = api_call(&app, "GET", &format!("/drafts/{id}"), t, None).await;
        let updated = api_call(&app, "PUT", &format!("/drafts/{id}"), t, Some(json!({
            "to": [{"email": "bob@example.com"}], "subject": "Plan v2", "body": "Second draft"}))).await;
        let after_update = google.with(|s| s.drafts.iter().find(|d| d.id == id).map(|d| d.message.clone()));
        let deleted = api_call(&app, "DELETE", &format!("/drafts/{id}"), t, None).await;

        // Assert
        let c = ok(&created);
        assert_eq!(c["object"], "draft");
        assert!(ok(&listed).as_array().unwrap().iter().any(|d| d["id"] == id.as_str()), "{}", listed.text);
        let r = ok(&read);
        assert_eq!(r["subject"], "Plan");
        assert!(r["body"].as_str().is_some_and(|b| b.contains("First draft")), "{r}");
        assert_eq!(emails(&r["to"]), vec!["bob@example.com"]);
        assert_eq!(ok(&updated)["id"], id.as_str());
        let m = after_update.expect("the draft still exists after the update");
        assert_eq!((m.subject.as_str(), m.body.trim_end()), ("Plan v2", "Second draft"));
        ok(&deleted);
        assert!(google.with(|s| s.drafts.is_empty()), "the draft is gone at Gmail");
        assert!(google.sent_messages().is_empty(), "drafts are never sent");
        assert_eq!(c["subject"], "Plan", "the created draft, as Nylas answers it: {c}");
        assert_eq!(ok(&updated)["subject"], "Plan v2", "the updated draft: {}", updated.text);
    }

    async fn labels_and_folders_are_listed_created_renamed_and_deleted(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        let t = &acct.access_token;

        // Act
        let labels = api_call(&app, "GET", "/labels", t, None).await;
        let folders = api_call(&app, "GET", "/folders", t, None).await;
        let created = api_call(&app, "POST", "/labels", t, Some(json!({"display_name": "Travel"}))).await;
        let id = ok(&created)["id"].as_str().expect("a label id").to_string();
        let renamed = api_call(&app, "PUT", &format!("/labels/{id}"), t, Some(json!({"display_name": "Trips"}))).await;
        let name_at_google = google.with(|s| s.labels.iter().find(|l| l["id"] == id.as_str()).map(|l| l["name"].clone()));
        let deleted = api_call(&app, "DELETE", &format!("/labels/{id}"), t, None).await;

        // Assert
        let list = ok(&labels).as_array().unwrap().clone();
        let receipts = list.iter().find(|l| l["id"] == seed::USER_LABEL_ID).expect("the user label");
        assert_eq!(receipts["object"], "label");
        assert_eq!(receipts["display_name"], seed::USER_LABEL_NAME);
        assert!(list.iter().any(|l| l["id"] == "INBOX"));
        assert!(ok(&folders).as_array().unwrap().iter().all(|f| f["object"] == "folder"));
        assert_eq!(ok(&created)["display_name"], "Travel");
        assert_eq!(ok(&renamed)["display_name"], "Trips");
        assert_eq!(name_at_google, Some(json!("Trips")));
        ok(&deleted);
        assert!(google.with(|s| s.labels.iter().all(|l| l["id"] != id.as_str())));
    }

    async fn calendars_are_listed(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;

        // Act
        let resp = api_call(&app, "GET", "/calendars", &acct.access_token, None).await;

        // Assert
        let list = ok(&resp).as_array().unwrap().clone();
        assert_eq!(list.len(), 2, "{}", resp.text);
        let primary = list.iter().find(|c| c["id"] == google.user().email.as_str()).expect("the primary calendar");
        assert_eq!(primary["object"], "calendar");
        assert_eq!(primary["read_only"], false);
        assert!(list.iter().any(|c| c["id"] == seed::CALENDAR_ID_SECONDARY && c["name"] == "Team"));
    }

    async fn events_are_listed_read_created_updated_and_deleted(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        let t = &acct.access_token;
        let team = seed::CALENDAR_ID_SECONDARY;

        // Act
        let listed = api_call(&app, "GET", "/events", t, None).await;
        let read = api_call(&app, "GET", &format!("/events/{}", seed::EVENT_ID), t, None).await;
        let created = api_call(&app, "POST", "/events", t, Some(json!({
            "calendar_id": team, "title": "Offsite", "location": "Bletchley",
            "when": {"start_time": 1_900_000_000_i64, "end_time": 1_900_003_600_i64},
            "participants": [{"email": "bob@example.com", "name": "Bob"}],
        }))).await;
        let id = ok(&created)["id"].as_str().expect("an event id").to_string();
        let stored = google.with(|s| s.events.iter().find(|(_, e)| e["id"] == id.as_str()).cloned());
        let updated = api_call(&app, "PUT", &format!("/events/{id}?calendar_id={}", percent(team)), t,
            Some(json!({"title": "Offsite (moved)"}))).await;
        let after = google.with(|s| s.events.iter().find(|(_, e)| e["id"] == id.as_str()).map(|(_, e)| e.clone()));
        let deleted = api_call(&app, "DELETE", &format!("/events/{id}?calendar_id={}", percent(team)), t, None).await;

        // Assert
        let events = ok(&listed).as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "{}", listed.text);
        let e = ok(&read);
        for ev in [&events[0], e] {
            assert_eq!(ev["object"], "event");
            assert_eq!(ev["id"], seed::EVENT_ID);
            assert_eq!(ev["title"], seed::EVENT_TITLE);
            assert_eq!(ev["when"]["start_time"], 1_903_860_000_i64);
            assert_eq!(ev["when"]["end_time"], 1_903_863_600_i64);
            assert_eq!(emails(&ev["participants"]), vec![seed::FROM_EMAIL]);
        }
        let (calendar, event) = stored.expect("the event was created at Google");
        assert_eq!(calendar, team, "in the calendar asked for");
        assert_eq!(event["summary"], "Offsite");
        assert_eq!(event["location"], "Bletchley");
        assert_eq!(rfc3339_secs(&event["start"]["dateTime"]), Some(1_900_000_000));
        assert_eq!(rfc3339_secs(&event["end"]["dateTime"]), Some(1_900_003_600));
        assert_eq!(ok(&created)["title"], "Offsite");
        assert_eq!(ok(&updated)["title"], "Offsite (moved)");
        let after = after.expect("still there after the update");
        assert_eq!(after["summary"], "Offsite (moved)");
        assert_eq!(after["location"], "Bletchley", "a partial update keeps the other fields");
        ok(&deleted);
        assert!(google.with(|s| s.events.iter().all(|(_, e)| e["id"] != id.as_str())));
    }

    async fn contacts_are_listed_read_created_updated_and_deleted(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;
        let t = &acct.access_token;

        // Act
        let listed = api_call(&app, "GET", "/contacts", t, None).await;
        let read = api_call(&app, "GET", &format!("/contacts/{}", seed::CONTACT_ID), t, None).await;
        let created = api_call(&app, "POST", "/contacts", t, Some(json!({
            "given_name": "Alan", "surname": "Turing",
            "emails": [{"email": "alan@example.com", "type": "work"}]}))).await;
        let id = ok(&created)["id"].as_str().expect("a contact id").to_string();
        let updated = api_call(&app, "PUT", &format!("/contacts/{id}"), t, Some(json!({
            "given_name": "Alan M.", "surname": "Turing",
            "emails": [{"email": "alan@example.com", "type": "work"}]}))).await;
        let deleted = api_call(&app, "DELETE", &format!("/contacts/{id}"), t, None).await;

        // Assert
        let list = ok(&listed).as_array().unwrap().clone();
        assert_eq!(list.len(), 1);
        let c = ok(&read);
        for contact in [&list[0], c] {
            assert_eq!(contact["object"], "contact");
            assert_eq!(contact["id"], seed::CONTACT_ID);
            assert_eq!(contact["given_name"], "Grace");
            assert_eq!(contact["surname"], "Hopper");
            assert_eq!(emails(&contact["emails"]), vec![seed::CONTACT_EMAIL]);
        }
        assert_eq!(ok(&created)["given_name"], "Alan");
        assert_eq!(ok(&updated)["given_name"], "Alan M.");
        ok(&deleted);
        let left: Vec<Value> = google.with(|s| s.contacts.clone());
        assert_eq!(left.len(), 1, "only the seeded contact is left");
    }

    async fn updating_a_contacts_name_keeps_its_email_addresses_and_phones(app, google) {
        // Arrange
        let acct = full_account(&app, &google).await;

        // Act
        let resp = api_call(&app, "PUT", &format!("/contacts/{}", seed::CONTACT_ID), &acct.access_token,
            Some(json!({"given_name": "Amazing Grace"}))).await;

        // Assert
        let c = ok(&resp);
        assert_eq!(c["given_name"], "Amazing Grace");
        let person = google.with(|s| s.contacts[0].clone());
        assert_eq!(person["emailAddresses"][0]["value"], seed::CONTACT_EMAIL,
            "a PUT with only a name must not erase the contact's emails at Google: {person}");
        assert_eq!(person["phoneNumbers"][0]["value"], "+1 555 0100", "nor its phones: {person}");
    }

    async fn every_route_refuses_a_token_without_its_scopes_before_calling_google(app, google) {
        // Arrange: for each distinct "any of" set, a token with every other resource scope.
        let client = app.confidential_client().await;
        let mut tokens: BTreeMap<Vec<&str>, (Vec<&str>, String)> = BTreeMap::new();
        for route in API_ROUTES.iter().filter(|r| !r.operation.any_of_names().is_empty()) {
            let any_of: Vec<&str> = route.operation.any_of_names().to_vec();
            if tokens.contains_key(&any_of) {
                continue;
            }
            let others: Vec<&str> = ALL_RESOURCE_SCOPES.iter().copied().filter(|s| !any_of.contains(s)).collect();
            let token = another_token(&app, &google, &client, &others).await;
            tokens.insert(any_of, (others, token));
        }
        google.clear_api_calls();

        for route in API_ROUTES.iter().filter(|r| !r.operation.any_of_names().is_empty()) {
            let (others, token) = &tokens[&route.operation.any_of_names().to_vec()];
            let path = route.path.replace("{id}", seed::MESSAGE_1);
            let body = matches!(route.method, "POST" | "PUT").then(|| json!({
                "to": [{"email": "bob@example.com"}], "subject": "x", "body": "y", "display_name": "x",
                "title": "x", "when": {"start_time": 1_900_000_000_i64, "end_time": 1_900_003_600_i64},
            }));

            // Act
            let resp = api_call(&app, route.method, &path, token, body).await;

            // Assert
            assert_scope_refusal(&resp, others, route.operation.any_of_names());
        }
        assert_eq!(calls(&google), Vec::<String>::new(), "no refused call reached Google");
        assert!(google.sent_messages().is_empty());
    }

    async fn a_read_only_grant_reaches_google_with_a_read_only_token(app, google) {
        // Arrange
        let client = app.confidential_client().await;
        let acct = native_connect(&app, &google, &client, &["email.read_only"], &[GMAIL_READONLY]).await;
        let t = &acct.access_token;
        google.clear_api_calls();

        // Act
        let reads = [
            api_call(&app, "GET", "/messages", t, None).await,
            api_call(&app, "GET", &format!("/messages/{}", seed::MESSAGE_1), t, None).await,
            api_call(&app, "GET", "/threads", t, None).await,
            api_call(&app, "GET", &format!("/files/{}:{}", seed::MESSAGE_1, seed::ATTACHMENT_ID), t, None).await,
            api_call(&app, "GET", "/drafts", t, None).await,
            api_call(&app, "GET", "/labels", t, None).await,
        ];
        let write = api_call(&app, "PUT", &format!("/messages/{}", seed::MESSAGE_1), t, Some(json!({"unread": false}))).await;

        // Assert
        for r in &reads {
            ok(r);
        }
        assert_scope_refusal(&write, &["email.read_only"], &["email.modify"]);
        let expected: BTreeSet<String> = [OPENID, USERINFO_EMAIL, USERINFO_PROFILE, GMAIL_READONLY]
            .iter().map(|s| s.to_string()).collect();
        let seen = google.resource_calls();
        assert!(seen.len() >= reads.len());
        for call in seen {
            assert_eq!(call.status, 200, "{call:?}");
            assert_eq!(call.token_scopes, expected, "{} {}", call.method, call.path);
            assert_ne!(call.method, "POST", "no write reached Google: {}", call.path);
        }
    }

    async fn a_permission_removed_at_google_is_a_clear_403_not_a_server_error(app, google) {
        // Arrange
        let acct = native_account(&app, &google, &["calendar"]).await;
        let mut narrower: Vec<&str> = IDENTITY.to_vec();
        narrower.push(CALENDAR_READONLY);
        google.set_refresh_token_scopes(&acct.google_refresh_token, &narrower);
        google.expire_access_tokens();

        // Act
        let read = api_call(&app, "GET", "/events", &acct.access_token, None).await;
        let write = api_call(&app, "POST", "/events", &acct.access_token, Some(json!({
            "title": "x", "when": {"start_time": 1_900_000_000_i64, "end_time": 1_900_003_600_i64}}))).await;

        // Assert
        ok(&read);
        write.assert_nylas_error(&[403], &["api_error"]);
        assert!(google.with(|s| s.events.len()) == 1, "nothing was created");
    }

    async fn a_password_account_without_google_has_no_mail(app, _google) {
        // Arrange
        let user = app.create_user().await;
        let client = app.confidential_client().await;
        let tokens = app.tokens(&user, &client, "email.read_only").await;

        // Act
        let resp = api_call(&app, "GET", "/messages", &tokens.access_token, None).await;

        // Assert
        resp.assert_nylas_error(&[404], &["invalid_request_error"]);
    }
}

fn percent(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn rfc3339_secs(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.timestamp())
}

#[test]
fn the_refusal_message_lists_scopes_in_catalogue_order() {
    assert_eq!(
        refusal_message(&["email.send", "email.read_only"], &["email.modify"]),
        "You do not have access to the required scopes. You provided a token which has the following scopes ['email.read_only', 'email.send']. You would need a token with at least one of the following scopes: ['email.modify']"
    );
}
