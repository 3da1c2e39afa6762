//! Admin: OAuth clients — list, search, register, edit, rotate the secret, delete.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::crypto::secret::OpaqueToken;
use crate::domain::client::{parse_client_name, RedirectUri};
use crate::domain::scope::{ScopeSet, CATALOGUE};
use crate::domain::token::CLIENT_SECRET_PREFIX;
use crate::error::AppError;
use crate::ops::{self, ClientSpec};
use crate::startup::AppState;
use crate::store::clients::{self as client_store, ClientRow, ClientUpdate};
use crate::store::{audit, grants as grant_store};
use crate::web::admin::{
    admin_or_return, back_to, done, input_status, not_found, require, require_post, Admin, Chrome,
};
use crate::web::ui::{self, FormData, Paging};

const PER_PAGE: i64 = 25;

pub struct ClientListItem {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub redirect: String,
    pub scopes: usize,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    clients: Vec<ClientListItem>,
    paging: Paging,
}

/// `GET /admin/clients?q=&page=`
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let ui::ListQuery { q, page } = ui::ListQuery::parse(&req);
    let needle = (!q.is_empty()).then(|| q.clone());
    let (rows, total) = state
        .store
        .run(move |conn| {
            client_store::search(
                conn,
                needle.as_deref(),
                PER_PAGE,
                Paging::offset(page, PER_PAGE),
            )
            .map_err(AppError::from)
        })
        .await?;
    let base = format!("/admin/clients?{}", ui::query_of(&[("q", &q)]));
    Ok(admin.render(
        StatusCode::OK,
        &ListPage {
            chrome: admin.chrome("clients", done(&req)),
            paging: Paging::new(base.trim_end_matches('?'), page, PER_PAGE, total),
            q,
            clients: rows
                .into_iter()
                .map(|c| ClientListItem {
                    kind: if c.secret_digest.is_some() {
                        "confidential"
                    } else {
                        "public"
                    },
                    redirect: c.redirect_uris.lines().next().unwrap_or("").to_string(),
                    scopes: c
                        .allowed_scopes
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .count(),
                    created: ui::when(c.created_at),
                    id: c.id,
                    name: c.name,
                })
                .collect(),
        },
    ))
}

/// One checkbox of the allowed-scopes field.
pub struct ScopeChoice {
    pub name: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

/// The client form's values, as typed or as stored.
pub struct ClientFields {
    pub name: String,
    pub redirect_uris: String,
    pub public: bool,
    pub pkce_required: bool,
    pub resource_server: bool,
    pub scopes: Vec<ScopeChoice>,
}

impl ClientFields {
    fn blank() -> ClientFields {
        ClientFields {
            name: String::new(),
            redirect_uris: String::new(),
            public: false,
            pkce_required: true,
            resource_server: false,
            scopes: choices(|_| true),
        }
    }

    fn from_row(row: &ClientRow) -> ClientFields {
        let allowed = ScopeSet::parse(&row.allowed_scopes).unwrap_or_default();
        ClientFields {
            name: row.name.clone(),
            redirect_uris: row.redirect_uris.clone(),
            public: row.secret_digest.is_none(),
            pkce_required: row.pkce_required,
            resource_server: row.is_resource_server,
            scopes: choices(|name| allowed.contains_name(name)),
        }
    }

    fn from_form(form: &FormData, public: bool) -> ClientFields {
        let picked = form.all("scope");
        ClientFields {
            name: form.text("name"),
            redirect_uris: form.text("redirect_uris"),
            public,
            pkce_required: public || form.checked("pkce_required"),
            resource_server: form.checked("resource_server"),
            scopes: choices(|name| picked.contains(&name)),
        }
    }

