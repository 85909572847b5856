//! The node's signal script (templates/nodes/signal.sh), run for real with
//! bash, curl and a local HTTP listener standing in for Heat's signal URL.
//! `systemctl` and `journalctl` are small stand-ins on PATH, because the
//! unit states are what is being varied. Heat reads the POSTed JSON, so the
//! body must parse whatever the failing unit's log holds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = include_str!("../templates/nodes/signal.sh");

/// Accepts one POST on 127.0.0.1 and returns its body.
fn listen() -> (String, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/signal", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, h)
}

fn fake(bin: &Path, name: &str, body: &str) {
    let p = bin.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn run_signal(states: &str, log: &str, wait: u32) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // `systemctl is-active UNIT` answers from a table "unit=state ...".
    fake(
        &bin,
        "systemctl",
        &format!(
            "for kv in {states}; do [ \"${{kv%%=*}}\" = \"$2\" ] && echo \"${{kv#*=}}\" && exit 0; done; echo inactive"
        ),
    );
    fake(&bin, "journalctl", &format!("cat <<'LOG'\n{log}\nLOG"));
    let (url, server) = listen();
    // As Heat's curl_cli looks, with a token that must stay in the command file.
    let cmd = dir.path().join("signal-command");
    std::fs::write(&cmd, format!("curl -i -X POST -H 'X-Auth-Token: tok' -H 'Content-Type: application/json' {url}\n"))
        .unwrap();
    let script = dir.path().join("signal.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let status = Command::new("bash")
        .arg(&script)
        .args(["docker.service", "docker-registry.service"])
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("PROVISION_SIGNAL_COMMAND", &cmd)
        .env("PROVISION_PROBES", dir.path().join("no-probes"))
        .env("PROVISION_SIGNAL_BODY", dir.path().join("body.json"))
        .env("PROVISION_WAIT", wait.to_string())
        .env("PROVISION_PAUSE", "1")
        .status()
        .unwrap();
    let body = server.join().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("Heat could not parse {body:?}: {e}"));
    assert_eq!(status.success(), v["status"] == "SUCCESS", "the exit status follows the signal");
    v
}

#[test]
fn all_units_active_signals_success() {
    let v = run_signal("docker.service=active docker-registry.service=active", "", 30);
    assert_eq!(v["status"], "SUCCESS");
    assert!(v["reason"].as_str().unwrap().contains("ready"));
}

#[test]
fn a_failed_unit_signals_failure_with_its_name_and_log() {
    let log = "level=fatal msg=\"open /etc/provision/certs/registry.key: no such file\"\n\ttab\\backslash 'quote'";
    let v = run_signal("docker.service=active docker-registry.service=failed", log, 30);
    assert_eq!(v["status"], "FAILURE");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("docker-registry.service failed on "), "{reason}");
    assert!(reason.contains("msg=\"open /etc/provision/certs/registry.key: no such file\""), "{reason}");
    assert!(reason.contains("tab\\backslash 'quote'"), "{reason}");
}

#[test]
fn a_unit_that_never_starts_signals_failure_on_time() {
    let v = run_signal("docker.service=active docker-registry.service=activating", "pulling registry:2.8.3", 2);
    assert_eq!(v["status"], "FAILURE");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("timed out") && reason.contains("docker-registry.service"), "{reason}");
    assert!(reason.contains("pulling registry:2.8.3"), "{reason}");
}
