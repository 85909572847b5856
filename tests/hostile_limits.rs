//! The promise for hostile input: whatever the environment file,
//! `provision render` stays under 64 MiB of memory and 2 seconds. Each case
//! runs the binary once; its peak RSS comes from `wait4`'s rusage for that
//! child alone (`ru_maxrss`, in KiB on Linux), its time from the clock
//! around the run. `cargo test --test hostile_limits -- --nocapture` prints
//! the table in BENCHMARKS.md ("Hostile input").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAX_RSS_KIB: i64 = 64 * 1024;
const MAX_TIME: Duration = Duration::from_secs(2);
const MIB: usize = 1024 * 1024;

const VALID: &str = "parameters:\n  hostname: myhost\n  domain: mydomain.com\n  server_key: mykey\n  server_flavor: m1.small\n  server_image: CoreOS\n  fip_network: pool-1\n";

struct Measured {
    code: i32,
    rss_kib: i64,
    time: Duration,
    stderr: String,
}

fn measure(env: &Path, dir: &Path) -> Measured {
    let err_path = dir.join("stderr");
    // Reaped by `wait4` below, which gives this child's own rusage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_provision"))
        .args(["render", "--env"])
        .arg(env)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let time = started.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    Measured { code, rss_kib: usage.ru_maxrss, time, stderr }
}

/// The worst inputs found while hardening the params stage.
fn cases(dir: &Path) -> Vec<(&'static str, PathBuf, &'static [i32])> {
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut padded = VALID.to_string();
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    while padded.len() + line.len() <= MIB {
        padded.push_str(line);
    }
    let mut over = padded.clone();
    over.push_str(&"#".repeat(MIB + 1 - over.len()));
    over.push('\n');
    // Just under the nesting limit (64), inside resource_registry, which
    // is passed to Heat as written.
    let deep = format!("{VALID}resource_registry:\n  x: {}{}\n", "[".repeat(60), "]".repeat(60));
    // An alias bomb that stays under the limits: passed through whole.
    let mut bomb_small = String::from("resource_registry:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..4 {
        bomb_small.push_str(&format!("  a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    bomb_small.push_str(VALID);
    let mut bomb = String::from("resource_registry:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb.push_str(&format!("  a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    bomb.push_str(VALID);
    let nodes = format!("{VALID}resource_registry:\n  x: [{}]\n", vec!["a"; 240_000].join(","));
    let under = format!("{VALID}resource_registry:\n  x: [{}]\n", vec!["a"; 19_000].join(","));
    let mut unknown = VALID.to_string();
    let mut i = 0;
    while unknown.len() < MIB - 64 {
        unknown.push_str(&format!("  unknown_parameter_{i}: x\n"));
        i += 1;
    }
    let long_value = format!("{VALID}  worker_image: {}\n", "i".repeat(MIB - VALID.len() - 64));
    vec![
        ("1 MiB of comments around valid parameters", write("padded.yml", &padded), &[0]),
        ("1 MiB + 1 byte", write("over.yml", &over), &[2]),
        ("/dev/zero", PathBuf::from("/dev/zero"), &[2]),
        ("60 levels of nesting in resource_registry", write("deep.yml", &deep), &[0]),
        ("alias bomb of 10^3 nodes, under the limits", write("bomb-small.yml", &bomb_small), &[0]),
        ("alias bomb of 10^9 nodes", write("bomb.yml", &bomb), &[2]),
        ("19,000 nodes in one flow list, under the limit", write("under.yml", &under), &[0]),
        ("240,000 nodes in one flow list", write("nodes.yml", &nodes), &[2]),
        ("~37,000 unknown parameters in 1 MiB", write("unknown.yml", &unknown), &[2]),
        ("a 1 MiB worker_image", write("long.yml", &long_value), &[2]),
    ]
}

#[test]
fn render_stays_under_64_mib_and_2_seconds_on_hostile_input() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    eprintln!("| input | exit | peak RSS | time |\n|---|---|---|---|");
    for (i, (what, env, codes)) in cases(tmp.path()).into_iter().enumerate() {
        let dir = tmp.path().join(format!("run{i}"));
        std::fs::create_dir(&dir).unwrap();
        let m = measure(&env, &dir);
        eprintln!("| {what} | {} | {:.1} MiB | {} ms |", m.code, m.rss_kib as f64 / 1024.0, m.time.as_millis());
        if !codes.contains(&m.code) || m.stderr.contains("panicked") {
            failures.push(format!("{what}: exit {}\n{}", m.code, m.stderr.chars().take(2000).collect::<String>()));
        }
        if m.rss_kib > MAX_RSS_KIB {
            failures.push(format!("{what}: peak RSS {} KiB > {MAX_RSS_KIB} KiB", m.rss_kib));
        }
        if m.time > MAX_TIME {
            failures.push(format!("{what}: {:?} > {MAX_TIME:?}", m.time));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
