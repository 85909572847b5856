//! Problems found in the operator's input, each pointing at a file, line,
//! column and key, with a suggestion where one is likely.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a problem is, as the operator gave it: a place in a file, a
/// command-line flag, an environment variable, or a file of the rendered
/// bundle (what Heat refused). The JSON report names which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    File { path: PathBuf, line: Option<u64>, column: Option<u64> },
    Flag(String),
    Variable(String),
    Rendered(String),
}

impl Where {
    pub fn file(path: &Path) -> Where {
        Where::File { path: path.to_path_buf(), line: None, column: None }
    }
    pub fn at(path: &Path, line: u64, column: u64) -> Where {
        Where::File { path: path.to_path_buf(), line: Some(line), column: Some(column) }
    }
    pub fn flag(flag: impl Into<String>) -> Where {
        Where::Flag(flag.into())
    }
    pub fn variable(name: impl Into<String>) -> Where {
        Where::Variable(name.into())
    }

    /// The file, for a problem in one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Where::File { path, .. } => Some(path),
            _ => None,
        }
    }
    pub fn line(&self) -> Option<u64> {
        match self {
            Where::File { line, .. } => *line,
            _ => None,
        }
    }
    pub fn column(&self) -> Option<u64> {
        match self {
            Where::File { column, .. } => *column,
            _ => None,
        }
    }

    /// For the JSON report: `{"file", "line", "column"}`, `{"flag"}`,
    /// `{"variable"}` or `{"rendered"}`.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = match self {
            Where::File { path, line, column } => serde_json::json!({"file": path, "line": line, "column": column}),
            Where::Flag(f) => serde_json::json!({"flag": f}),
            Where::Variable(v) => serde_json::json!({"variable": v}),
            Where::Rendered(f) => serde_json::json!({"rendered": f}),
        };
        let serde_json::Value::Object(map) = v else { unreachable!("each arm is an object") };
        map
    }
}

/// As in the JSON of a problem: `{"file", "line", "column"}`, `{"flag"}`,
/// `{"variable"}` or `{"rendered"}`.
impl serde::Serialize for Where {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Where::File { path, line, column } => {
                write!(f, "{}", path.display())?;
                if let (Some(l), Some(c)) = (line, column) {
                    write!(f, ":{l}:{c}")?;
                }
                Ok(())
            }
            Where::Flag(flag) => write!(f, "{flag}"),
            Where::Variable(name) => write!(f, "${name}"),
            Where::Rendered(file) => write!(f, "{file} (rendered)"),
        }
    }
}

/// One thing wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Where,
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
    /// For the last line of a long list: how many problems it stands for.
    pub not_shown: usize,
}

impl Problem {
    pub fn new(at: Where, message: impl Into<String>) -> Problem {
        Problem { at, key: None, message: message.into(), hint: None, not_shown: 0 }
    }

    /// Stands for `count` problems that are not listed.
    pub fn more(at: Where, count: usize) -> Problem {
        Problem { not_shown: count, ..Problem::new(at, format!("and {count} more problems not shown")) }
    }

    pub fn key(mut self, key: &str) -> Problem {
        self.key = Some(key.to_string());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    /// Adds "did you mean `x`?" when one of `known` is close to `word`.
    pub fn suggest_from(self, word: &str, known: &[&str]) -> Problem {
        match did_you_mean(word, known) {
            Some(hint) => self.hint(hint),
            None => self,
        }
    }

    pub fn hint_if_none(self, hint: impl Into<String>) -> Problem {
        if self.hint.is_some() { self } else { self.hint(hint) }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  help: {hint}")?;
        }
        Ok(())
    }
}

/// Everything wrong with the input, in the order it was found.
#[derive(Debug, thiserror::Error)]
pub struct InputError(pub Vec<Problem>);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        let total: usize = self.0.iter().map(|p| p.not_shown.max(1)).sum();
        if total > 1 {
            write!(f, "\n{total} problems in the input; nothing was done")?;
        }
        Ok(())
    }
}

