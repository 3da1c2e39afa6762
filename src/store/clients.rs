//! Clients repository.

use diesel::prelude::*;

use super::schema::clients;
use super::DbConnection;

/// A client row; `redirect_uris` is newline-separated, `allowed_scopes` space-separated.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub secret_digest: Option<String>,
    pub redirect_uris: String,
    pub allowed_scopes: String,
    pub pkce_required: bool,
    pub is_resource_server: bool,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConnection, row: &ClientRow) -> QueryResult<()> {
    diesel::insert_into(clients::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .order(clients::created_at.asc())
        .select(ClientRow::as_select())
        .load(conn)
}

/// What an operator may change about a client after registration.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = clients)]
pub struct ClientUpdate {
    pub name: String,
    pub redirect_uris: String,
    pub allowed_scopes: String,
    pub pkce_required: bool,
    pub is_resource_server: bool,
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    clients::table.count().get_result(conn)
}

/// One page of clients whose name or id contains `query` (case-insensitive), by name, and
/// how many match in all.
pub fn search(
    conn: &mut DbConnection,
    query: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<ClientRow>, i64)> {
    use super::users::{contains_pattern, lower};
    let matching = || {
        let mut q = clients::table.into_boxed();
        if let Some(needle) = query {
            let pattern = contains_pattern(needle);
            q = q.filter(
                lower(clients::name)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(clients::id).like(pattern).escape('\\')),
            );
        }
        q
    };
    let total = matching().count().get_result(conn)?;
    let rows = matching()
        .order((clients::name.asc(), clients::id.asc()))
        .limit(limit)
        .offset(offset)
        .select(ClientRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<ClientRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    clients::table
        .filter(clients::id.eq_any(ids))
        .select(ClientRow::as_select())
        .load(conn)
}

pub fn update(conn: &mut DbConnection, id: &str, change: &ClientUpdate) -> QueryResult<usize> {
    diesel::update(clients::table.find(id))
        .set(change)
        .execute(conn)
}

/// Replaces a confidential client's secret digest; public clients (no digest) are left alone.
pub fn set_secret_digest(conn: &mut DbConnection, id: &str, digest: &str) -> QueryResult<usize> {
    diesel::update(
        clients::table
            .find(id)
            .filter(clients::secret_digest.is_not_null()),
    )
    .set(clients::secret_digest.eq(Some(digest)))
    .execute(conn)
}

/// Deletes a client; its consents, grants, codes and refresh tokens go with it (ON DELETE
/// CASCADE), and access tokens of a vanished grant count as revoked.
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(clients::table.find(id)).execute(conn)
}
