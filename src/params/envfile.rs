//! The raw stage: one Heat environment file, read into its sections with the
//! location of every key. Nothing here knows what a parameter means; it only
//! checks that the file is the shape Heat accepts.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};

use super::error::{self, Problem, Where};

/// The sections provision reads. `resource_registry` is passed to Heat as
/// written.
pub const SECTIONS: &[&str] = &["parameters", "parameter_defaults", "resource_registry"];

/// Sections Heat knows that provision does not pass on: refused by name,
/// rather than silently dropped.
const HEAT_ONLY: &[&str] = &["encrypted_param_names", "event_sinks", "parameter_merge_strategies"];

/// An environment file is a few kilobytes; anything past this is the wrong
/// file (or `/dev/zero`) and is refused before it is read whole.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// YAML nodes (values, lists, mappings, with aliases expanded) a file may
/// hold. A real environment file has under a hundred; serde-saphyr's own
/// default (250,000) lets an alias bomb take some 60 MiB before it stops.
pub const MAX_NODES: usize = 20_000;

/// Nesting of lists and mappings: resource_registry is three levels deep.
pub const MAX_DEPTH: usize = 64;

/// The source text of a scalar is kept up to this many bytes: enough to
/// show any number as it was written, bounded for a pasted megabyte.
const MAX_RAW_BYTES: usize = 1024;

/// One `key: value` under `parameters` or `parameter_defaults`, with where it
/// was written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: serde_json::Value,
    /// The scalar as written in the file (`012`, `1e3`, `"a"`), so that a
    /// number is shown and judged as the operator typed it, not as YAML
    /// re-formats it. `None` for lists, mappings and unknown positions.
    pub raw: Option<String>,
    /// An explicit tag such as `!!binary`, as written.
    pub tag: Option<String>,
    pub at: Where,
}

/// Which of the two parameter sections an entry came from. Both set values
/// of the same template parameters; `parameters` wins over
/// `parameter_defaults`, as in Heat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Parameters,
    ParameterDefaults,
}

#[derive(Debug, Default)]
pub struct EnvFile {
    pub path: PathBuf,
    pub parameters: Vec<Entry>,
    pub parameter_defaults: Vec<Entry>,
    /// Passed to Heat as it was written.
    pub passthrough: serde_json::Map<String, serde_json::Value>,
}

