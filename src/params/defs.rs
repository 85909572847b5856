//! Every parameter provision understands: its name, what it holds, its
//! default and one line of documentation. This table is the single list the
//! parser, the "did you mean" hints and the README's parameter table come
//! from.

/// What a parameter holds, which decides how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A DNS label (RFC 1123): letters, digits and inner hyphens, 1-63 long.
    Label,
    /// A domain name made of labels.
    Domain,
    /// A name or ID of something in the cloud (flavor, image, network, key).
    Name,
    /// A whole number between the two bounds.
    Count(u64, u64),
    /// An IPv4 network in CIDR notation.
    Cidr,
    /// The IPv4 network of the nodes' subnet: /8 to /29, clear of link-local.
    Subnet,
    /// An https URL.
    Url,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Free text that must never be shown.
    Secret,
    /// Free text on one line.
    Text,
    /// A user name: letters, digits, `._-`, 1-64.
    User,
    /// `true` or `false` (YAML's booleans, or those words as strings).
    Bool,
    /// A list of container image references (`redis:7.2-alpine`).
    Images,
}

impl Kind {
    pub fn describe(self) -> String {
        match self {
            Kind::Label => "a host name (letters, digits, inner hyphens; 1-63)".into(),
            Kind::Domain => "a domain name such as example.com".into(),
            Kind::Name => "a name or ID".into(),
            Kind::Count(lo, hi) => format!("a whole number from {lo} to {hi}"),
            Kind::Cidr => "an IPv4 network such as 10.0.0.0/24".into(),
            Kind::Subnet => "an IPv4 network from /8 to /29 such as 10.20.30.0/24".into(),
            Kind::Url => "an http:// or https:// URL".into(),
            Kind::Choice(words) => format!("one of {}", words.join(", ")),
            Kind::Secret => "a secret string".into(),
            Kind::Text => "a string".into(),
            Kind::User => "a user name (letters, digits, `._-`; 1-64)".into(),
            Kind::Bool => "true or false".into(),
            Kind::Images => format!("a list of at most {MAX_IMAGES} image references such as redis:7.2-alpine"),
        }
    }
}

/// One parameter.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    /// `None` means the parameter is required (or, for credentials, optional
    /// with no default).
    pub default: Option<&'static str>,
    pub required: bool,
    pub doc: &'static str,
}

const fn req(name: &'static str, kind: Kind, doc: &'static str) -> Def {
    Def { name, kind, default: None, required: true, doc }
}
const fn opt(name: &'static str, kind: Kind, default: Option<&'static str>, doc: &'static str) -> Def {
    Def { name, kind, default, required: false, doc }
}

/// Images seeded at most, one copy each on the manager.
pub const MAX_IMAGES: usize = 50;

pub const STORAGE: &[&str] = &["filesystem", "swift"];
pub const NODE_CONFIG: &[&str] = &["cloud-config", "ignition"];

