//! Audit log repository.

use diesel::prelude::*;

use super::schema::audit_events;
use super::DbConnection;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub ip: Option<String>,
}

pub fn insert(conn: &mut DbConnection, event: &NewAuditEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .map(|_| ())
}

pub fn recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
}

pub fn with_action(conn: &mut DbConnection, action: &str) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .order(audit_events::id.desc())
        .select(AuditEvent::as_select())
        .load(conn)
}

/// Records one event. `detail` is a JSON object and must never hold secrets.
pub fn record(
    conn: &mut DbConnection,
    now: i64,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
    ip: Option<&str>,
) -> QueryResult<()> {
    insert(
        conn,
        &NewAuditEvent {
            at: now,
            actor: actor.map(str::to_string),
            action: action.to_string(),
            target: target.map(str::to_string),
            detail: detail.to_string(),
            ip: ip.map(str::to_string),
        },
    )
}
