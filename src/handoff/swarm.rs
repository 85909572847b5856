//! Forming the swarm: observe what the engines and the manager report,
//! [`plan`] the steps from that (a plain function), run them, observe
//! again, until there is nothing left to do. A run against a formed swarm
//! observes once and changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ssh::{CONCURRENCY, Cmd, Fleet, Output};
use super::{HandoffError, Nodes, commands};
use crate::poll::{Pause, Stop, Try, retry};

/// The overlay networks the Imixs-Cloud stacks attach to, made before any
/// stack is deployed. Attachable, so a one-off container can join them too.
pub const NETWORKS: &[&str] = &["imixs-proxy-net"];

/// The labels a node should carry, for placement: what Swarm does not know
/// itself. The manager also runs the private registry, the cache and Redis
/// from its node config. Roles are Swarm's own (`node.role`): labelling
/// each worker with its role would cost a raft write per worker and say
/// nothing new.
pub fn labels(role: Role) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    if role == Role::Manager {
        l.insert("provision.role".to_string(), "manager".to_string());
        l.insert("provision.registry".to_string(), "true".to_string());
    }
    l
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

/// What one engine says of itself (`docker info`'s `.Swarm`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Engine {
    /// inactive, pending, active, error or locked.
    #[serde(rename = "LocalNodeState")]
    pub state: String,
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    /// True on a manager.
    #[serde(rename = "ControlAvailable", default)]
    pub control: bool,
    #[serde(rename = "Error", default)]
    pub error: String,
}

impl Engine {
    pub fn inactive() -> Engine {
        Engine { state: "inactive".into(), node_id: String::new(), control: false, error: String::new() }
    }
}

/// One entry of the manager's node list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub hostname: String,
    pub role: Role,
    /// ready, down, unknown or disconnected.
    pub state: String,
    /// The address the node is seen at (its advertised one).
    pub addr: String,
    pub labels: BTreeMap<String, String>,
}

/// Everything the plan looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub manager: Option<Engine>,
    /// By node name, for every worker of the node list.
    pub workers: BTreeMap<String, Engine>,
    /// The manager's node list; empty while it is no manager.
    pub members: Vec<Member>,
    /// Overlay networks the manager knows.
    pub networks: BTreeSet<String>,
}

/// One change to the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `docker swarm init` on the manager.
    Init,
    /// A worker with no swarm joins.
    Join {
        worker: String,
    },
    /// A worker that is in another swarm, or stuck, leaves it and joins.
    Rejoin {
        worker: String,
        why: String,
    },
    CreateNetwork {
        name: String,
    },
    Label {
        node: String,
        id: String,
        add: BTreeMap<String, String>,
    },
    /// A node that is gone: Down, and no node of the list.
    Remove {
        id: String,
        hostname: String,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Init => write!(f, "initialise the swarm on the manager"),
            Step::Join { worker } => write!(f, "join {worker}"),
            Step::Rejoin { worker, why } => write!(f, "rejoin {worker} ({why})"),
            Step::CreateNetwork { name } => write!(f, "create overlay network {name}"),
            Step::Label { node, add, .. } => {
                let l: Vec<String> = add.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "label {node}: {}", l.join(" "))
            }
            Step::Remove { id, hostname } => {
                write!(f, "remove {hostname} ({id}): Down and no longer a node of the stack")
            }
        }
    }
}

/// The steps, and what was seen but is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    /// Entries that should go Down soon (their node is gone or came back
    /// under a new ID): worth waiting for, so one run removes them.
    pub leaving: Vec<String>,
}

