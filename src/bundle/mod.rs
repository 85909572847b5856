//! **Stage 2 of 4: bundle.** Takes [`Params`] and the stack's state
//! directory and gives a [`Bundle`]: the Heat template and environment,
//! the node configs Heat reaches through `get_file`, and the registry's
//! certificates and secrets. Offline: no cloud is called.
//!
//! Two steps: [`Materials::ensure`] makes or reads what the state
//! directory keeps (certificates, password, SSH keys), and [`render`]
//! turns parameters and materials into the bundle without touching a file.
//!
//! A bundle written to disk deploys unchanged with
//! `openstack stack create -t template.yaml -e environment.yaml NAME`.

pub mod certs;
pub mod exposure;
pub mod node;
pub mod nodes;
pub mod outputs;
pub mod registry;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use tera::Context;

use crate::params::{Network, NodeConfigFormat, Params, Storage};
// The generated secrets kept in the state directory. Redis's password and
// the registries' HTTP secret are not among them: the manager makes those
// itself (see `registry::Secrets`).
use crate::state::layout::{HTPASSWD, REGISTRY_PASSWORD};
use crate::state::{self, FloatingIp, Mode, StateDir, StateError};
use crate::templates::Templates;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    #[error(transparent)]
    Render(#[from] crate::templates::RenderError),
    #[error("rendered {name} is not valid YAML: {message}")]
    Invalid { name: String, message: String },
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(
        "registry_storage: swift needs OpenStack credentials to put on the node (os_* parameters, OS_* variables or --os-cloud)"
    )]
    SwiftWithoutCredentials,
    /// A node config Nova would refuse as user_data.
    #[error("{}", too_large(.0))]
    UserDataTooLarge(Vec<(String, usize)>),
}

fn too_large(sizes: &[(String, usize)]) -> String {
    let each: Vec<String> = sizes.iter().map(|(name, size)| format!("{name} {size} bytes")).collect();
    format!(
        "a node config is too large for Nova's user_data: {} after base64, with {} bytes kept for what Heat fills in; \
         Nova takes at most {} bytes",
        each.join(", "),
        node::HEAT_HEADROOM,
        node::USER_DATA_LIMIT
    )
}

/// What the bundle is made from, besides the parameters.
pub struct Request<'a> {
    pub stack_name: &'a str,
    pub state: &'a StateDir,
    pub templates: Option<&'a Path>,
    /// The manager's floating IP, when it is allocated before the stack.
    pub floating_ip: Option<FloatingIp>,
    /// Needed only for Swift storage, whose driver logs in as the operator.
    pub swift_credentials: Option<registry::Swift>,
    pub now: time::OffsetDateTime,
}

/// A file of the bundle and who may read it once written.
#[derive(Clone)]
pub struct File {
    pub contents: String,
    pub mode: Mode,
}

/// Node configs hold the node's secrets: a debug trace shows their size,
/// never their text.
impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "File({} bytes, {:?})", self.contents.len(), self.mode)
    }
}

/// Everything Heat and the operator need.
#[derive(Debug)]
pub struct Bundle {
    pub template: String,
    pub environment: String,
    /// Heat's `files` map: the nested worker template and the node configs.
    pub files: BTreeMap<String, File>,
    pub ca_cert: String,
    pub registry_cert: String,
    pub summary: Summary,
}

/// What the operator is told about the bundle; no secrets.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub stack_name: String,
    pub registry: String,
    pub cache: String,
    pub registry_user: String,
    pub registry_password_file: PathBuf,
    pub ca_cert_file: PathBuf,
    pub certificate_names: Vec<String>,
    pub ca: certs::Outcome,
    pub server_certificate: certs::Outcome,
    pub workers: u64,
    pub network: String,
    pub storage: String,
    pub templates_overridden: Vec<PathBuf>,
    /// Open ports and what the stack makes.
    pub plan: exposure::Plan,
    /// Heat resources a create makes, nested ones included (the "of M" of
    /// the progress line).
    pub resources: usize,
}

/// Security group rules between the roles: swarm's own ports, the cache for
/// the workers, and SSH from the manager to workers (the jump host).
pub(crate) struct Rule {
    name: &'static str,
    group: &'static str,
    from: &'static str,
    protocol: &'static str,
    port: u16,
}

