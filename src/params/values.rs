//! Checking one value against its parameter's kind. Pure functions: a value
//! in, a normalised value or the reason it is wrong out.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::defs::{Def, Kind};
use super::error::{code_point, echo, is_invisible, redact_userinfo};
use super::secret::Secret;

/// Names of things in the cloud, user names and regions: longer than this is
/// never a real name, and Nova, Glance and Neutron cap theirs here too.
pub const MAX_NAME_CHARS: usize = 255;

/// Long enough for any password a cloud accepts; a pasted file is not one.
const MAX_SECRET_CHARS: usize = 4096;

/// A value that passed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Text(String),
    Count(u64),
    Secret(Secret),
    List(Vec<String>),
}

/// Why a value was refused: a sentence fragment naming what was expected and
/// what was found (never the value of a secret), and how to fix it when
/// that is likely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub message: String,
    pub hint: Option<String>,
}

impl Bad {
    fn new(message: impl Into<String>) -> Bad {
        Bad { message: message.into(), hint: None }
    }
    fn hint(mut self, hint: impl Into<String>) -> Bad {
        self.hint = Some(hint.into());
        self
    }
}

/// A value as the file gave it: what YAML made of it, the scalar as written
/// and its explicit tag, if any.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub value: &'a serde_json::Value,
    pub raw: Option<&'a str>,
    pub tag: Option<&'a str>,
}

/// Checks a value that has no source text (a default, a test).
pub fn check(def: &Def, value: &serde_json::Value) -> Result<Checked, String> {
    check_written(def, Written { value, raw: None, tag: None }).map_err(|b| b.message)
}

/// A list of image references, each one Docker would take: lower-case
/// repository path, an optional registry with port, a tag or digest.
fn images(value: &serde_json::Value, expected: &str) -> Result<Checked, Bad> {
    let serde_json::Value::Array(items) = value else {
        return Err(Bad::new(format!("expected {expected}, found {}", super::error::kind_of(value)))
            .hint("write it as a list: `seed_images: [redis:7.2-alpine, alpine:3.20]`"));
    };
    if items.len() > super::defs::MAX_IMAGES {
        return Err(Bad::new(format!("expected {expected}, found {}", items.len())));
    }
    let mut out = Vec::new();
    for item in items {
        let Some(text) = item.as_str() else {
            return Err(Bad::new(format!("expected {expected}, found {} in the list", super::error::kind_of(item))));
        };
        let (name, reference) = match text.rsplit_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => match text.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((n, t)) => (n, Some(t)),
                None => (text, None),
            },
        };
        // A registry with a port is the first of several parts.
        let parts = name.split('/').count();
        let name_ok = !name.is_empty()
            && name.len() <= 255
            && name.split('/').enumerate().all(|(i, part)| {
                !part.is_empty()
                    && part.chars().all(|c| {
                        c.is_ascii_lowercase()
                            || c.is_ascii_digit()
                            || "._-".contains(c)
                            || (i == 0 && parts > 1 && c == ':')
                    })
            });
        let reference_ok = reference.is_none_or(|r| {
            !r.is_empty() && r.len() <= 128 && r.chars().all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        });
        if !name_ok || !reference_ok {
            return Err(Bad::new(format!(
                "expected {expected}, found `{}`, which is not an image reference",
                echo(text)
            ))
            .hint("an image is [registry/]repository[:tag] in lower case, such as library/redis:7.2-alpine"));
        }
        out.push(text.to_string());
    }
    Ok(Checked::List(out))
}

