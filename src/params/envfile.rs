//! The raw stage: one Heat environment file, read into its sections with the
//! location of every key. Nothing here knows what a parameter means; it only
//! checks that the file is the shape Heat accepts.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::error::{Problem, Where};

/// The sections provision reads. `resource_registry` is passed to Heat as
/// written.
pub const SECTIONS: &[&str] = &["parameters", "parameter_defaults", "resource_registry"];

/// Sections Heat knows that provision does not pass on: refused by name,
/// rather than silently dropped.
const HEAT_ONLY: &[&str] = &["encrypted_param_names", "event_sinks", "parameter_merge_strategies"];

/// One `key: value` under `parameters` or `parameter_defaults`, with where it
/// was written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: serde_json::Value,
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![Problem::new(Where::file(path), format!("cannot read the environment file: {e}"))])?;
        EnvFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<EnvFile, Vec<Problem>> {
        if text.trim().is_empty() {
            return Err(vec![Problem::new(
                Where::file(path),
                "the environment file is empty; expected a mapping with a `parameters:` section",
            )]);
        }
        // YAML 1.2 booleans only: under YAML 1.1 a network named `n` or `no`
        // would read as `false`, and no parameter here is a boolean anyway.
        let options = serde_saphyr::options! { strict_booleans: true };
        let raw: RawFile = match serde_saphyr::from_str_with_options(text, options) {
            Ok(raw) => raw,
            Err(err) => return Err(vec![yaml_problem(path, &err)]),
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
                            key: k.value,
                            value: v.value,
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
                RawSection::NotAMapping(found) => problems.push(Problem::new(
                    where_,
                    format!("section `{}` must be a mapping of names to values, found {found}", key.value),
                )),
                RawSection::HeatOnly => problems.push(
                    Problem::new(where_, format!("`{}` is a Heat section that provision does not pass on", key.value))
                        .key(&key.value)
                        .hint("remove it; provision reads parameters, parameter_defaults and resource_registry"),
                ),
                RawSection::Unknown => problems.push(
                    Problem::new(where_, format!("`{}` is not a section of a Heat environment file", key.value))
                        .key(&key.value)
                        .suggest_from(&key.value, SECTIONS)
                        .hint_if_none(format!("the sections are: {}", SECTIONS.join(", "))),
                ),
            }
        }
        if problems.is_empty() { Ok(file) } else { Err(problems) }
    }
}

fn yaml_problem(path: &Path, err: &serde_saphyr::Error) -> Problem {
    let where_ = match err.location() {
        Some(loc) => Where::at(path, loc.line(), loc.column()),
        None => Where::file(path),
    };
    let text = err.without_snippet().to_string();
    // serde-saphyr repeats the position in its message; ours already has it.
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.split(" at line ").next().unwrap_or(first);
    let message = if first.contains("expected a Heat environment") || first.contains("expected mapping start") {
        "the environment file must be a mapping of sections such as `parameters:`, not a list or a value".to_string()
    } else if let Some(rest) = first.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        format!("`{key}` is given twice in the same mapping")
    } else {
        format!("not valid YAML: {first}")
    };
    Problem::new(where_, message)
}

/// The whole file as serde sees it: an ordered list of sections.
struct RawFile {
    sections: Vec<(Spanned<String>, RawSection)>,
}

enum RawSection {
    Entries(Section, Vec<(Spanned<String>, Spanned<serde_json::Value>)>),
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
                "resource_registry" => RawSection::Passthrough(map.next_value()?),
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
    Entries(Vec<(Spanned<String>, Spanned<serde_json::Value>)>),
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
