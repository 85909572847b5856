//! **Stage 4 of 4: hand-off.** Takes the stack's [`Nodes`] (from Heat's
//! outputs, or from the inventory of the simulated nodes in `dev/nodes`),
//! the host keys pinned for them and the client key in the state directory,
//! and gives a Docker Swarm: the manager initialised, every worker joined,
//! the overlay networks the stacks need, node labels, and the nodes that are
//! gone removed. It works over SSH only ([`ssh`]): to the manager on its
//! public address, to each worker through the manager, and accepts a node
//! only if it shows the host key generated for it on this machine
//! ([`keys`]). What to do is decided by plain functions over what was
//! observed ([`swarm::plan`]), so a re-run that finds everything in place
//! does nothing.

pub mod commands;
pub mod imixs;
pub mod seed;
pub mod ssh;
pub mod swarm;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::bundle::outputs;
use crate::keys;
use crate::state::{StateDir, StateError};

/// The host keys pinned for these nodes: the manager's own, and the
/// workers' shared one (see [`crate::state::layout::WORKER_HOST_KEY`]).
pub fn stack_pins(state: &StateDir, nodes: &Nodes) -> Result<keys::Pins, HandoffError> {
    let workers: Vec<&str> = nodes.workers.iter().map(|w| w.name.as_str()).collect();
    Ok(keys::stack_pins(state, &nodes.manager.name, &workers)?)
}

/// The nodes of a stack, read from Heat's outputs, for the commands that
/// reach them without an inventory (`provision ssh`, `provision handoff`).
#[derive(Debug)]
pub struct StackNodes {
    pub name: String,
    pub nodes: Nodes,
    /// `hostname.domain`, the registry's name.
    pub fqdn: String,
}

impl StackNodes {
    /// `named` is the hostname and FQDN from env files, when given (a stack
    /// made by an older template lacks the `manager_name` output). The
    /// hand-off (`complete_only`) needs a complete stack; `ssh` needs only
    /// a manager with an address, which is when a failed stack needs looking at.
    pub fn from_outcome(
        o: &crate::stack::Outcome,
        named: Option<(String, String)>,
        complete_only: bool,
    ) -> Result<StackNodes, HandoffError> {
        let name = &o.stack.name;
        if !o.ok && complete_only {
            return Err(HandoffError::Nodes(format!(
                "stack {name} is {}; it is handed off once it is complete",
                o.status
            )));
        }
        let read = outputs::StackOutputs::read(&o.outputs);
        let (hostname, fqdn) = named.unzip();
        let manager = read.manager_name.or(hostname).ok_or_else(|| {
            HandoffError::Nodes(format!(
                "stack {name} has no output `{}`; give the environment files (--env) to name the manager",
                outputs::MANAGER_NAME
            ))
        })?;
        let fqdn = read.registry.map(|r| r.host).or(fqdn).unwrap_or_else(|| manager.clone());
        let nodes = match Nodes::from_outputs(&manager, &o.outputs) {
            Ok(n) => n,
            Err(e) if !o.ok => Nodes::manager_from_outputs(&manager, &o.outputs).map_err(|m| {
                HandoffError::Nodes(format!(
                    "stack {name} is {}, and its manager cannot be reached yet: {m} ({e})",
                    o.status
                ))
            })?,
            Err(e) => return Err(e),
        };
        Ok(StackNodes { name: name.clone(), nodes, fqdn })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The node list (inventory file or stack outputs) is not usable.
    #[error("{0}")]
    Nodes(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(
        "host key of {node} ({address}) does not match the one pinned for it: expected {expected}, offered {offered}. \
         Nothing was sent to it. If the node was rebuilt with another key, give it its pinned key again; \
         otherwise something else answers on that address"
    )]
    HostKey { node: String, address: String, expected: String, offered: String },
    #[error(
        "no SSH on {address} ({node}) after {attempts} attempts in {waited:.0?}; last: {last}. Check that the server \
         is running and booted, that {hint}"
    )]
    SshTimeout { node: String, address: String, attempts: u32, waited: Duration, last: String, hint: String },
    #[error(
        "{node} ({address}) refused the client key for {user}; check that the node got the public key of {key} \
         (authorized_keys of {user})"
    )]
    Auth { node: String, address: String, user: String, key: String },
    #[error("SSH to {node}: {message}")]
    Ssh { node: String, message: String },
    /// A remote command failed; `command` is what may be shown (a join
    /// token is never in it).
    #[error("{node}: `{command}` {status}{}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Command { node: String, command: String, status: String, stderr: String },
    #[error("{0}")]
    Swarm(String),
}

