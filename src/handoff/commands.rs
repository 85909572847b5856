//! The shell commands the hand-off runs on the nodes, built from typed
//! values in one place, so that what reaches a node can be read (and
//! tested) without SSH. Each returns a [`Cmd`]; the one that carries a
//! secret (the worker join token) shows only a placeholder.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::ssh::Cmd;

/// The swarm's control port on the manager (and each node's listen port).
pub const SWARM_PORT: u16 = 2377;

/// What a placeholder for the join token looks like wherever it is shown.
pub const TOKEN_SHOWN: &str = "<worker token>";

/// One word for a POSIX shell, quoted only when it must be (shlex). A NUL
/// cannot be part of a shell word, nor of argv or the environment where
/// these values come from; it is dropped, which leaves nothing shlex
/// refuses.
pub fn shell_word(s: &str) -> String {
    let s = s.replace('\0', "");
    shlex::try_quote(&s).map(|q| q.into_owned()).unwrap_or_default()
}

/// The engine's own view of its swarm membership, as JSON.
pub fn swarm_info() -> Cmd {
    Cmd::new("docker info --format '{{json .Swarm}}'")
}

/// Every node the manager knows, as JSON.
pub fn node_inspect_all() -> Cmd {
    Cmd::new("docker node inspect $(docker node ls -q)")
}

/// The overlay networks' names, one per line.
pub fn overlay_networks() -> Cmd {
    Cmd::new("docker network ls --filter driver=overlay --format '{{.Name}}'")
}

/// A new swarm on the manager's private address: the manager has a public
/// address too, and the swarm must use the private one (workers have no
/// other).
pub fn swarm_init(ip: IpAddr, pool: Option<&str>) -> Cmd {
    let pool = pool.map(|p| format!(" --default-addr-pool {p}")).unwrap_or_default();
    Cmd::new(format!("docker swarm init --advertise-addr {ip} --listen-addr {ip}:{SWARM_PORT}{pool}"))
}

pub fn network_create(name: &str) -> Cmd {
    Cmd::new(format!("docker network create --driver overlay --attachable {name}"))
}

/// Labels go in their sorted order, so the command reads the same each time.
pub fn node_labels(id: &str, add: &BTreeMap<String, String>) -> Cmd {
    let flags: Vec<String> = add.iter().map(|(k, v)| format!("--label-add {k}={v}")).collect();
    Cmd::new(format!("docker node update {} {id}", flags.join(" ")))
}

pub fn node_remove(id: &str) -> Cmd {
    Cmd::new(format!("docker node rm {id}"))
}

pub fn worker_join_token() -> Cmd {
    Cmd::new("docker swarm join-token -q worker")
}

pub fn swarm_leave() -> Cmd {
    Cmd::new("docker swarm leave --force")
}

/// A worker joins on its own private address, through the manager's.
pub fn swarm_join(token: &str, worker: IpAddr, manager: IpAddr) -> Cmd {
    let args = format!("--advertise-addr {worker} --listen-addr {worker}:{SWARM_PORT} {manager}:{SWARM_PORT}");
    Cmd::secret(
        format!("docker swarm join --token {token} {args}"),
        format!("docker swarm join --token {TOKEN_SHOWN} {args}"),
    )
}

/// The deployed stacks' names, one per line.
pub fn stack_ls() -> Cmd {
    Cmd::new("docker stack ls --format '{{.Name}}'")
}

/// `file` and `name` are words already checked by the caller.
pub fn stack_deploy(file: &str, name: &str) -> Cmd {
    Cmd::new(format!("docker stack deploy --with-registry-auth -c {file} {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_reads_as_docker_expects() {
        let m: IpAddr = "10.0.0.5".parse().unwrap();
        let labels: BTreeMap<String, String> =
            [("provision.role".to_string(), "manager".to_string()), ("provision.registry".into(), "true".into())]
                .into();
        let table = [
            (swarm_info(), "docker info --format '{{json .Swarm}}'"),
            (node_inspect_all(), "docker node inspect $(docker node ls -q)"),
            (overlay_networks(), "docker network ls --filter driver=overlay --format '{{.Name}}'"),
            (swarm_init(m, None), "docker swarm init --advertise-addr 10.0.0.5 --listen-addr 10.0.0.5:2377"),
            (
                swarm_init(m, Some("10.20.0.0/16")),
                "docker swarm init --advertise-addr 10.0.0.5 --listen-addr 10.0.0.5:2377 --default-addr-pool 10.20.0.0/16",
            ),
            (network_create("imixs-proxy-net"), "docker network create --driver overlay --attachable imixs-proxy-net"),
            (
                node_labels("n1", &labels),
                "docker node update --label-add provision.registry=true --label-add provision.role=manager n1",
            ),
            (node_remove("n9"), "docker node rm n9"),
            (worker_join_token(), "docker swarm join-token -q worker"),
            (swarm_leave(), "docker swarm leave --force"),
            (stack_ls(), "docker stack ls --format '{{.Name}}'"),
            (
                stack_deploy("imixs-cloud/a/b.yml", "b"),
                "docker stack deploy --with-registry-auth -c imixs-cloud/a/b.yml b",
            ),
        ];
        for (cmd, text) in table {
            assert_eq!(cmd.text, text);
            assert_eq!(cmd.shown, text, "nothing secret in {text}");
            assert_eq!(cmd.stdin, None);
        }
    }

    #[test]
    fn a_shell_word_reads_back_as_itself() {
        assert_eq!(shell_word("reg.example.com:5000/library/redis:7"), "reg.example.com:5000/library/redis:7");
        assert_eq!(shell_word("ci bot"), "'ci bot'");
        for tricky in ["", "a b", "it's", "$(reboot)", "`id`", "a;b", "x\ny", "*", "~root", "a\"b'c", "--flag=v,w"] {
            let word = shell_word(tricky);
            assert_eq!(shlex::split(&word), Some(vec![tricky.to_string()]), "{tricky:?} as {word}");
        }
        assert_eq!(shell_word("a\0b"), "ab");
    }

    #[test]
    fn a_join_advertises_the_workers_own_address_and_shows_no_token() {
        let j = swarm_join("SWMTKN-1-abc-def", "10.0.0.7".parse().unwrap(), "10.0.0.5".parse().unwrap());
        assert_eq!(
            j.text,
            "docker swarm join --token SWMTKN-1-abc-def --advertise-addr 10.0.0.7 --listen-addr 10.0.0.7:2377 10.0.0.5:2377"
        );
        assert_eq!(
            j.shown,
            "docker swarm join --token <worker token> --advertise-addr 10.0.0.7 --listen-addr 10.0.0.7:2377 10.0.0.5:2377"
        );
        assert!(!format!("{j:?}").contains("SWMTKN"), "a trace of it cannot leak the token");
    }
}
