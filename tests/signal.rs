//! The node's signal script (templates/nodes/signal.sh), run with bash,
//! curl and a local HTTP listener standing in for Heat's signal URL, with
//! `systemctl` and `journalctl` stand-ins on PATH so that every unit state
//! can be tried in a second. The script's proof on a real node, under a
//! real systemd with Flatcar's agent, is tests/live/nodes-live; here are
//! its decisions and its JSON (Heat must parse the body whatever the
//! failing unit's log holds).
// A test reads its knobs (seeds, paths) from the environment itself.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SCRIPT: &str = include_str!("../templates/nodes/signal.sh");

/// `systemctl` as the script asks it: `show -p PROP... --value UNIT` and
/// `list-jobs`, answered from $STATES ("unit=ActiveState/SubState ..."),
/// $REQUIRES ("unit=dependency ...") and $JOBS (units with a queued job).
const SYSTEMCTL: &str = r#"
case $1 in
  list-jobs) for u in $JOBS; do echo "7 $u start waiting"; done; exit 0 ;;
  show) shift ;;
  *) echo "unexpected systemctl $*" >&2; exit 99 ;;
esac
props=""
while [ "$1" = -p ]; do props="$props $2"; shift 2; done
[ "$1" = --value ] && shift
unit=$1 state=inactive/dead req=""
for kv in $STATES; do [ "${kv%%=*}" = "$unit" ] && state=${kv#*=}; done
for kv in $REQUIRES; do [ "${kv%%=*}" = "$unit" ] && req=${kv#*=}; done
for p in $props; do
  case $p in
    ActiveState) echo "${state%/*}" ;;
    SubState) echo "${state#*/}" ;;
    Requires) echo "$req" ;;
    *) echo ;;
  esac
done
"#;

/// Accepts one POST on 127.0.0.1 and returns its body, after checking that
/// it came with the wait handle's token.
fn listen() -> (String, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/signal", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0;
        let mut token = None;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if let Some(v) = line.strip_prefix("X-Auth-Token:") {
                token = Some(v.trim().to_string());
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
        let body = String::from_utf8(body).unwrap();
        if body != "{}" {
            assert_eq!(token.as_deref(), Some("gAAAAABtoken-_x"), "the signal carries the handle's token");
        }
        body
    });
    (url, h)
}

fn fake(bin: &Path, name: &str, body: &str) {
    let p = bin.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A node: its ready file, unit states and logs; and how long it has.
struct Node<'a> {
    ready: &'a str,
    states: &'a str,
    requires: &'a str,
    jobs: &'a str,
    log: &'a str,
    timeout: u32,
}

const REGISTRY: Node = Node {
    ready: "unit docker.service\nunit docker-registry.service\n",
    states: "",
    requires: "",
    jobs: "",
    log: "",
    // Counted from this machine's boot, which may be long ago.
    timeout: 1_000_000_000,
};

struct Outcome {
    body: Option<serde_json::Value>,
    success: bool,
    stdout: String,
    marker: Option<String>,
}