/// Decides what to do from what was observed. Steps that need an earlier
/// one done (a join needs the swarm) are left to the next round.
pub fn plan(nodes: &Nodes, seen: &Observed) -> Result<Plan, HandoffError> {
    let mut p = Plan::default();
    let mgr = seen.manager.as_ref().ok_or_else(|| HandoffError::Swarm("the manager was not observed".into()))?;
    let m = &nodes.manager.name;
    match (mgr.state.as_str(), mgr.control) {
        ("active", true) => {}
        ("inactive", _) => {
            p.steps.push(Step::Init);
            return Ok(p);
        }
        ("active", false) => {
            return Err(HandoffError::Swarm(format!(
                "{m} is a worker of another swarm, not a manager; run `docker swarm leave` on it if that swarm is \
                 not wanted, then run again"
            )));
        }
        ("locked", _) => {
            return Err(HandoffError::Swarm(format!(
                "the swarm on {m} is locked (autolock); unlock it with `docker swarm unlock` and run again"
            )));
        }
        (state, _) => {
            return Err(HandoffError::Swarm(format!(
                "{m}'s swarm is {state}{}; look at `docker info` on it (`provision ssh {m} -- docker info`)",
                if mgr.error.is_empty() { String::new() } else { format!(" ({})", mgr.error) }
            )));
        }
    }

    let by_id: BTreeMap<&str, &Member> = seen.members.iter().map(|x| (x.id.as_str(), x)).collect();
    // The list's nodes as members, by node name.
    let mut current: Vec<(&str, &Member, Role)> = Vec::new();
    match by_id.get(mgr.node_id.as_str()) {
        Some(x) => current.push((m, x, Role::Manager)),
        None => return Err(HandoffError::Swarm(format!("{m}'s own node {} is not in its node list", mgr.node_id))),
    }
    for w in &nodes.workers {
        let e = seen.workers.get(&w.name).cloned().unwrap_or_else(Engine::inactive);
        let member = by_id.get(e.node_id.as_str()).filter(|_| !e.node_id.is_empty());
        match (e.state.as_str(), member) {
            ("active", Some(x)) if !e.control => current.push((&w.name, x, Role::Worker)),
            ("active", Some(_)) => p.notes.push(format!("{} is a manager of this swarm; left as it is", w.name)),
            ("inactive", _) => p.steps.push(Step::Join { worker: w.name.clone() }),
            ("locked", _) => {
                return Err(HandoffError::Swarm(format!(
                    "{} is locked in a swarm (autolock); unlock or leave it by hand and run again",
                    w.name
                )));
            }
            ("active", None) => p.steps.push(Step::Rejoin {
                worker: w.name.clone(),
                why: "it is in another swarm, or was removed from this one".into(),
            }),
            (state, _) => p.steps.push(Step::Rejoin {
                worker: w.name.clone(),
                why: if e.error.is_empty() { format!("its swarm is {state}") } else { e.error.clone() },
            }),
        }
    }

    for name in NETWORKS {
        if !seen.networks.contains(*name) {
            p.steps.push(Step::CreateNetwork { name: (*name).to_string() });
        }
    }

    for (name, x, role) in &current {
        let add: BTreeMap<String, String> =
            labels(*role).into_iter().filter(|(k, v)| x.labels.get(k) != Some(v)).collect();
        if !add.is_empty() {
            p.steps.push(Step::Label { node: name.to_string(), id: x.id.clone(), add });
        }
    }

    let kept: BTreeSet<&str> = current.iter().map(|(_, x, _)| x.id.as_str()).collect();
    for x in &seen.members {
        if kept.contains(x.id.as_str()) {
            continue;
        }
        let listed = nodes.has(&x.hostname);
        match (x.state.as_str(), x.role) {
            ("down", Role::Worker) => p.steps.push(Step::Remove { id: x.id.clone(), hostname: x.hostname.clone() }),
            (_, Role::Manager) => p.notes.push(format!(
                "{} ({}) is another manager of this swarm ({}); left as it is",
                x.hostname, x.id, x.state
            )),
            // A node of the list that has not joined yet, or joined again under
            // a new ID: its old entry goes once it is Down.
            (state, _) if listed => {
                p.leaving.push(x.hostname.clone());
                p.notes.push(format!("an older entry of {} ({}) is {state}; removed once it is Down", x.hostname, x.id))
            }
            (state, _) => {
                p.leaving.push(x.hostname.clone());
                p.notes.push(format!(
                    "{} ({}) is not a node of the stack but still {state}; it is removed once the swarm marks it Down",
                    x.hostname, x.id
                ))
            }
        }
    }
    Ok(p)
}

pub fn parse_engine(text: &str) -> Result<Engine, HandoffError> {
    serde_json::from_str(text.trim())
        .map_err(|e| HandoffError::Swarm(format!("unexpected `docker info` answer ({e}): {}", clip(text))))
}

pub fn parse_members(text: &str) -> Result<Vec<Member>, HandoffError> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "ID")]
        id: String,
        #[serde(rename = "Spec")]
        spec: Spec,
        #[serde(rename = "Description")]
        description: Description,
        #[serde(rename = "Status")]
        status: Status,
    }
    #[derive(Deserialize)]
    struct Spec {
        #[serde(rename = "Labels", default)]
        labels: Option<BTreeMap<String, String>>,
        #[serde(rename = "Role")]
        role: String,
    }
    #[derive(Deserialize)]
    struct Description {
        #[serde(rename = "Hostname", default)]
        hostname: String,
    }
    #[derive(Deserialize)]
    struct Status {
        #[serde(rename = "State")]
        state: String,
        #[serde(rename = "Addr", default)]
        addr: String,
    }
    let raw: Vec<Raw> = serde_json::from_str(text.trim())
        .map_err(|e| HandoffError::Swarm(format!("unexpected `docker node inspect` answer ({e}): {}", clip(text))))?;
    Ok(raw
        .into_iter()
        .map(|r| Member {
            id: r.id,
            hostname: r.description.hostname,
            role: if r.spec.role == "manager" { Role::Manager } else { Role::Worker },
            state: r.status.state,
            addr: r.status.addr,
            labels: r.spec.labels.unwrap_or_default(),
        })
        .collect())
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() > 200 { format!("{}...", &s[..s.floor_char_boundary(200)]) } else { s.to_string() }
}

