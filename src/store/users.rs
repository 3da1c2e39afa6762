//! Users repository.

use diesel::prelude::*;

use super::schema::users;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub fn insert(conn: &mut DbConnection, user: &User) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

diesel::define_sql_function! {
    /// SQL `lower()`, the same on SQLite and PostgreSQL.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A `LIKE` pattern matching `needle` anywhere, lower-cased, with `%`, `_` and `\` escaped
/// (use with `.escape('\\')`).
pub(super) fn contains_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One page of users whose email or name contains `query` (case-insensitive), by email, and
/// how many match in all.
pub fn search(
    conn: &mut DbConnection,
    query: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<User>, i64)> {
    let matching = || {
        let mut q = users::table.into_boxed();
        if let Some(needle) = query {
            let pattern = contains_pattern(needle);
            q = q.filter(
                lower(users::email)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(users::name).like(pattern).escape('\\')),
            );
        }
        q
    };
    let total = matching().count().get_result(conn)?;
    let rows = matching()
        .order(users::email.asc())
        .limit(limit)
        .offset(offset)
        .select(User::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    users::table
        .filter(users::id.eq_any(ids))
        .select(User::as_select())
        .load(conn)
}

pub fn set_disabled(conn: &mut DbConnection, id: &str, disabled: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::disabled.eq(disabled))
        .execute(conn)
}

pub fn set_admin(conn: &mut DbConnection, id: &str, admin: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::is_admin.eq(admin))
        .execute(conn)
}

#[tracing::instrument(skip_all, fields(user_id = %id))]
pub fn set_password_hash(conn: &mut DbConnection, id: &str, phc: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(Some(phc)))
        .execute(conn)
}

/// Admins who can still sign in.
pub fn count_active_admins(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table
        .filter(users::is_admin.eq(true))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