/// Checks `w` against `def`.
pub fn check_written(def: &Def, w: Written) -> Result<Checked, Bad> {
    let expected = def.kind.describe();
    let secret = def.kind == Kind::Secret;
    if let Some(tag) = w.tag.filter(|t| *t != "!!str") {
        return Err(Bad::new(format!("expected {expected}, found a value tagged `{}`", echo(tag)))
            .hint(format!("remove `{}`; provision reads plain values (quote one to keep it text)", echo(tag))));
    }
    // Normalised to the words, which is all the later stages read.
    if def.kind == Kind::Bool {
        return match w.value {
            serde_json::Value::Bool(b) => Ok(Checked::Text(b.to_string())),
            serde_json::Value::String(s) if s == "true" || s == "false" => Ok(Checked::Text(s.clone())),
            serde_json::Value::String(s) => Err(Bad::new(format!("expected {expected}, found `{}`", echo(s)))),
            other => Err(Bad::new(format!("expected {expected}, found {}", super::error::kind_of(other)))),
        };
    }
    if def.kind == Kind::Images {
        return images(w.value, &expected);
    }
    let (text, read_as_number) = match scalar_text(w) {
        Some(t) => t,
        None => {
            let b = Bad::new(format!("expected {expected}, found {}", super::error::kind_of(w.value)));
            return Err(if w.value.is_array() || w.value.is_object() {
                b.hint(format!("write one value on the same line: `{}: value`", def.name))
            } else {
                b
            });
        }
    };
    if secret {
        if text.chars().any(char::is_control) {
            return Err(Bad::new(format!("expected {expected} on one line, found control characters")));
        }
        if text.chars().count() > MAX_SECRET_CHARS {
            return Err(Bad::new(format!("expected {expected}, found one longer than {MAX_SECRET_CHARS} characters")));
        }
        return Ok(Checked::Secret(Secret::new(text)));
    }
    // A URL is shown without its user name and password, anything else as
    // written (bounded, hidden characters spelled out).
    let shown = if def.kind == Kind::Url { echo(&redact_userinfo(&text)) } else { echo(&text) };
    let found = |why: &str| Bad::new(format!("expected {expected}, found `{shown}`{why}"));
    if let Some(c) = text.chars().find(|c| is_invisible(*c)) {
        let (why, hint) = if c == '\n' || c == '\r' || c == '\u{85}' || c == '\u{2028}' || c == '\u{2029}' {
            ("a line break", "write the value on one line")
        } else {
            (
                "an invisible or control character",
                "type the value again by hand; a copy from a web page or document can carry hidden characters",
            )
        };
        return Err(found(&format!(": it contains {}, {why}", code_point(c))).hint(hint));
    }
    if let Kind::Count(lo, hi) = def.kind {
        return count(&text, lo, hi).ok_or_else(|| {
            let t = text.trim();
            let digits = t.chars().all(|c| c.is_ascii_digit());
            if digits && t.len() > 1 && t.starts_with('0') {
                found("").hint(format!(
                    "write it without the leading zero; some YAML readers (Heat's among them) read `{}` as an octal number",
                    echo(t)
                ))
            } else if digits && !t.is_empty() && t.parse::<u64>().is_err() {
                found(" (too large)")
            } else if is_plain_integer(t) {
                found("")
            } else if read_as_number || t.parse::<f64>().is_ok() || t.starts_with("0x") || t.starts_with("0o") {
                found("").hint(format!("write a plain whole number from {lo} to {hi}, such as {lo}"))
            } else {
                found("")
            }
        });
    }
    let names = matches!(def.kind, Kind::Label | Kind::Domain | Kind::Name | Kind::Text | Kind::User);
    if names && read_as_number && !is_plain_integer(&text) {
        return Err(found(", which YAML reads as a number, not as a name").hint(format!(
            "put it in quotes to keep it as written: `{}: \"{}\"`",
            def.name,
            echo(&text)
        )));
    }
    if names && text.chars().count() > MAX_NAME_CHARS {
        return Err(found(&format!(" ({} characters; at most {MAX_NAME_CHARS})", text.chars().count())));
    }
    let bad = |why: &str| Err(found(why));
    if matches!(def.kind, Kind::Label | Kind::Domain)
        && let Some(c) = text.chars().find(|c| !c.is_ascii())
    {
        return Err(found(&format!(" ({} is not an ASCII letter)", code_point(c)))
            .hint("type it again by hand; it may be a look-alike letter from another alphabet"));
    }
    match def.kind {
        Kind::Count(..) | Kind::Bool | Kind::Secret | Kind::Images => unreachable!("handled above"),
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
                    return bad(&format!(" (label `{}`: {why})", echo(label)));
                }
            }
            Ok(Checked::Text(t))
        }
        Kind::Name | Kind::Text => {
            if text.trim().is_empty() {
                bad(" (empty)")
            } else if text.trim() != text {
                bad(" (leading or trailing spaces)")
            } else if text.contains("{{") || text.contains("{%") {
                // Node configs are rendered from templates; a name must stay
                // a name there.
                Err(found(" (`{{` and `{%` are template syntax, not part of a name)")
                    .hint("remove the braces; a name has no template syntax"))
            } else {
                Ok(Checked::Text(text))
            }
        }
        Kind::Cidr | Kind::Subnet => match parse_cidr(&text) {
            Ok(net) if def.kind == Kind::Subnet => subnet_problem(net)
                .map_or_else(|| Ok(Checked::Text(net.to_string())), |(why, hint)| Err(found(&why).hint(hint))),
            Ok(net) => Ok(Checked::Text(net.to_string())),
            Err(Some(network)) => bad(&format!(" (host bits set; the network is {network})")),
            Err(None) => bad(""),
        },
        Kind::Url => url(&text).map(Checked::Text).map_err(|(why, hint)| {
            let b = found(&why);
            match hint {
                Some(h) => b.hint(h),
                None => b,
            }
        }),
        Kind::Choice(words) => {
            if words.contains(&text.as_str()) {
                Ok(Checked::Text(text))
            } else {
                let b = found("");
                Err(match super::error::closest(&text, words) {
                    Some(best) => b.hint(format!("did you mean `{best}`?")),
                    None => b,
                })
            }
        }
        Kind::User => {
            let ok =
                (1..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if ok { Ok(Checked::Text(text)) } else { bad("") }
        }
    }
}