/// The whole hand-off: connects to the manager and, through it, to every
/// worker; converges the swarm; deploys the Imixs-Cloud stacks on the
/// manager (after the swarm and its networks exist); disconnects. The live
/// deploy calls this with the nodes of the stack's outputs.
pub async fn form(
    nodes: &Nodes,
    connector: &ssh::Connector,
    waits: &swarm::Waits,
    stacks: &[imixs::StackFile],
    seed: Option<&seed::Seed>,
    notice: &dyn Fn(&str),
) -> Result<swarm::Report, HandoffError> {
    let workers: Vec<&str> = nodes.workers.iter().map(|w| w.name.as_str()).collect();
    let fleet = ssh::Fleet::connect(connector, nodes, &workers, notice).await?;
    let result = async {
        let mut report = swarm::converge(&fleet, nodes, waits, notice).await?;
        if let Some(seed) = seed {
            report.done.extend(seed::seed(&fleet, &nodes.manager.name, seed, notice).await?);
        }
        report.done.extend(imixs::deploy(&fleet, &nodes.manager.name, stacks, notice).await?);
        report.stacks = stacks.iter().map(|s| s.name.clone()).collect();
        Ok(report)
    }
    .await;
    fleet.close().await;
    result
}

/// The hand-off of a stack provision made: the pins (the manager's own
/// host key, the workers' shared one) and the client key come from the
/// stack's state directory, where the bundle made them for the node configs.
pub async fn for_stack(
    state: &crate::state::StateDir,
    nodes: &Nodes,
    stacks: &[imixs::StackFile],
    seed: Option<&seed::Seed>,
    settings: ssh::Settings,
    notice: &dyn Fn(&str),
) -> Result<swarm::Report, HandoffError> {
    let pins = stack_pins(state, nodes)?;
    let client = keys::client_key_path(state);
    let key = keys::load_client(&client)?;
    let connector = ssh::Connector::new(nodes, key, &client.display().to_string(), pins, settings);
    form(nodes, &connector, &swarm::Waits::default(), stacks, seed, notice).await
}

/// The manager: reached on its public address, advertised on its private one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub name: String,
    pub public_address: IpAddr,
    pub private_address: IpAddr,
}

/// A worker: only a private address, reached through the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub name: String,
    pub private_address: IpAddr,
}

/// The nodes of one stack, and how to log in to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nodes {
    pub manager: Manager,
    pub workers: Vec<Worker>,
    pub ssh_user: String,
    pub ssh_port: u16,
    /// Where swarm overlay subnets come from (`--default-addr-pool`); None
    /// leaves Docker's default.
    pub swarm_pool: Option<String>,
    /// The client key the node source names, if any (the harness's own).
    pub client_key: Option<std::path::PathBuf>,
}