pub(crate) const SWARM_RULES: &[Rule] = &[
    Rule {
        name: "manager_from_workers_swarm_api",
        group: "manager_security_group",
        from: "worker_security_group",
        protocol: "tcp",
        port: 2377,
    },
    Rule {
        name: "manager_from_workers_gossip_tcp",
        group: "manager_security_group",
        from: "worker_security_group",
        protocol: "tcp",
        port: 7946,
    },
    Rule {
        name: "manager_from_workers_gossip_udp",
        group: "manager_security_group",
        from: "worker_security_group",
        protocol: "udp",
        port: 7946,
    },
    Rule {
        name: "manager_from_workers_overlay",
        group: "manager_security_group",
        from: "worker_security_group",
        protocol: "udp",
        port: 4789,
    },
    // The registry and the cache, for the workers' Docker.
    Rule {
        name: "manager_from_workers_cache",
        group: "manager_security_group",
        from: "worker_security_group",
        protocol: "tcp",
        port: CACHE_PORT,
    },
    Rule {
        name: "workers_from_manager_ssh",
        group: "worker_security_group",
        from: "manager_security_group",
        protocol: "tcp",
        port: 22,
    },
    Rule {
        name: "workers_from_manager_gossip_tcp",
        group: "worker_security_group",
        from: "manager_security_group",
        protocol: "tcp",
        port: 7946,
    },
    Rule {
        name: "workers_from_manager_gossip_udp",
        group: "worker_security_group",
        from: "manager_security_group",
        protocol: "udp",
        port: 7946,
    },
    Rule {
        name: "workers_from_manager_overlay",
        group: "worker_security_group",
        from: "manager_security_group",
        protocol: "udp",
        port: 4789,
    },
    Rule {
        name: "workers_from_workers_gossip_tcp",
        group: "worker_security_group",
        from: "worker_security_group",
        protocol: "tcp",
        port: 7946,
    },
    Rule {
        name: "workers_from_workers_gossip_udp",
        group: "worker_security_group",
        from: "worker_security_group",
        protocol: "udp",
        port: 7946,
    },
    Rule {
        name: "workers_from_workers_overlay",
        group: "worker_security_group",
        from: "worker_security_group",
        protocol: "udp",
        port: 4789,
    },
];

/// Images the manager runs, pinned so a re-run gets the same bits.
pub const REGISTRY_IMAGE: &str = "registry:2.8.3";
pub const REDIS_IMAGE: &str = "redis:7.2-alpine";

pub const REGISTRY_PORT: u16 = 5000;
pub const CACHE_PORT: u16 = 443;
const REDIS_PORT: u16 = 6379;

/// The manager's services. The cache is optional: registry 2.8 in proxy
/// mode exits at start when its upstream cannot be reached, and a node
/// whose private registry works is worth keeping while Docker Hub is down.
fn manager_services(data: &str) -> Vec<nodes::Service> {
    let service = |unit, description, container, dir: &str, mount, after, args: String, optional| nodes::Service {
        unit,
        description,
        container,
        data: format!("{data}/{dir}"),
        mount,
        after,
        args,
        optional,
        env_file: (container != "provision-redis").then_some(nodes::REGISTRY_ENV),
    };
    vec![
        service(
            "docker-redis.service",
            "Redis, the registries' blob-descriptor cache",
            "provision-redis",
            "redis",
            "/data",
            &[],
            format!("--entrypoint redis-server {REDIS_IMAGE} /etc/provision/redis/redis.conf"),
            false,
        ),
        service(
            "docker-registry.service",
            "Private registry on 5000",
            "provision-registry",
            "registry",
            "/var/lib/registry",
            &["docker-redis.service"],
            format!("{REGISTRY_IMAGE} /etc/provision/registry/config.yml"),
            false,
        ),
        service(
            "docker-registry-cache.service",
            "Pull-through cache on 443",
            "provision-cache",
            "cache",
            "/var/lib/registry",
            &["docker-redis.service"],
            format!("{REGISTRY_IMAGE} /etc/provision/registry/cache.yml"),
            true,
        ),
    ]
}