fn run_signal(node: Node, already_signalled: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    fake(&bin, "systemctl", SYSTEMCTL);
    fake(&bin, "journalctl", &format!("cat <<'LOG'\n{}\nLOG", node.log));
    let marker = dir.path().join("state/signalled");
    if already_signalled {
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        std::fs::write(&marker, "SUCCESS 2026-01-01T00:00:00Z\n").unwrap();
    }
    let ready = dir.path().join("ready");
    std::fs::write(&ready, node.ready).unwrap();
    let (url, server) = listen();
    // The wait handle's endpoint and token, as Heat fills them in.
    let endpoint = dir.path().join("signal-endpoint");
    std::fs::write(&endpoint, format!("{url}\n")).unwrap();
    let token = dir.path().join("signal-token");
    std::fs::write(&token, "gAAAAABtoken-_x\n").unwrap();
    let script = dir.path().join("signal.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let output = Command::new("bash")
        .arg(&script)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("STATES", node.states)
        .env("REQUIRES", node.requires)
        .env("JOBS", node.jobs)
        .env("PROVISION_SIGNAL_ENDPOINT", &endpoint)
        .env("PROVISION_SIGNAL_TOKEN", &token)
        .env("PROVISION_READY", &ready)
        .env("PROVISION_SIGNALLED", &marker)
        .env("PROVISION_SIGNAL_BODY", dir.path().join("body.json"))
        .env("PROVISION_TIMEOUT", node.timeout.to_string())
        .env("PROVISION_OPTIONAL_GRACE", "1")
        .env("PROVISION_PAUSE", "1")
        .output()
        .unwrap();
    let body = if already_signalled {
        // Nothing may arrive: wake the listener ourselves.
        std::thread::sleep(Duration::from_millis(100));
        let mut s =
            std::net::TcpStream::connect(url.trim_start_matches("http://").trim_end_matches("/signal")).unwrap();
        s.write_all(b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!(server.join().unwrap(), "{}", "the script signalled although the node had already");
        None
    } else {
        let body = server.join().unwrap();
        Some(serde_json::from_str(&body).unwrap_or_else(|e| panic!("Heat could not parse {body:?}: {e}")))
    };
    Outcome {
        body,
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        marker: std::fs::read_to_string(&marker).ok(),
    }
}

fn reason(o: &Outcome) -> String {
    o.body.as_ref().unwrap()["reason"].as_str().unwrap().to_string()
}

fn status(o: &Outcome) -> &str {
    o.body.as_ref().unwrap()["status"].as_str().unwrap()
}

#[test]
fn all_units_active_signals_success_once_and_remembers_it() {
    let o = run_signal(
        Node { states: "docker.service=active/running docker-registry.service=active/running", ..REGISTRY },
        false,
    );
    assert_eq!(status(&o), "SUCCESS");
    assert!(reason(&o).contains("ready: docker.service docker-registry.service"), "{}", reason(&o));
    assert!(o.success);
    assert!(o.marker.unwrap().starts_with("SUCCESS "), "Heat's answer is recorded");
}

#[test]
fn a_node_that_has_signalled_does_not_signal_again() {
    let o = run_signal(Node { states: "docker.service=failed/failed", ..REGISTRY }, true);
    assert!(o.success);
    assert!(o.stdout.contains("not signalling again"), "{}", o.stdout);
}

#[test]
fn a_failed_unit_signals_failure_with_its_name_and_log() {
    let log = "level=fatal msg=\"open /etc/provision/certs/registry.key: no such file\"\n\ttab\\backslash 'quote'";
    let o = run_signal(
        Node { states: "docker.service=active/running docker-registry.service=failed/failed", log, ..REGISTRY },
        false,
    );
    assert_eq!(status(&o), "FAILURE");
    let r = reason(&o);
    assert!(r.starts_with("docker-registry.service failed on "), "{r}");
    assert!(r.contains("msg=\"open /etc/provision/certs/registry.key: no such file\""), "{r}");
    assert!(r.contains("tab\\backslash 'quote'"), "{r}");
    assert!(!o.success, "the exit status follows the signal");
    assert!(o.marker.unwrap().starts_with("FAILURE "));
}

#[test]
fn a_unit_whose_dependency_failed_is_not_waited_for() {
    // systemd leaves it inactive with result "success": only its failed
    // dependency says why it will never start.
    let o = run_signal(
        Node {
            states: "docker.service=failed/failed",
            requires: "docker-registry.service=docker.service",
            log: "dockerd: failed to start daemon: Error initializing network controller",
            ..REGISTRY
        },
        false,
    );
    assert_eq!(status(&o), "FAILURE");
    let r = reason(&o);
    assert!(r.starts_with("docker.service failed on "), "the first unit in the file is named first: {r}");
    let o = run_signal(
        Node {
            ready: "unit docker-registry.service\n",
            states: "docker.service=failed/failed",
            requires: "docker-registry.service=docker.service",
            log: "dockerd: failed to start daemon",
            ..REGISTRY
        },
        false,
    );
    let r = reason(&o);
    assert!(r.contains("docker-registry.service did not start on"), "{r}");
    assert!(r.contains("it needs docker.service, which failed: dockerd: failed to start daemon"), "{r}");
}

#[test]
fn an_inactive_unit_with_a_queued_job_is_waited_for_and_one_without_is_not() {
    // Queued: still coming, so the node's time runs out (timeout 1 s after
    // a boot long ago) with a timeout rather than a verdict on the unit.
    let o = run_signal(
        Node {
            ready: "unit docker-registry.service\n",
            jobs: "docker-registry.service",
            log: "pulling registry:2.8.3",
            timeout: 1,
            ..REGISTRY
        },
        false,
    );
    let r = reason(&o);
    assert!(r.contains("timed out") && r.contains("docker-registry.service"), "{r}");
    assert!(r.contains("pulling registry:2.8.3"), "{r}");
    // Nothing queued, nothing failed: after three looks it is called.
    let o = run_signal(Node { ready: "unit docker-registry.service\n", log: "Stopped.", ..REGISTRY }, false);
    let r = reason(&o);
    assert!(r.contains("docker-registry.service is not running on") && r.contains("inactive, nothing queued"), "{r}");
}

#[test]
fn a_unit_that_never_starts_signals_failure_when_the_node_time_is_up() {
    let o = run_signal(
        Node {
            states: "docker.service=active/running docker-registry.service=activating/auto-restart",
            log: "pulling registry:2.8.3",
            timeout: 1,
            ..REGISTRY
        },
        false,
    );
    assert_eq!(status(&o), "FAILURE");
    let r = reason(&o);
    assert!(r.contains("timed out") && r.contains("docker-registry.service"), "{r}");
}

#[test]
fn an_optional_unit_that_is_down_degrades_the_success() {
    let o = run_signal(
        Node {
            ready: "unit docker.service\noptional-unit docker-registry-cache.service\n",
            states: "docker.service=active/running docker-registry-cache.service=activating/auto-restart",
            log: "goroutine 1 [running]:\npanic: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host\nmain.main()",
            ..REGISTRY
        },
        false,
    );
    assert_eq!(status(&o), "SUCCESS");
    let r = reason(&o);
    // What is degraded comes first: Heat's events keep 255 characters.
    let (name, rest) = r.split_once(' ').unwrap();
    assert!(
        !name.is_empty() && rest.starts_with("degraded:\ndocker-registry-cache.service is activating/auto-restart"),
        "{r}"
    );
    assert!(r.contains("panic: Get \"https://registry-1.docker.io/v2/\""), "the line that says why: {r}");
    assert!(!r.contains("goroutine"), "not the stack around it: {r}");
}