impl EnvFile {
    /// Reads and parses `path`. Every problem found is returned, not only the
    /// first, so an operator fixes a file in one pass.
    pub fn load(path: &Path) -> Result<EnvFile, Vec<Problem>> {
        let text = read_bounded(path).map_err(|p| vec![p])?;
        EnvFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<EnvFile, Vec<Problem>> {
        if text.trim().is_empty() {
            return Err(vec![Problem::new(
                Where::file(path),
                "the environment file is empty; expected a mapping with a `parameters:` section",
            )]);
        }
        if let Some((i, _)) = text.char_indices().find(|(_, c)| *c == '\0') {
            let (line, column) = position(text, i);
            return Err(vec![
                Problem::new(Where::at(path, line, column), "the file contains a NUL byte (U+0000)")
                    .hint("an environment file is YAML text; is this a binary file, or one saved as UTF-16?"),
            ]);
        }
        // YAML 1.2 booleans only: under YAML 1.1 a network named `n` or `no`
        // would read as `false`, and no parameter here is a boolean anyway.
        // `.inf` and `.nan` arrive as the words, to be refused with the
        // parameter's own message rather than as a YAML error.
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = MAX_NODES;
        budget.max_depth = MAX_DEPTH;
        budget.max_events = 4 * MAX_NODES;
        budget.max_aliases = 1_000;
        budget.max_anchors = 1_000;
        budget.max_total_scalar_bytes = 4 * MAX_FILE_BYTES as usize;
        let mut alias_limits = serde_saphyr::options::AliasLimits::default();
        alias_limits.max_total_replayed_events = MAX_NODES;
        let options = serde_saphyr::options! {
            strict_booleans: true,
            non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
            budget: Some(budget),
            alias_limits: alias_limits,
        };
        let raw: RawFile = match serde_saphyr::from_str_with_options(text, options) {
            Ok(raw) => raw,
            Err(err) => return Err(vec![error::yaml_problem(path, &err)]),
        };
        let at = |line: u64, column: u64| Where::at(path, line, column);
        let mut problems = Vec::new();
        let mut file = EnvFile { path: path.to_path_buf(), ..EnvFile::default() };
        for (key, body) in raw.sections {
            let where_ = at(key.referenced.line(), key.referenced.column());
            match body {
                RawSection::Entries(section, entries) => {
                    let list = entries
                        .into_iter()
                        .map(|(k, v)| Entry {
                            raw: scalar_source(text, &v),
                            tag: v.value.1.as_deref().map(error::short_tag),
                            value: v.value.0,
                            key: k.value,
                            at: at(k.referenced.line(), k.referenced.column()),
                        })
                        .collect();
                    match section {
                        Section::Parameters => file.parameters = list,
                        Section::ParameterDefaults => file.parameter_defaults = list,
                    }
                }
                RawSection::Passthrough(value) => {
                    file.passthrough.insert(key.value, value);
                }
                RawSection::NotAMapping(found) => problems.push(
                    Problem::new(
                        where_,
                        format!("section `{}` must be a mapping of names to values, found {found}", key.value),
                    )
                    .key(&key.value)
                    .hint(format!("write `{}:` on its own line and `name: value` pairs indented under it", key.value)),
                ),
                RawSection::HeatOnly => problems.push(
                    Problem::new(where_, format!("`{}` is a Heat section that provision does not pass on", key.value))
                        .key(&key.value)
                        .hint("remove it; provision reads parameters, parameter_defaults and resource_registry"),
                ),
                RawSection::Unknown => problems.push(
                    Problem::new(
                        where_,
                        format!("`{}` is not a section of a Heat environment file", error::echo(&key.value)),
                    )
                    .key(&error::echo(&key.value))
                    .suggest_from(&key.value, SECTIONS)
                    .hint_if_none(format!("the sections are: {}", SECTIONS.join(", "))),
                ),
            }
        }
        if problems.is_empty() { Ok(file) } else { Err(problems) }
    }
}

/// Reads at most [`MAX_FILE_BYTES`] (and one more, to know there was more):
/// the size on disk is checked first, but a device or a pipe has none.
fn read_bounded(path: &Path) -> Result<String, Problem> {
    let here = || Where::file(path);
    let cannot = |e: std::io::Error| Problem::new(here(), format!("cannot read the environment file: {e}"));
    let too_large = |size: String| {
        Problem::new(
            here(),
            format!("the environment file {size}; provision reads at most 1 MiB ({MAX_FILE_BYTES} bytes)"),
        )
        .hint("an environment file is a few kilobytes of YAML; is this the right file?")
    };
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.is_dir() {
        return Err(Problem::new(here(), "this is a directory, not an environment file")
            .hint("pass a YAML file with --env, such as env_params.yml"));
    }
    if meta.is_file() && meta.len() > MAX_FILE_BYTES {
        return Err(too_large(format!("is {} bytes", meta.len())));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)).map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large("holds more than 1 MiB".to_string()));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Problem::new(Where::at(path, 1, 1), "the file is UTF-16 text; provision reads UTF-8")
            .hint("save the file as UTF-8 (most editors have it under \"encoding\")"));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let bad = e.as_bytes()[good];
        let text = std::str::from_utf8(&e.as_bytes()[..good]).unwrap_or_default();
        let (line, column) = position(text, good);
        Problem::new(Where::at(path, line, column), format!("the file is not UTF-8 text (byte 0x{bad:02X} here)"))
            .hint("save the file as UTF-8; is it a binary file, or in Latin-1 or UTF-16?")
    })
}

/// Line and column (from 1, in characters) of byte `offset` of `text`.
pub fn position(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() as u64 + 1)
}

/// The text of a scalar value as written, where serde-saphyr knows its
/// bytes; of the anchor's scalar for an alias.
fn scalar_source(text: &str, v: &Spanned<Tagged<serde_json::Value>>) -> Option<String> {
    if v.value.0.is_array() || v.value.0.is_object() {
        return None;
    }
    let span = v.defined.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    let written = text.get(start..start.checked_add(len)?)?;
    let mut end = written.len().min(MAX_RAW_BYTES);
    while !written.is_char_boundary(end) {
        end -= 1;
    }
    Some(written[..end].to_string())
}