/// Seconds after its boot by which a node reports, whatever happens. Heat
/// starts its own `node_timeout` once the server is ACTIVE, which is no
/// earlier than the boot; the margin lets the node's FAILURE (with its
/// reason, and retries) arrive before Heat's bare timeout does.
pub fn signal_timeout(node_timeout: u64) -> u64 {
    node_timeout - (node_timeout / 4).min(60)
}

/// What a stack keeps in its state directory and its bundle is made
/// from: the registry's certificates, its password and htpasswd line, the
/// SSH keys. Made on the first run, read again on every later one; the
/// one step of the bundle that touches the state directory.
pub struct Materials {
    /// The names and addresses the server certificate is for.
    pub names: certs::Names,
    pub certs: certs::Certs,
    /// The registry login's line (its password stays in `password_file`).
    pub htpasswd: String,
    pub ssh: crate::keys::StackKeys,
    pub password_file: PathBuf,
    pub ca_cert_file: PathBuf,
}

impl Materials {
    pub fn ensure(params: &Params, req: &Request) -> Result<Materials, BundleError> {
        let ips: Vec<IpAddr> = req.floating_ip.iter().map(|f| f.address).collect();
        let names = certs::Names::for_registry(&params.hostname, &params.domain, &ips);
        let certs = match &params.own_certificate {
            Some(own) => certs::given(own),
            None => certs::ensure(req.state, req.stack_name, &names, req.now)?,
        };
        tracing::debug!(ca = ?certs.ca, server = ?certs.server, names = ?names, "registry certificates");
        let registry_password = secret(req.state, REGISTRY_PASSWORD, 24)?;
        let htpasswd = htpasswd(req.state, &params.registry.user, &registry_password)?;
        let ssh = crate::keys::stack_keys(req.state, &params.hostname)?;
        Ok(Materials {
            names,
            certs,
            htpasswd,
            ssh,
            password_file: req.state.file(REGISTRY_PASSWORD),
            ca_cert_file: match &params.own_certificate {
                Some(own) => own.ca_file.clone(),
                None => req.state.file(crate::state::layout::CA_CRT),
            },
        })
    }
}

/// The bundle of a stack: its materials made or read, then rendered.
pub fn build(params: &Params, req: &Request) -> Result<Bundle, BundleError> {
    let materials = Materials::ensure(params, req)?;
    let templates = Templates::load(req.templates)?;
    render(
        params,
        &Rendering {
            stack_name: req.stack_name,
            floating_ip: req.floating_ip.as_ref(),
            swift: req.swift_credentials.as_ref(),
        },
        &materials,
        &templates,
    )
}

/// What a rendering needs beside the parameters and the materials.
pub struct Rendering<'a> {
    pub stack_name: &'a str,
    pub floating_ip: Option<&'a FloatingIp>,
    pub swift: Option<&'a registry::Swift>,
}

