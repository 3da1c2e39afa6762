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

/// What the admin audit log is filtered by; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// An exact action (`login.failure`) or a family (`login` matches `login.*`).
    pub action: Option<String>,
    /// From this second on, inclusive.
    pub from: Option<i64>,
    /// Before this second, exclusive.
    pub until: Option<i64>,
}

/// One page of events, newest first, and how many match in all.
pub fn search(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<AuditEvent>, i64)> {
    let matching = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(actor) = &filter.actor {
            q = q.filter(audit_events::actor.eq(actor.clone()));
        }
        if let Some(action) = &filter.action {
            let family = format!("{}.%", escape_like(action));
            q = q.filter(
                audit_events::action
                    .eq(action.clone())
                    .or(audit_events::action.like(family).escape('\\')),
            );
        }
        if let Some(from) = filter.from {
            q = q.filter(audit_events::at.ge(from));
        }
        if let Some(until) = filter.until {
            q = q.filter(audit_events::at.lt(until));
        }
        q
    };
    let total = matching().count().get_result(conn)?;
    let rows = matching()
        .order(audit_events::id.desc())
        .limit(limit)
        .offset(offset)
        .select(AuditEvent::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Events with one of `actions` at or after `since`.
pub fn count_actions_since(
    conn: &mut DbConnection,
    actions: &[&str],
    since: i64,
) -> QueryResult<i64> {
    audit_events::table
        .filter(audit_events::action.eq_any(actions))
        .filter(audit_events::at.ge(since))
        .count()
        .get_result(conn)
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