/// Runs commands on nodes by name: the SSH fleet, or a stand-in in tests.
pub trait Remote {
    fn run(&self, node: &str, cmd: &Cmd) -> impl Future<Output = Result<Output, HandoffError>>;
}

impl Remote for Fleet {
    async fn run(&self, node: &str, cmd: &Cmd) -> Result<Output, HandoffError> {
        match self.link(node) {
            Some(l) => l.run(cmd).await,
            None => Err(HandoffError::Ssh { node: node.to_string(), message: "not connected".into() }),
        }
    }
}

/// How long to wait for Docker and for nodes to be Ready.
#[derive(Debug, Clone)]
pub struct Waits {
    pub attempts: u32,
    pub interval: Duration,
}

impl Default for Waits {
    fn default() -> Waits {
        Waits { attempts: 30, interval: Duration::from_secs(2) }
    }
}

/// What a hand-off did and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The steps done, as shown; empty when everything was in place.
    pub done: Vec<String>,
    pub notes: Vec<String>,
    pub members: Vec<Member>,
    pub networks: Vec<String>,
    /// The nodes of the list, all Ready.
    pub ready: Vec<String>,
    /// The Imixs-Cloud stacks of the configuration directory, in the order
    /// they are deployed (their deployment, when needed, is in `done`).
    pub stacks: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        !self.done.is_empty()
    }
}

async fn must<R: Remote>(r: &R, node: &str, cmd: Cmd) -> Result<Output, HandoffError> {
    r.run(node, &cmd).await?.check(node, &cmd)
}

/// `docker info`'s swarm part, waiting (bounded, one line per attempt) for
/// a Docker that does not answer yet: a node that has just booted.
async fn engine<R: Remote>(r: &R, node: &str, waits: &Waits, notice: &dyn Fn(&str)) -> Result<Engine, HandoffError> {
    let cmd = commands::swarm_info();
    let say =
        |n: u32, last: &str| notice(&format!("waiting for Docker on {node}, attempt {n}/{}: {last}", waits.attempts));
    let answered = retry(waits.attempts, Pause::Every(waits.interval), say, |_| async {
        match r.run(node, &cmd).await {
            Ok(out) if out.ok() => Try::Done(out),
            Ok(out) => Try::Again(out.stderr.lines().last().unwrap_or("no answer").to_string()),
            Err(e) => Try::Fail(e),
        }
    });
    match answered.await {
        Ok(out) => parse_engine(&out.stdout),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::GaveUp { last, .. }) => Err(HandoffError::Swarm(format!(
            "Docker on {node} did not answer after {} attempts ({last}); check `systemctl status docker` on it",
            waits.attempts
        ))),
    }
}

/// What the manager's node list says of a worker, when that settles it: an
/// entry with the worker's name, Ready, as a worker, at its private address
/// is that worker in this swarm, and asking its engine would add nothing.
pub fn known_worker(members: &[Member], w: &super::Worker) -> Option<Engine> {
    let addr = w.private_address.to_string();
    members
        .iter()
        .find(|x| x.hostname == w.name && x.role == Role::Worker && x.state == "ready" && x.addr == addr)
        .map(|x| Engine { state: "active".into(), node_id: x.id.clone(), control: false, error: String::new() })
}