pub const DEFS: &[Def] = &[
    req("hostname", Kind::Label, "Name of the management node; also the default stack name."),
    req("domain", Kind::Domain, "Domain of the nodes; the registry answers as hostname.domain."),
    req("server_key", Kind::Name, "Nova keypair installed on every node."),
    req("server_flavor", Kind::Name, "Flavor of the management node."),
    req("server_image", Kind::Name, "Image of every node: Flatcar Container Linux (reads #cloud-config)."),
    req("fip_network", Kind::Name, "External network the manager's floating IP comes from."),
    opt("worker_count", Kind::Count(0, 200), Some("0"), "Number of worker nodes (no public address)."),
    opt("worker_flavor", Kind::Name, None, "Flavor of the workers; defaults to server_flavor."),
    opt("worker_image", Kind::Name, None, "Image of the workers; defaults to server_image."),
    opt(
        "private_network",
        Kind::Name,
        None,
        "Existing network for the nodes; without it the stack creates one, with a router to fip_network.",
    ),
    opt(
        "private_cidr",
        Kind::Subnet,
        Some("10.20.30.0/24"),
        "Subnet of the network the stack creates (unused with private_network).",
    ),
    opt(
        "ssh_allowed_cidr",
        Kind::Cidr,
        Some("0.0.0.0/0"),
        "Who may reach SSH (22) and the management UI (8100) on the manager; a run warns while it is the whole world.",
    ),
    opt(
        "cache_allowed_cidr",
        Kind::Cidr,
        None,
        "Addresses outside the stack that may use the pull-through cache (443), such as the Docker hosts you point at the mirror; without it only the stack's nodes can.",
    ),
    opt(
        "volume_size",
        Kind::Count(0, 16384),
        Some("20"),
        "GiB of Cinder volume for the manager's /data (registry storage); 0 for none.",
    ),
    opt("docker_mtu", Kind::Count(576, 9000), Some("1400"), "MTU of Docker's networks on the nodes."),
    opt(
        "node_timeout",
        Kind::Count(60, 86400),
        Some("1800"),
        "Seconds Heat waits for each node to signal that it is ready.",
    ),
    opt(
        "node_config",
        Kind::Choice(NODE_CONFIG),
        Some("cloud-config"),
        "Format of the node configs: cloud-config (the seed's; Flatcar's agent applies it at every boot) or ignition (spec 3.3.0; applied once, before the first boot).",
    ),
    opt(
        "handoff",
        Kind::Bool,
        Some("true"),
        "After the stack is complete, form the Docker Swarm over SSH and deploy the Imixs-Cloud stacks; false stops at the stack.",
    ),
    opt("registry_user", Kind::User, Some("provision"), "User of the private registry (htpasswd, bcrypt)."),
    opt(
        "registry_cert_file",
        Kind::Text,
        None,
        "Your own PEM certificate for the registry (intermediates after it), instead of one from the stack's CA; it must name hostname.domain. Relative to the env file.",
    ),
    opt("registry_key_file", Kind::Text, None, "The private key of registry_cert_file; it goes to the manager only."),
    opt(
        "registry_ca_file",
        Kind::Text,
        None,
        "The CA that issued registry_cert_file, for the nodes and `provision check` to trust.",
    ),
    opt(
        "registry_storage",
        Kind::Choice(STORAGE),
        Some("filesystem"),
        "Where the private registry keeps blobs: filesystem (/data) or swift (puts os_* credentials on the node).",
    ),
    opt("swift_container", Kind::Name, Some("docker-registry"), "Swift container, with registry_storage: swift."),
    opt("cache_remote_url", Kind::Url, Some("https://registry-1.docker.io"), "Upstream of the pull-through cache."),
    opt(
        "seed_images",
        Kind::Images,
        None,
        "Images copied into the private registry (and warmed in the cache) at the hand-off, so jobs find them there: from the cache's upstream, or from seed_registry.",
    ),
    opt(
        "seed_registry",
        Kind::Text,
        None,
        "Registry (host[:port]) seed_images come from instead of the cache's upstream; its login is PROVISION_SEED_USER / PROVISION_SEED_PASSWORD on your side.",
    ),
    opt("os_authurl", Kind::Url, None, "Keystone URL (v2 URLs are mapped to v3)."),
    opt("os_username", Kind::Text, None, "OpenStack user."),
    opt("os_password", Kind::Secret, None, "OpenStack password (prefer clouds.yaml + secure.yaml)."),
    opt("os_region", Kind::Text, None, "OpenStack region."),
    opt(
        "os_project_name",
        Kind::Text,
        None,
        "OpenStack project; needed with Keystone v3 unless the user has a default project.",
    ),
    opt("os_user_domain_name", Kind::Text, Some("Default"), "Domain of the user."),
    opt("os_project_domain_name", Kind::Text, Some("Default"), "Domain of the project."),
];

pub fn find(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

pub fn names() -> Vec<&'static str> {
    DEFS.iter().map(|d| d.name).collect()
}

/// The parameter table as Markdown, for the README.
pub fn markdown_table() -> String {
    let mut out = String::from("| parameter | required | default | what it is |\n|---|---|---|---|\n");
    for d in DEFS {
        let default = match (d.required, d.default) {
            (true, _) => "".to_string(),
            (false, Some(v)) => format!("`{v}`"),
            (false, None) => "".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.name,
            if d.required { "yes" } else { "" },
            default,
            d.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_are_valid() {
        let mut seen = std::collections::HashSet::new();
        for d in DEFS {
            assert!(seen.insert(d.name), "{} twice", d.name);
            assert!(!(d.required && d.default.is_some()), "{} is required with a default", d.name);
            if let Some(v) = d.default {
                let value = serde_json::Value::String(v.to_string());
                assert!(
                    super::super::values::check(d, &value).is_ok(),
                    "default of {} does not pass its own check",
                    d.name
                );
            }
        }
    }

    #[test]
    fn readme_table_is_current() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(
            readme.contains(&markdown_table()),
            "README.md's parameter table is out of date; paste the output of `provision params --markdown`"
        );
    }
}
