//! **Stage 1 of 4: params.** Takes the operator's Heat environment files and
//! gives one typed, validated [`Params`], or every problem in the input with
//! its file, line, column and key. Nothing here talks to a cloud.
//!
//! Files are merged in the order given, like `openstack stack create -e`:
//! a later file overrides an earlier one, and a value under `parameters`
//! overrides one under `parameter_defaults`.

pub mod credentials;
pub mod defs;
pub mod envfile;
pub mod error;
pub mod inputs;
pub mod own_cert;
pub mod secret;
pub mod values;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use envfile::{EnvFile, Section};
pub use error::{InputError, Problem, Where};
pub use secret::Secret;
use values::{Checked, Written};

/// Past this many problems the rest are counted, not listed: a file with
/// thousands of wrong keys is the wrong file, and a screenful says so.
pub const MAX_PROBLEMS: usize = 50;

/// Where the nodes' private network comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// An existing network, by name or ID.
    Existing(String),
    /// A network, subnet and router the stack creates.
    Create { cidr: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Blobs under /data on the manager (a Cinder volume when volume_size > 0).
    Filesystem,
    /// Blobs in a Swift container, with the operator's OpenStack credentials
    /// on the node (as in the seed).
    Swift { container: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub user: String,
    pub storage: Storage,
    pub cache_remote_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    pub count: u64,
    pub flavor: String,
    pub image: String,
}

/// What `seed_images` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seed {
    pub images: Vec<String>,
    /// Where they come from; `None`: through the stack's own cache.
    pub registry: Option<String>,
}

/// The agent a node's config is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeConfigFormat {
    /// `#cloud-config`, applied by Flatcar's coreos-cloudinit at every boot.
    CloudConfig,
    /// Ignition JSON (spec 3.3.0), applied once, before the first boot.
    Ignition,
}

/// Everything the later stages need, checked.
#[derive(Debug, Clone)]
pub struct Params {
    pub hostname: String,
    pub domain: String,
    pub server_key: String,
    pub server_flavor: String,
    pub server_image: String,
    pub fip_network: String,
    pub workers: Workers,
    pub network: Network,
    pub ssh_allowed_cidr: String,
    /// Who outside the stack may use the cache; `None` keeps it the stack's.
    pub cache_allowed_cidr: Option<String>,
    pub volume_size: u64,
    pub docker_mtu: u64,
    pub node_timeout: u64,
    pub node_config: NodeConfigFormat,
    /// Form the swarm over SSH once the stack is complete.
    pub handoff: bool,
    pub registry: Registry,
    /// Images the hand-off copies into the private registry.
    pub seed: Seed,
    /// The operator's own registry certificate, when given.
    pub own_certificate: Option<own_cert::OwnCertificate>,
    /// The `os_*` parameters, for [`credentials::resolve`].
    pub env_credentials: credentials::EnvFileCredentials,
    /// `resource_registry` and Heat's other sections, merged, for Heat.
    pub passthrough: serde_json::Map<String, serde_json::Value>,
    pub files: Vec<PathBuf>,
    /// Where each parameter that was set was written, for later messages
    /// about its value (an unknown flavor points at its line).
    pub origins: BTreeMap<String, Where>,
    /// Values that work but are likely a mistake, each with where it was set.
    pub warnings: Vec<String>,
}

impl Params {
    /// The registry's name: `hostname.domain`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }

    /// Where a parameter was set; the last file for a default.
    pub fn origin(&self, key: &str) -> Where {
        self.origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| Where::file(self.files.last().map_or(Path::new("<env>"), |p| p.as_path())))
    }

    /// Makes the hostname `hostname-SUFFIX`, for parallel stacks of one env
    /// file. The suffix is a DNS label's tail, and every server name of the
    /// stack (the manager's is the hostname, a worker's
    /// `hostname-worker-N`) stays within 53 characters.
    pub fn with_name_suffix(&mut self, suffix: &str, at: Where) -> Result<(), Problem> {
        const SERVER_NAME_MAX: usize = 53;
        let bad = |why: String| {
            Problem::new(at.clone(), why)
                .hint("a suffix has lower-case letters, digits and inner hyphens, such as a CI job number: ci-4711")
        };
        let ok = !suffix.is_empty()
            && suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !suffix.starts_with('-')
            && !suffix.ends_with('-');
        if !ok {
            return Err(bad(format!("`{}` cannot end a host name", error::echo(suffix))));
        }
        let hostname = format!("{}-{suffix}", self.hostname);
        let last_worker = self.workers.count.saturating_sub(1);
        let longest =
            if self.workers.count > 0 { format!("{hostname}-worker-{last_worker}") } else { hostname.clone() };
        if longest.len() > SERVER_NAME_MAX {
            let room = SERVER_NAME_MAX.saturating_sub(longest.len() - suffix.len());
            return Err(bad(format!(
                "with it the server name {longest} is {} characters, over {SERVER_NAME_MAX}; this env file leaves \
                 room for a suffix of {room}",
                longest.len()
            )));
        }
        self.hostname = hostname;
        Ok(())
    }

    /// Reads, merges and checks the environment files.
    pub fn load(paths: &[PathBuf]) -> Result<Params, InputError> {
        let mut problems = Vec::new();
        let mut files = Vec::new();
        for p in paths {
            match EnvFile::load(p) {
                Ok(f) => files.push(f),
                Err(mut e) => problems.append(&mut e),
            }
        }
        if !problems.is_empty() {
            return Err(InputError(problems));
        }
        Params::from_files(&files)
    }

    pub fn from_files(files: &[EnvFile]) -> Result<Params, InputError> {
        let last_file = files.last().map_or_else(|| PathBuf::from("<no environment file>"), |f| f.path.clone());
        if files.is_empty() {
            return Err(InputError(vec![Problem::new(
                Where::file(&last_file),
                "no environment file given; pass one with --env FILE",
            )]));
        }
        let merged = merge(files);
        let mut problems = Vec::new();
        let known = defs::names();
        // A misspelled required key is reported once, as the misspelling,
        // not again as a missing parameter.
        let mut meant = Vec::new();
        for (i, entry) in merged.unknown.iter().enumerate() {
            // Past the problems that will be shown, an unknown key is only
            // counted: a file of 40,000 keys must not cost a "did you mean"
            // search each.
            if i >= MAX_PROBLEMS {
                problems.push(Problem::new(entry.at.clone(), "unknown parameter"));
                continue;
            }
            meant.extend(error::closest(&entry.key, &known));
            let hidden = entry.key.chars().find(|c| error::is_invisible(*c));
            let message = match hidden {
                Some(c) => {
                    format!("unknown parameter `{}` (it contains {})", error::echo(&entry.key), error::code_point(c))
                }
                None => format!("unknown parameter `{}`", error::echo(&entry.key)),
            };
            problems.push(
                Problem::new(entry.at.clone(), message)
                    .key(&error::echo(&entry.key))
                    .suggest_from(&entry.key, &known)
                    .hint_if_none("`provision params` lists the parameters"),
            );
        }
        let mut get = Getter::new(&merged, &mut problems, Where::file(&last_file), meant);
        let text = |g: &mut Getter, n| g.text(n);
        let hostname = text(&mut get, "hostname");
        let domain = text(&mut get, "domain");
        let server_key = text(&mut get, "server_key");
        let server_flavor = text(&mut get, "server_flavor");
        let server_image = text(&mut get, "server_image");
        let fip_network = text(&mut get, "fip_network");
        let workers = Workers {
            count: get.count("worker_count"),
            flavor: get.opt_text("worker_flavor").unwrap_or_else(|| server_flavor.clone()),
            image: get.opt_text("worker_image").unwrap_or_else(|| server_image.clone()),
        };
        let private_cidr = get.text("private_cidr");
        let network = match get.opt_text("private_network") {
            Some(name) => Network::Existing(name),
            None => Network::Create { cidr: private_cidr },
        };
        let storage = match get.text("registry_storage").as_str() {
            "swift" => Storage::Swift { container: get.text("swift_container") },
            _ => Storage::Filesystem,
        };
        let registry =
            Registry { user: get.text("registry_user"), storage, cache_remote_url: get.text("cache_remote_url") };
        let ssh_allowed_cidr = get.text("ssh_allowed_cidr");
        let cache_allowed_cidr = get.opt_text("cache_allowed_cidr");
        let seed = Seed { images: get.list("seed_images"), registry: get.opt_text("seed_registry") };
        let own_files: Vec<(&'static str, String)> =
            own_cert::KEYS.iter().filter_map(|k| get.opt_text(k).map(|v| (*k, v))).collect();
        let volume_size = get.count("volume_size");
        let docker_mtu = get.count("docker_mtu");
        let node_timeout = get.count("node_timeout");
        let handoff = get.text("handoff") == "true";
        let node_config = match get.text("node_config").as_str() {
            "ignition" => NodeConfigFormat::Ignition,
            _ => NodeConfigFormat::CloudConfig,
        };
        let env_credentials = credentials::EnvFileCredentials {
            file: merged
                .value_at("os_authurl")
                .or_else(|| merged.value_at("os_password"))
                .and_then(|w| w.path().map(Path::to_path_buf)),
            auth_url: get.opt_text("os_authurl"),
            username: get.opt_text("os_username"),
            password: get.opt_secret("os_password"),
            region: get.opt_text("os_region"),
            project_name: get.opt_text("os_project_name"),
            user_domain: get.text("os_user_domain_name"),
            project_domain: get.text("os_project_domain_name"),
        };
        if !problems.is_empty() {
            // In reading order: file by file, line by line; missing keys last.
            let file_pos =
                |p: &Problem| files.iter().position(|f| Some(f.path.as_path()) == p.at.path()).unwrap_or(usize::MAX);
            problems.sort_by_key(|p| (file_pos(p), p.at.line().unwrap_or(u64::MAX), p.at.column()));
            if problems.len() > MAX_PROBLEMS {
                let more = problems.len() - MAX_PROBLEMS;
                problems.truncate(MAX_PROBLEMS);
                problems.push(
                    Problem::more(Where::file(&last_file), more).hint("fix these first; is this the right file?"),
                );
            }
            return Err(InputError(problems));
        }
        let fqdn_len = hostname.len() + 1 + domain.len();
        if fqdn_len > 253 {
            return Err(InputError(vec![
                Problem::new(
                    merged.value_at("domain").unwrap_or(Where::file(&last_file)),
                    format!("hostname.domain is {fqdn_len} characters; at most 253"),
                )
                .key("domain"),
            ]));
        }
        let mut warnings = Vec::new();
        let own_certificate = match own_files.as_slice() {
            [] => None,
            [cert, key, ca] => {
                let named = |(k, v): &(&'static str, String)| {
                    own_cert::Named::new(k, merged.value_at(k).unwrap_or(Where::file(&last_file)), v)
                };
                let fqdn = format!("{hostname}.{domain}");
                let (own, warning) =
                    own_cert::load(&named(cert), &named(key), &named(ca), &fqdn, time::OffsetDateTime::now_utc())
                        .map_err(|p| InputError(vec![p]))?;
                warnings.extend(warning);
                Some(own)
            }
            some => {
                let (given, _) = &some[0];
                let missing: Vec<&str> =
                    own_cert::KEYS.iter().copied().filter(|k| !some.iter().any(|(g, _)| g == k)).collect();
                return Err(InputError(vec![
                    Problem::new(
                        merged.value_at(given).unwrap_or(Where::file(&last_file)),
                        format!("`{given}` needs {} too", missing.join(" and ")),
                    )
                    .key(given)
                    .hint("your own registry certificate takes all three: registry_cert_file, registry_key_file and registry_ca_file"),
                ]));
            }
        };
        if let Network::Create { cidr } = &network
            && let Some(w) = values::subnet_warning(cidr)
        {
            let at = merged.value_at("private_cidr").unwrap_or(Where::file(&last_file));
            warnings.push(format!("{at}: {w}"));
        }
        tracing::debug!(files = ?files.iter().map(|f| &f.path).collect::<Vec<_>>(), "parameters loaded");
        Ok(Params {
            hostname,
            domain,
            server_key,
            server_flavor,
            server_image,
            fip_network,
            workers,
            network,
            ssh_allowed_cidr,
            cache_allowed_cidr,
            volume_size,
            docker_mtu,
            node_timeout,
            node_config,
            handoff,
            registry,
            own_certificate,
            seed,
            env_credentials,
            passthrough: merged.passthrough,
            files: files.iter().map(|f| f.path.clone()).collect(),
            origins: merged.values.iter().map(|(k, e)| (k.clone(), e.at.clone())).collect(),
            warnings,
        })
    }
}

