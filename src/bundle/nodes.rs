//! What each node of the stack gets at its first boot: the manager's and a
//! worker's [`NodeConfig`], from the parameters, the stack's materials
//! (certificates, secrets, keys) and the unit and script templates under
//! `templates/nodes/`. Heat fills in each node's wait handle
//! (`@@SIGNAL_ENDPOINT@@`, `@@SIGNAL_TOKEN@@`), a worker's name and the
//! manager's address (`@@NODE_NAME@@`, `@@MANAGER_IP@@`) and the manager's
//! data volume (`@@VOLUME_ID@@`): all characters a data URL takes as they are.

use serde::Serialize;
use tera::Context;

use super::node::{DropIn, NodeConfig, NodeFile, NodeUnit};
use crate::templates::{RenderError, Templates};

/// The manager's data folder on its root disk, or the data volume's mount.
const DATA_ON_DISK: &str = "/var/lib/provision";
const DATA_ON_VOLUME: &str = "/data";
const SIGNAL_SCRIPT: &str = "/opt/provision/bin/provision-signal";
const VOLUME_SCRIPT: &str = "/opt/provision/bin/provision-data-volume";
const SECRETS_SCRIPT: &str = "/opt/provision/bin/provision-secrets";
/// Made on the manager at its first boot by the secrets script.
pub const REGISTRY_ENV: &str = "/etc/provision/secrets/registry.env";

/// A container the manager runs as a systemd unit.
#[derive(Debug, Serialize)]
pub struct Service {
    pub unit: &'static str,
    pub description: &'static str,
    pub container: &'static str,
    /// Host folder of its data, and where the container sees it.
    pub data: String,
    pub mount: &'static str,
    pub after: &'static [&'static str],
    /// `docker run` arguments after the shared ones: image and command.
    pub args: String,
    /// May be degraded without failing the node: retried forever, and
    /// named in the node's SUCCESS rather than failing it.
    pub optional: bool,
    /// Variables made on the node (the registries' secrets).
    pub env_file: Option<&'static str>,
}

/// An HTTPS request the node makes to itself (trusting the stack's CA)
/// before it reports ready, and the status it must answer.
#[derive(Debug)]
pub struct Probe {
    pub url: String,
    pub code: u16,
    pub optional: bool,
}

/// What both roles have.
pub struct Common<'a> {
    pub fqdn: &'a str,
    pub daemon_json: &'a str,
    pub ca_cert: &'a str,
    pub client_public_key: &'a str,
    /// Seconds after its boot by which the node reports to Heat.
    pub signal_timeout: u64,
}

/// The manager's own materials.
pub struct Manager<'a> {
    pub hostname: &'a str,
    pub host_key: (&'a str, &'a str),
    pub server_cert: &'a str,
    pub server_key: &'a str,
    pub registry_config: &'a str,
    pub cache_config: &'a str,
    pub htpasswd: &'a str,
    pub redis_port: u16,
    pub services: &'a [Service],
    pub probes: &'a [Probe],
    pub volume: bool,
}

pub fn data_dir(volume: bool) -> &'static str {
    if volume { DATA_ON_VOLUME } else { DATA_ON_DISK }
}

pub fn manager(t: &Templates, c: &Common, m: &Manager) -> Result<NodeConfig, RenderError> {
    let mut files = common_files(t, c, m.host_key)?;
    files.extend([
        // The stack's CA, for the node's own probes: curl trusts only the
        // system store, and Docker's certs.d is Docker's alone.
        NodeFile::new("/etc/provision/certs/ca.crt", 0o644, c.ca_cert),
        NodeFile::new("/etc/provision/certs/registry.crt", 0o644, m.server_cert),
        NodeFile::new("/etc/provision/certs/registry.key", 0o600, m.server_key),
        NodeFile::new("/etc/provision/registry/config.yml", 0o600, m.registry_config),
        NodeFile::new("/etc/provision/registry/cache.yml", 0o600, m.cache_config),
        NodeFile::new("/etc/provision/registry/htpasswd", 0o600, m.htpasswd),
    ]);
    let mut redis = Context::new();
    redis.insert("port", &m.redis_port);
    files.push(NodeFile::new("/etc/provision/redis/redis.conf", 0o644, t.render("nodes/redis.conf", &redis)?));
    files.push(NodeFile::new(SECRETS_SCRIPT, 0o755, t.render("nodes/secrets.sh", &Context::new())?));
    // What the signal waits for: units that must run and probes that must
    // answer; the optional ones may be degraded (the cache needs its upstream).
    let mut ready = vec!["ca /etc/provision/certs/ca.crt".to_string()];
    ready.extend([
        "unit docker.service".into(),
        "unit provision-hosts.service".into(),
        "unit provision-secrets.service".into(),
    ]);
    if m.volume {
        ready.push("unit provision-data.service".into());
    }
    for s in m.services {
        ready.push(format!("{}unit {}", if s.optional { "optional-" } else { "" }, s.unit));
    }
    for p in m.probes {
        ready.push(format!("{}probe {} {}", if p.optional { "optional-" } else { "" }, p.url, p.code));
    }
    files.push(NodeFile::new("/etc/provision/ready", 0o644, ready.join("\n")));

    let mut units = Vec::new();
    let mut docker =
        NodeUnit { name: "docker.service".into(), contents: None, dropins: vec![], enable: true, start: false };
    if m.volume {
        files.push(NodeFile::new(VOLUME_SCRIPT, 0o755, t.render("nodes/data-volume.sh", &Context::new())?));
        units.push(NodeUnit::service(
            "provision-data.service",
            t.render("nodes/units/provision-data.service", &Context::new())?,
        ));
        docker.dropins.push(DropIn {
            name: "10-provision.conf".into(),
            contents: t.render("nodes/units/docker-data.conf", &Context::new())?,
        });
    }
    // Docker is socket-activated on Flatcar: enabled, it also starts at
    // boot, so a rebooted node rejoins its swarm without being asked.
    units.push(docker);
    files.push(hosts_file(c.fqdn, "127.0.0.1"));
    units.push(hosts_unit(t)?);
    let mut secrets = Context::new();
    secrets.insert("script", SECRETS_SCRIPT);
    units.push(NodeUnit::service(
        "provision-secrets.service",
        t.render("nodes/units/provision-secrets.service", &secrets)?,
    ));
    for s in m.services {
        let mut ctx = Context::new();
        ctx.insert("svc", s);
        units.push(NodeUnit::service(s.unit, t.render("nodes/units/container.service", &ctx)?));
    }
    units.push(signal_unit(t, c)?);
    Ok(NodeConfig {
        hostname: m.hostname.to_string(),
        authorized_keys: vec![c.client_public_key.to_string()],
        files,
        units,
    })
}