/// What a YAML value is, in the operator's words.
pub fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing (an empty value)",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// At most this many characters of a value are shown back: a 50 MB value
/// pasted by mistake must not fill the terminal.
pub const ECHO_LIMIT: usize = 60;

/// `text` as it may be shown in a message: invisible, control and
/// bidirectional characters written as `\u{202E}` (so the message reads as
/// the bytes are, not as a terminal would reorder them), and cut after
/// [`ECHO_LIMIT`] characters with an ellipsis.
pub fn echo(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == ECHO_LIMIT {
            out.push('…');
            break;
        }
        if is_invisible(c) || c.is_control() {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that show as nothing, or that reorder what is shown around
/// them (Trojan Source): format characters (Unicode category Cf), controls
/// (Cc), and the line and paragraph separators YAML does not treat as line
/// breaks.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB
        | 0x0600..=0x0605 | 0x06DD | 0x070F | 0x0890 | 0x0891 | 0x08E2
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F | 0xE0100..=0xE01EF)
        || c.is_control()
}

/// `U+202E (RIGHT-TO-LEFT OVERRIDE)` for the characters an operator is
/// likely to meet; the code point alone for the rest.
pub fn code_point(c: char) -> String {
    let name = match c as u32 {
        0x0000 => "NUL",
        0x0007 => "BELL",
        0x0009 => "TAB",
        0x000A => "LINE FEED",
        0x000D => "CARRIAGE RETURN",
        0x001B => "ESCAPE",
        0x0085 => "NEXT LINE",
        0x00AD => "SOFT HYPHEN",
        0x200B => "ZERO WIDTH SPACE",
        0x200C => "ZERO WIDTH NON-JOINER",
        0x200D => "ZERO WIDTH JOINER",
        0x200E => "LEFT-TO-RIGHT MARK",
        0x200F => "RIGHT-TO-LEFT MARK",
        0x2028 => "LINE SEPARATOR",
        0x2029 => "PARAGRAPH SEPARATOR",
        0x202A => "LEFT-TO-RIGHT EMBEDDING",
        0x202B => "RIGHT-TO-LEFT EMBEDDING",
        0x202C => "POP DIRECTIONAL FORMATTING",
        0x202D => "LEFT-TO-RIGHT OVERRIDE",
        0x202E => "RIGHT-TO-LEFT OVERRIDE",
        0x2060 => "WORD JOINER",
        0x2066 => "LEFT-TO-RIGHT ISOLATE",
        0x2067 => "RIGHT-TO-LEFT ISOLATE",
        0x2068 => "FIRST STRONG ISOLATE",
        0x2069 => "POP DIRECTIONAL ISOLATE",
        0xFEFF => "ZERO WIDTH NO-BREAK SPACE (BOM)",
        _ => "",
    };
    if name.is_empty() { format!("U+{:04X}", c as u32) } else { format!("U+{:04X} ({name})", c as u32) }
}

/// A URL with any `user:password@` replaced by `***@`, so that no message,
/// warning or JSON result carries a password. Works on text that is not a
/// valid URL too: everything between `://` and the last `@` of the
/// authority is hidden.
pub fn redact_userinfo(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else { return text.to_string() };
    let authority_end = text[start..].find(['/', '?', '#']).map_or(text.len(), |i| start + i);
    match text[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]),
        None => text.to_string(),
    }
}

/// `!!binary` for `tag:yaml.org,2002:binary`: the tag as an operator writes it.
pub fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(rest) => format!("!!{rest}"),
        None => tag.to_string(),
    }
}

