//! Small pieces shared by the account page and the admin UI: form bodies with repeated
//! fields, dates for people, paging, and responses.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use crate::web::csrf::Csrf;

/// Longest value kept from any one form field; longer input is cut, then validated.
const MAX_FIELD_LEN: usize = 8192;

/// A form body (`application/x-www-form-urlencoded`), keeping repeated fields (checkboxes).
#[derive(Debug, Default, Clone)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            form_urlencoded::parse(body)
                .map(|(k, v)| {
                    (
                        k.chars().take(64).collect(),
                        v.chars().take(MAX_FIELD_LEN).collect(),
                    )
                })
                .collect(),
        )
    }

    /// The first value of `key`, if any and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, or "".
    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or("").to_string()
    }

    /// Every non-empty value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A checkbox: present with any value.
    pub fn checked(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// A Unix time as people read it, in UTC.
pub fn when(ts: i64) -> String {
    match chrono::DateTime::from_timestamp(ts, 0) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "—".to_string(),
    }
}

pub fn when_opt(ts: Option<i64>, none: &str) -> String {
    ts.map(when).unwrap_or_else(|| none.to_string())
}

/// Midnight UTC of the day `now` falls in.
pub fn start_of_day(now: i64) -> i64 {
    now - now.rem_euclid(86_400)
}

/// `YYYY-MM-DD` (an `<input type=date>`) to the Unix time of that midnight, UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// The client address for the audit log.
pub fn ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// 303 to a local path after a successful POST.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Sets the CSRF cookie on a page when the visitor had none.
pub fn with_csrf(mut res: HttpResponse, csrf: Csrf) -> HttpResponse {
    if let Some(cookie) = csrf.cookie {
        let _ = res.add_cookie(&cookie);
    }
    res
}

/// Where a list page is, and the links to its neighbours.
#[derive(Debug, Clone)]
pub struct Paging {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Paging {
    /// `base` is the path with the current filters as a query (`/admin/users?q=ada`).
    pub fn new(base: &str, page: i64, per_page: i64, total: i64) -> Paging {
        let pages = ((total + per_page - 1) / per_page).max(1);
        let page = page.clamp(1, pages);
        let link = |p: i64| {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}page={p}")
        };
        Paging {
            page,
            pages,
            total,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }

    pub fn offset(page: i64, per_page: i64) -> i64 {
        (page.max(1) - 1).saturating_mul(per_page)
    }
}

/// `?q=&page=` of a searchable, paged list.
pub struct ListQuery {
    /// The search text as typed (trimmed), for the form and the paging links.
    pub q: String,
    pub page: i64,
}

impl ListQuery {
    pub fn parse(req: &actix_web::HttpRequest) -> ListQuery {
        let query = crate::oauth::params::Params::parse(req.query_string().as_bytes());
        ListQuery {
            q: query.get("q").unwrap_or("").trim().to_string(),
            page: page_number(query.get("page")),
        }
    }
}

/// The `page` query parameter: a positive number, 1 when absent or malformed.
pub fn page_number(v: Option<&str>) -> i64 {
    v.and_then(|p| p.trim().parse::<i64>().ok())
        .filter(|p| *p >= 1)
        .map(|p| p.min(1_000_000))
        .unwrap_or(1)
}

/// A query string of the non-empty pairs, for links that keep the current filters.
pub fn query_of(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_repeated_fields() {
        let f = FormData::parse(b"scope=a&scope=b&name=x&empty=");
        assert_eq!(f.all("scope"), vec!["a", "b"]);
        assert_eq!(f.get("name"), Some("x"));
        assert_eq!(f.get("empty"), None);
        assert!(!f.checked("missing"));
    }

    #[test]
    fn dates_are_utc_midnights() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400));
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(start_of_day(86_400 + 5), 86_400);
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn paging_links_keep_filters_and_stay_in_range() {
        let p = Paging::new("/admin/users?q=ada", 2, 10, 25);
        assert_eq!(p.pages, 3);
        assert_eq!(p.prev.as_deref(), Some("/admin/users?q=ada&page=1"));
        assert_eq!(p.next.as_deref(), Some("/admin/users?q=ada&page=3"));
        let p = Paging::new("/admin/users", 9, 10, 0);
        assert_eq!((p.page, p.pages, p.prev, p.next), (1, 1, None, None));
        assert_eq!(page_number(Some("-3")), 1);
        assert_eq!(page_number(Some("4")), 4);
    }
}