/// Every worker gets the same config (one ResourceGroup, one file); Heat
/// fills in its name and the manager's address.
pub fn worker(t: &Templates, c: &Common, host_key: (&str, &str)) -> Result<NodeConfig, RenderError> {
    let mut files = common_files(t, c, host_key)?;
    files.push(NodeFile::new("/etc/provision/ready", 0o644, "unit docker.service\nunit provision-hosts.service"));
    files.push(hosts_file(c.fqdn, "@@MANAGER_IP@@"));
    let units = vec![
        hosts_unit(t)?,
        // Nothing uses Docker's socket before the hand-off: started now and
        // enabled, so the node is ready for the swarm and rejoins it after
        // a reboot.
        NodeUnit { name: "docker.service".into(), contents: None, dropins: vec![], enable: true, start: true },
        signal_unit(t, c)?,
    ];
    Ok(NodeConfig {
        hostname: "@@NODE_NAME@@".into(),
        authorized_keys: vec![c.client_public_key.to_string()],
        files,
        units,
    })
}

/// Docker's settings and trust in the stack's CA for both registries, the
/// pinned SSH host key, Heat's signal command and the signal script.
fn common_files(
    t: &Templates,
    c: &Common,
    (host_key, host_key_pub): (&str, &str),
) -> Result<Vec<NodeFile>, RenderError> {
    Ok(vec![
        NodeFile::new("/etc/docker/daemon.json", 0o644, c.daemon_json),
        NodeFile::new(&format!("/etc/docker/certs.d/{}:{}/ca.crt", c.fqdn, super::REGISTRY_PORT), 0o644, c.ca_cert),
        NodeFile::new(&format!("/etc/docker/certs.d/{}/ca.crt", c.fqdn), 0o644, c.ca_cert),
        // The host key made on the operator's machine, which provision pins.
        // Flatcar's sshd runs once per connection, so a key written here is
        // the one every later connection presents.
        NodeFile::new("/etc/ssh/ssh_host_ed25519_key", 0o600, host_key),
        NodeFile::new("/etc/ssh/ssh_host_ed25519_key.pub", 0o644, host_key_pub),
        // Where and with which token to signal Heat, filled in by Heat.
        NodeFile::new("/etc/provision/signal-endpoint", 0o644, "@@SIGNAL_ENDPOINT@@"),
        NodeFile::new("/etc/provision/signal-token", 0o600, "@@SIGNAL_TOKEN@@"),
        NodeFile::new(SIGNAL_SCRIPT, 0o755, t.render("nodes/signal.sh", &Context::new())?),
    ])
}

/// The line the hosts unit adds to /etc/hosts.
fn hosts_file(fqdn: &str, address: &str) -> NodeFile {
    NodeFile::new("/etc/provision/hosts", 0o644, format!("{address} {fqdn}"))
}

fn hosts_unit(t: &Templates) -> Result<NodeUnit, RenderError> {
    Ok(NodeUnit::service("provision-hosts.service", t.render("nodes/units/provision-hosts.service", &Context::new())?))
}

/// Started at every boot (cloud-config) or enabled (Ignition); after Heat's
/// first answer its condition keeps it from running again.
fn signal_unit(t: &Templates, c: &Common) -> Result<NodeUnit, RenderError> {
    let mut ctx = Context::new();
    ctx.insert("signal_timeout", &c.signal_timeout);
    Ok(NodeUnit {
        name: "provision-signal.service".into(),
        contents: Some(t.render("nodes/units/provision-signal.service", &ctx)?),
        dropins: vec![],
        enable: false,
        start: true,
    })
}
