//! Google account links (tokens sealed by the caller) and native-authentication codes.

use diesel::prelude::*;

use super::schema::{connect_codes, google_accounts};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = google_accounts, treat_none_as_null = true)]
pub struct GoogleAccountRow {
    pub user_id: String,
    pub google_sub: String,
    pub email: String,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret_sealed: Option<String>,
    pub refresh_token_sealed: Option<String>,
    pub access_token_sealed: Option<String>,
    pub access_expires_at: Option<i64>,
    /// Space-separated full Google scope URLs.
    pub granted_scopes: String,
    pub needs_reauth: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = connect_codes)]
pub struct ConnectCodeRow {
    pub digest: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

pub fn find_by_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> QueryResult<Option<GoogleAccountRow>> {
    google_accounts::table
        .find(user_id)
        .select(GoogleAccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_sub(conn: &mut DbConnection, sub: &str) -> QueryResult<Option<GoogleAccountRow>> {
    google_accounts::table
        .filter(google_accounts::google_sub.eq(sub))
        .select(GoogleAccountRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces the link of `row.user_id`.
pub fn save(conn: &mut DbConnection, row: &GoogleAccountRow) -> QueryResult<()> {
    let n = diesel::update(google_accounts::table.find(&row.user_id))
        .set(row)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(google_accounts::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Stores a refreshed access token (and a rotated refresh token, if Google sent one).
pub fn update_tokens(
    conn: &mut DbConnection,
    user_id: &str,
    access_sealed: &str,
    expires_at: i64,
    refresh_sealed: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    let target = google_accounts::table.find(user_id);
    match refresh_sealed {
        Some(r) => diesel::update(target)
            .set((
                google_accounts::access_token_sealed.eq(Some(access_sealed)),
                google_accounts::access_expires_at.eq(Some(expires_at)),
                google_accounts::refresh_token_sealed.eq(Some(r)),
                google_accounts::needs_reauth.eq(false),
                google_accounts::updated_at.eq(now),
            ))
            .execute(conn),
        None => diesel::update(target)
            .set((
                google_accounts::access_token_sealed.eq(Some(access_sealed)),
                google_accounts::access_expires_at.eq(Some(expires_at)),
                google_accounts::needs_reauth.eq(false),
                google_accounts::updated_at.eq(now),
            ))
            .execute(conn),
    }
}

pub fn mark_needs_reauth(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(google_accounts::table.find(user_id))
        .set((
            google_accounts::needs_reauth.eq(true),
            google_accounts::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn insert_connect_code(conn: &mut DbConnection, row: &ConnectCodeRow) -> QueryResult<()> {
    diesel::insert_into(connect_codes::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_connect_code(
    conn: &mut DbConnection,
    digest: &str,
) -> QueryResult<Option<ConnectCodeRow>> {
    connect_codes::table
        .find(digest)
        .select(ConnectCodeRow::as_select())
        .first(conn)
        .optional()
}

/// Spends a code; `false` when it was already spent.
pub fn consume_connect_code(conn: &mut DbConnection, digest: &str, now: i64) -> QueryResult<bool> {
    let n = diesel::update(
        connect_codes::table
            .find(digest)
            .filter(connect_codes::used_at.is_null()),
    )
    .set(connect_codes::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn set_granted_scopes(
    conn: &mut DbConnection,
    user_id: &str,
    granted: &str,
) -> QueryResult<usize> {
    diesel::update(google_accounts::table.find(user_id))
        .set(google_accounts::granted_scopes.eq(granted))
        .execute(conn)
}