/// The value as text, and whether YAML read it as a number. A number is
/// taken as written in the file (`012`, not `12.0`); Heat accepts numbers
/// where it wants strings (an ID such as `2`), so do we, as long as YAML
/// did not change them. Lists, maps, booleans and nulls are never a
/// parameter value here.
fn scalar_text(w: Written) -> Option<(String, bool)> {
    match w.value {
        serde_json::Value::Number(n) => Some((w.raw.map_or_else(|| n.to_string(), str::to_string), true)),
        // `.inf` and `.nan` come through as words; unquoted, YAML read them
        // as numbers.
        serde_json::Value::String(s) => {
            let non_finite = w.raw == Some(s.as_str())
                && matches!(s.trim_start_matches(['+', '-']).to_ascii_lowercase().as_str(), ".inf" | ".nan");
            Some((s.clone(), non_finite))
        }
        _ => None,
    }
}

/// `0` or digits without a leading zero: the only numbers YAML leaves as
/// they were written.
fn is_plain_integer(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

fn count(text: &str, lo: u64, hi: u64) -> Option<Checked> {
    let t = text.trim();
    if !is_plain_integer(t) {
        return None;
    }
    t.parse::<u64>().ok().filter(|n| (lo..=hi).contains(n)).map(Checked::Count)
}

/// The address ranges the stack's own subnet must stay clear of.
const LINK_LOCAL: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16);
const DOCKER_BRIDGE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(172, 17, 0, 0), 16);

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Neutron needs room for a gateway, DHCP and the nodes (/29 leaves five);
/// a network wider than /8 is a typo. The metadata service answers at
/// 169.254.169.254, so a subnet over link-local cuts the nodes off from it.
fn subnet_problem(net: Ipv4Net) -> Option<(String, String)> {
    let len = net.prefix_len();
    if !(8..=29).contains(&len) {
        return Some((
            format!(" (a /{len} network; the nodes' subnet is /8 to /29)"),
            "a /24 such as 10.20.30.0/24 holds 250 nodes".into(),
        ));
    }
    if overlaps(net, LINK_LOCAL) {
        return Some((
            format!(" (overlaps {LINK_LOCAL}, where the nodes reach the metadata service)"),
            "pick a private range such as 10.20.30.0/24".into(),
        ));
    }
    None
}

