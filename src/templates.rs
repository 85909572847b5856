//! The Tera templates under `templates/`, built into the binary and
//! overridable file by file with `--templates DIR`.

use std::path::{Path, PathBuf};

use tera::{Context, Tera};

/// Every template provision renders, by its path under `templates/`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("heat/stack.yaml", include_str!("../templates/heat/stack.yaml")),
    ("heat/worker.yaml", include_str!("../templates/heat/worker.yaml")),
    ("nodes/signal.sh", include_str!("../templates/nodes/signal.sh")),
    ("nodes/data-volume.sh", include_str!("../templates/nodes/data-volume.sh")),
    ("nodes/redis.conf", include_str!("../templates/nodes/redis.conf")),
    ("nodes/secrets.sh", include_str!("../templates/nodes/secrets.sh")),
    ("nodes/units/container.service", include_str!("../templates/nodes/units/container.service")),
    ("nodes/units/docker-data.conf", include_str!("../templates/nodes/units/docker-data.conf")),
    ("nodes/units/provision-data.service", include_str!("../templates/nodes/units/provision-data.service")),
    ("nodes/units/provision-hosts.service", include_str!("../templates/nodes/units/provision-hosts.service")),
    ("nodes/units/provision-secrets.service", include_str!("../templates/nodes/units/provision-secrets.service")),
    ("nodes/units/provision-signal.service", include_str!("../templates/nodes/units/provision-signal.service")),
    (
        "imixs/management/proxy/docker-compose.yml",
        include_str!("../templates/imixs/management/proxy/docker-compose.yml"),
    ),
    ("imixs/management/ui/docker-compose.yml", include_str!("../templates/imixs/management/ui/docker-compose.yml")),
    ("imixs/apps/hello/docker-compose.yml", include_str!("../templates/imixs/apps/hello/docker-compose.yml")),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("--templates: {name} is not one of provision's templates{}", hint(.name))]
    Unknown { name: String },
}

/// The closest template name, for a file that overrides none.
fn hint(name: &str) -> String {
    let known: Vec<&str> = BUILTIN.iter().map(|(k, _)| *k).collect();
    match crate::params::error::closest(name, &known) {
        Some(k) => format!("; did you mean {k}?"),
        None => "; it takes the layout of templates/ in provision's source".into(),
    }
}

pub struct Templates {
    tera: Tera,
    /// The files taken from `--templates DIR` instead of the built-in ones.
    pub overridden: Vec<PathBuf>,
}

impl Templates {
    pub fn load(dir: Option<&Path>) -> Result<Templates, RenderError> {
        if let Some(dir) = dir {
            refuse_strangers(dir, dir)?;
        }
        let mut tera = Tera::new();
        let mut overridden = Vec::new();
        let mut sources = Vec::new();
        for (name, builtin) in BUILTIN {
            let text = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    let t = std::fs::read_to_string(&path)
                        .map_err(|source| RenderError::Read { path: path.clone(), source })?;
                    overridden.push(path);
                    t
                }
                None => builtin.to_string(),
            };
            sources.push((*name, text));
        }
        tera.register_filter("yaml", |value: &str, _: tera::Kwargs, _: &tera::State| yaml_scalar(value));
        // All at once, so templates can include each other in any order.
        tera.add_raw_templates(sources).map_err(|e| template_error("templates", &e))?;
        Ok(Templates { tera, overridden })
    }

    /// The template's own text (for files shipped verbatim, like scripts).
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, RenderError> {
        self.tera.render(name, ctx).map_err(|e| template_error(name, &e))
    }
}

/// VALUE as one double-quoted YAML scalar, whatever it holds: the only way
/// a value enters a YAML template (`{{ value | yaml }}`), so no value can
/// add a key, an item or a document. Everything outside printable ASCII is
/// escaped, line and paragraph separators and byte-order marks included.
pub fn yaml_scalar(value: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => write!(out, "\\u{:04X}", c as u32).expect("a String takes writes"),
            c => write!(out, "\\U{:08X}", c as u32).expect("a String takes writes"),
        }
    }
    out.push('"');
    out
}

/// A file under `--templates` that replaces no template is a mistake (a
/// misspelt name, or a layout from another version): better said than
/// silently ignored.
fn refuse_strangers(root: &Path, dir: &Path) -> Result<(), RenderError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RenderError::Read { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let path = entry.map_err(|source| RenderError::Read { path: dir.to_path_buf(), source })?.path();
        if path.is_dir() {
            refuse_strangers(root, &path)?;
            continue;
        }
        let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if !BUILTIN.iter().any(|(known, _)| *known == name) {
            return Err(RenderError::Unknown { name });
        }
    }
    Ok(())
}

fn template_error(name: &str, e: &tera::Error) -> RenderError {
    // Tera's error chain holds the useful part (which variable, which line).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    RenderError::Template { name: name.to_string(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yaml_scalar_reads_back_as_the_value_it_was() {
        for v in
            ["plain", "a: b\n  - path: /etc/passwd", "'\"\\", "\r\u{2028}\u{2029}\u{85}\u{feff}", "{{ x }}", "é😀", ""]
        {
            let doc = format!("key: {}\n", yaml_scalar(v));
            let back: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(&doc).unwrap();
            assert_eq!(back["key"], v, "{doc}");
            assert_eq!(back.len(), 1);
        }
    }
}