impl Nodes {
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(self.manager.name.as_str()).chain(self.workers.iter().map(|w| w.name.as_str())).collect()
    }

    pub fn worker(&self, name: &str) -> Option<&Worker> {
        self.workers.iter().find(|w| w.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.manager.name == name || self.worker(name).is_some()
    }

    /// Names become folder names (host keys) and appear in commands run on
    /// the nodes, so only plain host names are allowed, each once.
    fn checked(self) -> Result<Nodes, HandoffError> {
        let mut seen = std::collections::BTreeSet::new();
        for name in self.names() {
            let ok = !name.is_empty()
                && name.len() <= 63
                && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(HandoffError::Nodes(format!(
                    "`{name}` is not a usable node name (letters, digits, `-`, `_`, `.`; a letter or digit first)"
                )));
            }
            if !seen.insert(name) {
                return Err(HandoffError::Nodes(format!("node `{name}` is listed twice")));
            }
        }
        Ok(self)
    }

    /// From Heat's outputs (see `templates/heat/stack.yaml`): the manager's
    /// floating and private address, the workers' names and private
    /// addresses, pairwise.
    pub fn from_outputs(manager_name: &str, outputs: &BTreeMap<String, Value>) -> Result<Nodes, HandoffError> {
        let list = |k: &str| -> Result<Vec<String>, HandoffError> {
            match outputs.get(k) {
                // A ResourceGroup of size 0 may give null rather than [].
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| HandoffError::Nodes(format!("stack output `{k}` holds {x}, not a string")))
                    })
                    .collect(),
                Some(v) => Err(HandoffError::Nodes(format!("stack output `{k}` is not a list: {v}"))),
            }
        };
        let mut nodes = Nodes::manager_from_outputs(manager_name, outputs)?;
        let names = list(outputs::WORKER_NAMES)?;
        let ips = list(outputs::WORKER_PRIVATE_IPS)?;
        if names.len() != ips.len() {
            return Err(HandoffError::Nodes(format!(
                "the stack lists {} worker names but {} worker addresses; wait for it to settle",
                names.len(),
                ips.len()
            )));
        }
        let workers = names
            .into_iter()
            .zip(ips)
            .map(|(name, ip)| {
                let private_address = ip.parse().map_err(|_| {
                    HandoffError::Nodes(format!("worker {name}'s private address `{ip}` is not an IP address"))
                })?;
                Ok(Worker { name, private_address })
            })
            .collect::<Result<Vec<_>, HandoffError>>()?;
        nodes.workers = workers;
        nodes.checked()
    }

    /// The manager alone, for a stack whose workers are not all there
    /// (failed, or still in progress): enough to log in and look.
    pub fn manager_from_outputs(manager_name: &str, outputs: &BTreeMap<String, Value>) -> Result<Nodes, HandoffError> {
        let missing = |k: &str| HandoffError::Nodes(format!("the stack has no output `{k}`; is it complete?"));
        let addr = |k: &str| -> Result<IpAddr, HandoffError> {
            let v = outputs.get(k).ok_or_else(|| missing(k))?;
            v.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| HandoffError::Nodes(format!("stack output `{k}` is not an IP address: {v}")))
        };
        let manager = Manager {
            name: manager_name.to_string(),
            public_address: addr(outputs::MANAGER_FLOATING_IP)?,
            private_address: addr(outputs::MANAGER_PRIVATE_IP)?,
        };
        // Flatcar's login user, which is in the docker group.
        Nodes {
            manager,
            workers: Vec::new(),
            ssh_user: "core".into(),
            ssh_port: 22,
            swarm_pool: None,
            client_key: None,
        }
        .checked()
    }

    /// From the `inventory.json` (version 1) that `dev/nodes/nodes up` writes.
    pub fn from_inventory(text: &str) -> Result<Nodes, HandoffError> {
        #[derive(Deserialize)]
        struct Inventory {
            version: u32,
            client_key: Option<std::path::PathBuf>,
            #[serde(default)]
            networks: BTreeMap<String, Value>,
            nodes: Vec<Node>,
        }
        #[derive(Deserialize)]
        struct Node {
            name: String,
            role: String,
            floating_ip: Option<IpAddr>,
            private_ip: IpAddr,
            ssh_port: u16,
            ssh_user: String,
        }
        let inv: Inventory =
            serde_json::from_str(text).map_err(|e| HandoffError::Nodes(format!("not a nodes inventory: {e}")))?;
        if inv.version != 1 {
            return Err(HandoffError::Nodes(format!("inventory version {} is not supported (1 is)", inv.version)));
        }
        let mut managers = inv.nodes.iter().filter(|n| n.role == "manager");
        let (Some(m), None) = (managers.next(), managers.next()) else {
            return Err(HandoffError::Nodes("the inventory must list exactly one node with role `manager`".into()));
        };
        let public_address = m
            .floating_ip
            .ok_or_else(|| HandoffError::Nodes(format!("manager {} has no floating_ip in the inventory", m.name)))?;
        let mut workers = Vec::new();
        for n in &inv.nodes {
            match n.role.as_str() {
                "manager" => {}
                "worker" => {
                    if n.ssh_port != m.ssh_port || n.ssh_user != m.ssh_user {
                        return Err(HandoffError::Nodes(format!(
                            "worker {} uses another SSH port or user than the manager; not supported",
                            n.name
                        )));
                    }
                    workers.push(Worker { name: n.name.clone(), private_address: n.private_ip });
                }
                other => return Err(HandoffError::Nodes(format!("node {} has unknown role `{other}`", n.name))),
            }
        }
        Nodes {
            manager: Manager { name: m.name.clone(), public_address, private_address: m.private_ip },
            workers,
            ssh_user: m.ssh_user.clone(),
            ssh_port: m.ssh_port,
            swarm_pool: inv.networks.get("swarm_pool").and_then(Value::as_str).map(str::to_string),
            client_key: inv.client_key,
        }
        .checked()
    }

    pub fn from_inventory_file(path: &Path) -> Result<Nodes, HandoffError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HandoffError::Nodes(format!("cannot read {}: {e}", path.display())))?;
        Nodes::from_inventory(&text).map_err(|e| HandoffError::Nodes(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INVENTORY: &str = r#"{
      "version": 1, "state_dir": "/tmp/provision-nodes", "client_key": "/tmp/provision-nodes/keys/client_ed25519",
      "networks": {"floating": "10.250.0.0/24", "private": "10.251.0.0/24", "swarm_pool": "10.252.128.0/17"},
      "nodes": [
        {"name": "manager", "role": "manager", "hostname": "manager", "floating_ip": "10.250.0.2",
         "private_ip": "10.251.0.10", "ssh_port": 22, "ssh_user": "root", "proxy_jump": null,
         "host_public_key": "ssh-ed25519 AAAA", "sshd_pid": 1, "dockerd_pid": null},
        {"name": "worker-1", "role": "worker", "hostname": "worker-1", "floating_ip": null,
         "private_ip": "10.251.0.11", "ssh_port": 22, "ssh_user": "root", "proxy_jump": "manager"}
      ]
    }"#;

    fn outcome(ok: bool, outputs: serde_json::Value) -> crate::stack::Outcome {
        let status = if ok { "CREATE_COMPLETE" } else { "CREATE_FAILED" };
        crate::stack::Outcome {
            stack: crate::stack::StackRef { name: "web".into(), id: "id-1".into() },
            action: crate::stack::RunAction::Show,
            status: crate::stack::StackStatus::parse(status).unwrap(),
            reason: String::new(),
            ok,
            changes: Vec::new(),
            outputs: serde_json::from_value(outputs).unwrap(),
            failures: Vec::new(),
            events: 0,
            heat_seconds: None,
            tags: Vec::new(),
            ownership: Default::default(),
        }
    }

    #[test]
    fn stack_nodes_come_from_the_outputs_and_a_failed_stack_gives_its_manager_to_ssh_only() {
        let full = json!({"manager_name": "web", "manager_floating_ip": "203.0.113.5",
            "manager_private_ip": "10.0.0.5", "worker_names": ["web-worker-0"], "worker_private_ips": ["10.0.0.6"],
            "registry": "web.example.com:5000"});
        let n = StackNodes::from_outcome(&outcome(true, full), None, true).unwrap();
        assert_eq!((n.name.as_str(), n.fqdn.as_str()), ("web", "web.example.com"));
        assert_eq!(n.nodes.names(), ["web", "web-worker-0"]);

        // Workers not there yet: the manager alone, for ssh; never a hand-off.
        let half = json!({"manager_floating_ip": "203.0.113.5", "manager_private_ip": "10.0.0.5",
            "worker_names": ["web-worker-0"], "worker_private_ips": []});
        let named = Some(("web".to_string(), "web.example.com".to_string()));
        let n = StackNodes::from_outcome(&outcome(false, half.clone()), named.clone(), false).unwrap();
        assert_eq!((n.nodes.names(), n.fqdn.as_str()), (vec!["web"], "web.example.com"));
        let e = StackNodes::from_outcome(&outcome(false, half.clone()), named, true).unwrap_err();
        assert!(e.to_string().contains("handed off once it is complete"), "{e}");
        // A complete stack with broken outputs is an error, not a manager alone.
        assert!(
            StackNodes::from_outcome(&outcome(true, half.clone()), Some(("web".into(), "w".into())), false).is_err()
        );
        let e = StackNodes::from_outcome(&outcome(true, half), None, false).unwrap_err();
        assert!(e.to_string().contains("--env"), "without manager_name or env files it says what to give: {e}");
    }

    #[test]
    fn inventory_of_the_harness() {
        let n = Nodes::from_inventory(INVENTORY).unwrap();
        assert_eq!(n.manager.name, "manager");
        assert_eq!(n.manager.public_address.to_string(), "10.250.0.2");
        assert_eq!(n.manager.private_address.to_string(), "10.251.0.10");
        assert_eq!(
            n.workers,
            vec![Worker { name: "worker-1".into(), private_address: "10.251.0.11".parse().unwrap() }]
        );
        assert_eq!(n.ssh_user, "root");
        assert_eq!(n.swarm_pool.as_deref(), Some("10.252.128.0/17"));
        assert_eq!(n.names(), ["manager", "worker-1"]);
    }

    #[test]
    fn inventory_problems_are_named() {
        let no_manager = INVENTORY.replace(r#""role": "manager""#, r#""role": "worker""#);
        assert!(Nodes::from_inventory(&no_manager).unwrap_err().to_string().contains("exactly one"));
        let bad_name = INVENTORY.replace(r#""name": "worker-1""#, r#""name": "../x""#);
        assert!(Nodes::from_inventory(&bad_name).unwrap_err().to_string().contains("`../x`"));
        let twice = INVENTORY.replace(r#""name": "worker-1""#, r#""name": "manager""#);
        assert!(Nodes::from_inventory(&twice).unwrap_err().to_string().contains("twice"));
        assert!(Nodes::from_inventory("{}").unwrap_err().to_string().contains("not a nodes inventory"));
    }

    fn outputs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn stack_outputs_pair_names_and_addresses() {
        let o = outputs(json!({
            "manager_floating_ip": "203.0.113.5", "manager_private_ip": "10.20.30.4",
            "worker_names": ["myhost-worker-0", "myhost-worker-1"], "worker_private_ips": ["10.20.30.7", "10.20.30.9"],
            "registry": "myhost.example.com:5000",
        }));
        let n = Nodes::from_outputs("myhost", &o).unwrap();
        assert_eq!(n.manager.public_address.to_string(), "203.0.113.5");
        assert_eq!(n.workers[1].name, "myhost-worker-1");
        assert_eq!(n.workers[1].private_address.to_string(), "10.20.30.9");
        assert_eq!(n.swarm_pool, None);
    }

    #[test]
    fn stack_outputs_without_workers_or_incomplete() {
        let o = outputs(json!({"manager_floating_ip": "203.0.113.5", "manager_private_ip": "10.20.30.4",
                               "worker_names": null, "worker_private_ips": []}));
        assert!(Nodes::from_outputs("m", &o).unwrap().workers.is_empty());
        let o = outputs(json!({"manager_private_ip": "10.20.30.4"}));
        assert!(Nodes::from_outputs("m", &o).unwrap_err().to_string().contains("`manager_floating_ip`"));
        let o = outputs(json!({"manager_floating_ip": "203.0.113.5", "manager_private_ip": "10.20.30.4",
                               "worker_names": ["a", "b"], "worker_private_ips": ["10.20.30.7"]}));
        assert!(Nodes::from_outputs("m", &o).unwrap_err().to_string().contains("2 worker names but 1"));
        let o = outputs(json!({"manager_floating_ip": "nope", "manager_private_ip": "10.20.30.4"}));
        assert!(Nodes::from_outputs("m", &o).unwrap_err().to_string().contains("not an IP address"));
    }

    /// A failed stack: its worker lists hold nulls, the manager is there.
    #[test]
    fn a_failed_stacks_outputs_still_give_its_manager() {
        let o = outputs(json!({"manager_floating_ip": "203.0.113.5", "manager_private_ip": "10.20.30.4",
                               "worker_names": [null, "w-1"], "worker_private_ips": [null, "10.20.30.9"]}));
        assert!(Nodes::from_outputs("m", &o).unwrap_err().to_string().contains("holds null"));
        let n = Nodes::manager_from_outputs("m", &o).unwrap();
        assert_eq!(
            (n.manager.name.as_str(), n.manager.public_address.to_string(), n.workers.len()),
            ("m", "203.0.113.5".into(), 0)
        );
        let o = outputs(json!({"manager_private_ip": "10.20.30.4"}));
        assert!(Nodes::manager_from_outputs("m", &o).unwrap_err().to_string().contains("`manager_floating_ip`"));
    }
}