/// A warning for a subnet that works but will likely collide on the nodes.
pub fn subnet_warning(cidr: &str) -> Option<String> {
    let net = parse_cidr(cidr).ok()?;
    overlaps(net, DOCKER_BRIDGE).then(|| {
        format!(
            "private_cidr {net} overlaps {DOCKER_BRIDGE}, Docker's default bridge on the nodes; containers may not reach hosts in the overlap (pick another range, such as 10.20.30.0/24)"
        )
    })
}

/// An http(s) URL with a host and no user name or password in it.
fn url(text: &str) -> Result<String, (String, Option<&'static str>)> {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    let Some(rest) = rest else {
        if text.contains("://") {
            return Err((" (only http and https)".into(), None));
        }
        return Err(("".into(), Some("write the whole URL, starting with https://")));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err((" (no host)".into(), None));
    }
    if text.chars().any(char::is_whitespace) {
        return Err((" (spaces)".into(), None));
    }
    let parsed = url::Url::parse(text).map_err(|e| (format!(" ({e})"), None))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err((
            ": a user name or password in the URL".into(),
            Some("remove `user:password@`; give credentials with --os-cloud (clouds.yaml) or the OS_* variables"),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err((" (no host)".into(), None));
    }
    Ok(text.trim_end_matches('/').to_string())
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
pub fn parse_cidr(text: &str) -> Result<Ipv4Net, Option<String>> {
    // ipnet also reads `a.b.c.d` alone as a /32; a CIDR here names its length.
    if !text.contains('/') {
        return Err(None);
    }
    let net: Ipv4Net = text.parse().map_err(|_| None)?;
    if net.trunc() == net { Ok(net) } else { Err(Some(net.trunc().to_string())) }
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
    fn seed_images_are_a_list_of_image_references() {
        assert_eq!(
            ok(
                "seed_images",
                json!(["redis:7.2-alpine", "quay.io/coreos/etcd:v3.5", "localhost:5001/x/y@sha256:ab12"])
            ),
            Checked::List(vec![
                "redis:7.2-alpine".into(),
                "quay.io/coreos/etcd:v3.5".into(),
                "localhost:5001/x/y@sha256:ab12".into()
            ])
        );
        assert!(err("seed_images", json!("redis")).contains("a list of at most 50"));
        assert!(err("seed_images", json!(["Redis:7"])).contains("not an image reference"));
        assert!(err("seed_images", json!(["redis:7; rm -rf /"])).contains("not an image reference"));
        assert!(err("seed_images", json!(["a//b"])).contains("not an image reference"));
        assert!(err("seed_images", json!([7])).contains("found a number in the list"));
        assert!(err("seed_images", json!(vec!["x"; 51])).contains("found 51"));
    }

    #[test]
    fn secrets_are_not_echoed() {
        let e = err("os_password", json!(["hunter2"]));
        assert!(!e.contains("hunter2"));
        let e = check(find("os_password").unwrap(), &json!("hunter2\u{7}")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    fn written(name: &str, value: serde_json::Value, raw: &str) -> Result<Checked, Bad> {
        check_written(find(name).unwrap(), Written { value: &value, raw: Some(raw), tag: None })
    }

    #[test]
    fn numbers_are_judged_as_written_and_never_rewritten() {
        assert_eq!(written("server_image", json!("012"), "\"012\""), Ok(Checked::Text("012".into())));
        assert_eq!(written("server_flavor", json!(2), "2"), Ok(Checked::Text("2".into())));
        for (value, raw) in [(json!(12.0), "012"), (json!(31), "0x1F"), (json!(22.1), "22.10"), (json!(1000.0), "1e3")]
        {
            let bad = written("server_image", value, raw).unwrap_err();
            assert!(bad.message.contains(&format!("`{raw}`")), "{bad:?}");
            assert!(bad.hint.unwrap().contains(&format!("\"{raw}\"")));
        }
        let bad = written("server_image", json!(".inf"), ".inf").unwrap_err();
        assert!(bad.message.contains("reads as a number"), "{bad:?}");
        let huge = written("worker_count", json!(1.8446744073709552e19), "18446744073709551616").unwrap_err();
        assert!(huge.message.contains("`18446744073709551616`") && !huge.message.contains("e+19"), "{huge:?}");
        assert!(written("worker_count", json!(12.0), "012").unwrap_err().hint.unwrap().contains("leading zero"));
        assert!(written("worker_count", json!(-0), "-0").is_err());
        assert_eq!(written("worker_count", json!(12), "12"), Ok(Checked::Count(12)));
    }

    #[test]
    fn names_are_bounded_and_echoed_short() {
        assert!(check(find("server_key").unwrap(), &json!("k".repeat(MAX_NAME_CHARS))).is_ok());
        let long = "k".repeat(50 * 1024 * 1024);
        let e = err("server_key", json!(long));
        assert!(e.contains("at most 255") && e.len() < 300, "{} bytes", e.len());
    }

    #[test]
    fn hidden_characters_are_named_by_code_point() {
        for c in [
            '\u{200B}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{2028}',
            '\u{2029}',
            '\u{85}',
            '\u{1B}',
            '\u{E0041}',
        ] {
            let e = err("os_region", json!(format!("Region{c}One")));
            assert!(e.contains(&format!("U+{:04X}", c as u32)), "{e}");
            assert!(!e.contains(c), "the character itself is not echoed: {e}");
        }
        assert!(err("server_image", json!("{{ x }}")).contains("template syntax"));
    }

    #[test]
    fn the_private_subnet_is_sized_and_clear_of_link_local() {
        assert_eq!(ok("private_cidr", json!("10.0.0.0/8")), Checked::Text("10.0.0.0/8".into()));
        assert_eq!(ok("private_cidr", json!("10.0.0.8/29")), Checked::Text("10.0.0.8/29".into()));
        assert!(err("private_cidr", json!("10.0.0.0/7")).contains("/8 to /29"));
        assert!(err("private_cidr", json!("10.0.0.0/30")).contains("/8 to /29"));
        assert!(err("private_cidr", json!("169.254.8.0/24")).contains("169.254.0.0/16"));
        assert_eq!(ok("ssh_allowed_cidr", json!("0.0.0.0/0")), Checked::Text("0.0.0.0/0".into()));
        assert!(subnet_warning("172.17.3.0/24").unwrap().contains("172.17.0.0/16"));
        assert!(subnet_warning("172.16.0.0/12").is_some(), "a wider network over the bridge");
        assert!(subnet_warning("10.20.30.0/24").is_none());
    }

    #[test]
    fn urls_need_a_host_and_no_userinfo_which_is_never_shown() {
        for bad in [
            "https://admin:hunter2@k:5000/v3",
            "https://hunter2@k/",
            "ftp://admin:hunter2@k/",
            "https://admin:hunter2@k:99999/",
        ] {
            let e = err("os_authurl", json!(bad));
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("***@k"), "{e}");
        }
        assert!(err("cache_remote_url", json!("https:///v2")).contains("no host"));
        assert!(err("cache_remote_url", json!("https://")).contains("no host"));
        assert_eq!(ok("os_authurl", json!("http://[::1]:5000/v3")), Checked::Text("http://[::1]:5000/v3".into()));
    }

    #[test]
    fn tags_other_than_str_are_refused() {
        let v = json!("x");
        let tagged = |tag| check_written(find("server_key").unwrap(), Written { value: &v, raw: None, tag: Some(tag) });
        assert!(tagged("!!str").is_ok());
        assert!(tagged("!!binary").unwrap_err().message.contains("`!!binary`"));
    }
}
