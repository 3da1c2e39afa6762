//! The resource API served from Google: each Nylas v2 route becomes one or two calls to
//! Gmail, Calendar or People with the account's Google access token, and the answer comes
//! back in Nylas v2's JSON shapes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::api::guard::nylas_body;
use crate::domain::api::ApiRoute;
use crate::domain::mail::{build_raw, parse_address_header, Outgoing};
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::upstream::google::{Google, GoogleError};

/// An API answer in Nylas shape, or an error to tell.
type Answer = Result<Value, ApiFailure>;

pub struct ApiFailure(StatusCode, String, &'static str);

impl ApiFailure {
    fn bad(msg: impl Into<String>) -> Self {
        ApiFailure(StatusCode::BAD_REQUEST, msg.into(), "invalid_request_error")
    }
}

fn respond(answer: Answer) -> HttpResponse {
    match answer {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(ApiFailure(status, msg, kind)) => HttpResponse::build(status)
            .content_type("application/json")
            .body(nylas_body(&msg, kind)),
    }
}

/// One call session: the account, its token, and the Google endpoints.
struct Session<'a> {
    state: &'a AppState,
    google: &'a Google,
    user_id: &'a str,
}

impl Session<'_> {
    fn gmail(&self, path: &str) -> String {
        format!("{}/gmail/v1/users/me{path}", self.google.settings.api_url)
    }
    fn calendar(&self, path: &str) -> String {
        format!("{}/calendar/v3{path}", self.google.settings.api_url)
    }
    fn people(&self, path: &str) -> String {
        format!("{}/v1{path}", self.google.settings.people_base())
    }

    /// Calls Google; a 401 means the access token went stale: refresh once and retry.
    async fn call(&self, method: Method, url: &str, body: Option<&Value>) -> Answer {
        let mut retried = false;
        loop {
            let token = self
                .google
                .access_token(&self.state.store, &self.state.seal, self.user_id)
                .await
                .map_err(failure)?;
            let (status, json) = self
                .google
                .call(method.clone(), url, token.expose_secret(), body)
                .await
                .map_err(failure)?;
            match status {
                200..=299 => return Ok(json),
                401 if !retried => {
                    retried = true;
                    self.google
                        .expire_access(&self.state.store, self.user_id)
                        .await
                        .map_err(failure)?;
                }
                401 => return Err(failure(GoogleError::NeedsReauth)),
                403 => {
                    return Err(ApiFailure(
                        StatusCode::FORBIDDEN,
                        "Google refused the call: the Google account has not granted this access."
                            .into(),
                        "api_error",
                    ))
                }
                404 => {
                    return Err(ApiFailure(
                        StatusCode::NOT_FOUND,
                        "Not found.".into(),
                        "invalid_request_error",
                    ))
                }
                400..=499 => {
                    return Err(ApiFailure(
                        StatusCode::BAD_REQUEST,
                        google_message(&json),
                        "invalid_request_error",
                    ))
                }
                _ => {
                    return Err(ApiFailure(
                        StatusCode::BAD_GATEWAY,
                        "Google failed to answer.".into(),
                        "api_error",
                    ))
                }
            }
        }
    }
}

fn google_message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .map(|m| format!("Google: {m}"))
        .unwrap_or_else(|| "Google refused the request.".into())
}

fn failure(e: GoogleError) -> ApiFailure {
    match e {
        GoogleError::NeedsReauth => ApiFailure(
            StatusCode::FORBIDDEN,
            "The Google account must be connected again: Google no longer accepts its authorization (re-authentication required).".into(),
            "api_error",
        ),
        GoogleError::Unreachable => ApiFailure(StatusCode::BAD_GATEWAY, "Google could not be reached.".into(), "api_error"),
        other => {
            tracing::error!(error = %other, "Google call failed");
            ApiFailure(StatusCode::BAD_GATEWAY, "The call to Google failed.".into(), "api_error")
        }
    }
}

