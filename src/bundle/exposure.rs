//! What the stack opens to addresses outside it, and what it buys: one
//! table the Heat template's manager rules are rendered from and the
//! summaries of `render`, `--preview` and a deploy are written from, so
//! what the operator reads is what Neutron gets.

use serde::Serialize;

use super::{CACHE_PORT, REGISTRY_PORT};
use crate::params::{Network, Params};
use crate::state::FloatingIp;

/// The reverse proxy's ports on the manager: 443 belongs to the cache.
pub const PROXY_HTTP_PORT: u16 = 80;
pub const PROXY_HTTPS_PORT: u16 = 8443;
/// The management UI, opened to the operator's addresses only.
pub const UI_PORT: u16 = 8100;
pub const SSH_PORT: u16 = 22;

/// The Heat parameter that widens the cache beyond the stack's own nodes.
pub const CACHE_CIDR_PARAM: &str = "cache_allowed_cidr";

/// Who may reach a port of the manager from outside the stack.
#[derive(Debug, Clone, Copy)]
enum Reach {
    Anyone,
    /// The CIDR in this Heat parameter.
    Param(&'static str),
}

struct Public {
    port: u16,
    service: &'static str,
    reach: Reach,
}

/// The manager's TCP ports open beyond the stack. The cache (443) is not
/// here: it is open to the stack's nodes by group, and to
/// `cache_allowed_cidr` only when that is given (an empty CIDR in a Neutron
/// rule would mean everyone).
const PUBLIC: &[Public] = &[
    Public { port: SSH_PORT, service: "SSH", reach: Reach::Param("ssh_allowed_cidr") },
    Public { port: REGISTRY_PORT, service: "private registry (login required)", reach: Reach::Anyone },
    Public { port: PROXY_HTTP_PORT, service: "reverse proxy, HTTP", reach: Reach::Anyone },
    Public { port: PROXY_HTTPS_PORT, service: "reverse proxy, HTTPS", reach: Reach::Anyone },
    Public { port: UI_PORT, service: "management UI", reach: Reach::Param("ssh_allowed_cidr") },
];

/// The rules as the template renders them: `param` is the Heat parameter
/// holding the CIDR, or none for a rule open to everyone.
pub fn template_rules() -> Vec<serde_json::Value> {
    PUBLIC
        .iter()
        .map(|p| {
            let param = match p.reach {
                Reach::Anyone => None,
                Reach::Param(name) => Some(name),
            };
            serde_json::json!({"port": p.port, "service": p.service, "param": param})
        })
        .collect()
}

/// One open port and the addresses it is open to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Opening {
    pub port: u16,
    pub service: String,
    pub from: Vec<String>,
}

/// What the stack exposes and what it makes, for the operator to read
/// before it is made.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub open: Vec<Opening>,
    pub creates: Vec<String>,
}

/// Words for the nodes of the stack in a list of addresses.
pub const STACK_NODES: &str = "the stack's nodes";

pub fn plan(params: &Params, floating_ip: Option<&FloatingIp>) -> Plan {
    let cidr_of = |param: &str| match param {
        "ssh_allowed_cidr" => params.ssh_allowed_cidr.clone(),
        other => other.to_string(),
    };
    let mut open: Vec<Opening> = PUBLIC
        .iter()
        .map(|p| Opening {
            port: p.port,
            service: p.service.to_string(),
            from: vec![match p.reach {
                Reach::Anyone => "0.0.0.0/0".to_string(),
                Reach::Param(name) => cidr_of(name),
            }],
        })
        .collect();
    let mut cache_from = vec![STACK_NODES.to_string()];
    cache_from.extend(params.cache_allowed_cidr.clone());
    open.push(Opening { port: CACHE_PORT, service: "pull-through cache (anonymous)".into(), from: cache_from });
    open.sort_by_key(|o| o.port);

    let mut creates = Vec::new();
    creates.push(format!("1 server {} (manager, image {})", params.server_flavor, params.server_image));
    if params.workers.count > 0 {
        creates.push(format!(
            "{} server{} {} (workers, image {})",
            params.workers.count,
            if params.workers.count == 1 { "" } else { "s" },
            params.workers.flavor,
            params.workers.image
        ));
    }
    if params.volume_size > 0 {
        creates.push(format!("1 volume of {} GiB (registry data)", params.volume_size));
    }
    creates.push(match floating_ip {
        Some(f) => format!("floating IP {} from {} (kept across runs)", f.address, params.fip_network),
        None => format!("1 floating IP from {}", params.fip_network),
    });
    match &params.network {
        Network::Create { cidr } => {
            creates.push(format!("1 network with subnet {cidr}, 1 router to {}", params.fip_network))
        }
        Network::Existing(n) => creates.push(format!("2 ports on the existing network {n}")),
    }
    creates.push("2 security groups (manager, workers)".into());
    Plan { open, creates }
}

/// What a create takes of the project's quotas, besides what the flavors
/// decide (cores and RAM, which need the cloud's flavor list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Footprint {
    pub servers: u64,
    pub floating_ips: u64,
    pub ports: u64,
    pub networks: u64,
    pub subnets: u64,
    pub routers: u64,
    pub security_groups: u64,
    pub security_group_rules: u64,
    pub volumes: u64,
    pub volume_gb: u64,
}

/// Neutron adds an IPv4 and an IPv6 egress rule to every new group.
const DEFAULT_EGRESS_RULES: u64 = 2;