/// The Heat template, environment and node configs, from values alone:
/// no file is read or written, so the same inputs give the same bundle.
pub fn render(
    params: &Params,
    req: &Rendering,
    materials: &Materials,
    templates: &Templates,
) -> Result<Bundle, BundleError> {
    let fqdn = params.fqdn();
    let Materials { names, certs, ssh, htpasswd, .. } = materials;

    let volume = params.volume_size > 0;
    let data = nodes::data_dir(volume);
    let blobs = match &params.registry.storage {
        Storage::Filesystem => registry::Blobs::Filesystem,
        Storage::Swift { .. } => {
            registry::Blobs::Swift(req.swift.cloned().ok_or(BundleError::SwiftWithoutCredentials)?)
        }
    };
    let inputs = registry::Inputs {
        fqdn: &fqdn,
        registry_port: REGISTRY_PORT,
        cache_port: CACHE_PORT,
        bind: "",
        redis_addr: &format!("127.0.0.1:{REDIS_PORT}"),
        blobs,
        remote_url: &params.registry.cache_remote_url,
        layout: registry::Layout::node(),
    };
    let daemon_json = serde_json::to_string_pretty(&json!({
        "registry-mirrors": [format!("https://{fqdn}")],
        "mtu": params.docker_mtu,
        "log-driver": "journald",
    }))
    .expect("plain data");
    let services = manager_services(data);
    let probes = [
        nodes::Probe { url: format!("https://{fqdn}:{REGISTRY_PORT}/v2/"), code: 401, optional: false },
        nodes::Probe { url: format!("https://{fqdn}/v2/"), code: 200, optional: true },
    ];
    let format = params.node_config;
    let shape = Shape { fqdn: &fqdn, volume, existing_network: matches!(params.network, Network::Existing(_)), format };
    let (template, worker_template) = heat_templates(templates, &shape)?;
    let resources = resource_count(&template, &worker_template, params, req.floating_ip.is_some());
    let mut files = BTreeMap::new();
    files.insert("worker.yaml".to_string(), File { contents: worker_template, mode: Mode::Public });
    // Both node configs hold a private host key, so both are 0600.
    let common = nodes::Common {
        fqdn: &fqdn,
        daemon_json: &daemon_json,
        ca_cert: &certs.ca_pem,
        client_public_key: &ssh.client_public,
        signal_timeout: signal_timeout(params.node_timeout),
    };
    let registry_config = registry::to_yaml(&registry::private(&inputs));
    let cache_config = registry::to_yaml(&registry::cache(&inputs));
    let manager = nodes::manager(
        templates,
        &common,
        &nodes::Manager {
            hostname: &params.hostname,
            host_key: (ssh.manager_private.as_str(), &ssh.manager_public),
            server_cert: &certs.server_pem,
            server_key: certs.server_key_pem.expose(),
            registry_config: &registry_config,
            cache_config: &cache_config,
            htpasswd,
            redis_port: REDIS_PORT,
            services: &services,
            probes: &probes,
            volume,
        },
    )?;
    let worker = nodes::worker(templates, &common, (ssh.worker_private.as_str(), &ssh.worker_public))?;
    let mut too_large = Vec::new();
    let mut sizes = Vec::new();
    for (role, node) in [("manager", &manager), ("worker", &worker)] {
        let name = format.file_name(role);
        let text = node.render(format);
        let size = node::user_data_size(&text);
        if node::user_data_size(&text) + node::HEAT_HEADROOM > node::USER_DATA_LIMIT {
            too_large.push((name.clone(), size));
        }
        sizes.push((name.clone(), size));
        files.insert(name, File { contents: text, mode: Mode::Private });
    }
    if !too_large.is_empty() {
        return Err(BundleError::UserDataTooLarge(sizes));
    }
    let environment = environment_yaml(params, req.floating_ip, req.stack_name);
    tracing::debug!(stack = req.stack_name, files = ?files, "bundle rendered");

    let summary = Summary {
        stack_name: req.stack_name.to_string(),
        registry: format!("{fqdn}:{REGISTRY_PORT}"),
        cache: format!("https://{fqdn}"),
        registry_user: params.registry.user.clone(),
        registry_password_file: materials.password_file.clone(),
        ca_cert_file: materials.ca_cert_file.clone(),
        certificate_names: match &params.own_certificate {
            Some(_) => vec![fqdn.clone()],
            None => names.dns.iter().cloned().chain(names.ips.iter().map(|i| i.to_string())).collect(),
        },
        ca: certs.ca.clone(),
        server_certificate: certs.server.clone(),
        workers: params.workers.count,
        network: match &params.network {
            Network::Existing(n) => format!("existing network {n}"),
            Network::Create { cidr } => format!("new network {cidr} routed to {}", params.fip_network),
        },
        storage: match &params.registry.storage {
            Storage::Filesystem if volume => format!("filesystem on a {} GiB volume", params.volume_size),
            Storage::Filesystem => "filesystem on the root disk".into(),
            Storage::Swift { container } => format!("swift container {container}"),
        },
        templates_overridden: templates.overridden.clone(),
        plan: exposure::plan(params, req.floating_ip),
        resources,
    };
    Ok(Bundle {
        template,
        environment,
        files,
        ca_cert: certs.ca_pem.clone(),
        registry_cert: certs.server_pem.clone(),
        summary,
    })
}

