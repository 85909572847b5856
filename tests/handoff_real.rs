//! The hand-off against real sshd and dockerd: the simulated nodes of
//! `dev/nodes` (network namespaces, so root only), brought up with the host
//! keys and the client key `provision` made in a state directory. Through
//! `provision ssh` and `provision handoff` only: a command on the manager
//! and on a worker behind it, a node with another host key refused before
//! anything runs on it, the swarm formed (1 + N Ready, imixs-proxy-net),
//! a re-run that changes nothing, scale up and down.
//!
//! The harness is shared by the tests here, one at a time, and taken down
//! when the test binary exits; a harness that is already up is not touched
//! (the tests fail and say so). Without root the harness tests are skipped,
//! saying why; the rest runs everywhere.
// A test reads its knobs (seeds, paths) from the environment itself.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use provision::keys;
use provision::state::{Mode, StateDir, layout};
use serde_json::{Value, json};

const STACK: &str = "harness";

fn nodes_home() -> PathBuf {
    std::env::var_os("PROVISION_NODES_HOME").map(PathBuf::from).unwrap_or_else(|| "/tmp/provision-nodes".into())
}

fn nodes_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dev/nodes/nodes")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Skips a test that needs the harness when it cannot have one.
macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: the simulated nodes need root (network namespaces, routes, mounts)");
            return;
        }
    };
}