pub fn footprint(params: &Params, new_floating_ip: bool) -> Footprint {
    let create = matches!(params.network, Network::Create { .. });
    let workers = params.workers.count;
    // The manager's group: ICMP and its public ports (and the cache's
    // outside rule); the workers': ICMP; and the rules between them.
    let rules = 1
        + PUBLIC.len() as u64
        + u64::from(params.cache_allowed_cidr.is_some())
        + 1
        + super::SWARM_RULES.len() as u64
        + 2 * DEFAULT_EGRESS_RULES;
    Footprint {
        servers: 1 + workers,
        floating_ips: u64::from(new_floating_ip),
        // One per server; a new network adds the router's interface and
        // Neutron's DHCP port.
        ports: 1 + workers + if create { 2 } else { 0 },
        networks: u64::from(create),
        subnets: u64::from(create),
        routers: u64::from(create),
        security_groups: 2,
        security_group_rules: rules,
        volumes: u64::from(params.volume_size > 0),
        volume_gb: params.volume_size,
    }
}

impl Plan {
    /// The plan as lines for a terminal, with how to widen the cache.
    pub fn text(&self) -> String {
        let mut text = String::from("  creates\n");
        for c in &self.creates {
            text.push_str(&format!("    {c}\n"));
        }
        text.push_str("  open on the manager\n");
        for o in &self.open {
            text.push_str(&format!("    {:<5} {:<34} from {}\n", o.port, o.service, o.from.join(", ")));
        }
        if self.open.iter().any(|o| o.port == CACHE_PORT && o.from == [STACK_NODES]) {
            text.push_str(&format!(
                "    (Docker hosts outside the stack reach the cache once {CACHE_CIDR_PARAM} names their network)\n"
            ));
        }
        text
    }

    /// Ports open to the whole world that need not be: SSH and the UI.
    pub fn world_open_admin_ports(&self) -> Vec<u16> {
        self.open
            .iter()
            .filter(|o| matches!(o.port, SSH_PORT | UI_PORT))
            .filter(|o| o.from.iter().any(|f| f == "0.0.0.0/0" || f == "::/0"))
            .map(|o| o.port)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Network, Params};

    fn params(extra: &str) -> Params {
        let text = format!(
            "parameters:\n  hostname: reg\n  domain: example.com\n  server_key: k\n  server_flavor: m1.small\n  \
             server_image: flatcar\n  fip_network: public\n{extra}"
        );
        let f = crate::params::envfile::EnvFile::parse(std::path::Path::new("env.yml"), &text).unwrap();
        Params::from_files(&[f]).unwrap()
    }

    fn open(plan: &Plan, port: u16) -> Vec<String> {
        plan.open.iter().find(|o| o.port == port).unwrap().from.clone()
    }

    #[test]
    fn the_cache_is_the_stacks_own_unless_a_cidr_widens_it() {
        let p = plan(&params(""), None);
        assert_eq!(open(&p, CACHE_PORT), [STACK_NODES]);
        assert!(p.text().contains("cache_allowed_cidr"), "{}", p.text());
        let p = plan(&params("  cache_allowed_cidr: 192.0.2.0/24\n"), None);
        assert_eq!(open(&p, CACHE_PORT), [STACK_NODES, "192.0.2.0/24"]);
        assert!(!p.text().contains("once cache_allowed_cidr"), "{}", p.text());
    }

    #[test]
    fn ssh_and_the_ui_follow_ssh_allowed_cidr_and_are_flagged_when_open_to_all() {
        let p = plan(&params(""), None);
        assert_eq!(open(&p, SSH_PORT), ["0.0.0.0/0"]);
        assert_eq!(p.world_open_admin_ports(), [SSH_PORT, UI_PORT]);
        let p = plan(&params("  ssh_allowed_cidr: 198.51.100.0/24\n"), None);
        assert_eq!(open(&p, UI_PORT), ["198.51.100.0/24"]);
        assert!(p.world_open_admin_ports().is_empty());
        assert_eq!(open(&p, REGISTRY_PORT), ["0.0.0.0/0"]);
    }

    #[test]
    fn the_plan_names_what_is_bought() {
        let p = plan(&params("  worker_count: 3\n  worker_flavor: m1.tiny\n  volume_size: 40\n"), None);
        let all = p.creates.join("\n");
        assert!(all.contains("1 server m1.small (manager"), "{all}");
        assert!(all.contains("3 servers m1.tiny (workers"), "{all}");
        assert!(all.contains("40 GiB"), "{all}");
        assert!(all.contains("1 floating IP from public"), "{all}");
        assert!(all.contains("router to public"), "{all}");
        let mut existing = params("  private_network: shared\n  volume_size: 0\n");
        existing.network = Network::Existing("shared".into());
        let fip = FloatingIp { id: "f".into(), address: "203.0.113.9".parse().unwrap() };
        let all = plan(&existing, Some(&fip)).creates.join("\n");
        assert!(!all.contains("GiB") && !all.contains("router"), "{all}");
        assert!(all.contains("203.0.113.9"), "{all}");
    }

    #[test]
    fn every_rule_is_rendered_with_its_parameter() {
        let rules = template_rules();
        assert_eq!(rules.len(), PUBLIC.len());
        let ssh = rules.iter().find(|r| r["port"] == SSH_PORT).unwrap();
        assert_eq!(ssh["param"], "ssh_allowed_cidr");
        assert!(rules.iter().all(|r| r["port"] != CACHE_PORT), "the cache is never open to everyone");
    }
}