/// Path segment from the route, restricted to characters Google ids use.
fn id(req: &HttpRequest) -> Result<String, ApiFailure> {
    let raw = req.match_info().get("id").unwrap_or("");
    let ok = !raw.is_empty()
        && raw.len() <= 256
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'));
    ok.then(|| raw.to_string())
        .ok_or_else(|| ApiFailure::bad("Malformed id."))
}

fn json_body(body: &[u8]) -> Result<Value, ApiFailure> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiFailure::bad(format!("Malformed JSON body: {e}.")))?;
    if !v.is_object() {
        return Err(ApiFailure::bad("The body must be a JSON object."));
    }
    Ok(v)
}

fn limit(q: &Params) -> u32 {
    q.get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 50)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn header(msg: &Value, name: &str) -> String {
    msg["payload"]["headers"]
        .as_array()
        .and_then(|hs| {
            hs.iter().find(|h| {
                h["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        })
        .and_then(|h| h["value"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The first text body of a Gmail payload.
fn body_text(payload: &Value) -> Option<String> {
    if let Some(data) = payload["body"]["data"].as_str() {
        let bytes = URL_SAFE_NO_PAD
            .decode(data.trim_end_matches('='))
            .or_else(|_| URL_SAFE.decode(data))
            .ok()?;
        return String::from_utf8(bytes).ok();
    }
    payload["parts"].as_array()?.iter().find_map(body_text)
}

fn labels_of(msg: &Value) -> Vec<String> {
    msg["labelIds"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn nylas_message(account: &str, m: &Value, object: &str) -> Value {
    let labels = labels_of(m);
    json!({
        "id": m["id"], "object": object, "account_id": account, "thread_id": m["threadId"],
        "subject": header(m, "Subject"),
        "from": parse_address_header(&header(m, "From")),
        "to": parse_address_header(&header(m, "To")),
        "cc": parse_address_header(&header(m, "Cc")),
        "bcc": parse_address_header(&header(m, "Bcc")),
        "date": m["internalDate"].as_str().and_then(|d| d.parse::<i64>().ok()).map(|ms| ms / 1000),
        "snippet": m["snippet"],
        "unread": labels.iter().any(|l| l == "UNREAD"),
        "starred": labels.iter().any(|l| l == "STARRED"),
        "labels": labels.iter().map(|l| json!({"id": l, "name": l.to_lowercase(), "display_name": l})).collect::<Vec<_>>(),
        "body": body_text(&m["payload"]),
    })
}

fn nylas_thread(account: &str, t: &Value) -> Value {
    let messages = t["messages"].as_array().cloned().unwrap_or_default();
    let first = messages.first().cloned().unwrap_or(Value::Null);
    json!({
        "id": t["id"], "object": "thread", "account_id": account,
        "subject": header(&first, "Subject"),
        // threads.get has no snippet of its own: the latest message's stands for it.
        "snippet": if t["snippet"].is_null() { messages.last().map(|m| m["snippet"].clone()).unwrap_or(Value::Null) } else { t["snippet"].clone() },
        "message_ids": messages.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(),
        "unread": messages.iter().any(|m| labels_of(m).iter().any(|l| l == "UNREAD")),
    })
}

fn nylas_label(account: &str, l: &Value, object: &str) -> Value {
    json!({"id": l["id"], "object": object, "account_id": account, "name": l["name"].as_str().map(str::to_lowercase), "display_name": l["name"]})
}

fn nylas_calendar(account: &str, c: &Value) -> Value {
    let role = c["accessRole"].as_str().unwrap_or("reader");
    json!({"id": c["id"], "object": "calendar", "account_id": account, "name": c["summary"], "description": c["description"],
           "timezone": c["timeZone"], "read_only": !(role == "owner" || role == "writer")})
}

fn nylas_event(account: &str, calendar_id: &str, e: &Value) -> Value {
    let when = match (
        e["start"]["dateTime"].as_str(),
        e["end"]["dateTime"].as_str(),
    ) {
        (Some(s), Some(t)) => {
            json!({"object": "timespan", "start_time": rfc3339_secs(s), "end_time": rfc3339_secs(t)})
        }
        _ => json!({"object": "date", "date": e["start"]["date"]}),
    };
    json!({"id": e["id"], "object": "event", "account_id": account, "calendar_id": calendar_id, "title": e["summary"],
           "description": e["description"], "location": e["location"], "status": e["status"], "when": when,
           "participants": e["attendees"].as_array().map(|a| a.iter().map(|p| json!({"email": p["email"], "name": p["displayName"], "status": p["responseStatus"]})).collect::<Vec<_>>()).unwrap_or_default()})
}

fn rfc3339_secs(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp())
}

fn google_event(body: &Value) -> Result<Value, ApiFailure> {
    let mut e = json!({});
    if let Some(t) = body["title"].as_str() {
        e["summary"] = json!(t);
    }
    for (nylas, google) in [("description", "description"), ("location", "location")] {
        if let Some(v) = body[nylas].as_str() {
            e[google] = json!(v);
        }
    }
    if body.get("when").is_some() {
        let time = |k: &str| -> Result<String, ApiFailure> {
            let secs = body["when"][k]
                .as_i64()
                .ok_or_else(|| ApiFailure::bad(format!("when.{k} must be a unix timestamp.")))?;
            chrono::DateTime::from_timestamp(secs, 0)
                .map(|d| d.to_rfc3339())
                .ok_or_else(|| ApiFailure::bad(format!("when.{k} is out of range.")))
        };
        e["start"] = json!({"dateTime": time("start_time")?});
        e["end"] = json!({"dateTime": time("end_time")?});
    }
    if let Some(ps) = body["participants"].as_array() {
        e["attendees"] = json!(ps
            .iter()
            .map(|p| json!({"email": p["email"], "displayName": p["name"]}))
            .collect::<Vec<_>>());
    }
    Ok(e)
}

fn contact_id(resource_name: &Value) -> Value {
    json!(resource_name
        .as_str()
        .and_then(|r| r.strip_prefix("people/"))
        .unwrap_or(""))
}

fn nylas_contact(account: &str, p: &Value) -> Value {
    let name = &p["names"][0];
    json!({"id": contact_id(&p["resourceName"]), "object": "contact", "account_id": account,
           "given_name": name["givenName"], "surname": name["familyName"], "display_name": name["displayName"],
           "emails": p["emailAddresses"].as_array().map(|a| a.iter().map(|e| json!({"email": e["value"], "type": e["type"]})).collect::<Vec<_>>()).unwrap_or_default(),
           "phone_numbers": p["phoneNumbers"].as_array().map(|a| a.iter().map(|e| json!({"number": e["value"], "type": e["type"]})).collect::<Vec<_>>()).unwrap_or_default()})
}

fn google_person(body: &Value) -> Value {
    let mut p = json!({});
    if body.get("given_name").is_some() || body.get("surname").is_some() {
        p["names"] = json!([{"givenName": body["given_name"], "familyName": body["surname"]}]);
    }
    if let Some(es) = body["emails"].as_array() {
        p["emailAddresses"] = json!(es
            .iter()
            .map(|e| json!({"value": e["email"], "type": e["type"]}))
            .collect::<Vec<_>>());
    }
    if let Some(ps) = body["phone_numbers"].as_array() {
        p["phoneNumbers"] = json!(ps
            .iter()
            .map(|e| json!({"value": e["number"], "type": e["type"]}))
            .collect::<Vec<_>>());
    }
    p
}

const PERSON_FIELDS: &str = "names,emailAddresses,phoneNumbers";

/// Label changes for `PUT /messages/{id}` and `PUT /threads/{id}`: `unread` / `starred`
/// toggle their system labels; `label_ids` replaces the other labels (`current`).
fn modify_body(body: &Value, current: &[String]) -> Value {
    let mut add: Vec<Value> = Vec::new();
    let mut remove: Vec<Value> = Vec::new();
    for (field, label) in [("unread", "UNREAD"), ("starred", "STARRED")] {
        match body[field].as_bool() {
            Some(true) => add.push(json!(label)),
            Some(false) => remove.push(json!(label)),
            None => {}
        }
    }
    if let Some(ids) = body["label_ids"].as_array() {
        let wanted: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        add.extend(
            wanted
                .iter()
                .filter(|w| !current.iter().any(|c| c == *w))
                .map(|w| json!(w)),
        );
        remove.extend(
            current
                .iter()
                .filter(|c| {
                    !matches!(c.as_str(), "UNREAD" | "STARRED") && !wanted.contains(&c.as_str())
                })
                .map(|c| json!(c)),
        );
    }
    json!({"addLabelIds": add, "removeLabelIds": remove})
}

fn outgoing(body: &Value) -> Result<Outgoing, ApiFailure> {
    serde_json::from_value(body.clone())
        .map_err(|e| ApiFailure::bad(format!("Malformed message: {e}.")))
}

/// Serves one route for a Google-linked account. The scope guard has already passed.
pub async fn serve(
    route: &ApiRoute,
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    google: &Google,
    user_id: &str,
) -> HttpResponse {
    let s = Session {
        state,
        google,
        user_id,
    };
    respond(route_call(&s, route, req, body).await)
}

async fn route_call(s: &Session<'_>, route: &ApiRoute, req: &HttpRequest, body: &[u8]) -> Answer {
    let q = Params::parse(req.query_string().as_bytes());
    let acct = s.user_id;
    let calendar_id = enc(q.get("calendar_id").unwrap_or("primary"));
    match (route.method, route.path) {
        ("GET", "/messages") => {
            let list = format!("/messages?maxResults={}", limit(&q));
            expand(
                s,
                &list,
                "messages",
                |id| format!("/messages/{id}?format=full"),
                |v| nylas_message(acct, v, "message"),
            )
            .await
        }
        ("GET", "/messages/{id}") => {
            let m = s
                .call(
                    Method::GET,
                    &s.gmail(&format!("/messages/{}?format=full", id(req)?)),
                    None,
                )
                .await?;
            Ok(nylas_message(acct, &m, "message"))
        }
        ("PUT", "/messages/{id}") => {
            let id = id(req)?;
            let b = json_body(body)?;
            let current = if b.get("label_ids").is_some() {
                labels_of(
                    &s.call(
                        Method::GET,
                        &s.gmail(&format!("/messages/{id}?format=minimal")),
                        None,
                    )
                    .await?,
                )
            } else {
                Vec::new()
            };
            s.call(
                Method::POST,
                &s.gmail(&format!("/messages/{id}/modify")),
                Some(&modify_body(&b, &current)),
            )
            .await?;
            // modify answers ids and labels only; Nylas answers the whole message.
            let m = s
                .call(
                    Method::GET,
                    &s.gmail(&format!("/messages/{id}?format=full")),
                    None,
                )
                .await?;
            Ok(nylas_message(acct, &m, "message"))
        }
        ("DELETE", "/messages/{id}") => {
            s.call(
                Method::POST,
                &s.gmail(&format!("/messages/{}/trash", id(req)?)),
                None,
            )
            .await?;
            Ok(json!({"id": id(req)?, "object": "message", "deleted": true}))
        }
        ("GET", "/threads") => {
            let list = format!("/threads?maxResults={}", limit(&q));
            expand(
                s,
                &list,
                "threads",
                |id| format!("/threads/{id}?format=metadata"),
                |v| nylas_thread(acct, v),
            )
            .await
        }
        ("GET", "/threads/{id}") => {
            let t = s
                .call(
                    Method::GET,
                    &s.gmail(&format!("/threads/{}?format=metadata", id(req)?)),
                    None,
                )
                .await?;
            Ok(nylas_thread(acct, &t))
        }
        ("PUT", "/threads/{id}") => {
            let id = id(req)?;
            let b = json_body(body)?;
            s.call(
                Method::POST,
                &s.gmail(&format!("/threads/{id}/modify")),
                Some(&modify_body(&b, &[])),
            )
            .await?;
            let t = s
                .call(
                    Method::GET,
                    &s.gmail(&format!("/threads/{id}?format=metadata")),
                    None,
                )
                .await?;
            Ok(nylas_thread(acct, &t))
        }
        ("GET", "/files/{id}") => {
            // A file id is `<message id>:<attachment id>`.
            let fid = id(req)?;
            let (mid, aid) = fid
                .split_once(':')
                .ok_or_else(|| ApiFailure::bad("A file id is <message id>:<attachment id>."))?;
            let a = s
                .call(
                    Method::GET,
                    &s.gmail(&format!("/messages/{}/attachments/{}", enc(mid), enc(aid))),
                    None,
                )
                .await?;
            Ok(
                json!({"id": fid, "object": "file", "account_id": acct, "message_ids": [mid], "size": a["size"], "data": a["data"]}),
            )
        }
        ("POST", "/send") => {
            let raw = build_raw(&outgoing(&json_body(body)?)?, true).map_err(ApiFailure::bad)?;
            let sent = s
                .call(
                    Method::POST,
                    &s.gmail("/messages/send"),
                    Some(&json!({"raw": raw})),
                )
                .await?;
            Ok(
                json!({"id": sent["id"], "object": "message", "account_id": acct, "thread_id": sent["threadId"]}),
            )
        }
        ("GET", "/drafts") => {
            let list = format!("/drafts?maxResults={}", limit(&q));
            expand(
                s,
                &list,
                "drafts",
                |id| format!("/drafts/{id}?format=full"),
                |v| draft(acct, v),
            )
            .await
        }
        ("GET", "/drafts/{id}") => Ok(draft(
            acct,
            &s.call(
                Method::GET,
                &s.gmail(&format!("/drafts/{}?format=full", id(req)?)),
                None,
            )
            .await?,
        )),
        ("POST", "/drafts") => {
            let raw = build_raw(&outgoing(&json_body(body)?)?, false).map_err(ApiFailure::bad)?;
            let created = s
                .call(
                    Method::POST,
                    &s.gmail("/drafts"),
                    Some(&json!({"message": {"raw": raw}})),
                )
                .await?;
            // drafts.create answers ids only; read the draft back for the Nylas shape.
            let did = created["id"].as_str().map(enc).unwrap_or_default();
            Ok(draft(
                acct,
                &s.call(
                    Method::GET,
                    &s.gmail(&format!("/drafts/{did}?format=full")),
                    None,
                )
                .await?,
            ))
        }
        ("PUT", "/drafts/{id}") => {
            let raw = build_raw(&outgoing(&json_body(body)?)?, false).map_err(ApiFailure::bad)?;
            let id = id(req)?;
            s.call(
                Method::PUT,
                &s.gmail(&format!("/drafts/{id}")),
                Some(&json!({"id": id, "message": {"raw": raw}})),
            )
            .await?;
            Ok(draft(
                acct,
                &s.call(
                    Method::GET,
                    &s.gmail(&format!("/drafts/{id}?format=full")),
                    None,
                )
                .await?,
            ))
        }
        ("DELETE", "/drafts/{id}") => {
            s.call(
                Method::DELETE,
                &s.gmail(&format!("/drafts/{}", id(req)?)),
                None,
            )
            .await?;
            Ok(json!({"id": id(req)?, "object": "draft", "deleted": true}))
        }
        ("GET", "/folders") | ("GET", "/labels") => {
            let object = if route.path == "/folders" {
                "folder"
            } else {
                "label"
            };
            let list = s.call(Method::GET, &s.gmail("/labels"), None).await?;
            Ok(map_items(&list, "labels", |l| nylas_label(acct, l, object)))
        }
        ("POST", "/folders") | ("POST", "/labels") => {
            let object = if route.path == "/folders" {
                "folder"
            } else {
                "label"
            };
            let b = json_body(body)?;
            let name = b["display_name"]
                .as_str()
                .or(b["name"].as_str())
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| ApiFailure::bad("display_name is required."))?;
            let l = s
                .call(
                    Method::POST,
                    &s.gmail("/labels"),
                    Some(&json!({"name": name})),
                )
                .await?;
            Ok(nylas_label(acct, &l, object))
        }
        ("PUT", "/folders/{id}") | ("PUT", "/labels/{id}") => {
            let object = if route.path.starts_with("/folders") {
                "folder"
            } else {
                "label"
            };
            let b = json_body(body)?;
            let name = b["display_name"]
                .as_str()
                .or(b["name"].as_str())
                .ok_or_else(|| ApiFailure::bad("display_name is required."))?;
            let l = s
                .call(
                    Method::PATCH,
                    &s.gmail(&format!("/labels/{}", id(req)?)),
                    Some(&json!({"name": name})),
                )
                .await?;
            Ok(nylas_label(acct, &l, object))
        }
        ("DELETE", "/folders/{id}") | ("DELETE", "/labels/{id}") => {
            s.call(
                Method::DELETE,
                &s.gmail(&format!("/labels/{}", id(req)?)),
                None,
            )
            .await?;
            Ok(json!({"id": id(req)?, "deleted": true}))
        }
        ("GET", "/calendars") => {
            let list = s
                .call(Method::GET, &s.calendar("/users/me/calendarList"), None)
                .await?;
            Ok(map_items(&list, "items", |c| nylas_calendar(acct, c)))
        }
        ("GET", "/events") => {
            let list = s
                .call(
                    Method::GET,
                    &s.calendar(&format!(
                        "/calendars/{calendar_id}/events?maxResults={}",
                        limit(&q)
                    )),
                    None,
                )
                .await?;
            let cal = q.get("calendar_id").unwrap_or("primary");
            Ok(map_items(&list, "items", |e| nylas_event(acct, cal, e)))
        }
        ("GET", "/events/{id}") => {
            let e = s
                .call(
                    Method::GET,
                    &s.calendar(&format!("/calendars/{calendar_id}/events/{}", id(req)?)),
                    None,
                )
                .await?;
            Ok(nylas_event(
                acct,
                q.get("calendar_id").unwrap_or("primary"),
                &e,
            ))
        }
        ("POST", "/events") => {
            let b = json_body(body)?;
            let cal = b["calendar_id"].as_str().unwrap_or("primary").to_string();
            if b["title"].as_str().is_none() || b.get("when").is_none() {
                return Err(ApiFailure::bad("title and when are required."));
            }
            let e = s
                .call(
                    Method::POST,
                    &s.calendar(&format!("/calendars/{}/events", enc(&cal))),
                    Some(&google_event(&b)?),
                )
                .await?;
            Ok(nylas_event(acct, &cal, &e))
        }
        ("PUT", "/events/{id}") => {
            let b = json_body(body)?;
            let cal = b["calendar_id"]
                .as_str()
                .or(q.get("calendar_id"))
                .unwrap_or("primary")
                .to_string();
            let e = s
                .call(
                    Method::PATCH,
                    &s.calendar(&format!("/calendars/{}/events/{}", enc(&cal), id(req)?)),
                    Some(&google_event(&b)?),
                )
                .await?;
            Ok(nylas_event(acct, &cal, &e))
        }
        ("DELETE", "/events/{id}") => {
            s.call(
                Method::DELETE,
                &s.calendar(&format!("/calendars/{calendar_id}/events/{}", id(req)?)),
                None,
            )
            .await?;
            Ok(json!({"id": id(req)?, "object": "event", "deleted": true}))
        }
        ("GET", "/contacts") => {
            let list = s
                .call(
                    Method::GET,
                    &s.people(&format!(
                        "/people/me/connections?personFields={PERSON_FIELDS}&pageSize={}",
                        limit(&q)
                    )),
                    None,
                )
                .await?;
            Ok(map_items(&list, "connections", |p| nylas_contact(acct, p)))
        }
        ("GET", "/contacts/{id}") => {
            let p = s
                .call(
                    Method::GET,
                    &s.people(&format!(
                        "/people/{}?personFields={PERSON_FIELDS}",
                        id(req)?
                    )),
                    None,
                )
                .await?;
            Ok(nylas_contact(acct, &p))
        }
        ("POST", "/contacts") => {
            let p = s
                .call(
                    Method::POST,
                    &s.people("/people:createContact"),
                    Some(&google_person(&json_body(body)?)),
                )
                .await?;
            Ok(nylas_contact(acct, &p))
        }
        ("PUT", "/contacts/{id}") => {
            let id = id(req)?;
            // People needs the current etag to update.
            let current = s
                .call(
                    Method::GET,
                    &s.people(&format!("/people/{id}?personFields={PERSON_FIELDS}")),
                    None,
                )
                .await?;
            let b = json_body(body)?;
            let mut person = google_person(&b);
            // A name part left out keeps its current value.
            if person.get("names").is_some() {
                for (nylas, google) in [("given_name", "givenName"), ("surname", "familyName")] {
                    if b.get(nylas).is_none() {
                        person["names"][0][google] = current["names"][0][google].clone();
                    }
                }
            }
            // Only the fields the request sent are replaced; the rest stay as they are.
            let fields: Vec<&str> = ["names", "emailAddresses", "phoneNumbers"]
                .into_iter()
                .filter(|f| person.get(*f).is_some())
                .collect();
            if fields.is_empty() {
                return Ok(nylas_contact(acct, &current));
            }
            person["etag"] = current["etag"].clone();
            let p = s
                .call(
                    Method::PATCH,
                    &s.people(&format!(
                        "/people/{id}:updateContact?updatePersonFields={}",
                        fields.join(",")
                    )),
                    Some(&person),
                )
                .await?;
            Ok(nylas_contact(acct, &p))
        }
        ("DELETE", "/contacts/{id}") => {
            s.call(
                Method::DELETE,
                &s.people(&format!("/people/{}:deleteContact", id(req)?)),
                None,
            )
            .await?;
            Ok(json!({"id": id(req)?, "object": "contact", "deleted": true}))
        }
        _ => Err(ApiFailure(
            StatusCode::NOT_FOUND,
            "This operation is not served by the Google provider.".into(),
            "invalid_request_error",
        )),
    }
}

/// `v[key]`, an array of Google objects, converted one by one.
fn map_items(v: &Value, key: &str, f: impl Fn(&Value) -> Value) -> Value {
    json!(v[key]
        .as_array()
        .map(|a| a.iter().map(f).collect::<Vec<_>>())
        .unwrap_or_default())
}

/// A Gmail list answers ids only: read each item in full and convert it.
async fn expand(
    s: &Session<'_>,
    list_path: &str,
    key: &str,
    item_path: impl Fn(&str) -> String,
    convert: impl Fn(&Value) -> Value,
) -> Answer {
    let list = s.call(Method::GET, &s.gmail(list_path), None).await?;
    let mut out = Vec::new();
    for item in list[key].as_array().cloned().unwrap_or_default() {
        let id = item["id"].as_str().map(enc).unwrap_or_default();
        let full = s.call(Method::GET, &s.gmail(&item_path(&id)), None).await?;
        out.push(convert(&full));
    }
    Ok(json!(out))
}

fn draft(account: &str, d: &Value) -> Value {
    let mut v = nylas_message(account, &d["message"], "draft");
    v["id"] = d["id"].clone();
    v
}
