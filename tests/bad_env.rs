//! The corpus of bad environment files under tests/bad-env/: each must be
//! refused with exit code 2, no panic, nothing written, and exactly the
//! message in its snapshot (tests/snapshots/bad_env__*.snap).

use assert_cmd::Command;

#[test]
fn every_bad_env_file_gets_its_error() {
    let mut files: Vec<_> = std::fs::read_dir("tests/bad-env")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 70, "the corpus has {} files; it must keep at least 70", files.len());
    let state = tempfile::tempdir().unwrap();
    for file in files {
        let out_dir = state.path().join("out");
        let out = Command::cargo_bin("provision")
            .unwrap()
            .args(["render", "--env"])
            .arg(&file)
            .arg("--out")
            .arg(&out_dir)
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .env_remove("OS_CLOUD")
            .env_remove("OS_AUTH_URL")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(out.status.code(), Some(2), "{name}: exit code; stderr:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name} panicked:\n{stderr}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout for a human error");
        assert!(!out_dir.exists(), "{name}: a bundle was written for bad input");
        assert!(
            stderr.contains(&format!("error: {}", file.display())),
            "{name}: the error must name the file:\n{stderr}"
        );
        let errors: String = stderr.lines().filter(|l| !l.starts_with("warning:")).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(name, errors);
    }
}

#[test]
fn json_errors_carry_file_line_column_key_and_hint() {
    let out = Command::cargo_bin("provision")
        .unwrap()
        .args(["render", "--output", "json", "--env", "tests/bad-env/01-typo-server_flavor.yml", "--out"])
        .arg(tempfile::tempdir().unwrap().path().join("o"))
        .env_remove("OS_CLOUD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    let p = &v["problems"][0];
    assert_eq!(p["file"], "tests/bad-env/01-typo-server_flavor.yml");
    assert_eq!((p["line"].as_u64(), p["column"].as_u64()), (Some(5), Some(3)));
    assert_eq!(p["key"], "sever_flavor");
    assert_eq!(p["hint"], "did you mean `server_flavor`?");
}

/// Runs `provision render` on `env` with a fresh state directory; the
/// tempdir's path is replaced by `<tmp>` so that messages can be snapshotted.
fn render(
    env: &std::path::Path,
    tmp: &std::path::Path,
    json: bool,
    vars: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let mut cmd = Command::cargo_bin("provision").unwrap();
    if json {
        cmd.args(["--output", "json"]);
    }
    cmd.args(["render", "--env"])
        .arg(env)
        .arg("--out")
        .arg(tmp.join("out"))
        .arg("--state-dir")
        .arg(tmp.join("state"))
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(20));
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&tmp.display().to_string(), "<tmp>");
    (out.status.code(), clean(&out.stdout), clean(&out.stderr))
}

fn refused(name: &str, env: &std::path::Path, tmp: &std::path::Path) {
    let (code, stdout, stderr) = render(env, tmp, false, &[]);
    assert_eq!(code, Some(2), "{name}: exit code; stderr:\n{stderr}");
    assert!(stdout.is_empty() && !stderr.contains("panicked"), "{name}:\n{stderr}");
    assert!(!tmp.join("out").exists(), "{name}: a bundle was written for bad input");
    insta::assert_snapshot!(name, stderr);
}

/// A valid parameter block, for files whose only fault is elsewhere.
const VALID: &str = "parameters:\n  hostname: myhost\n  domain: mydomain.com\n  server_key: mykey\n  server_flavor: m1.small\n  server_image: CoreOS\n  fip_network: pool-1\n";

#[test]
fn a_file_over_1_mib_is_refused_by_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("big.yml");
    let mut text = VALID.to_string();
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&env, text).unwrap();
    refused("file-over-1-mib", &env, tmp.path());
}

#[test]
fn dev_zero_is_read_no_further_than_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    refused("dev-zero", std::path::Path::new("/dev/zero"), tmp.path());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn a_directory_is_not_an_environment_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("env.d");
    std::fs::create_dir(&dir).unwrap();
    refused("directory", &dir, tmp.path());
}

#[test]
fn a_fifo_that_never_ends_is_cut_at_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo.yml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let writer_path = fifo.clone();
    // Writes 4 MiB of comments unless the reader stops first (a broken pipe).
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&writer_path).unwrap();
        let chunk = "# more and more\n".repeat(4096);
        for _ in 0..64 {
            if f.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    refused("fifo", &fifo, tmp.path());
    writer.join().unwrap();
}

#[test]
fn thousands_of_problems_are_cut_to_a_screenful() {
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("many.yml");
    let mut text = VALID.to_string();
    for i in 0..2000 {
        text.push_str(&format!("  unknown_{i}: x\n"));
    }
    std::fs::write(&env, text).unwrap();
    refused("many-problems", &env, tmp.path());
}

#[test]
fn a_subnet_over_dockers_bridge_is_a_warning_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("docker.yml");
    std::fs::write(&env, format!("{VALID}  private_cidr: 172.17.8.0/24\n")).unwrap();
    let (code, stdout, _) = render(&env, tmp.path(), true, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    insta::assert_snapshot!("docker-bridge-warning", v["warnings"][0].as_str().unwrap());
}

#[test]
fn userinfo_never_reaches_a_warning_or_the_json_result() {
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("ok.yml");
    std::fs::write(&env, VALID).unwrap();
    let vars = [
        ("OS_AUTH_URL", "https://admin:hunter2@keystone.example:5000/v2.0"),
        ("OS_USERNAME", "demo"),
        ("OS_PASSWORD", "pw-not-this-one"),
        ("OS_PROJECT_NAME", "demo"),
    ];
    let (code, stdout, stderr) = render(&env, tmp.path(), true, &vars);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains("hunter2") && !text.contains("admin:"), "userinfo shown:\n{text}");
    }
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("https://***@keystone.example:5000/v2.0"), "{warnings}");
}

#[test]
fn a_refused_url_never_shows_its_password_in_json() {
    let (code, stdout, stderr) = render(
        std::path::Path::new("tests/bad-env/86-authurl-userinfo.yml"),
        tempfile::tempdir().unwrap().path(),
        true,
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"), "{stdout}\n{stderr}");
    assert!(stdout.contains("https://***@keystone.example:5000/v3"), "{stdout}");
}