/// The values Heat gets as parameters: everything an operator may change
/// on a re-run without re-rendering the shape of the stack.
pub fn heat_parameters(params: &Params, floating_ip: Option<&FloatingIp>) -> serde_json::Map<String, Value> {
    let mut p = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_string(), v);
    };
    put("hostname", json!(params.hostname));
    put("domain", json!(params.domain));
    put("server_key", json!(params.server_key));
    put("server_flavor", json!(params.server_flavor));
    put("server_image", json!(params.server_image));
    put("fip_network", json!(params.fip_network));
    put("worker_count", json!(params.workers.count));
    put("worker_flavor", json!(params.workers.flavor));
    put("worker_image", json!(params.workers.image));
    match &params.network {
        Network::Existing(n) => put("private_network", json!(n)),
        Network::Create { cidr } => put("private_cidr", json!(cidr)),
    }
    put("ssh_allowed_cidr", json!(params.ssh_allowed_cidr));
    if let Some(cidr) = &params.cache_allowed_cidr {
        put(exposure::CACHE_CIDR_PARAM, json!(cidr));
    }
    put("node_timeout", json!(params.node_timeout));
    if params.volume_size > 0 {
        put("volume_size", json!(params.volume_size));
    }
    if let Some(f) = floating_ip {
        put("floating_ip_id", json!(f.id));
        put("floating_ip_address", json!(f.address.to_string()));
    }
    p
}

/// `environment.yaml`: the Heat parameters and the sections passed through.
pub fn environment_yaml(params: &Params, floating_ip: Option<&FloatingIp>, stack_name: &str) -> String {
    let mut env = serde_json::Map::new();
    env.insert("parameters".into(), Value::Object(heat_parameters(params, floating_ip)));
    for (k, v) in &params.passthrough {
        env.insert(k.clone(), v.clone());
    }
    format!(
        "# Rendered by provision for stack {}. Deploys with:\n#   openstack stack create -t template.yaml -e environment.yaml {}\n{}",
        stack_name.replace(['\n', '\r'], " "),
        stack_name.replace(['\n', '\r'], " "),
        serde_saphyr::to_string(&Value::Object(env)).expect("plain data")
    )
}

/// What decides the shape of the Heat templates (everything else is a
/// Heat parameter).
pub struct Shape<'a> {
    pub fqdn: &'a str,
    pub volume: bool,
    pub existing_network: bool,
    pub format: NodeConfigFormat,
}

/// The stack's template and the workers' nested template.
pub fn heat_templates(templates: &Templates, shape: &Shape) -> Result<(String, String), BundleError> {
    let fqdn = shape.fqdn;
    let rules: Vec<Value> = SWARM_RULES
        .iter()
        .map(|r| json!({"name": r.name, "group": r.group, "from": r.from, "protocol": r.protocol, "port": r.port}))
        .collect();
    let mut ctx = Context::new();
    ctx.insert(
        "description",
        &format!(
            "provision: {fqdn}, a Docker registry, pull-through cache and swarm manager, with worker_count swarm workers."
        ),
    );
    ctx.insert("registry", &format!("{fqdn}:{REGISTRY_PORT}"));
    ctx.insert("cache", &format!("https://{fqdn}"));
    ctx.insert("volume", &shape.volume);
    ctx.insert("network", &json!({"existing": shape.existing_network}));
    ctx.insert("swarm_rules", &rules);
    ctx.insert("public_rules", &exposure::template_rules());
    ctx.insert("cache_port", &CACHE_PORT);
    let format = shape.format;
    ctx.insert(
        "node_config",
        &json!({"manager": format.file_name("manager"), "worker": format.file_name("worker"), "format": format.name()}),
    );
    Ok((
        checked_yaml("template.yaml", templates.render("heat/stack.yaml", &ctx)?)?,
        checked_yaml("worker.yaml", templates.render("heat/worker.yaml", &ctx)?)?,
    ))
}