/// A YAML error from serde-saphyr in the file's terms. Its own messages name
/// Rust types and functions (`use from_str_multiple`, `budget breached:
/// Nodes { .. }`), which mean nothing to whoever wrote the file.
pub fn yaml_problem(path: &Path, err: &serde_saphyr::Error) -> Problem {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let where_ = match err.location() {
        Some(loc) if loc.line() > 0 => Where::at(path, loc.line(), loc.column()),
        _ => Where::file(path),
    };
    use super::envfile::{MAX_DEPTH, MAX_NODES};
    let expands = "aliases (`*name`) here expand to more than provision reads; is this an alias bomb?";
    let mut inner = err;
    let mut via_alias = false;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = inner {
        via_alias |= matches!(inner, E::AliasError { .. });
        inner = error;
    }
    let (message, hint): (String, Option<&str>) = match inner {
        E::MultipleDocuments { .. } => (
            "the file holds several YAML documents (a second `---`); provision reads one".into(),
            Some("remove the `---` line and what follows, or put it in its own file and pass --env twice"),
        ),
        E::Budget { breach, .. } => match breach {
            B::Depth { .. } => (
                format!("values are nested more than {MAX_DEPTH} levels deep"),
                Some("a parameter is one value; resource_registry is a mapping a few levels deep"),
            ),
            B::Nodes { .. } if via_alias => {
                (expands.into(), Some("write the values out instead of repeating them through aliases"))
            }
            B::Nodes { .. } => (
                format!("the file has more than {MAX_NODES} YAML nodes (values, lists and mappings)"),
                Some("an environment file has a few dozen values; is this the right file?"),
            ),
            B::Documents { .. } => ("the file holds several YAML documents; provision reads one".into(), None),
            B::Events { .. } | B::ScalarBytes { .. } => (
                "the file has more YAML than provision reads".into(),
                Some("an environment file has a few dozen values; is this the right file?"),
            ),
            _ => (expands.into(), Some("write the values out instead of repeating them through aliases")),
        },
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => {
            (expands.into(), Some("write the values out instead of repeating them through aliases"))
        }
        E::UnknownAnchor { .. } => (
            "this alias (`*name`) refers to no anchor (`&name`) written before it".into(),
            Some("define the anchor first, or write the value out"),
        ),
        E::NullIntoString { .. } => ("a value is missing here (an empty key?)".into(), Some("write `name: value`")),
        E::Eof { .. } => ("the file ends in the middle of a value".into(), None),
        E::DuplicateMappingKey { .. } => {
            let shown = inner.to_string();
            let key = shown
                .strip_prefix("duplicate mapping key: ")
                .and_then(|r| r.split(',').next())
                .map(|k| echo(k.trim()))
                .unwrap_or_default();
            (format!("`{key}` is given twice in the same mapping"), Some("keep one of them"))
        }
        E::InvalidScalar { .. } => (
            "this value is not what its tag (`!!int`, `!!float`, ...) says it is".into(),
            Some("remove the tag; provision reads plain values (quote one to keep it text)"),
        ),
        E::MergeValueNotMapOrSeqOfMaps { .. } => {
            ("a merge key (`<<`) must name a mapping (`<<: *defaults`)".into(), None)
        }
        other => {
            let shown = other.to_string();
            let first = shown.lines().next().unwrap_or("").trim();
            // serde-saphyr repeats the position in its message; ours already has it.
            let first = first.split(" at line ").next().unwrap_or(first);
            if first.contains("expected a Heat environment") || first.contains("expected mapping start") {
                (
                    "the environment file must be a mapping of sections such as `parameters:`, not a list or a value"
                        .into(),
                    None,
                )
            } else if first.contains("simple key") || first.contains("could not find expected ':'") {
                (
                    "a key here is too long or is not followed by `:`".into(),
                    Some("a key is a parameter name such as `server_flavor`"),
                )
            } else if first.contains("expected string scalar") {
                (
                    "a key here is a list or a mapping; a key is a name such as `server_flavor`".into(),
                    Some("write `name: value`"),
                )
            } else if first.contains("quoted scalar") && (first.contains("escape") || first.contains("hexadecimal")) {
                (
                    "a backslash in double quotes starts an escape such as `\\n`; this one is not valid".into(),
                    Some("use single quotes, where a backslash is only a backslash"),
                )
            } else if first.contains("BOM") {
                (
                    "a byte order mark (U+FEFF) inside the file".into(),
                    Some("delete it; a copy from a web page or document can carry hidden characters"),
                )
            } else if is_jargon(first) {
                ("this is not a value provision can read here".into(), None)
            } else {
                (format!("not valid YAML: {}", echo_message(first)), None)
            }
        }
    };
    let p = Problem::new(where_, message);
    match hint {
        Some(h) => p.hint(h),
        None => p,
    }
}

