//! Browser sessions repository; sessions are keyed by the digest of their cookie value.

use diesel::prelude::*;

use super::schema::sessions;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub digest: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub fn insert(conn: &mut DbConnection, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, digest: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(digest)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch(conn: &mut DbConnection, digest: &str, now: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.find(digest))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
}

pub fn delete(conn: &mut DbConnection, digest: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(digest)).execute(conn)
}

pub fn delete_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

pub fn delete_expired(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
}

/// Ends every session of a user but `keep` (after a password change).
pub fn delete_for_user_except(
    conn: &mut DbConnection,
    user_id: &str,
    keep: &str,
) -> QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::digest.ne(keep)),
    )
    .execute(conn)
}

/// Unexpired sessions of a user.
pub fn count_for_user(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)
}