/// The environment files folded into one view: the winning value of every
/// known parameter, where it was written, and what was not recognised.
struct Merged {
    values: HashMap<String, envfile::Entry>,
    unknown: Vec<envfile::Entry>,
    passthrough: serde_json::Map<String, serde_json::Value>,
}

impl Merged {
    fn value_at(&self, name: &str) -> Option<Where> {
        self.values.get(name).map(|e| e.at.clone())
    }
}

fn merge(files: &[EnvFile]) -> Merged {
    let mut from_defaults: HashMap<String, envfile::Entry> = HashMap::new();
    let mut from_parameters: HashMap<String, envfile::Entry> = HashMap::new();
    let mut unknown = Vec::new();
    let mut passthrough = serde_json::Map::new();
    for file in files {
        for (section, entries) in
            [(Section::ParameterDefaults, &file.parameter_defaults), (Section::Parameters, &file.parameters)]
        {
            for e in entries {
                if defs::find(&e.key).is_none() {
                    unknown.push(e.clone());
                    continue;
                }
                let target = if section == Section::Parameters { &mut from_parameters } else { &mut from_defaults };
                target.insert(e.key.clone(), e.clone());
            }
        }
        for (k, v) in &file.passthrough {
            match (passthrough.get_mut(k), v) {
                // resource_registry mappings from later files add to and
                // override earlier ones, as Heat merges them.
                (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => {
                    for (nk, nv) in new {
                        old.insert(nk.clone(), nv.clone());
                    }
                }
                _ => {
                    passthrough.insert(k.clone(), v.clone());
                }
            }
        }
    }
    from_defaults.extend(from_parameters);
    Merged { values: from_defaults, unknown, passthrough }
}

/// Reads checked values out of [`Merged`], collecting problems instead of
/// stopping at the first. Every parameter is checked when the getter is
/// made, whether or not the rest of the input uses it: a wrong
/// `swift_container` is wrong with filesystem storage too.
struct Getter {
    checked: HashMap<&'static str, Option<Checked>>,
}

impl Getter {
    fn new(merged: &Merged, problems: &mut Vec<Problem>, missing_at: Where, meant: Vec<&'static str>) -> Getter {
        let mut checked = HashMap::new();
        for def in defs::DEFS {
            let name = def.name;
            let value = match merged.values.get(name) {
                Some(entry) => {
                    let written = Written { value: &entry.value, raw: entry.raw.as_deref(), tag: entry.tag.as_deref() };
                    match values::check_written(def, written) {
                        Ok(v) => Some(v),
                        Err(bad) => {
                            let p = Problem::new(entry.at.clone(), format!("`{name}`: {}", bad.message)).key(name);
                            problems.push(match bad.hint {
                                Some(h) => p.hint(h),
                                None => p,
                            });
                            None
                        }
                    }
                }
                None if def.required && meant.contains(&name) => None,
                None if def.required => {
                    problems.push(
                        Problem::new(missing_at.clone(), format!("required parameter `{name}` is missing"))
                            .key(name)
                            .hint(format!("add `{name}: ...` under `parameters:` ({})", def.kind.describe())),
                    );
                    None
                }
                None => def
                    .default
                    .map(|d| values::check(def, &serde_json::Value::String(d.into())).expect("defaults are valid")),
            };
            checked.insert(name, value);
        }
        Getter { checked }
    }

    fn checked(&self, name: &str) -> Option<Checked> {
        self.checked.get(name).expect("parameter is in the table").clone()
    }

    fn opt_text(&mut self, name: &str) -> Option<String> {
        match self.checked(name)? {
            Checked::Text(t) => Some(t),
            Checked::Count(n) => Some(n.to_string()),
            Checked::Secret(_) | Checked::List(_) => None,
        }
    }

    fn text(&mut self, name: &str) -> String {
        self.opt_text(name).unwrap_or_default()
    }

    fn count(&mut self, name: &str) -> u64 {
        match self.checked(name) {
            Some(Checked::Count(n)) => n,
            _ => 0,
        }
    }

    fn list(&mut self, name: &str) -> Vec<String> {
        match self.checked(name) {
            Some(Checked::List(l)) => l,
            _ => Vec::new(),
        }
    }

    fn opt_secret(&mut self, name: &str) -> Option<Secret> {
        match self.checked(name)? {
            Checked::Secret(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[&str]) -> Params {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Params::load(&files.iter().map(|f| root.join(f)).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_handoff_and_the_node_config_format_have_their_defaults() {
        let seed = load(&["examples/env_params.yml"]);
        assert!(seed.handoff);
        assert_eq!(seed.node_config, NodeConfigFormat::CloudConfig, "the seed's format");
        // The local cloud's nodes boot (dev/boot), so it hands off too.
        assert!(load(&["examples/env_params.yml", "env/local-cloud.yml"]).handoff);
    }

    #[test]
    fn a_name_suffix_makes_a_new_hostname_within_server_name_limits() {
        let mut p = load(&["examples/env_params.yml"]);
        p.with_name_suffix("ci-4711", Where::flag("--name-suffix")).unwrap();
        assert_eq!(p.hostname, "myhost-ci-4711");
        assert_eq!(p.fqdn(), "myhost-ci-4711.mydomain.com");
        for bad in ["CI", "-x", "x-", "a_b", "", "ä"] {
            let e = load(&["examples/env_params.yml"]).with_name_suffix(bad, Where::flag("--name-suffix")).unwrap_err();
            assert!(e.message.contains("cannot end a host name"), "{bad}: {}", e.message);
        }
        let mut p = load(&["examples/env_params.yml"]);
        p.workers.count = 100;
        let e = p.with_name_suffix(&"x".repeat(40), Where::flag("--name-suffix")).unwrap_err();
        assert!(e.message.contains("room for a suffix of 36"), "{}", e.message);
        assert_eq!(p.hostname, "myhost", "unchanged when refused");
    }

    #[test]
    fn handoff_false_and_ignition_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o.yml");
        std::fs::write(&f, "parameters:\n  handoff: false\n  node_config: ignition\n").unwrap();
        let p = load(&["examples/env_params.yml", f.to_str().unwrap()]);
        assert!(!p.handoff);
        assert_eq!(p.node_config, NodeConfigFormat::Ignition);
    }
}