/// Words from Rust and serde that must not reach the operator.
fn is_jargon(message: &str) -> bool {
    ["Option<", "String", "serde", "from_str", "deserializ", "struct", "enum", "variant", "u64", "i64", "f64", "{ "]
        .iter()
        .any(|w| message.contains(w))
}

/// A YAML scanner message may quote the offending character; it is shown
/// escaped and bounded like any echoed value.
fn echo_message(message: &str) -> String {
    message
        .chars()
        .take(200)
        .map(|c| if is_invisible(c) { format!("\\u{{{:04X}}}", c as u32) } else { c.to_string() })
        .collect()
}

/// "did you mean `x`?" for the [`closest`] known word, if there is one.
pub fn did_you_mean(word: &str, known: &[&str]) -> Option<String> {
    closest(word, known).map(|best| format!("did you mean `{best}`?"))
}

/// The known word nearest to `word`, if it is near enough to be a typo:
/// at most a third of its letters wrong, and never more than 3.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let word = word.to_lowercase();
    known
        .iter()
        // A length that far off is never within the limit: skip the table.
        .filter(|k| k.chars().count().abs_diff(word.chars().count()) <= limit)
        // Optimal string alignment: Levenshtein plus swapped neighbours,
        // the commonest typo (`sever` for `server` is a deletion, `sevrer`
        // a swap).
        .map(|k| (strsim::osa_distance(&word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_says_what_kind_of_place_it_is_in() {
        let table = [
            (
                Where::at(Path::new("env.yml"), 3, 5),
                "env.yml:3:5",
                serde_json::json!({"file": "env.yml", "line": 3, "column": 5}),
            ),
            (
                Where::file(Path::new("env.yml")),
                "env.yml",
                serde_json::json!({"file": "env.yml", "line": null, "column": null}),
            ),
            (Where::flag("--name"), "--name", serde_json::json!({"flag": "--name"})),
            (Where::variable("OS_CACERT"), "$OS_CACERT", serde_json::json!({"variable": "OS_CACERT"})),
            (
                Where::Rendered("template.yaml".into()),
                "template.yaml (rendered)",
                serde_json::json!({"rendered": "template.yaml"}),
            ),
        ];
        for (at, shown, json) in table {
            assert_eq!(at.to_string(), shown);
            assert_eq!(serde_json::Value::Object(at.to_json()), json, "{shown}");
            assert_eq!(at.path().is_some(), shown.starts_with("env.yml"), "{shown}");
        }
    }

    #[test]
    fn suggests_near_misses_only() {
        let known = ["server_flavor", "server_image", "hostname", "domain"];
        assert_eq!(closest("sever_flavor", &known), Some("server_flavor"));
        assert_eq!(closest("server_flavour", &known), Some("server_flavor"));
        assert_eq!(closest("hostnmae", &known), Some("hostname"));
        assert_eq!(closest("Domain", &known), Some("domain"));
        assert_eq!(closest("completely_else", &known), None);
        assert_eq!(closest("x", &known), None);
    }

    #[test]
    fn distance_counts_swaps_as_one() {
        let d = strsim::osa_distance;
        assert_eq!(d("ab", "ba"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
    }

    #[test]
    fn userinfo_is_hidden_even_in_broken_urls() {
        assert_eq!(redact_userinfo("https://a:b@host:1/p@q"), "https://***@host:1/p@q");
        assert_eq!(redact_userinfo("https://a:b@c@host/"), "https://***@host/");
        assert_eq!(redact_userinfo("https://host/x@y"), "https://host/x@y");
        assert_eq!(redact_userinfo("no scheme a:b@c"), "no scheme a:b@c");
        assert_eq!(redact_userinfo("https://a:b@host:99999"), "https://***@host:99999");
    }

    #[test]
    fn echo_is_bounded_and_spells_out_hidden_characters() {
        assert_eq!(echo("a\u{202E}b"), "a\\u{202E}b");
        let long = echo(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), ECHO_LIMIT + 1);
        assert!(long.ends_with('…'));
    }
}
