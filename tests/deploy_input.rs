//! The live commands refuse bad input before they talk to any cloud: the
//! "cloud" here is a TCP listener on 127.0.0.1 that counts who knocks.
//! (The live path itself is proven against real OpenStack services by
//! tests/live/provision-live.)

use std::net::TcpListener;
use std::path::Path;

use assert_cmd::Command;

/// A Keystone URL that nobody answers, and a way to ask whether anyone
/// tried to connect to it.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v3", self.0.local_addr().unwrap().port())
    }

    fn knocked(&self) -> bool {
        self.0.accept().is_ok()
    }
}

fn provision(cloud: &Listener, state: &Path) -> Command {
    let mut c = Command::cargo_bin("provision").unwrap();
    c.env_remove("OS_CLOUD")
        .env("OS_AUTH_URL", cloud.url())
        .env("OS_USERNAME", "demo")
        .env("OS_PASSWORD", "s3cret-pw")
        .env("OS_PROJECT_NAME", "demo")
        .env("PROVISION_STATE_DIR", state)
        .env("NO_COLOR", "1");
    c
}

#[test]
fn a_bad_env_file_stops_the_deploy_before_any_request() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    let out = provision(&cloud, state.path())
        .args(["--env", "tests/bad-env/01-typo-server_flavor.yml", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert!(doc["problems"][0]["line"].is_u64(), "the problem has a line: {doc}");
    assert!(!cloud.knocked(), "a request was made for bad input");
}

#[test]
fn deploy_flags_in_front_of_another_command_are_refused_not_ignored() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    // `--timeout 60` is the default's value, and is refused all the same.
    for (given, flag) in [(&["--preview"][..], "--preview"), (&["--timeout", "60"][..], "--timeout")] {
        let out = provision(&cloud, state.path()).args(given).args(["status", "--name", "x"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(&format!("{flag} is for deploying")), "{flag}: {stderr}");
    }
    assert!(!cloud.knocked());
}

#[test]
fn without_credentials_the_deploy_says_where_to_give_them() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    let out = provision(&cloud, state.path())
        .env_remove("OS_AUTH_URL")
        .args(["--env", "tests/env/live-overlay.yml", "--env", "env/local-cloud.yml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The overlay files lack the seed's required keys: input problems come
    // first, and that is still exit code 2 with nothing sent.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!cloud.knocked());

    let out =
        provision(&cloud, state.path()).env_remove("OS_AUTH_URL").args(["status", "--name", "x"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no OpenStack credentials found") && stderr.contains("--os-cloud"), "{stderr}");
}

#[test]
fn an_unreachable_keystone_is_one_clear_line_without_the_password() {
    let cloud = Listener::new();
    let url = cloud.url();
    drop(cloud); // nothing listens there any more: connection refused
    let state = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("provision")
        .unwrap()
        .env_remove("OS_CLOUD")
        .env("OS_AUTH_URL", &url)
        .env("OS_USERNAME", "demo")
        .env("OS_PASSWORD", "s3cret-pw")
        .env("OS_PROJECT_NAME", "demo")
        .env("NO_COLOR", "1")
        .args(["status", "--name", "x", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&url) && stderr.contains("OS_* environment variables"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "the password leaked: {stderr}");
    // Where it acts, then why it cannot: one line each.
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0], format!("acting on {url}, project demo, region (any), user demo, public endpoints"));
    assert!(lines[1].starts_with("error: cannot reach Keystone"), "{stderr}");
}

#[test]
fn ssh_to_a_stack_without_its_keys_is_refused_before_asking_heat() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    let out = provision(&cloud, state.path()).args(["--name", "nokeys", "ssh", "--", "true"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("client_ed25519"), "names the missing key: {stderr}");
    assert!(stderr.contains("--state-dir"), "says what to check: {stderr}");
    assert!(!cloud.knocked(), "Heat was asked although the keys are missing");

    // A shell cannot be reported as JSON: refused before anything else.
    let out = provision(&cloud, state.path()).args(["--name", "x", "ssh", "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a shell has no JSON output"));
    assert!(!cloud.knocked());
}

/// The registry's Swift driver logs in with a user and password: with an
/// application credential, Swift storage is input that cannot work.
#[test]
fn swift_storage_with_an_application_credential_is_refused_as_input() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    let env = state.path().join("swift.yml");
    std::fs::write(&env, "parameters:\n  registry_storage: swift\n").unwrap();
    let out = provision(&cloud, state.path())
        .env_remove("OS_USERNAME")
        .env_remove("OS_PASSWORD")
        .env("OS_AUTH_TYPE", "v3applicationcredential")
        .env("OS_APPLICATION_CREDENTIAL_ID", "ac1")
        .env("OS_APPLICATION_CREDENTIAL_SECRET", "ac-secret-value")
        .args(["--env", "examples/env_params.yml", "--env"])
        .arg(&env)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("registry_storage: swift") && stderr.contains("application credential"), "{stderr}");
    assert!(stderr.contains("swift.yml:2"), "points at the line: {stderr}");
    assert!(!stderr.contains("ac-secret-value"));
    assert!(!cloud.knocked(), "a request was made for input that cannot work");
}

/// A bad flag is reported as a flag, not as a file of that name.
#[test]
fn a_bad_flag_is_reported_as_a_flag_in_the_json() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    let out =
        provision(&cloud, state.path()).args(["--name", "Bad Name", "status", "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &doc["problems"][0];
    assert_eq!(p["flag"], "--name", "{doc}");
    assert!(p.get("file").is_none(), "{doc}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name: `Bad Name` is not a valid stack name"));
    assert!(!cloud.knocked());
}

/// A bad suffix is reported where it was given: the variable CI set, or
/// the flag (which wins over the variable); nothing is sent either way.
#[test]
fn a_bad_name_suffix_points_at_the_flag_or_the_variable_it_came_from() {
    let cloud = Listener::new();
    let state = tempfile::tempdir().unwrap();
    let problem = |env: Option<&str>, flag: Option<&str>| {
        let mut c = provision(&cloud, state.path());
        c.env_remove("PROVISION_NAME_SUFFIX").args(["--env", "examples/env_params.yml", "--output", "json"]);
        if let Some(v) = env {
            c.env("PROVISION_NAME_SUFFIX", v);
        }
        if let Some(f) = flag {
            c.args(["--name-suffix", f]);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["problems"][0].clone()
    };
    let p = problem(Some("Job_7"), None);
    assert_eq!(p["variable"], "PROVISION_NAME_SUFFIX", "{p}");
    let p = problem(None, Some("Job_7"));
    assert_eq!(p["flag"], "--name-suffix", "{p}");
    let p = problem(Some("ci-7"), Some("Job_7"));
    assert_eq!(p["flag"], "--name-suffix", "the flag's value is the one used: {p}");
    assert!(!cloud.knocked(), "a request was made for bad input");
}