/// The resources Heat will report on for a create: the stack's own whose
/// condition holds, and each worker's nested stack with what it holds.
fn resource_count(template: &str, worker: &str, params: &Params, floating_ip_given: bool) -> usize {
    let resources = |text: &str| {
        serde_saphyr::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("resources").and_then(Value::as_object).cloned())
            .unwrap_or_default()
    };
    let holds = |condition: Option<&str>| match condition {
        None => true,
        Some("create_floating_ip") => !floating_ip_given,
        Some("cache_open") => params.cache_allowed_cidr.is_some(),
        Some(_) => true,
    };
    let top = resources(template).values().filter(|r| holds(r.get("condition").and_then(Value::as_str))).count();
    top + params.workers.count as usize * (1 + resources(worker).len())
}

fn checked_yaml(name: &str, text: String) -> Result<String, BundleError> {
    match serde_saphyr::from_str::<Value>(&text) {
        Ok(_) => Ok(text),
        Err(e) => Err(BundleError::Invalid { name: name.to_string(), message: e.to_string() }),
    }
}

/// The htpasswd line, kept in the state directory: bcrypt salts every hash,
/// and a new one on each run would change the node config, which Heat
/// answers by replacing the server. It is made again only when it no longer
/// matches the user and password; one that is not a single `user:$2..`
/// line is refused (it is pasted into the node config).
fn htpasswd(state: &StateDir, user: &str, password: &str) -> Result<String, BundleError> {
    if let Some(text) = state.read_private(HTPASSWD)? {
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let Some((u, hash)) = line.split_once(':').filter(|(u, hash)| {
            !u.is_empty() && hash.starts_with("$2") && !line.chars().any(|c| c.is_control() || c.is_whitespace())
        }) else {
            let path = state.file(HTPASSWD);
            return Err(StateError::new(
                &path,
                format!("is not one line `user:$2y$...`; remove it (`rm {}`) to have it made again", path.display()),
            )
            .into());
        };
        if u == user && registry::htpasswd_verifies(password, hash) {
            return Ok(text);
        }
    }
    let line = registry::htpasswd_line(user, password);
    state.write(HTPASSWD, &line, Mode::Private)?;
    Ok(line)
}

/// A generated secret, made once and kept 0600 in the state directory. A
/// stored one must look like one this function made: a single line of
/// [`random_token`]'s letters, at least `len` of them (it is pasted into
/// YAML and shell).
fn secret(state: &StateDir, name: &str, len: usize) -> Result<String, BundleError> {
    if let Some(text) = state.read_private(name)? {
        let s = text.strip_suffix('\n').unwrap_or(&text);
        if (len..=256).contains(&s.len()) && s.bytes().all(|b| TOKEN_ALPHABET.contains(&b)) {
            return Ok(s.to_string());
        }
        let path = state.file(name);
        return Err(StateError::new(
            &path,
            format!(
                "is not one line of {len} to 256 letters and digits, as provision makes it; remove it (`rm {}`) \
                 to have a new one made (nodes made with the old one must then be rendered again)",
                path.display()
            ),
        )
        .into());
    }
    let s = random_token(len);
    state.write(name, &s, Mode::Private)?;
    Ok(s)
}

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Letters and digits only, so the secret is safe in YAML, shell and URLs.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = TOKEN_ALPHABET;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf).expect("the system's random source works");
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - (256 % ALPHABET.len());
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

