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
