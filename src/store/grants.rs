//! Consents, grants (token families), authorization codes, refresh tokens and revoked jtis.

use diesel::prelude::*;

use super::schema::{auth_codes, consents, grants, refresh_tokens, revoked_tokens};
use super::DbConnection;

/// What a user has consented to for a client (remembered consent).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub user_id: String,
    pub client_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A token family: one per code exchange or client-credentials issuance.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scopes: String,
    pub redirect_uri: Option<String>,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_codes)]
pub struct CodeRow {
    pub digest: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    /// oxide-auth grant extensions (PKCE, nonce, auth_time) as JSON.
    pub extensions: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub grant_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub digest: String,
    pub grant_id: String,
    pub scopes: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

// --- consents ---

pub fn find_consent(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
) -> QueryResult<Option<ConsentRow>> {
    consents::table
        .find((user_id, client_id))
        .select(ConsentRow::as_select())
        .first(conn)
        .optional()
}

/// Stores the consented scopes for (user, client), replacing what was there.
pub fn save_consent(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    scopes: &str,
    now: i64,
) -> QueryResult<()> {
    let updated = diesel::update(consents::table.find((user_id, client_id)))
        .set((consents::scopes.eq(scopes), consents::updated_at.eq(now)))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(consents::table)
            .values(&ConsentRow {
                user_id: user_id.into(),
                client_id: client_id.into(),
                scopes: scopes.into(),
                created_at: now,
                updated_at: now,
            })
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_consent(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
) -> QueryResult<usize> {
    diesel::delete(consents::table.find((user_id, client_id))).execute(conn)
}

// --- grants ---

pub fn insert_grant(conn: &mut DbConnection, row: &GrantRow) -> QueryResult<()> {
    diesel::insert_into(grants::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_grant(conn: &mut DbConnection, id: &str) -> QueryResult<Option<GrantRow>> {
    grants::table
        .find(id)
        .select(GrantRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch_grant(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(grants::table.find(id))
        .set(grants::last_used_at.eq(now))
        .execute(conn)
}

/// Revokes a token family: its refresh tokens stop working and its access tokens fail the
/// revocation check.
pub fn revoke_grant(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
        .set(grants::revoked_at.eq(Some(now)))
        .execute(conn)
}

/// Revokes every family of (user, client).
pub fn revoke_grants_of(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::client_id.eq(client_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(Some(now)))
    .execute(conn)
}

pub fn is_grant_revoked(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    let row: Option<Option<i64>> = grants::table
        .find(id)
        .select(grants::revoked_at)
        .first(conn)
        .optional()?;
    // An unknown family counts as revoked: its tokens cannot be trusted.
    Ok(!matches!(row, Some(None)))
}

// --- authorization codes ---

pub fn insert_code(conn: &mut DbConnection, row: &CodeRow) -> QueryResult<()> {
    diesel::insert_into(auth_codes::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_code(conn: &mut DbConnection, digest: &str) -> QueryResult<Option<CodeRow>> {
    auth_codes::table
        .find(digest)
        .select(CodeRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a code used and names the family it will issue, only if it was unused: `false` when
/// another request got there first.
pub fn consume_code(
    conn: &mut DbConnection,
    digest: &str,
    grant_id: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        auth_codes::table
            .find(digest)
            .filter(auth_codes::used_at.is_null()),
    )
    .set((
        auth_codes::used_at.eq(Some(now)),
        auth_codes::grant_id.eq(Some(grant_id)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn delete_expired_codes(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(auth_codes::table.filter(auth_codes::expires_at.lt(before))).execute(conn)
}

// --- refresh tokens ---

pub fn insert_refresh(conn: &mut DbConnection, row: &RefreshRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_refresh(conn: &mut DbConnection, digest: &str) -> QueryResult<Option<RefreshRow>> {
    refresh_tokens::table
        .find(digest)
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a refresh token rotated, only if it was not already: `false` means a reuse.
pub fn consume_refresh(conn: &mut DbConnection, digest: &str, now: i64) -> QueryResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(digest)
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

// --- individually revoked access tokens (RFC 7009) ---

pub fn revoke_jti(conn: &mut DbConnection, jti: &str, expires_at: i64) -> QueryResult<()> {
    if is_jti_revoked(conn, jti)? {
        return Ok(());
    }
    diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn is_jti_revoked(conn: &mut DbConnection, jti: &str) -> QueryResult<bool> {
    let n: i64 = revoked_tokens::table
        .filter(revoked_tokens::jti.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

// --- views for the account page and the admin UI ---

/// An application a user has granted access to: remembered consent and/or live token families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_name: String,
    /// The consented scopes, or (without a consent row) the union of the live families' scopes.
    pub scopes: String,
    pub granted_at: i64,
    /// The latest use of any of the user's token families for this client.
    pub last_used_at: Option<i64>,
}

/// Every application `user_id` has consented to or holds a live grant for, by name.
pub fn connected_apps(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<ConnectedApp>> {
    use super::schema::clients;
    use diesel::dsl::max;

    let consented: Vec<(ConsentRow, String)> = consents::table
        .inner_join(clients::table)
        .filter(consents::user_id.eq(user_id))
        .select((ConsentRow::as_select(), clients::name))
        .load(conn)?;
    let last_used: Vec<(String, Option<i64>)> = grants::table
        .filter(grants::user_id.eq(user_id))
        .group_by(grants::client_id)
        .select((grants::client_id, max(grants::last_used_at)))
        .load(conn)?;
    let last_used = |client_id: &str| {
        last_used
            .iter()
            .find(|(c, _)| c == client_id)
            .and_then(|(_, at)| *at)
    };
    let mut apps: Vec<ConnectedApp> = consented
        .into_iter()
        .map(|(c, name)| ConnectedApp {
            last_used_at: last_used(&c.client_id),
            client_id: c.client_id,
            client_name: name,
            scopes: c.scopes,
            granted_at: c.created_at,
        })
        .collect();

    // Live families without a remembered consent still give access: list them too, with
    // the union of their scopes. A consent row's scopes are authoritative where there is one.
    let consented_count = apps.len();
    let live: Vec<(GrantRow, String)> = grants::table
        .inner_join(clients::table)
        .filter(grants::user_id.eq(user_id))
        .filter(grants::revoked_at.is_null())
        .select((GrantRow::as_select(), clients::name))
        .order(grants::created_at.asc())
        .load(conn)?;
    for (g, name) in live {
        match apps.iter().position(|a| a.client_id == g.client_id) {
            Some(i) if i < consented_count => {}
            Some(i) => apps[i].scopes = merge_scopes(&apps[i].scopes, &g.scopes),
            None => apps.push(ConnectedApp {
                last_used_at: last_used(&g.client_id),
                client_id: g.client_id,
                client_name: name,
                scopes: g.scopes,
                granted_at: g.created_at,
            }),
        }
    }
    apps.sort_by(|a, b| {
        (a.client_name.to_lowercase(), &a.client_id)
            .cmp(&(b.client_name.to_lowercase(), &b.client_id))
    });
    Ok(apps)
}

fn merge_scopes(a: &str, b: &str) -> String {
    let mut names: Vec<&str> = a.split(' ').filter(|s| !s.is_empty()).collect();
    for s in b.split(' ').filter(|s| !s.is_empty()) {
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names.join(" ")
}

/// Which token families an admin listing shows.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Only families that are not revoked.
    pub active_only: bool,
}

/// One page of token families, newest first, and how many match in all.
pub fn list_grants(
    conn: &mut DbConnection,
    filter: &GrantFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<GrantRow>, i64)> {
    let matching = || {
        let mut q = grants::table.into_boxed();
        if let Some(u) = &filter.user_id {
            q = q.filter(grants::user_id.eq(u.clone()));
        }
        if let Some(c) = &filter.client_id {
            q = q.filter(grants::client_id.eq(c.clone()));
        }
        if filter.active_only {
            q = q.filter(grants::revoked_at.is_null());
        }
        q
    };
    let total = matching().count().get_result(conn)?;
    let rows = matching()
        .order((grants::created_at.desc(), grants::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(GrantRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Token families that are not revoked.
pub fn count_active(conn: &mut DbConnection) -> QueryResult<i64> {
    grants::table
        .filter(grants::revoked_at.is_null())
        .count()
        .get_result(conn)
}

/// Revokes every family of a user, across all clients.
pub fn revoke_all_for_user(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        grants::table
            .filter(grants::user_id.eq(user_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(Some(now)))
    .execute(conn)
}

/// Revokes every family of a client, across all users.
pub fn revoke_all_for_client(
    conn: &mut DbConnection,
    client_id: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        grants::table
            .filter(grants::client_id.eq(client_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(Some(now)))
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_scopes_keep_order_and_drop_duplicates() {
        assert_eq!(
            merge_scopes("openid email", "email calendar"),
            "openid email calendar"
        );
        assert_eq!(merge_scopes("", "email"), "email");
    }
}