impl Bundle {
    /// Writes the bundle as `openstack stack create` expects it: the
    /// template, its environment and the files it names, side by side.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, StateError> {
        let mut written = Vec::new();
        let mut put = |name: &str, contents: &str, mode: Mode| -> Result<(), StateError> {
            let path = dir.join(name);
            state::write_file(&path, contents.as_bytes(), mode)?;
            written.push(path);
            Ok(())
        };
        put("template.yaml", &self.template, Mode::Public)?;
        put("environment.yaml", &self.environment, Mode::Public)?;
        for (name, f) in &self.files {
            put(name, &f.contents, f.mode)?;
        }
        put("certs/ca.crt", &self.ca_cert, Mode::Public)?;
        put("certs/registry.crt", &self.registry_cert, Mode::Public)?;
        Ok(written)
    }

    /// Heat's `files` map.
    pub fn files_map(&self) -> serde_json::Map<String, Value> {
        self.files.iter().map(|(k, f)| (k.clone(), Value::String(f.contents.clone()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rendering reads no file: with the materials in hand and the state
    /// directory gone, the same inputs give the same bundle, and only the
    /// floating IP's own places change with it.
    #[test]
    fn rendering_is_a_function_of_its_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let params = Params::load(&["examples/env_params.yml".into()]).unwrap();
        let fip = FloatingIp { id: "f1".into(), address: "203.0.113.9".parse().unwrap() };
        let materials = {
            let state = StateDir::open_with(dir.path(), "myhost", crate::state::Wait::Fail).unwrap();
            let req = Request {
                stack_name: "myhost",
                state: &state,
                templates: None,
                floating_ip: Some(fip.clone()),
                swift_credentials: None,
                now: time::OffsetDateTime::now_utc(),
            };
            Materials::ensure(&params, &req).unwrap()
        };
        drop(dir);
        let templates = Templates::load(None).unwrap();
        let at = |floating_ip| Rendering { stack_name: "myhost", floating_ip, swift: None };
        let a = render(&params, &at(Some(&fip)), &materials, &templates).unwrap();
        let b = render(&params, &at(Some(&fip)), &materials, &templates).unwrap();
        let files = |x: &Bundle| x.files.iter().map(|(k, f)| (k.clone(), f.contents.clone())).collect::<Vec<_>>();
        assert_eq!((&a.template, &a.environment, files(&a)), (&b.template, &b.environment, files(&b)));
        let other = FloatingIp { id: "f2".into(), address: "203.0.113.10".parse().unwrap() };
        let c = render(&params, &at(Some(&other)), &materials, &templates).unwrap();
        assert_eq!((&a.template, files(&a)), (&c.template, files(&c)), "the address is a parameter, not in the shape");
        assert!(c.environment.contains("f2") && !c.environment.contains("f1"), "{}", c.environment);
    }

    #[test]
    fn tokens_are_long_random_and_plain() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    /// The quota footprint counts what the rendered template makes.
    #[test]
    fn the_footprint_is_what_the_template_makes() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("env.yml");
        for (extra, new_fip) in [("", true), ("  cache_allowed_cidr: 192.0.2.0/24\n  private_network: shared\n", false)]
        {
            std::fs::write(
                &env,
                format!(
                    "parameters:\n  hostname: reg\n  domain: example.com\n  server_key: k\n  server_flavor: f\n  \
                     server_image: i\n  fip_network: public\n  worker_count: 3\n{extra}"
                ),
            )
            .unwrap();
            let params = Params::load(std::slice::from_ref(&env)).unwrap();
            let shape = Shape {
                fqdn: "reg.example.com",
                volume: true,
                existing_network: matches!(params.network, Network::Existing(_)),
                format: params.node_config,
            };
            let (template, _) = heat_templates(&Templates::load(None).unwrap(), &shape).unwrap();
            let t: Value = serde_saphyr::from_str(&template).unwrap();
            let resources = t["resources"].as_object().unwrap();
            let of = |kind: &str| resources.values().filter(|r| r["type"] == kind).collect::<Vec<_>>();
            let inline: usize = of("OS::Neutron::SecurityGroup")
                .iter()
                .map(|g| g["properties"]["rules"].as_array().unwrap().len())
                .sum();
            let separate = of("OS::Neutron::SecurityGroupRule")
                .iter()
                .filter(|r| r["condition"] != "cache_open" || params.cache_allowed_cidr.is_some())
                .count();
            let f = exposure::footprint(&params, new_fip);
            let groups = of("OS::Neutron::SecurityGroup").len() as u64;
            assert_eq!(f.security_groups, groups);
            assert_eq!(f.security_group_rules, (inline + separate) as u64 + 2 * groups, "{extra}");
            assert_eq!(f.networks, of("OS::Neutron::Net").len() as u64);
            assert_eq!(f.routers, of("OS::Neutron::Router").len() as u64);
            assert_eq!(f.servers, 4);
            assert_eq!(f.floating_ips, u64::from(new_fip));
            let mut names: Vec<&str> = t["outputs"].as_object().unwrap().keys().map(String::as_str).collect();
            names.sort();
            assert_eq!(names, outputs::NAMES, "the template's outputs are the ones named in outputs.rs");
        }
    }
}
