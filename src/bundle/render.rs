//! The Tera templates under `templates/`, built into the binary and
//! overridable file by file with `--templates DIR`.

use std::path::{Path, PathBuf};

use tera::{Context, Tera};

/// Every template provision renders, by its path under `templates/`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("heat/stack.yaml", include_str!("../../templates/heat/stack.yaml")),
    ("heat/worker.yaml", include_str!("../../templates/heat/worker.yaml")),
    ("nodes/signal.sh", include_str!("../../templates/nodes/signal.sh")),
    ("nodes/data-volume.sh", include_str!("../../templates/nodes/data-volume.sh")),
    ("nodes/redis.conf", include_str!("../../templates/nodes/redis.conf")),
    ("nodes/units/container.service", include_str!("../../templates/nodes/units/container.service")),
    ("nodes/units/docker-data.conf", include_str!("../../templates/nodes/units/docker-data.conf")),
    ("nodes/units/provision-data.service", include_str!("../../templates/nodes/units/provision-data.service")),
    ("nodes/units/provision-hosts.service", include_str!("../../templates/nodes/units/provision-hosts.service")),
    ("nodes/units/provision-signal.service", include_str!("../../templates/nodes/units/provision-signal.service")),
    (
        "imixs/management/proxy/docker-compose.yml",
        include_str!("../../templates/imixs/management/proxy/docker-compose.yml"),
    ),
    ("imixs/management/ui/docker-compose.yml", include_str!("../../templates/imixs/management/ui/docker-compose.yml")),
    ("imixs/apps/hello/docker-compose.yml", include_str!("../../templates/imixs/apps/hello/docker-compose.yml")),
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
        // All at once, so templates can include each other in any order.
        tera.add_raw_templates(sources).map_err(|e| template_error("templates", &e))?;
        Ok(Templates { tera, overridden })
    }

    /// The template's own text (for files shipped verbatim, like scripts).
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, RenderError> {
        self.tera.render(name, ctx).map_err(|e| template_error(name, &e))
    }
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