    fn redirect_list(&self) -> Vec<String> {
        self.redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn scope_names(&self) -> Vec<String> {
        self.scopes
            .iter()
            .filter(|s| s.checked)
            .map(|s| s.name.to_string())
            .collect()
    }

    /// What the form says, checked: the values to store, or a message for the form.
    fn validate(&self) -> Result<ClientUpdate, AppError> {
        let bad = |m: String| AppError::BadRequest(m);
        let name = parse_client_name(&self.name).map_err(|e| bad(format!("Name: {e}.")))?;
        let uris = self.redirect_list();
        if uris.is_empty() {
            return Err(bad("Give at least one redirect URI, one per line.".into()));
        }
        let mut parsed = Vec::new();
        for u in &uris {
            let uri = RedirectUri::parse(u).map_err(|e| bad(format!("Redirect URI: {e}.")))?;
            parsed.push(uri.as_str().to_string());
        }
        let names = self.scope_names();
        if names.is_empty() {
            return Err(bad("Allow at least one scope.".into()));
        }
        let scopes = ScopeSet::parse(&names.join(" ")).map_err(|e| bad(format!("Scopes: {e}.")))?;
        Ok(ClientUpdate {
            name,
            redirect_uris: parsed.join("\n"),
            allowed_scopes: scopes.to_string(),
            pkce_required: self.public || self.pkce_required,
            is_resource_server: self.resource_server,
        })
    }
}

fn choices(checked: impl Fn(&str) -> bool) -> Vec<ScopeChoice> {
    CATALOGUE
        .iter()
        .map(|s| ScopeChoice {
            name: s.name,
            description: s.description,
            checked: checked(s.name),
        })
        .collect()
}

/// What the edit page shows about a registered client, beyond the form.
pub struct ClientFacts {
    pub id: String,
    pub created: String,
    pub active_grants: i64,
}

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientPage {
    chrome: Chrome,
    /// `None` for the registration form.
    client: Option<ClientFacts>,
    fields: ClientFields,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/client_secret.html")]
struct SecretPage {
    chrome: Chrome,
    client_id: String,
    name: String,
    secret: Option<String>,
    rotated: bool,
}

fn form_page(
    admin: &Admin,
    status: StatusCode,
    client: Option<ClientFacts>,
    fields: ClientFields,
    error: Option<String>,
) -> HttpResponse {
    admin.render(
        status,
        &ClientPage {
            chrome: admin.chrome("clients", None),
            client,
            fields,
            error,
        },
    )
}

/// `GET /admin/clients/new`
pub async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    Ok(form_page(
        &admin,
        StatusCode::OK,
        None,
        ClientFields::blank(),
        None,
    ))
}

/// `POST /admin/clients/new`: registers the client and shows its secret, once.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let public = form.get("type") == Some("public");
    let fields = ClientFields::from_form(&form, public);
    if let Err(e) = fields.validate() {
        let Some(status) = input_status(&e) else {
            return Err(e);
        };
        let message = e.public_message();
        return Ok(form_page(&admin, status, None, fields, Some(message)));
    }
    let spec = ClientSpec {
        name: fields.name.clone(),
        redirect_uris: fields.redirect_list(),
        public,
        scopes: Some(fields.scope_names()),
        pkce_required: fields.pkce_required,
        resource_server: fields.resource_server,
    };
    let now = state.now();
    let actor = admin.user.id.clone();
    let created = state
        .store
        .run(move |conn| ops::create_client(conn, spec, now, Some(&actor)))
        .await;
    match created {
        Ok(c) => Ok(admin.render(
            StatusCode::OK,
            &SecretPage {
                chrome: admin.chrome("clients", None),
                client_id: c.client_id,
                name: fields.name.trim().to_string(),
                secret: c.client_secret,
                rotated: false,
            },
        )),
        Err(e) => match input_status(&e) {
            Some(status) => {
                let message = e.public_message();
                Ok(form_page(&admin, status, None, fields, Some(message)))
            }
            None => Err(e),
        },
    }
}

async fn load(state: &AppState, id: String) -> Result<Option<(ClientRow, i64)>, AppError> {
    state
        .store
        .run(move |conn| -> Result<_, AppError> {
            let Some(row) = client_store::find(conn, &id)? else {
                return Ok(None);
            };
            let (_, active) = grant_store::list_grants(
                conn,
                &grant_store::GrantFilter {
                    client_id: Some(id.clone()),
                    active_only: true,
                    ..Default::default()
                },
                1,
                0,
            )?;
            Ok(Some((row, active)))
        })
        .await
}

fn facts(row: &ClientRow, active_grants: i64) -> ClientFacts {
    ClientFacts {
        id: row.id.clone(),
        created: ui::when(row.created_at),
        active_grants,
    }
}

/// `GET /admin/clients/{id}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let Some((row, active)) = load(&state, path.into_inner()).await? else {
        return Ok(not_found("client"));
    };
    let page = ClientPage {
        chrome: admin.chrome("clients", done(&req)),
        client: Some(facts(&row, active)),
        fields: ClientFields::from_row(&row),
        error: None,
    };
    Ok(admin.render(StatusCode::OK, &page))
}