/// The whole file as serde sees it: an ordered list of sections.
struct RawFile {
    sections: Vec<(Spanned<String>, RawSection)>,
}

type RawEntries = Vec<(Spanned<String>, Spanned<Tagged<serde_json::Value>>)>;

enum RawSection {
    Entries(Section, RawEntries),
    Passthrough(serde_json::Value),
    NotAMapping(&'static str),
    HeatOnly,
    Unknown,
}

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FileVisitor)
    }
}

struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = RawFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Heat environment (a mapping of sections)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
        let mut sections = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let section = match key.value.as_str() {
                "parameters" | "parameter_defaults" => {
                    let which =
                        if key.value == "parameters" { Section::Parameters } else { Section::ParameterDefaults };
                    match map.next_value::<MaybeEntries>()? {
                        MaybeEntries::Entries(e) => RawSection::Entries(which, e),
                        MaybeEntries::Empty => RawSection::Entries(which, Vec::new()),
                        MaybeEntries::Other(found) => RawSection::NotAMapping(found),
                    }
                }
                // Heat reads it as a mapping of resource types; anything else
                // would fail at `stack create`, far from the line at fault.
                "resource_registry" => match map.next_value::<serde_json::Value>()? {
                    serde_json::Value::Object(m) => RawSection::Passthrough(serde_json::Value::Object(m)),
                    serde_json::Value::Null => RawSection::Passthrough(serde_json::Value::Object(Default::default())),
                    other => RawSection::NotAMapping(error::kind_of(&other)),
                },
                name if HEAT_ONLY.contains(&name) => {
                    map.next_value::<IgnoredAny>()?;
                    RawSection::HeatOnly
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    RawSection::Unknown
                }
            };
            sections.push((key, section));
        }
        Ok(RawFile { sections })
    }
}

/// A parameter section: usually a mapping, but an operator may leave it empty
/// (`parameters:` with nothing under it) or write a list by mistake.
enum MaybeEntries {
    Entries(RawEntries),
    Empty,
    Other(&'static str),
}

impl<'de> Deserialize<'de> for MaybeEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = MaybeEntries;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of parameter names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeEntries, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(MaybeEntries::Entries(entries))
    }
    fn visit_unit<E: de::Error>(self) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Empty)
    }
    fn visit_none<E: de::Error>(self) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Empty)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeEntries, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeEntries::Other("a list"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Other("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Other("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeEntries, E> {
        Ok(MaybeEntries::Other("a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_source_text() {
        let text = "parameters:\n  a: 012\n  b: &n 0x1F\n  c: *n\n  d: \"q\"\n  e: [1]\n";
        let f = EnvFile::parse(Path::new("t.yml"), text).unwrap();
        let raw: Vec<_> = f.parameters.iter().map(|e| e.raw.as_deref()).collect();
        assert_eq!(raw, [Some("012"), Some("0x1F"), Some("0x1F"), Some("\"q\""), None]);
    }

    #[test]
    fn positions_count_characters_from_one() {
        assert_eq!(position("ab\r\ncé\u{202E}x", 10), (2, 4));
        assert_eq!(position("x", 0), (1, 1));
    }

    #[test]
    fn library_words_do_not_reach_the_operator() {
        let deep = format!("parameters:\n  x: {}{}\n", "[".repeat(100), "]".repeat(100));
        let nodes = format!("resource_registry:\n  x: [{}]\n", vec!["a"; 300_000].join(","));
        for text in ["parameters: {}\n---\nparameters: {}\n", deep.as_str(), nodes.as_str(), "parameters:\n  : x\n"] {
            let problems = EnvFile::parse(Path::new("t.yml"), text).unwrap_err();
            let shown = problems[0].to_string();
            for jargon in ["budget", "Nodes {", "from_str", "Option<", "serde", "breached"] {
                assert!(!shown.contains(jargon), "{jargon} in: {shown}");
            }
            assert!(problems[0].at.line().is_some(), "{shown}");
        }
    }
}
