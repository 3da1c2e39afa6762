//! RFC 5322 messages for Gmail's `raw` field, built from Nylas-style `{to, cc, bcc, subject, body}`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

/// `{name, email}` as the Nylas API writes a participant.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Participant {
    #[serde(default)]
    pub name: Option<String>,
    pub email: String,
}

/// An outgoing message or draft.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Outgoing {
    #[serde(default)]
    pub to: Vec<Participant>,
    #[serde(default)]
    pub cc: Vec<Participant>,
    #[serde(default)]
    pub bcc: Vec<Participant>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// Header values lose CR and LF: no header injection.
fn clean(s: &str) -> String {
    s.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// RFC 2047 encoded-word when the text is not plain ASCII.
fn encode_word(s: &str) -> String {
    let s = clean(s);
    if s.is_ascii() {
        s
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(s.as_bytes()))
    }
}

fn address(p: &Participant) -> Option<String> {
    let email = clean(&p.email);
    let valid = email.contains('@') && !email.contains(['<', '>', ',', ' ', '"']);
    if !valid {
        return None;
    }
    Some(
        match p.name.as_deref().map(clean).filter(|n| !n.is_empty()) {
            Some(n) if n.is_ascii() => format!("\"{}\" <{email}>", n.replace(['"', '\\'], "")),
            Some(n) => format!("{} <{email}>", encode_word(&n)),
            None => email,
        },
    )
}

fn address_list(list: &[Participant]) -> Result<String, String> {
    list.iter()
        .map(|p| address(p).ok_or_else(|| format!("{:?} is not a valid email address", p.email)))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(", "))
}

/// The message as Gmail's base64url `raw`; at least one recipient is needed to send.
pub fn build_raw(msg: &Outgoing, need_recipient: bool) -> Result<String, String> {
    if need_recipient && msg.to.is_empty() && msg.cc.is_empty() && msg.bcc.is_empty() {
        return Err("the message needs at least one recipient".into());
    }
    let mut out = String::new();
    for (name, list) in [("To", &msg.to), ("Cc", &msg.cc), ("Bcc", &msg.bcc)] {
        if !list.is_empty() {
            out.push_str(&format!("{name}: {}\r\n", address_list(list)?));
        }
    }
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_word(msg.subject.as_deref().unwrap_or(""))
    ));
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let body = STANDARD.encode(msg.body.as_deref().unwrap_or("").as_bytes());
    for chunk in body.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    Ok(URL_SAFE_NO_PAD.encode(out.as_bytes()))
}

/// `"Ada Lovelace" <ada@example.org>, bob@example.org` → participants.
pub fn parse_address_header(value: &str) -> Vec<serde_json::Value> {
    value
        .split(',')
        .filter_map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return None;
            }
            let (name, email) = match (part.rfind('<'), part.rfind('>')) {
                (Some(a), Some(b)) if a < b => (
                    part[..a].trim().trim_matches('"').to_string(),
                    part[a + 1..b].trim().to_string(),
                ),
                _ => (String::new(), part.to_string()),
            };
            Some(serde_json::json!({"name": name, "email": email}))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &str) -> String {
        String::from_utf8(URL_SAFE_NO_PAD.decode(raw).expect("base64url")).expect("utf8")
    }

    #[test]
    fn a_message_has_recipients_subject_and_a_base64_body() {
        let msg = Outgoing {
            to: vec![Participant {
                name: Some("Ada".into()),
                email: "ada@example.org".into(),
            }],
            subject: Some("Hi".into()),
            body: Some("Hello".into()),
            ..Default::default()
        };
        let text = decode(&build_raw(&msg, true).expect("valid"));
        assert!(text.starts_with("To: \"Ada\" <ada@example.org>\r\nSubject: Hi\r\n"));
        assert!(text.contains("SGVsbG8="));
    }

    #[test]
    fn header_injection_is_impossible() {
        let msg = Outgoing {
            to: vec![Participant {
                name: None,
                email: "a@x.org".into(),
            }],
            subject: Some("Hi\r\nBcc: victim@x.org".into()),
            ..Default::default()
        };
        let text = decode(&build_raw(&msg, true).expect("valid"));
        assert!(!text.contains("\r\nBcc:"));
    }

    #[test]
    fn sending_needs_a_recipient_and_valid_addresses() {
        assert!(build_raw(&Outgoing::default(), true).is_err());
        assert!(build_raw(&Outgoing::default(), false).is_ok());
        let bad = Outgoing {
            to: vec![Participant {
                name: None,
                email: "not an address".into(),
            }],
            ..Default::default()
        };
        assert!(build_raw(&bad, true).is_err());
    }

    #[test]
    fn address_headers_parse_into_participants() {
        let v = parse_address_header("\"Ada L\" <ada@example.org>, bob@example.org");
        assert_eq!(v[0]["name"], "Ada L");
        assert_eq!(v[0]["email"], "ada@example.org");
        assert_eq!(v[1]["email"], "bob@example.org");
    }
}