/// `POST /admin/clients/{id}`: saves name, redirect URIs, scopes and PKCE.
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let Some((row, active)) = load(&state, id.clone()).await? else {
        return Ok(not_found("client"));
    };
    let fields = ClientFields::from_form(&form, row.secret_digest.is_none());
    let change = match fields.validate() {
        Ok(c) => c,
        Err(e) => {
            let Some(status) = input_status(&e) else {
                return Err(e);
            };
            let message = e.public_message();
            return Ok(form_page(
                &admin,
                status,
                Some(facts(&row, active)),
                fields,
                Some(message),
            ));
        }
    };
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let target = id.clone();
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            client_store::update(conn, &target, &change)?;
            audit::record(
                conn,
                now,
                Some(&actor),
                "client.updated",
                Some(&target),
                serde_json::json!({
                    "name": change.name,
                    "redirect_uris": change.redirect_uris.lines().count(),
                    "scopes": change.allowed_scopes,
                    "pkce_required": change.pkce_required,
                    "resource_server": change.is_resource_server,
                }),
                ip.as_deref(),
            )?;
            Ok(())
        })
        .await?;
    Ok(back_to(&format!("/admin/clients/{id}"), "client_updated"))
}

/// `POST /admin/clients/{id}/rotate`: a new secret, shown once; the old one stops working.
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, _form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let Some((row, _)) = load(&state, id.clone()).await? else {
        return Ok(not_found("client"));
    };
    if row.secret_digest.is_none() {
        return Err(AppError::BadRequest(
            "A public client has no secret to rotate.".into(),
        ));
    }
    let secret = OpaqueToken::generate(CLIENT_SECRET_PREFIX);
    let digest = secret.digest();
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let target = id.clone();
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            client_store::set_secret_digest(conn, &target, &digest)?;
            audit::record(
                conn,
                now,
                Some(&actor),
                "client.secret_rotated",
                Some(&target),
                serde_json::json!({}),
                ip.as_deref(),
            )?;
            Ok(())
        })
        .await?;
    Ok(admin.render(
        StatusCode::OK,
        &SecretPage {
            chrome: admin.chrome("clients", None),
            client_id: id,
            name: row.name,
            secret: Some(secret.reveal().to_string()),
            rotated: true,
        },
    ))
}

/// `POST /admin/clients/{id}/delete` (with `confirm`): revokes every grant, then deletes.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let Some((row, active)) = load(&state, id.clone()).await? else {
        return Ok(not_found("client"));
    };
    if !form.checked("confirm") {
        return Ok(form_page(
            &admin,
            StatusCode::BAD_REQUEST,
            Some(facts(&row, active)),
            ClientFields::from_row(&row),
            Some("Tick “Yes, delete this client” to confirm.".into()),
        ));
    }
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            use diesel::Connection as _;
            conn.transaction(|c| {
                let revoked = grant_store::revoke_all_for_client(c, &id, now)?;
                client_store::delete(c, &id)?;
                audit::record(
                    c,
                    now,
                    Some(&actor),
                    "client.deleted",
                    Some(&id),
                    serde_json::json!({"name": row.name, "grants_revoked": revoked}),
                    ip.as_deref(),
                )
            })?;
            Ok(())
        })
        .await?;
    Ok(back_to("/admin/clients", "client_deleted"))
}