/// Reads the state of every node: the manager first; then each worker the
/// manager does not list as a Ready member ([`known_worker`]) is asked
/// itself (at most [`CONCURRENCY`] at once). So a formed swarm costs three
/// commands on the manager, whatever its size.
pub async fn observe<R: Remote>(
    r: &R,
    nodes: &Nodes,
    waits: &Waits,
    notice: &dyn Fn(&str),
) -> Result<Observed, HandoffError> {
    use futures::StreamExt;
    let m = &nodes.manager.name;
    let manager = engine(r, m, waits, notice).await?;
    let (mut members, mut networks) = (Vec::new(), BTreeSet::new());
    if manager.state == "active" && manager.control {
        members = parse_members(&must(r, m, commands::node_inspect_all()).await?.stdout)?;
        let out = must(r, m, commands::overlay_networks()).await?;
        networks = out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    }
    let members = &members;
    let found: Vec<Result<(String, Engine), HandoffError>> = futures::stream::iter(&nodes.workers)
        .map(|w| async move {
            let e = match known_worker(members, w) {
                Some(e) => e,
                None => engine(r, &w.name, waits, notice).await?,
            };
            Ok((w.name.clone(), e))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let workers = found.into_iter().collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(Observed { manager: Some(manager), workers, members: members.clone(), networks })
}

/// Commands run at once on the manager's one connection: OpenSSH allows
/// 10 sessions per connection (MaxSessions) by default, and a finished one
/// is freed only a moment later.
const MANAGER_SESSIONS: usize = 4;

/// Runs one round's steps: the manager's init and networks first, then its
/// node updates (labels, removals; each a raft write, so worth running side
/// by side) and the workers' joins, both in parallel.
async fn execute<R: Remote>(r: &R, nodes: &Nodes, steps: &[Step], notice: &dyn Fn(&str)) -> Result<(), HandoffError> {
    use futures::StreamExt;
    let m = &nodes.manager.name;
    let ip = nodes.manager.private_address;
    let mut joins = Vec::new();
    let mut updates = Vec::new();
    for s in steps {
        match s {
            Step::Init => {
                notice(&format!("{s} ({m}, advertised on {ip})"));
                must(r, m, commands::swarm_init(ip, nodes.swarm_pool.as_deref())).await?;
            }
            Step::CreateNetwork { name } => {
                notice(&s.to_string());
                must(r, m, commands::network_create(name)).await?;
            }
            Step::Label { id, add, .. } => updates.push((s, commands::node_labels(id, add))),
            Step::Remove { id, .. } => updates.push((s, commands::node_remove(id))),
            Step::Join { .. } | Step::Rejoin { .. } => joins.push(s),
        }
    }
    let results: Vec<Result<Output, HandoffError>> = futures::stream::iter(updates)
        .map(|(s, cmd)| async move {
            notice(&s.to_string());
            must(r, m, cmd).await
        })
        .buffer_unordered(MANAGER_SESSIONS)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    if joins.is_empty() {
        return Ok(());
    }
    let token = must(r, m, commands::worker_join_token()).await?.stdout.trim().to_string();
    if !token.starts_with("SWMTKN-") {
        return Err(HandoffError::Swarm(format!("{m} gave no worker join token")));
    }
    let token = &token;
    let results: Vec<Result<(), HandoffError>> = futures::stream::iter(joins)
        .map(|s| async move {
            let (w, leave) = match s {
                Step::Join { worker } => (worker, false),
                Step::Rejoin { worker, .. } => (worker, true),
                _ => unreachable!("only joins are collected"),
            };
            let wip = nodes
                .worker(w)
                .map(|x| x.private_address)
                .ok_or_else(|| HandoffError::Swarm(format!("{w} is not a worker of the node list")))?;
            notice(&s.to_string());
            if leave {
                must(r, w, commands::swarm_leave()).await?;
            }
            let cmd = commands::swarm_join(token, wip, ip);
            let out = r.run(w, &cmd).await?;
            // Docker does not echo the token today; make sure it never shows.
            let out = Output {
                stdout: out.stdout.replace(token.as_str(), commands::TOKEN_SHOWN),
                stderr: out.stderr.replace(token.as_str(), commands::TOKEN_SHOWN),
                ..out
            };
            out.check(w, &cmd).map(|_| ())
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Forms the swarm, or finds it formed: observe, plan, do, until the plan
/// is empty; then waits until every node of the list is Ready.
pub async fn converge<R: Remote>(
    r: &R,
    nodes: &Nodes,
    waits: &Waits,
    notice: &dyn Fn(&str),
) -> Result<Report, HandoffError> {
    // Init, then joins, networks and the manager's labels, then the
    // workers' labels (and removals): three rounds of steps at most.
    const ROUNDS: usize = 4;
    let mut report = Report::default();
    let (mut rounds, mut waited) = (0, 0);
    loop {
        let seen = observe(r, nodes, waits, notice).await?;
        let p = plan(nodes, &seen)?;
        if p.steps.is_empty() {
            // The swarm marks a vanished node Down after some seconds of
            // missed heartbeats; a node that stays up is someone else's
            // and is left alone after the wait.
            if !p.leaving.is_empty() && waited < waits.attempts {
                waited += 1;
                notice(&format!(
                    "waiting for {} to be marked Down, check {waited}/{}",
                    p.leaving.join(", "),
                    waits.attempts
                ));
                tokio::time::sleep(waits.interval).await;
                continue;
            }
            report.notes = p.notes;
            return ready(r, nodes, waits, notice, report, seen).await;
        }
        rounds += 1;
        if rounds > ROUNDS {
            let left: Vec<String> = p.steps.iter().map(Step::to_string).collect();
            return Err(HandoffError::Swarm(format!(
                "the swarm did not settle after {ROUNDS} rounds; still to do: {}",
                left.join("; ")
            )));
        }
        execute(r, nodes, &p.steps, notice).await?;
        report.done.extend(p.steps.iter().map(Step::to_string));
    }
}

/// A node that has just joined is `unknown` for a moment before `ready`.
async fn ready<R: Remote>(
    r: &R,
    nodes: &Nodes,
    waits: &Waits,
    notice: &dyn Fn(&str),
    mut report: Report,
    mut seen: Observed,
) -> Result<Report, HandoffError> {
    // In the list's order: the manager, then the workers.
    let ids: Vec<(String, String)> = std::iter::once((&nodes.manager.name, seen.manager.as_ref()))
        .chain(nodes.workers.iter().map(|w| (&w.name, seen.workers.get(&w.name))))
        .filter_map(|(n, e)| e.map(|e| (n.clone(), e.node_id.clone())))
        .collect();
    for n in 1..=waits.attempts.max(1) {
        let not_ready: Vec<String> = ids
            .iter()
            .filter_map(|(name, id)| {
                let state = seen.members.iter().find(|x| &x.id == id).map(|x| x.state.as_str()).unwrap_or("missing");
                (state != "ready").then(|| format!("{name} ({state})"))
            })
            .collect();
        if not_ready.is_empty() {
            report.ready = ids.into_iter().map(|(n, _)| n).collect();
            report.members = seen.members;
            report.networks = seen.networks.into_iter().collect();
            return Ok(report);
        }
        if n == waits.attempts.max(1) {
            return Err(HandoffError::Swarm(format!(
                "not Ready in the swarm after {n} checks: {}; look at `docker node ls` on {} and the Docker logs \
                 of those nodes (ports 2377, 7946 and 4789 must be open between the nodes)",
                not_ready.join(", "),
                nodes.manager.name
            )));
        }
        notice(&format!("waiting for {} to be Ready, check {}/{}", not_ready.join(", "), n + 1, waits.attempts));
        tokio::time::sleep(waits.interval).await;
        let out = must(r, &nodes.manager.name, commands::node_inspect_all()).await?;
        seen.members = parse_members(&out.stdout)?;
    }
    unreachable!("the last check returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::{Manager, Worker};

    fn nodes(workers: usize) -> Nodes {
        Nodes {
            manager: Manager {
                name: "manager".into(),
                public_address: "10.250.0.2".parse().unwrap(),
                private_address: "10.251.0.10".parse().unwrap(),
            },
            workers: (1..=workers)
                .map(|i| Worker {
                    name: format!("worker-{i}"),
                    private_address: format!("10.251.0.{}", 10 + i).parse().unwrap(),
                })
                .collect(),
            ssh_user: "root".into(),
            ssh_port: 22,
            swarm_pool: None,
            client_key: None,
        }
    }

    fn engine(state: &str, id: &str, control: bool) -> Engine {
        Engine { state: state.into(), node_id: id.into(), control, error: String::new() }
    }

    fn member(id: &str, host: &str, role: Role, state: &str) -> Member {
        let addr = match host.strip_prefix("worker-") {
            Some(i) => format!("10.251.0.{}", 10 + i.parse::<u8>().unwrap()),
            None => "10.251.0.10".into(),
        };
        Member { id: id.into(), hostname: host.into(), role, state: state.into(), addr, labels: labels(role) }
    }

    /// A formed swarm of the manager and `workers` workers, labelled.
    fn formed(workers: usize) -> Observed {
        let mut o = Observed {
            manager: Some(engine("active", "m1", true)),
            members: vec![member("m1", "manager", Role::Manager, "ready")],
            networks: NETWORKS.iter().map(|s| s.to_string()).chain(["ingress".to_string()]).collect(),
            ..Default::default()
        };
        for i in 1..=workers {
            o.workers.insert(format!("worker-{i}"), engine("active", &format!("w{i}"), false));
            o.members.push(member(&format!("w{i}"), &format!("worker-{i}"), Role::Worker, "ready"));
        }
        o
    }

    #[test]
    fn a_fresh_manager_is_initialised_first_and_alone() {
        let mut o = formed(0);
        o.manager = Some(Engine::inactive());
        o.members.clear();
        o.networks.clear();
        o.workers.insert("worker-1".into(), Engine::inactive());
        assert_eq!(plan(&nodes(1), &o).unwrap().steps, [Step::Init]);
    }

    #[test]
    fn after_init_workers_join_and_network_and_labels_follow() {
        let mut o = formed(0);
        o.members[0].labels.clear();
        o.networks.clear();
        o.workers.insert("worker-1".into(), Engine::inactive());
        o.workers.insert("worker-2".into(), Engine::inactive());
        let p = plan(&nodes(2), &o).unwrap();
        assert_eq!(
            p.steps,
            [
                Step::Join { worker: "worker-1".into() },
                Step::Join { worker: "worker-2".into() },
                Step::CreateNetwork { name: "imixs-proxy-net".into() },
                Step::Label { node: "manager".into(), id: "m1".into(), add: labels(Role::Manager) },
            ]
        );
    }

    #[test]
    fn a_formed_swarm_needs_nothing() {
        let p = plan(&nodes(3), &formed(3)).unwrap();
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn only_missing_or_different_labels_are_set() {
        let mut o = formed(1);
        o.members[0].labels.insert("provision.role".into(), "worker".into());
        o.members[0].labels.insert("team".into(), "kept".into());
        // A worker's own labels are the operator's: none is wanted.
        o.members[1].labels.insert("zone".into(), "a".into());
        let p = plan(&nodes(1), &o).unwrap();
        let want: BTreeMap<String, String> = [("provision.role".to_string(), "manager".to_string())].into();
        assert_eq!(p.steps, [Step::Label { node: "manager".into(), id: "m1".into(), add: want }]);
    }

    #[test]
    fn the_managers_list_settles_a_worker_only_when_ready_at_its_address() {
        let n = nodes(1);
        let w = &n.workers[0];
        let ready = member("w1", "worker-1", Role::Worker, "ready");
        assert_eq!(known_worker(std::slice::from_ref(&ready), w), Some(engine("active", "w1", false)));
        // Joined a moment ago, gone, elsewhere, or a manager: ask the engine.
        for changed in [
            Member { state: "unknown".into(), ..ready.clone() },
            Member { state: "down".into(), ..ready.clone() },
            Member { addr: "10.251.0.99".into(), ..ready.clone() },
            Member { hostname: "worker-2".into(), ..ready.clone() },
            Member { role: Role::Manager, ..ready.clone() },
        ] {
            assert_eq!(known_worker(std::slice::from_ref(&changed), w), None, "{changed:?}");
        }
        // An old Down entry beside the Ready one does not hide it.
        let old = Member { id: "w0".into(), state: "down".into(), ..ready.clone() };
        assert_eq!(known_worker(&[old, ready], w).map(|e| e.node_id), Some("w1".into()));
    }

    #[test]
    fn scale_up_joins_only_the_new_workers() {
        let mut o = formed(2);
        o.workers.insert("worker-3".into(), Engine::inactive());
        assert_eq!(plan(&nodes(3), &o).unwrap().steps, [Step::Join { worker: "worker-3".into() }]);
    }

    #[test]
    fn scale_down_removes_nodes_that_are_down_and_gone() {
        let mut o = formed(3);
        o.workers.remove("worker-3");
        o.workers.remove("worker-2");
        o.members[3].state = "down".into();
        // worker-2 is gone from the list but the swarm has not noticed yet.
        let p = plan(&nodes(1), &o).unwrap();
        assert_eq!(p.steps, [Step::Remove { id: "w3".into(), hostname: "worker-3".into() }]);
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].contains("worker-2 (w2) is not a node of the stack but still ready"), "{:?}", p.notes);
        assert_eq!(p.leaving, ["worker-2"]);
    }

    #[test]
    fn a_rebuilt_worker_joins_again_and_its_old_entry_goes_when_down() {
        let mut o = formed(1);
        o.workers.insert("worker-1".into(), Engine::inactive());
        o.members[1].state = "down".into();
        let p = plan(&nodes(1), &o).unwrap();
        assert_eq!(
            p.steps,
            [Step::Join { worker: "worker-1".into() }, Step::Remove { id: "w1".into(), hostname: "worker-1".into() }]
        );
        // Before the swarm marks it down, the old entry is only noted.
        o.members[1].state = "ready".into();
        let p = plan(&nodes(1), &o).unwrap();
        assert_eq!(p.steps, [Step::Join { worker: "worker-1".into() }]);
        assert!(p.notes[0].contains("older entry of worker-1"), "{:?}", p.notes);
    }

    #[test]
    fn a_worker_of_another_swarm_or_stuck_rejoins() {
        let mut o = formed(2);
        o.workers.insert("worker-1".into(), engine("active", "elsewhere", false));
        o.workers
            .insert("worker-2".into(), Engine { error: "rpc error: timeout".into(), ..engine("pending", "", false) });
        o.members.truncate(1);
        let p = plan(&nodes(2), &o).unwrap();
        assert!(matches!(&p.steps[0], Step::Rejoin { worker, .. } if worker == "worker-1"), "{:?}", p.steps);
        assert!(matches!(&p.steps[1], Step::Rejoin { worker, why } if worker == "worker-2" && why.contains("timeout")));
    }

    #[test]
    fn a_manager_that_cannot_lead_is_an_error_that_says_why() {
        let mut o = formed(0);
        o.manager = Some(engine("active", "x", false));
        assert!(plan(&nodes(0), &o).unwrap_err().to_string().contains("worker of another swarm"));
        o.manager = Some(engine("locked", "", false));
        assert!(plan(&nodes(0), &o).unwrap_err().to_string().contains("docker swarm unlock"));
        o.manager = Some(Engine { error: "boom".into(), ..engine("error", "", false) });
        assert!(plan(&nodes(0), &o).unwrap_err().to_string().contains("error (boom)"));
    }

    #[test]
    fn docker_answers_parse() {
        let e = parse_engine(
            r#"{"NodeID":"abc","NodeAddr":"10.251.0.10","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"abc","Addr":"10.251.0.10:2377"}],"Nodes":2,"Managers":1,"Cluster":{"ID":"c"}}"#,
        )
        .unwrap();
        assert_eq!(e, engine("active", "abc", true));
        let e = parse_engine(
            r#"{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}"#,
        )
        .unwrap();
        assert_eq!(e, Engine::inactive());
        assert!(parse_engine("Cannot connect").unwrap_err().to_string().contains("unexpected `docker info`"));

        let m = parse_members(
            r#"[{"ID":"abc","Version":{"Index":9},"Spec":{"Labels":{},"Role":"manager","Availability":"active"},
                 "Description":{"Hostname":"manager"},"Status":{"State":"ready","Addr":"10.251.0.10"},
                 "ManagerStatus":{"Leader":true,"Reachability":"reachable","Addr":"10.251.0.10:2377"}},
                {"ID":"def","Spec":{"Labels":{"provision.role":"worker"},"Role":"worker","Availability":"active"},
                 "Description":{"Hostname":"worker-1"},"Status":{"State":"down","Addr":"10.251.0.11"}}]"#,
        )
        .unwrap();
        assert_eq!(m[0].role, Role::Manager);
        assert_eq!(m[1].hostname, "worker-1");
        assert_eq!(m[1].state, "down");
        assert_eq!(m[1].addr, "10.251.0.11");
        assert_eq!(m[1].labels.get("provision.role").map(String::as_str), Some("worker"));
    }

    /// A swarm of Docker engines in memory, driven only by the commands of
    /// [`commands`]: it answers `docker info`, `node inspect` and
    /// `network ls` from its state and changes it on `init`, `join`,
    /// `network create` and `node update`. Anything else fails, so a
    /// command that changes shape breaks these tests. Records every
    /// command: (node, text, shown).
    struct FakeSwarm {
        manager_ip: String,
        token: &'static str,
        /// A worker whose join fails with the token in Docker's message.
        bad_join: Option<&'static str>,
        sim: std::sync::Mutex<Sim>,
        log: std::sync::Mutex<Vec<(String, String, String)>>,
    }

    #[derive(Default)]
    struct Sim {
        /// By hostname; the manager's when formed.
        members: BTreeMap<String, FakeNode>,
        networks: BTreeSet<String>,
    }

    struct FakeNode {
        id: String,
        role: &'static str,
        addr: String,
        labels: BTreeMap<String, String>,
    }

    impl FakeSwarm {
        fn new(bad_join: Option<&'static str>) -> FakeSwarm {
            FakeSwarm {
                manager_ip: "10.251.0.10".into(),
                token: "SWMTKN-1-fake-worker-token",
                bad_join,
                sim: Default::default(),
                log: Default::default(),
            }
        }

        fn answer(&self, node: &str, text: &str) -> Output {
            let ok = |stdout: String| Output { status: Some(0), stdout, stderr: String::new() };
            let fail = |stderr: String| Output { status: Some(1), stdout: String::new(), stderr };
            let mut sim = self.sim.lock().unwrap();
            let words: Vec<&str> = text.split(' ').collect();
            match words.as_slice() {
                ["docker", "info", ..] => ok(match sim.members.get(node) {
                    Some(n) => format!(
                        r#"{{"LocalNodeState":"active","NodeID":"{}","ControlAvailable":{}}}"#,
                        n.id,
                        n.role == "manager"
                    ),
                    None => r#"{"LocalNodeState":"inactive","NodeID":""}"#.into(),
                }),
                ["docker", "node", "inspect", ..] => ok(serde_json::to_string(
                    &sim.members
                        .iter()
                        .map(|(host, n)| {
                            serde_json::json!({"ID": n.id, "Spec": {"Role": n.role, "Labels": n.labels},
                                "Description": {"Hostname": host}, "Status": {"State": "ready", "Addr": n.addr}})
                        })
                        .collect::<Vec<_>>(),
                )
                .unwrap()),
                ["docker", "network", "ls", ..] => ok(sim.networks.iter().map(|n| format!("{n}\n")).collect()),
                ["docker", "swarm", "init", "--advertise-addr", ip, "--listen-addr", listen] if node == "manager" => {
                    assert_eq!(
                        (*ip, *listen),
                        (self.manager_ip.as_str(), format!("{}:2377", self.manager_ip).as_str())
                    );
                    let n = FakeNode {
                        id: "id-manager".into(),
                        role: "manager",
                        addr: ip.to_string(),
                        labels: BTreeMap::new(),
                    };
                    sim.members.insert(node.into(), n);
                    ok(String::new())
                }
                ["docker", "network", "create", "--driver", "overlay", "--attachable", name] => {
                    sim.networks.insert(name.to_string());
                    ok(String::new())
                }
                ["docker", "node", "update", flags @ .., id] => {
                    let Some(n) = sim.members.values_mut().find(|n| n.id == *id) else {
                        return fail(format!("Error: node {id} not found"));
                    };
                    for pair in flags.chunks(2) {
                        let (k, v) = pair[1].split_once('=').unwrap();
                        assert_eq!(pair[0], "--label-add");
                        n.labels.insert(k.into(), v.into());
                    }
                    ok(String::new())
                }
                ["docker", "swarm", "join-token", "-q", "worker"] => ok(format!("{}\n", self.token)),
                ["docker", "swarm", "join", "--token", token, "--advertise-addr", ip, "--listen-addr", _, manager] => {
                    assert_eq!(
                        *manager,
                        format!("{}:2377", self.manager_ip),
                        "joins through the manager's private address"
                    );
                    if self.bad_join == Some(node) || *token != self.token {
                        return fail(format!("Error response from daemon: join with token {token} was refused"));
                    }
                    let n = FakeNode {
                        id: format!("id-{node}"),
                        role: "worker",
                        addr: ip.to_string(),
                        labels: BTreeMap::new(),
                    };
                    sim.members.insert(node.into(), n);
                    ok("This node joined a swarm as a worker.\n".into())
                }
                _ => {
                    Output { status: Some(127), stdout: String::new(), stderr: format!("fake: unknown command {text}") }
                }
            }
        }
    }

    impl Remote for FakeSwarm {
        async fn run(&self, node: &str, cmd: &Cmd) -> Result<Output, HandoffError> {
            self.log.lock().unwrap().push((node.into(), cmd.text.clone(), cmd.shown.clone()));
            Ok(self.answer(node, &cmd.text))
        }
    }

    fn quick() -> Waits {
        Waits { attempts: 2, interval: Duration::from_millis(1) }
    }

    #[tokio::test]
    async fn converge_forms_a_swarm_then_finds_it_formed_with_three_commands() {
        let fake = FakeSwarm::new(None);
        let said = std::sync::Mutex::new(Vec::<String>::new());
        let notice = |s: &str| said.lock().unwrap().push(s.to_string());
        let report = converge(&fake, &nodes(2), &quick(), &notice).await.unwrap();
        assert_eq!(report.ready, ["manager", "worker-1", "worker-2"]);
        assert_eq!(report.networks, ["imixs-proxy-net"]);
        assert_eq!(report.done[0], "initialise the swarm on the manager");
        for step in ["join worker-1", "join worker-2", "create overlay network imixs-proxy-net"] {
            assert!(report.done.iter().any(|d| d == step), "{step} in {:?}", report.done);
        }
        {
            let sim = fake.sim.lock().unwrap();
            assert_eq!(sim.members["manager"].labels.get("provision.role").map(String::as_str), Some("manager"));
            assert_eq!(sim.members["worker-2"].addr, "10.251.0.12", "a worker advertises its own private address");
        }
        let log = std::mem::take(&mut *fake.log.lock().unwrap());
        let joins: Vec<_> = log.iter().filter(|(_, t, _)| t.starts_with("docker swarm join --token")).collect();
        assert_eq!(joins.len(), 2);
        for (_, text, shown) in &joins {
            assert!(text.contains(fake.token) && !shown.contains(fake.token) && shown.contains("<worker token>"));
        }
        assert!(said.lock().unwrap().iter().all(|s| !s.contains(fake.token)), "no notice shows the token");

        let again = converge(&fake, &nodes(2), &quick(), &notice).await.unwrap();
        assert!(!again.changed(), "{:?}", again.done);
        let asked: Vec<(String, String)> =
            fake.log.lock().unwrap().iter().map(|(n, t, _)| (n.clone(), t.clone())).collect();
        let on_manager = |c: Cmd| ("manager".to_string(), c.text);
        assert_eq!(
            asked,
            [
                on_manager(commands::swarm_info()),
                on_manager(commands::node_inspect_all()),
                on_manager(commands::overlay_networks())
            ],
            "a formed swarm is read from the manager alone"
        );
    }

    #[tokio::test]
    async fn a_failed_join_is_reported_without_the_token() {
        let fake = FakeSwarm::new(Some("worker-2"));
        let e = converge(&fake, &nodes(2), &quick(), &|_| {}).await.unwrap_err().to_string();
        assert!(e.contains("worker-2") && e.contains("was refused"), "{e}");
        assert!(!e.contains(fake.token), "the token leaked: {e}");
        assert!(e.contains("<worker token>"), "{e}");
    }
}
