//! Checking one value against its parameter's kind. Pure functions: a value
//! in, a normalised value or the reason it is wrong out.

use std::net::Ipv4Addr;

use super::defs::{Def, Kind};
use super::secret::Secret;

/// A value that passed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Text(String),
    Count(u64),
    Secret(Secret),
}

/// Checks `value` against `def`. The error is a sentence fragment naming what
/// was expected and what was found, without the value itself for secrets.
pub fn check(def: &Def, value: &serde_json::Value) -> Result<Checked, String> {
    let expected = def.kind.describe();
    // Normalised to the words, which is all the later stages read.
    if def.kind == Kind::Bool {
        return match value {
            serde_json::Value::Bool(b) => Ok(Checked::Text(b.to_string())),
            serde_json::Value::String(s) if s == "true" || s == "false" => Ok(Checked::Text(s.clone())),
            serde_json::Value::String(s) => Err(format!("expected {expected}, found `{s}`")),
            other => Err(format!("expected {expected}, found {}", kind_of(other))),
        };
    }
    let text = match scalar_text(value) {
        Some(t) => t,
        None => return Err(format!("expected {expected}, found {}", kind_of(value))),
    };
    let shown = |t: &str| if def.kind == Kind::Secret { "the given value".to_string() } else { format!("`{t}`") };
    if text.chars().any(char::is_control) {
        return Err(format!("expected {expected} on one line, found control characters"));
    }
    let bad = |why: &str| Err(format!("expected {expected}, found {}{why}", shown(&text)));
    match def.kind {
        Kind::Count(lo, hi) => match text.trim().parse::<u64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(Checked::Count(n)),
            _ => bad(""),
        },
        Kind::Label => {
            let t = text.to_ascii_lowercase();
            match label_problem(&t) {
                None => Ok(Checked::Text(t)),
                Some(why) => bad(&format!(" ({why})")),
            }
        }
        Kind::Domain => {
            let t = text.trim_end_matches('.').to_ascii_lowercase();
            if t.is_empty() || t.len() > 253 {
                return bad(" (a domain is 1-253 characters)");
            }
            for label in t.split('.') {
                if label.is_empty() {
                    return bad(" (an empty label: two dots in a row?)");
                }
                if let Some(why) = label_problem(label) {
                    return bad(&format!(" (label `{label}`: {why})"));
                }
            }
            Ok(Checked::Text(t))
        }
        Kind::Name => {
            if text.trim().is_empty() {
                bad(" (empty)")
            } else if text.trim() != text {
                bad(" (leading or trailing spaces)")
            } else {
                Ok(Checked::Text(text))
            }
        }
        Kind::Cidr => match parse_cidr(&text) {
            Ok((addr, len)) => Ok(Checked::Text(format!("{addr}/{len}"))),
            Err(Some(network)) => bad(&format!(" (host bits set; the network is {network})")),
            Err(None) => bad(""),
        },
        Kind::Url => {
            let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
            match rest {
                Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(' ') => {
                    Ok(Checked::Text(text.trim_end_matches('/').to_string()))
                }
                _ => bad(""),
            }
        }
        Kind::Choice(words) => {
            if words.contains(&text.as_str()) {
                Ok(Checked::Text(text))
            } else {
                bad("")
            }
        }
        Kind::Secret => Ok(Checked::Secret(Secret::new(text))),
        Kind::Bool => unreachable!("handled above"),
        Kind::Text => Ok(Checked::Text(text)),
        Kind::User => {
            let ok =
                (1..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if ok { Ok(Checked::Text(text)) } else { bad("") }
        }
    }
}

/// Heat accepts numbers where it wants strings (an ID such as `2`), so do we;
/// lists, maps, booleans and nulls are never a parameter value here.
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing (an empty value)",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() || label.len() > 63 {
        Some("1-63 characters")
    } else if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some("only letters, digits and hyphens")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("no hyphen at either end")
    } else {
        None
    }
}

/// `a.b.c.d/len` with the host bits zero. When only the host bits are
/// wrong, the error carries the network that was probably meant.
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), Option<String>> {
    let (addr, len) = text.split_once('/').ok_or(None)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| None)?;
    let len: u8 = len.parse().map_err(|_| None)?;
    if len > 32 {
        return Err(None);
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if u32::from(addr) & !mask == 0 {
        Ok((addr, len))
    } else {
        Err(Some(format!("{}/{len}", Ipv4Addr::from(u32::from(addr) & mask))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::defs::find;
    use serde_json::json;

    fn ok(name: &str, v: serde_json::Value) -> Checked {
        check(find(name).unwrap(), &v).unwrap()
    }
    fn err(name: &str, v: serde_json::Value) -> String {
        check(find(name).unwrap(), &v).unwrap_err()
    }

    #[test]
    fn labels_and_domains() {
        assert_eq!(ok("hostname", json!("MyHost")), Checked::Text("myhost".into()));
        assert!(err("hostname", json!("my_host")).contains("only letters"));
        assert!(err("hostname", json!("-a")).contains("hyphen"));
        assert!(err("hostname", json!("a".repeat(64))).contains("1-63"));
        assert_eq!(ok("domain", json!("Example.COM.")), Checked::Text("example.com".into()));
        assert!(err("domain", json!("a..b")).contains("two dots"));
    }

    #[test]
    fn counts_accept_numeric_strings_and_check_bounds() {
        assert_eq!(ok("worker_count", json!(3)), Checked::Count(3));
        assert_eq!(ok("worker_count", json!("3")), Checked::Count(3));
        assert!(err("worker_count", json!(-1)).contains("from 0 to 200"));
        assert!(err("worker_count", json!("three")).contains("`three`"));
        assert!(err("docker_mtu", json!(100)).contains("from 576"));
    }

    #[test]
    fn booleans_take_yaml_booleans_and_the_two_words() {
        assert_eq!(ok("handoff", json!(false)), Checked::Text("false".into()));
        assert_eq!(ok("handoff", json!("true")), Checked::Text("true".into()));
        assert!(err("handoff", json!("yes")).contains("true or false, found `yes`"));
        assert!(err("handoff", json!(1)).contains("found a number"));
    }

    #[test]
    fn names_take_numbers_but_not_structures() {
        assert_eq!(ok("server_flavor", json!(2)), Checked::Text("2".into()));
        assert!(err("server_flavor", json!(["a"])).contains("found a list"));
        assert!(err("server_flavor", json!(true)).contains("found a boolean"));
        assert!(err("server_flavor", json!(null)).contains("empty value"));
        assert!(err("server_flavor", json!(" m1 ")).contains("spaces"));
    }

    #[test]
    fn cidrs_urls_choices() {
        assert_eq!(ok("ssh_allowed_cidr", json!("10.0.0.0/8")), Checked::Text("10.0.0.0/8".into()));
        assert!(err("ssh_allowed_cidr", json!("10.0.0.1/8")).contains("the network is 10.0.0.0/8"));
        assert!(err("ssh_allowed_cidr", json!("10.0.0.0/33")).contains("IPv4 network"));
        assert_eq!(ok("os_authurl", json!("https://k:5000/v3/")), Checked::Text("https://k:5000/v3".into()));
        assert!(err("os_authurl", json!("k:5000")).contains("URL"));
        assert!(err("registry_storage", json!("s3")).contains("one of filesystem, swift"));
    }

    #[test]
    fn secrets_are_not_echoed() {
        let e = err("os_password", json!(["hunter2"]));
        assert!(!e.contains("hunter2"));
        let e = check(find("os_password").unwrap(), &json!("hunter2\u{7}")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