/// The state root (a temporary folder) holding the stack's keys.
struct Harness {
    root: PathBuf,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Set once this test binary has brought a harness up: only then does it
/// take one down.
static STARTED: Mutex<Option<PathBuf>> = Mutex::new(None);

extern "C" fn take_down() {
    let Some(root) = STARTED.lock().ok().and_then(|mut s| s.take()) else { return };
    let t = Instant::now();
    let out = std::process::Command::new(nodes_script()).arg("down").output();
    match out {
        Ok(o) if o.status.success() => eprintln!("harness down in {:.1} s", t.elapsed().as_secs_f64()),
        Ok(o) => eprintln!("harness down FAILED: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("harness down FAILED: {e}"),
    }
    let _ = std::fs::remove_dir_all(root);
}

fn state(h: &Harness) -> StateDir {
    StateDir::open(&h.root, STACK).unwrap()
}

fn node_names(workers: usize) -> Vec<String> {
    std::iter::once("manager".to_string()).chain((1..=workers).map(|i| format!("worker-{i}"))).collect()
}

/// The harness with exactly `workers` workers, every node with the host key
/// provision made for it; the tests here take turns.
fn harness(workers: usize) -> (MutexGuard<'static, ()>, &'static Harness) {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let h = HARNESS.get_or_init(|| {
        let inventory = nodes_home().join("inventory.json");
        assert!(
            !inventory.exists(),
            "a harness is already up ({}); these tests bring up their own: run `dev/nodes/nodes down` first",
            inventory.display()
        );
        let root = tempfile::tempdir().unwrap().keep();
        *STARTED.lock().unwrap() = Some(root.clone());
        // SAFETY: registers a plain function with no arguments, once.
        unsafe { libc::atexit(take_down) };
        Harness { root }
    });
    let s = state(h);
    let names = node_names(workers);
    keys::ensure(&s, &names.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let t = Instant::now();
    let out = std::process::Command::new(nodes_script())
        .args(["up", &workers.to_string(), "--host-keys"])
        .arg(s.file(layout::HOST_KEYS))
        .arg("--authorized-key")
        .arg(s.file(&format!("{}.pub", layout::CLIENT_KEY)))
        .output()
        .unwrap();
    assert!(out.status.success(), "nodes up {workers}: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("nodes up {workers}: {:.1} s", t.elapsed().as_secs_f64());
    (guard, h)
}

fn inventory() -> PathBuf {
    nodes_home().join("inventory.json")
}

fn provision(h: &Harness, args: &[&str]) -> Output {
    Command::cargo_bin("provision")
        .unwrap()
        .arg("--state-dir")
        .arg(&h.root)
        .args(["--name", STACK])
        .args(args)
        .output()
        .unwrap()
}

fn ssh(h: &Harness, node: &str, command: &[&str]) -> Output {
    let inv = inventory();
    let mut args = vec!["ssh", "--nodes", inv.to_str().unwrap(), node, "--"];
    args.extend_from_slice(command);
    provision(h, &args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; its stdout.
fn on(h: &Harness, node: &str, command: &[&str]) -> String {
    let o = ssh(h, node, command);
    assert!(o.status.success(), "{node}: {command:?}: {}", stderr(&o));
    stdout(&o)
}

/// `provision handoff`, which must succeed; its JSON report and seconds.
fn handoff(h: &Harness) -> (Value, f64) {
    let inv = inventory();
    let t = Instant::now();
    let o = provision(h, &["handoff", "--nodes", inv.to_str().unwrap(), "--output", "json"]);
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "handoff: {}\n{}", stderr(&o), stdout(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("handoff in {secs:.1} s: {}", v["done"]);
    (v, secs)
}

fn done(v: &Value) -> Vec<String> {
    v["done"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// `docker node ls` on the manager, as (hostname, status) pairs.
fn node_ls(h: &Harness) -> Vec<(String, String)> {
    let out = on(h, "manager", &["docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}}'"]);
    let mut l: Vec<(String, String)> =
        out.lines().filter_map(|l| l.split_once(' ')).map(|(a, b)| (a.to_string(), b.to_string())).collect();
    l.sort();
    l
}

fn all_ready(names: &[String]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = names.iter().map(|n| (n.clone(), "Ready".to_string())).collect();
    l.sort();
    l
}

/// Every node out of any swarm, so a test starts from nodes as booted.
fn leave_swarm(h: &Harness, workers: usize) {
    for n in node_names(workers).iter().rev() {
        on(h, n, &["docker", "swarm", "leave", "--force", "2>/dev/null", "||", "true"]);
    }
}

#[test]
fn ssh_runs_commands_on_the_manager_and_on_a_worker_through_it() {
    needs_root!();
    let (_turn, h) = harness(2);
    let info = on(h, "manager", &["docker", "info"]);
    assert!(info.contains("Server Version"), "{info}");
    assert_eq!(on(h, "manager", &["docker", "info", "--format", "'{{.Name}}'"]).trim(), "manager");
    // worker-2 has no address the host can reach: only the jump gets there.
    let t = Instant::now();
    assert_eq!(on(h, "worker-2", &["hostname;", "docker", "info", "--format", "'{{.Name}}'"]), "worker-2\nworker-2\n");
    eprintln!("ssh to worker-2 through the manager: {:.2} s", t.elapsed().as_secs_f64());

    // The remote exit status is provision's, and stderr comes through.
    let o = ssh(h, "worker-1", &["echo", "oops", ">&2;", "exit", "7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("oops"), "{}", stderr(&o));

    let o = ssh(h, "worker-9", &["true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no node named `worker-9`"), "{}", stderr(&o));
}

/// Without a command: a shell. Standard input that is not a terminal is
/// its script; on a terminal (here a pty made by util-linux `script`) the
/// node gives the shell a pty of its own, sized like the operator's.
#[test]
fn ssh_without_a_command_opens_a_shell_on_the_node() {
    needs_root!();
    let (_turn, h) = harness(2);
    let inv = inventory();
    let bin = assert_cmd::cargo::cargo_bin("provision");
    let base = |node: &str| {
        let mut c = Command::new(&bin);
        c.arg("--state-dir").arg(&h.root).args(["--name", STACK, "ssh", "--nodes", inv.to_str().unwrap(), node]);
        c
    };

    // A script on stdin, through the jump; the shell's exit status is ours.
    let o = base("worker-2").write_stdin("hostname\ntty || echo no-tty\nexit 4\n").output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stdout(&o), "worker-2\nnot a tty\nno-tty\n", "{}", stderr(&o));

    // JSON and a shell do not go together: bad input, nothing connects.
    let o = base("manager").args(["--output", "json"]).write_stdin("true\n").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a shell has no JSON output"), "{}", stderr(&o));

    // An interactive session: provision's stdin is a terminal of 100x30.
    let line = format!(
        "stty cols 100 rows 30; {} --state-dir {} --name {STACK} ssh --nodes {} manager",
        bin.display(),
        h.root.display(),
        inv.display()
    );
    let o = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let mut i = c.stdin.take().unwrap();
            // One line at a time, after the prompt had time to come.
            for l in ["tty | sed s/^/TTY=/\n", "stty size | sed s/^/SIZE=/\n", "echo TERM=$TERM\n", "exit 5\n"] {
                std::thread::sleep(Duration::from_millis(700));
                i.write_all(l.as_bytes())?;
            }
            drop(i);
            c.wait_with_output()
        })
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(5), "{out}\n{}", stderr(&o));
    assert!(out.contains("TTY=/dev/pts/"), "{out}");
    assert!(out.contains("SIZE=30 100"), "{out}");
    assert!(out.contains("TERM=xterm"), "{out}");
}

/// Keys as provision pins them, but `impostor` pinned to a key of its own.
fn pins_with_one_wrong(h: &Harness, workers: usize, impostor: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = state(h);
    for n in node_names(workers) {
        let src = s.file(&format!("{}.pub", keys::host_key_name(&n)));
        let dst = dir.path().join(&n).join(format!("{}.pub", layout::HOST_KEY_FILE));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    let real = std::fs::read_to_string(s.file(&format!("{}.pub", keys::host_key_name(impostor)))).unwrap();
    let real = keys::fingerprint(&russh::keys::PublicKey::from_openssh(real.trim()).unwrap());
    let wrong = keys::generate("not the node's key").unwrap();
    let line = wrong.public_key().to_openssh().unwrap();
    std::fs::write(dir.path().join(impostor).join(format!("{}.pub", layout::HOST_KEY_FILE)), line).unwrap();
    (dir, keys::fingerprint(wrong.public_key()), real)
}

#[test]
fn a_node_that_shows_another_host_key_is_refused_before_anything_runs() {
    needs_root!();
    let (_turn, h) = harness(2);
    let client = state(h).file(layout::CLIENT_KEY);
    for impostor in ["manager", "worker-1"] {
        let (pins, expected, offered) = pins_with_one_wrong(h, 2, impostor);
        let mark = nodes_home().join("nodes").join(impostor).join("fs/tmp/provision-was-here");
        let _ = std::fs::remove_file(&mark);
        let inv = inventory();
        let o = provision(
            h,
            &[
                "ssh",
                "--nodes",
                inv.to_str().unwrap(),
                "--host-keys",
                pins.path().to_str().unwrap(),
                "--identity",
                client.to_str().unwrap(),
                impostor,
                "--",
                "touch",
                "/tmp/provision-was-here",
            ],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{impostor}: {err}");
        assert!(err.contains(&format!("host key of {impostor} (")), "{err}");
        assert!(err.contains(&format!("expected {expected}, offered {offered}")), "{err}");
        assert!(!mark.exists(), "{impostor} ran the command although its host key was wrong");

        // The same pins refuse the whole hand-off too, naming the node.
        let o =
            provision(h, &["handoff", "--nodes", inv.to_str().unwrap(), "--host-keys", pins.path().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(&format!("host key of {impostor} (")), "{}", stderr(&o));
    }
    // The right pins still work: the refusals were about the keys alone.
    assert_eq!(on(h, "worker-1", &["hostname"]).trim(), "worker-1");
}

#[test]
fn handoff_forms_the_swarm_and_a_rerun_changes_nothing() {
    needs_root!();
    let (_turn, h) = harness(2);
    leave_swarm(h, 2);
    let (v, first) = handoff(h);
    assert_eq!(v["changed"], true);
    let steps = done(&v);
    assert_eq!(steps[0], "initialise the swarm on the manager", "{steps:?}");
    for s in ["join worker-1", "join worker-2", "create overlay network imixs-proxy-net"] {
        assert!(steps.iter().any(|x| x == s), "{s} missing from {steps:?}");
    }
    assert_eq!(v["ready"], json!(["manager", "worker-1", "worker-2"]));

    assert_eq!(node_ls(h), all_ready(&node_names(2)));
    let nets = on(h, "manager", &["docker", "network", "ls", "--filter", "driver=overlay", "--format", "'{{.Name}}'"]);
    assert!(nets.lines().any(|l| l == "imixs-proxy-net"), "{nets}");
    let labels = on(h, "manager", &["docker", "node", "inspect", "manager", "--format", "'{{json .Spec.Labels}}'"]);
    assert_eq!(labels.trim(), r#"{"provision.registry":"true","provision.role":"manager"}"#);
    // Workers are told apart by Swarm's own node.role: no label of ours.
    let labels = on(h, "manager", &["docker", "node", "inspect", "worker-2", "--format", "'{{json .Spec.Labels}}'"]);
    assert_eq!(labels.trim(), "{}");
    // The manager advertises its private address, the only one workers have.
    let addr = on(h, "manager", &["docker", "info", "--format", "'{{.Swarm.NodeAddr}}'"]);
    assert_eq!(addr.trim(), "10.251.0.10");

    // The Imixs-Cloud stacks, deployed in order after the swarm, and the
    // directory written locally and on the manager.
    let deployed: Vec<&String> = steps.iter().filter(|s| s.starts_with("deploy stack ")).collect();
    assert_eq!(
        deployed,
        [
            "deploy stack proxy (management/proxy/docker-compose.yml)",
            "deploy stack ui (management/ui/docker-compose.yml)",
            "deploy stack hello (apps/hello/docker-compose.yml)"
        ],
        "{steps:?}"
    );
    assert_eq!(v["stacks"], json!(["proxy", "ui", "hello"]));
    let local = state(h).file("imixs-cloud/apps/hello/docker-compose.yml");
    let compose = std::fs::read_to_string(&local).unwrap();
    assert_eq!(on(h, "manager", &["cat", "imixs-cloud/apps/hello/docker-compose.yml"]), compose);
    let stacks = on(h, "manager", &["docker", "stack", "ls", "--format", "'{{.Name}}'"]);
    assert_eq!(stacks.lines().collect::<Vec<_>>(), ["hello", "proxy", "ui"]);
    // The example app runs from the image the harness imported offline (no
    // registry is reachable) and answers on the overlay network.
    let image = serde_json::from_str::<Value>(&std::fs::read_to_string(inventory()).unwrap()).unwrap()["image"]
        .as_str()
        .unwrap()
        .to_string();
    let doc: Value = serde_saphyr::from_str(&compose).unwrap();
    assert_eq!(doc["services"]["web"]["image"], json!(image), "{compose}");
    let t = Instant::now();
    let running = loop {
        let ps = on(h, "manager", &["docker", "service", "ps", "hello_web", "--format", "'{{.CurrentState}}'"]);
        if ps.lines().next().is_some_and(|l| l.starts_with("Running")) || t.elapsed() > Duration::from_secs(90) {
            break ps;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(running.starts_with("Running"), "hello_web: {running}");
    eprintln!("hello_web Running {:.1} s after the hand-off", t.elapsed().as_secs_f64());
    let page = on(
        h,
        "manager",
        &[
            "docker",
            "run",
            "--rm",
            "--network",
            "imixs-proxy-net",
            &image,
            "wget",
            "-qO-",
            "http://tasks.hello_web:8080/",
        ],
    );
    assert!(!page.trim().is_empty(), "hello answered nothing");

    let (v, again) = handoff(h);
    assert_eq!(v["changed"], false, "{v}");
    assert_eq!(done(&v), Vec::<String>::new());
    assert_eq!(node_ls(h), all_ready(&node_names(2)));
    eprintln!("formed 1+2 in {first:.1} s, re-run (no change) in {again:.1} s");

    // No secret in what the hand-off prints: the join token stays inside.
    let token = on(h, "manager", &["docker", "swarm", "join-token", "-q", "worker"]);
    let inv = inventory();
    let o = provision(h, &["handoff", "--nodes", inv.to_str().unwrap()]);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success() && all.contains("nothing to do"), "{all}");
    assert!(!all.contains(token.trim()) && !all.contains("PRIVATE KEY"), "{all}");
}

#[test]
fn scale_up_joins_only_the_new_worker_and_scale_down_removes_the_gone() {
    needs_root!();
    let (turn, h) = harness(2);
    handoff(h);
    drop(turn);

    let (turn, h) = harness(3);
    let (v, secs) = handoff(h);
    assert_eq!(done(&v), ["join worker-3"], "{v}");
    assert_eq!(node_ls(h), all_ready(&node_names(3)));
    eprintln!("scale up 2 -> 3 in {secs:.1} s");
    drop(turn);

    // Like deleted servers: daemons stopped, no `swarm leave`.
    let (_turn, h) = harness(1);
    let (v, secs) = handoff(h);
    let steps = done(&v);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps.iter().any(|s| s.starts_with("remove worker-2 (")), "{steps:?}");
    assert!(steps.iter().any(|s| s.starts_with("remove worker-3 (")), "{steps:?}");
    assert_eq!(node_ls(h), all_ready(&node_names(1)));
    eprintln!("scale down 3 -> 1 (waiting for Down, removing) in {secs:.1} s");
    let (v, _) = handoff(h);
    assert_eq!(v["changed"], false, "{v}");
}

fn write_inventory(dir: &Path, port: u16) -> PathBuf {
    let node = |name: &str, role: &str, fip: Option<&str>, ip: &str| {
        json!({"name": name, "role": role, "hostname": name, "floating_ip": fip, "private_ip": ip,
               "ssh_port": port, "ssh_user": "root", "proxy_jump": null})
    };
    let inv = json!({"version": 1, "client_key": null, "networks": {},
        "nodes": [node("manager", "manager", Some("127.0.0.1"), "10.251.0.10"), node("worker-1", "worker", None, "10.251.0.11")]});
    let p = dir.join("inventory.json");
    std::fs::write(&p, inv.to_string()).unwrap();
    p
}

#[test]
fn waiting_for_ssh_is_bounded_and_says_what_to_check() {
    // A closed port on 127.0.0.1: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // Made, then let go: the command below takes the stack's lock itself.
    keys::ensure(&StateDir::open(dir.path(), STACK).unwrap(), &["manager", "worker-1"]).unwrap();
    let inv = write_inventory(dir.path(), port);
    let t = Instant::now();
    let o = Command::cargo_bin("provision")
        .unwrap()
        .arg("--state-dir")
        .arg(dir.path())
        .args(["--name", STACK, "handoff", "--ssh-attempts", "2", "--nodes"])
        .arg(&inv)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("waiting for SSH on 127.0.0.1 (manager), attempt 2/2: last Connection refused"), "{err}");
    assert!(err.contains("no SSH on 127.0.0.1 (manager) after 2 attempts"), "{err}");
    assert!(err.contains("security group lets this machine reach port"), "{err}");
    // Two attempts, 5 s apart: bounded.
    assert!(t.elapsed().as_secs() < 30, "{:?}", t.elapsed());
}

#[test]
fn input_problems_exit_2_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let s = StateDir::open(dir.path(), STACK).unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("provision").unwrap().arg("--state-dir").arg(dir.path()).args(args).output().unwrap()
    };
    let inv = write_inventory(dir.path(), 1);
    let inv = inv.to_str().unwrap();

    let o = run(&["--name", STACK, "ssh", "--nodes", "/nonexistent/inventory.json", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read /nonexistent/inventory.json"), "{}", stderr(&o));

    // No key was ever made for this stack.
    let o = run(&["--name", STACK, "ssh", "--nodes", inv, "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no pinned host key for manager, worker-1"), "{}", stderr(&o));

    // No stack named: nowhere to find keys.
    let o = run(&["ssh", "--nodes", inv, "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("give --name STACK"), "{}", stderr(&o));

    keys::ensure(&s, &["manager", "worker-1"]).unwrap();

    // A private key others may read is refused, as ssh does.
    s.write(layout::CLIENT_KEY, &s.read(layout::CLIENT_KEY).unwrap().unwrap(), Mode::Public).unwrap();
    let o = run(&["--name", STACK, "ssh", "--nodes", inv, "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("readable by others"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("PRIVATE KEY"));
}

/// The keys the bundle puts in a stack's node configs (the manager's own,
/// one shared by the workers, the client key authorized) reach real sshd:
/// nodes made with them, the hand-off of the live deploy
/// (`handoff::for_stack`, pins from the stack's state directory) forms the
/// swarm through the manager; a worker with a key of its own is refused.
#[test]
fn the_keys_of_a_stacks_node_configs_reach_real_nodes() {
    needs_root!();
    let (_turn, _h) = harness(2);
    let down = || {
        let o = std::process::Command::new(nodes_script()).arg("down").output().unwrap();
        assert!(o.status.success(), "nodes down: {}", String::from_utf8_lossy(&o.stderr));
    };
    // The nodes of the shared harness keep their keys while they run.
    down();
    let root = tempfile::tempdir().unwrap();
    let s = StateDir::open(root.path(), "keystack").unwrap();
    keys::stack_keys(&s, "manager").unwrap();
    let served = root.path().join("served");
    let put = |node: &str, key: &str| {
        let d = served.join(node);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(s.file(key), d.join(layout::HOST_KEY_FILE)).unwrap();
        std::fs::copy(s.file(&format!("{key}.pub")), d.join(format!("{}.pub", layout::HOST_KEY_FILE))).unwrap();
    };
    let up = |impostor: Option<&str>| {
        put("manager", &keys::host_key_name("manager"));
        for w in ["worker-1", "worker-2"] {
            put(w, layout::WORKER_HOST_KEY);
        }
        if let Some(w) = impostor {
            let own = keys::generate("a key of its own").unwrap();
            let d = served.join(w);
            std::fs::write(d.join(format!("{}.pub", layout::HOST_KEY_FILE)), own.public_key().to_openssh().unwrap())
                .unwrap();
            let private = own.to_openssh(russh::keys::ssh_key::LineEnding::LF).unwrap();
            std::fs::write(d.join(layout::HOST_KEY_FILE), private.as_bytes()).unwrap();
        }
        let o = std::process::Command::new(nodes_script())
            .args(["up", "2", "--host-keys"])
            .arg(&served)
            .arg("--authorized-key")
            .arg(s.file(&format!("{}.pub", layout::CLIENT_KEY)))
            .output()
            .unwrap();
        assert!(o.status.success(), "nodes up: {}", String::from_utf8_lossy(&o.stderr));
    };
    let form = || {
        let nodes = provision::handoff::Nodes::from_inventory_file(&inventory()).unwrap();
        let settings = provision::handoff::ssh::Settings { attempts: 3, ..Default::default() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(provision::handoff::for_stack(&s, &nodes, &[], None, settings, &|m| eprintln!("{m}")))
    };
    up(None);
    let report = form().unwrap();
    assert_eq!(report.ready, ["manager", "worker-1", "worker-2"], "{report:?}");
    down();
    up(Some("worker-2"));
    let e = form().unwrap_err().to_string();
    assert!(e.contains("host key of worker-2") && e.contains("does not match"), "{e}");
    // Back to the shared harness's own keys for the other tests.
    down();
}
