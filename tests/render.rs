//! `provision render` end to end: the seed's own env file renders a bundle
//! that parses, passes `cloud-init schema`, matches its snapshots, holds
//! no secret it should not, and is stable across re-runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

const SEED: &str = "examples/env_params.yml";

struct Run {
    _dir: tempfile::TempDir,
    out: PathBuf,
    state: PathBuf,
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).to_string()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).to_string()
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    fn yaml(&self, name: &str) -> Value {
        serde_saphyr::from_str(&self.read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    /// Every file of the bundle, by its path relative to the bundle.
    fn files(&self) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        let mut stack = vec![self.out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&self.out).unwrap().to_string_lossy().to_string();
                    all.insert(rel, std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        all
    }
}

fn provision(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("provision").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env_remove("RUST_LOG")
        .env_remove("PROVISION_STATE_DIR");
    c
}

fn render_in(dir: tempfile::TempDir, envs: &[&str], extra: &[&str]) -> Run {
    let out = dir.path().join("bundle");
    let state = dir.path().join("state");
    let mut cmd = provision(dir.path());
    cmd.arg("render");
    for e in envs {
        cmd.args(["--env", e]);
    }
    cmd.arg("--out").arg(&out).arg("--state-dir").arg(&state).args(extra);
    let output = cmd.output().unwrap();
    Run { _dir: dir, out, state, output }
}

fn render(envs: &[&str], extra: &[&str]) -> Run {
    let run = render_in(tempfile::tempdir().unwrap(), envs, extra);
    assert!(run.output.status.success(), "render failed:\n{}", run.stderr());
    run
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().to_string()
}

/// PEM blocks and generated secrets change on every run; snapshots see
/// their place, not their bytes.
fn redact(text: &str, state: &Path) -> String {
    let mut out = String::new();
    let mut in_pem = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("-----BEGIN ") {
            in_pem = true;
            out.push_str(&line.replace(t, &format!("[{}]", t.trim_matches('-'))));
            out.push('\n');
            continue;
        }
        if in_pem {
            in_pem = !t.starts_with("-----END ");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let secret = std::fs::read_to_string(state.join("myhost").join("registry-password")).unwrap();
    out = out.replace(secret.trim(), "[registry-password]");
    // SSH keys are made per state directory.
    for (name, shown) in [
        ("ssh/client_ed25519.pub", "client public key"),
        ("ssh/host/myhost/ssh_host_ed25519_key.pub", "manager host public key"),
        ("ssh/workers/ssh_host_ed25519_key.pub", "worker host public key"),
    ] {
        if let Ok(key) = std::fs::read_to_string(state.join("myhost").join(name)) {
            out = out.replace(key.trim(), &format!("[{shown}]"));
        }
    }
    // The bcrypt hash is salted.
    let re_start = out.find("provision:$2y$").map(|i| i + "provision:".len());
    if let Some(i) = re_start {
        let end = out[i..].find('\n').map_or(out.len(), |e| i + e);
        out.replace_range(i..end, "[bcrypt hash]");
    }
    out
}

#[test]
fn seed_env_file_renders_the_expected_bundle() {
    let run = render(&[SEED], &[]);
    for name in ["template.yaml", "environment.yaml", "worker.yaml"] {
        insta::assert_snapshot!(name, run.read(name));
    }
    for name in ["manager.cloud-config", "worker.cloud-config"] {
        insta::assert_snapshot!(name, redact(&run.read(name), &run.state));
    }
    let stdout = run
        .stdout()
        .replace(&run.out.display().to_string(), "[out]")
        .replace(&run.state.display().to_string(), "[state]");
    insta::assert_snapshot!("summary", stdout);
    assert_eq!(run.read("summary.txt"), run.stdout(), "the bundle keeps the summary it printed");
}

/// Every `get_file` in a Heat template, wherever it is.
fn get_files(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v.as_str()) {
                ("get_file", Some(name)) => vec![name.to_string()],
                _ => get_files(v),
            })
            .collect(),
        serde_json::Value::Array(a) => a.iter().flat_map(get_files).collect(),
        _ => vec![],
    }
}

#[test]
fn rendered_files_parse_and_reference_each_other() {
    let run = render(&[SEED], &[]);
    let t = run.yaml("template.yaml");
    assert_eq!(t["heat_template_version"], "2021-04-16");
    let res = t["resources"].as_object().unwrap();
    let ty = |r: &str| res[r]["type"].as_str().unwrap().to_string();
    assert_eq!(ty("floating_ip_association"), "OS::Neutron::FloatingIPAssociation");
    assert!(!run.read("template.yaml").contains("OS::Nova::FloatingIPAssociation"));
    assert_eq!(ty("workers"), "OS::Heat::ResourceGroup");
    assert_eq!(res["workers"]["properties"]["resource_def"]["type"], "worker.yaml");
    assert_eq!(ty("manager_wait"), "OS::Heat::WaitCondition");
    // The floating IP is the manager's only: workers have a port and no FIP.
    let w = run.yaml("worker.yaml");
    let wres = w["resources"].as_object().unwrap();
    assert!(wres.values().all(|r| !r["type"].as_str().unwrap().contains("FloatingIP")));
    assert_eq!(wres["wait"]["type"], "OS::Heat::WaitCondition");
    // Every get_file names a file of the bundle.
    for file in ["template.yaml", "worker.yaml"] {
        let names = get_files(&run.yaml(file));
        assert!(!names.is_empty(), "{file} names no node config");
        for name in names {
            assert!(run.out.join(&name).is_file(), "{file} names {name}, which is not in the bundle");
        }
    }
    // The environment passes only parameters the template declares.
    let env = run.yaml("environment.yaml");
    let declared = t["parameters"].as_object().unwrap();
    for k in env["parameters"].as_object().unwrap().keys() {
        assert!(declared.contains_key(k), "environment sets {k}, which template.yaml does not declare");
    }
    // Security groups: the manager opens what it serves; the worker only ICMP
    // to the world, the rest by group.
    let rules = |sg: &str| res[sg]["properties"]["rules"].as_array().unwrap().clone();
    let ports: Vec<u64> = rules("manager_security_group").iter().filter_map(|r| r["port_range_min"].as_u64()).collect();
    assert_eq!(ports, vec![22, 5000, 80, 8443, 8100], "nothing listens on 8200; the cache is not open to all");
    for r in rules("manager_security_group") {
        if matches!(r["port_range_min"].as_u64(), Some(22 | 8100)) {
            assert_eq!(r["remote_ip_prefix"]["get_param"], "ssh_allowed_cidr", "{r:?}");
        }
    }
    // The cache: the workers by group; outside addresses only when given.
    assert_eq!(res["manager_from_workers_cache"]["properties"]["port_range_min"], 443);
    assert_eq!(
        res["manager_from_workers_cache"]["properties"]["remote_group"]["get_resource"],
        "worker_security_group"
    );
    let outside = &res["manager_cache_from_outside"];
    assert_eq!(outside["condition"], "cache_open");
    assert_eq!(outside["properties"]["remote_ip_prefix"]["get_param"], "cache_allowed_cidr");
    assert_eq!(t["parameters"]["cache_allowed_cidr"]["default"], "");
    assert!(env["parameters"].get("cache_allowed_cidr").is_none(), "not given: the default keeps it closed");
    let summary = run.read("summary.txt");
    assert!(summary.contains("443   pull-through cache (anonymous)     from the stack's nodes"), "{summary}");
    assert!(summary.contains("22    SSH"), "{summary}");
    assert!(summary.contains("1 floating IP from"), "{summary}");
    assert_eq!(rules("worker_security_group").len(), 1);
    for name in ["manager.cloud-config", "worker.cloud-config"] {
        assert!(run.read(name).starts_with("#cloud-config\n"), "{name} header");
        let cc = run.yaml(name);
        assert!(cc["write_files"].as_array().unwrap().len() >= 5, "{name}");
    }
}

#[test]
fn node_configs_pass_cloud_init_schema() {
    let run = render(&[SEED, "tests/env/three-workers-existing-net.yml"], &[]);
    for name in ["manager.cloud-config", "worker.cloud-config"] {
        let out = std::process::Command::new("cloud-init")
            .args(["schema", "-c"])
            .arg(run.out.join(name))
            .output()
            .expect("cloud-init is installed (apt-get install cloud-init; .ci/run does it)");
        assert!(
            out.status.success(),
            "{name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn cloud_init_schema_check_can_fail() {
    // The check above proves something only if a wrong config is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad =
        write(dir.path(), "bad.cloud-config", "#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 0644\n");
    let out = std::process::Command::new("cloud-init").args(["schema", "-c", &bad]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn secrets_stay_where_they_belong() {
    let dir = tempfile::tempdir().unwrap();
    let env = write(
        dir.path(),
        "creds.yml",
        "parameters:\n  os_authurl: https://k.example:5000/v3\n  os_username: alice\n  os_password: Pw-NEVER-printed-42\n  os_project_name: demo\n",
    );
    std::fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = render_in(dir, &[SEED, &env], &[]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let mut traced = provision(run._dir.path());
    traced
        .args(["render", "--output", "json", "--env", SEED, "--env", &env, "--out"])
        .arg(&run.out)
        .arg("--state-dir")
        .arg(&run.state);
    let traced = traced.env("RUST_LOG", "trace").output().unwrap();
    assert!(traced.status.success());
    let registry_password = std::fs::read_to_string(run.state.join("myhost/registry-password")).unwrap();
    let ca_key = std::fs::read_to_string(run.state.join("myhost/certs/ca.key")).unwrap();
    let host_keys = ["ssh/host/myhost/ssh_host_ed25519_key", "ssh/workers/ssh_host_ed25519_key"]
        .map(|k| std::fs::read_to_string(run.state.join("myhost").join(k)).unwrap());
    let client_key = std::fs::read_to_string(run.state.join("myhost/ssh/client_ed25519")).unwrap();
    // Each node config carries its own host key (workers share theirs) and
    // not the other role's.
    let manager_config = run.read("manager.cloud-config");
    let worker_config = run.read("worker.cloud-config");
    // Line 1 of every OpenSSH ed25519 key is the same header; line 2 holds
    // the key's own bytes.
    let body = |pem: &str| pem.lines().nth(2).unwrap().to_string();
    assert!(manager_config.contains(&body(&host_keys[0])) && !manager_config.contains(&body(&host_keys[1])));
    assert!(worker_config.contains(&body(&host_keys[1])) && !worker_config.contains(&body(&host_keys[0])));
    let printed = [
        run.stdout(),
        run.stderr(),
        String::from_utf8_lossy(&traced.stdout).into(),
        String::from_utf8_lossy(&traced.stderr).into(),
    ];
    for text in printed.iter() {
        for secret in ["Pw-NEVER-printed-42", registry_password.trim(), ca_key.trim()]
            .into_iter()
            .chain(host_keys.iter().chain([&client_key]).map(|k| k.trim()))
            .chain(host_keys.iter().chain([&client_key]).map(|k| k.lines().nth(2).unwrap()))
        {
            assert!(!text.contains(secret), "a secret was printed:\n{text}");
        }
    }
    for (name, text) in run.files() {
        assert!(!text.contains("Pw-NEVER-printed-42"), "{name} holds the OpenStack password");
        assert!(
            !text.contains(registry_password.trim()),
            "{name} holds the registry password (only its bcrypt hash may leave)"
        );
        let node_config = name == "manager.cloud-config" || name == "worker.cloud-config";
        assert!(!text.contains("PRIVATE KEY") || node_config, "{name} holds a private key");
        for key in &host_keys {
            assert!(!text.contains(key.trim()) || node_config, "{name} holds a host private key");
        }
        assert!(!text.contains(client_key.trim()), "{name} holds the client private key");
        assert!(!text.contains(ca_key.trim()), "{name} holds the CA key");
        // Redis's password and the registries' HTTP secret are made on the
        // node: no file Heat sees names them, or sets them.
        // (The node's script names them, with `%s` for the value it makes.)
        for line in text.lines() {
            let sets = ["requirepass ", "REGISTRY_REDIS_PASSWORD=", "REGISTRY_HTTP_SECRET="]
                .iter()
                .any(|set| line.contains(set) && !line.contains("%s"))
                || ["secret:", "password:"].iter().any(|key| line.trim_start().starts_with(key));
            assert!(!sets, "{name} sets a secret the node should make: {line}");
        }
    }
    let mode =
        |p: PathBuf| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(run.out.join("manager.cloud-config")), 0o600);
    assert_eq!(mode(run.out.join("worker.cloud-config")), 0o600);
    for f in [
        "certs/ca.key",
        "certs/registry.key",
        "registry-password",
        "ssh/host/myhost/ssh_host_ed25519_key",
        "ssh/workers/ssh_host_ed25519_key",
        "ssh/client_ed25519",
    ] {
        assert_eq!(mode(run.state.join("myhost").join(f)), 0o600, "{f}");
    }
    assert!(run.stdout().contains("credentials   the os_* parameters in"));
}

#[test]
fn a_rerun_reuses_the_ca_certificate_and_passwords() {
    let first = render(&[SEED], &[]);
    let again = {
        let mut c = provision(first._dir.path());
        c.args(["render", "--env", SEED, "--out"]).arg(&first.out).arg("--state-dir").arg(&first.state);
        c.output().unwrap()
    };
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("(reused; CA reused"), "{stdout}");
    let state = |f: &str| std::fs::read_to_string(first.state.join("myhost").join(f)).unwrap();
    assert_eq!(first.read("certs/registry.crt"), state("certs/registry.crt"));
    assert_eq!(first.read("certs/ca.crt"), state("certs/ca.crt"));
}

#[test]
fn a_rerun_renders_a_byte_identical_bundle() {
    // Heat replaces a server whose user_data changed: a re-run with the
    // same input must not change a byte of what Heat sees.
    let first = render(&[SEED], &[]);
    let before = first.files();
    let mut c = provision(first._dir.path());
    c.args(["render", "--env", SEED, "--out"]).arg(&first.out).arg("--state-dir").arg(&first.state);
    assert!(c.output().unwrap().status.success());
    let after = first.files();
    for (name, text) in &before {
        if name != "summary.txt" {
            assert!(after[name] == *text, "{name} changed on a re-run");
        }
    }
}

#[test]
fn changing_the_registry_user_makes_a_new_htpasswd_line() {
    let first = render(&[SEED], &[]);
    let line = |run_out: &Path| {
        let cc = std::fs::read_to_string(run_out.join("manager.cloud-config")).unwrap();
        cc.lines().find(|l| l.contains(":$2y$")).unwrap().trim().to_string()
    };
    let before = line(&first.out);
    assert!(before.starts_with("provision:"));
    let overlay = write(first._dir.path(), "user.yml", "parameters:\n  registry_user: ops\n");
    let mut c = provision(first._dir.path());
    c.args(["render", "--env", SEED, "--env", &overlay, "--out"]).arg(&first.out).arg("--state-dir").arg(&first.state);
    assert!(c.output().unwrap().status.success());
    let after = line(&first.out);
    assert!(after.starts_with("ops:$2y$"), "{after}");
    let password = std::fs::read_to_string(first.state.join("myhost/registry-password")).unwrap();
    assert!(bcrypt_ok(&password, after.split_once(':').unwrap().1));
}

fn bcrypt_ok(password: &str, hash: &str) -> bool {
    // The real registry's check: an htpasswd line the registry accepts.
    // Verified here with the same bcrypt the library uses.
    provision::bundle::registry::htpasswd_verifies(password.trim(), hash)
}

#[test]
fn a_known_floating_ip_goes_into_the_certificate_and_the_environment() {
    let first = render(&[SEED], &[]);
    let mut c = provision(first._dir.path());
    c.args(["render", "--output", "json", "--env", SEED, "--floating-ip", "fip-1234=198.51.100.20", "--out"])
        .arg(&first.out)
        .arg("--state-dir")
        .arg(&first.state);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bundle"]["server_certificate"], "reissued: it must now also name 198.51.100.20");
    assert_eq!(v["bundle"]["ca"], "reused");
    assert!(v["bundle"]["certificate_names"].as_array().unwrap().contains(&Value::from("198.51.100.20")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("issued again"));
    let env = first.yaml("environment.yaml");
    assert_eq!(env["parameters"]["floating_ip_id"], "fip-1234");
    assert_eq!(env["parameters"]["floating_ip_address"], "198.51.100.20");
}

#[test]
fn env_files_merge_in_order_and_parameters_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let overlay = write(
        dir.path(),
        "overlay.yml",
        "parameter_defaults:\n  worker_count: 7\n  server_flavor: from-defaults\nparameters:\n  server_image: flatcar\nresource_registry:\n  OS::Heat::WaitCondition: OS::Heat::None\n",
    );
    let run = render_in(dir, &[SEED, &overlay], &[]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let env = run.yaml("environment.yaml");
    assert_eq!(env["parameters"]["worker_count"], 7);
    assert_eq!(env["parameters"]["server_image"], "flatcar", "a later file overrides an earlier one");
    assert_eq!(
        env["parameters"]["server_flavor"], "m1.small",
        "`parameters` in the seed beats a later `parameter_defaults`"
    );
    assert_eq!(env["resource_registry"]["OS::Heat::WaitCondition"], "OS::Heat::None");
}

#[test]
fn existing_network_and_no_volume_change_the_shape() {
    let run = render(&[SEED, "tests/env/three-workers-existing-net.yml"], &[]);
    let t = run.yaml("template.yaml");
    let res = t["resources"].as_object().unwrap();
    for absent in ["network", "subnet", "router", "router_interface", "data_volume"] {
        assert!(!res.contains_key(absent), "{absent} should not be created");
    }
    assert!(t["parameters"].get("private_network").is_some());
    let env = run.yaml("environment.yaml");
    assert_eq!(env["parameters"]["private_network"], "private");
    assert_eq!(env["parameters"]["worker_count"], 3);
    assert!(!run.read("manager.cloud-config").contains("provision-data"), "no volume, no volume unit");
}

#[test]
fn templates_can_be_overridden_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl/heat");
    std::fs::create_dir_all(&tpl).unwrap();
    let original = include_str!("../templates/heat/worker.yaml");
    std::fs::write(tpl.join("worker.yaml"), original.replace("A provision swarm worker.", "An overridden worker."))
        .unwrap();
    let tpl_root = dir.path().join("tpl").to_string_lossy().to_string();
    let run = render_in(dir, &[SEED], &["--templates", &tpl_root, "--output", "json"]);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(run.read("worker.yaml").contains("An overridden worker."));
    assert!(run.read("template.yaml").contains("heat_template_version"), "the others stay built in");
    let v: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    assert!(v["bundle"]["templates_overridden"][0].as_str().unwrap().ends_with("tpl/heat/worker.yaml"));
}

#[test]
fn a_broken_override_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl/nodes");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::create_dir_all(tpl.join("units")).unwrap();
    std::fs::write(tpl.join("units/provision-signal.service"), "[Unit]\n{{ no_such_variable }}\n").unwrap();
    let tpl_root = dir.path().join("tpl").to_string_lossy().to_string();
    let run = render_in(dir, &[SEED], &["--templates", &tpl_root]);
    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.stderr().contains("nodes/units/provision-signal.service"), "{}", run.stderr());
    assert!(!run.stderr().contains("panicked"));
}

#[test]
fn an_override_that_replaces_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl/nodes");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(tpl.join("signal.bash"), "#!/bin/bash\n").unwrap();
    let tpl_root = dir.path().join("tpl").to_string_lossy().to_string();
    let run = render_in(dir, &[SEED], &["--templates", &tpl_root]);
    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.stderr().contains("nodes/signal.bash is not one of provision's templates"), "{}", run.stderr());
    assert!(run.stderr().contains("did you mean nodes/signal.sh"), "{}", run.stderr());
}

#[test]
fn clouds_yaml_is_named_as_the_source_and_wins() {
    let dir = tempfile::tempdir().unwrap();
    let clouds = write(
        dir.path(),
        "clouds.yaml",
        "clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: demo\n      password: pw\n      project_name: demo\n",
    );
    std::fs::set_permissions(&clouds, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = dir.path().join("b");
    let o = provision(dir.path())
        .args(["render", "--env", SEED, "--os-cloud", "lab", "--output", "json", "--out"])
        .arg(&out)
        .arg("--state-dir")
        .arg(dir.path().join("s"))
        .env("OS_CLIENT_CONFIG_FILE", &clouds)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["credentials"]["source"], format!("cloud `lab` in {clouds}"));
    let warnings = v["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("readable by others")), "{warnings:?}");
    assert!(!warnings.iter().any(|w| w.as_str().unwrap().contains("Keystone v2")), "the seed's v2 URL was not used");
}

#[test]
fn every_command_has_help_with_examples_and_the_cli_makes_man_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &["--help"][..],
        &["render", "--help"],
        &["check", "--help"],
        &["params", "--help"],
        &["completions", "--help"],
        &["man", "--help"],
        &["ssh", "--help"],
        &["handoff", "--help"],
        &["list", "--help"],
        &["gc", "--help"],
        &["clouds", "--help"],
    ] {
        let o = provision(dir.path()).args(cmd).output().unwrap();
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("Examples:"), "{cmd:?} has no examples");
    }
    let man = provision(dir.path()).arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH provision"));
    let bash = provision(dir.path()).args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_provision()"));
    let usage = provision(dir.path()).args(["render"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "a usage error is exit code 2");
}

/// What a newcomer types first: nothing, `deploy`, `--dry-run`, a typo
/// under `--output json`, and `man` for each command.
#[test]
fn first_contact_help_deploy_dry_run_json_usage_errors_and_man_pages() {
    let dir = tempfile::tempdir().unwrap();
    let bare = provision(dir.path()).output().unwrap();
    assert_eq!(bare.status.code(), Some(0));
    let help = String::from_utf8_lossy(&bare.stdout);
    assert!(help.contains("Usage: provision") && help.contains("deploy"), "{help}");

    let deploy = provision(dir.path()).args(["deploy", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&deploy.stdout);
    assert!(deploy.status.success() && text.contains("--dry-run") && text.contains("Examples:"), "{text}");
    // `deploy` reads its input as the flag-only form does: no env file, exit 2.
    let o = provision(dir.path()).args(["deploy", "--dry-run", "--env", "/nonexistent.yml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.yml"));

    for args in [
        &["--output", "json", "--bogus"][..],
        &["--output=json", "destroy", "--frce"],
        &["status", "--output", "json", "extra"],
    ] {
        let o = provision(dir.path()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", o.stdout));
        assert_eq!(v["ok"], false);
        assert_eq!(v["kind"], "usage");
        assert_eq!(v["exit_code"], 2);
        assert!(v["error"].as_str().unwrap().contains("unexpected argument"), "{v}");
    }
    // Without --output json a usage error leaves stdout empty.
    let o = provision(dir.path()).args(["--bogus"]).output().unwrap();
    assert!(o.stdout.is_empty());

    let man = dir.path().join("man");
    let o = provision(dir.path()).args(["man", "--dir"]).arg(&man).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let top = std::fs::read_to_string(man.join("provision.1")).unwrap();
    // Every page the top page points to exists, and each has the sections
    // clap does not write.
    for page in top.lines().filter_map(|l| l.strip_prefix("provision\\-").and_then(|l| l.strip_suffix("(1)"))) {
        let text = std::fs::read_to_string(man.join(format!("provision-{page}.1"))).unwrap();
        assert!(text.contains(".SH ENVIRONMENT") && text.contains(".SH \"EXIT STATUS\""), "{page}");
    }
    assert!(top.contains("provision\\-destroy(1)"), "{top}");
    let one = provision(dir.path()).args(["man", "destroy"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&one.stdout), std::fs::read_to_string(man.join("provision-destroy.1")).unwrap());
    assert_eq!(provision(dir.path()).args(["man", "destory"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn params_lists_every_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let o = provision(dir.path()).args(["params", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for seed_key in [
        "hostname",
        "domain",
        "server_key",
        "server_flavor",
        "server_image",
        "fip_network",
        "os_username",
        "os_password",
        "os_region",
        "os_authurl",
    ] {
        assert!(names.contains(&seed_key), "{seed_key}");
    }
}

/// The image a `docker run` command line runs: its first word that is
/// neither an option nor an option's value.
fn image_of(run_args: &str) -> Option<String> {
    let mut words = run_args.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "--name" | "--network" | "-v" | "--volume" | "--entrypoint" | "-e" | "--env" | "--env-file" | "-p" => {
                words.next();
            }
            w if w.starts_with('-') => {}
            w => return Some(w.to_string()),
        }
    }
    None
}

/// dev/boot gives the booted nodes the images they run (nothing can be
/// pulled there); a name changed here and not there would leave a node
/// that cannot start, so the two lists must be the same.
#[test]
fn the_boot_harness_provides_exactly_the_images_the_nodes_run() {
    let run = render(&[SEED], &[]);
    let mut wanted = std::collections::BTreeSet::new();
    for line in run.read("manager.cloud-config").lines() {
        if let Some((_, args)) = line.split_once("/usr/bin/docker run ") {
            wanted.insert(image_of(args).unwrap_or_else(|| panic!("no image in: {line}")));
        }
    }
    assert!(wanted.len() >= 2, "the manager runs its registry and Redis: {wanted:?}");
    // The example app the hand-off deploys comes through the manager's cache.
    wanted.insert(provision::handoff::imixs::Images::default().app);
    let list =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dev/boot/images/images.list")).unwrap();
    let provided: std::collections::BTreeSet<String> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(wanted, provided, "dev/boot/images/images.list and the node configs name different images");
    let script = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dev/boot/boot")).unwrap();
    for name in &provided {
        assert!(script.contains(name.as_str()), "dev/boot/boot does not build {name}");
    }
}

const IGNITION: &str = "parameters:\n  node_config: ignition\n";

/// A file's contents out of an Ignition data URL (plain or gzipped base64).
fn data_url(source: &str, compression: Option<&str>) -> String {
    use base64::Engine;
    use std::io::Read;
    if let Some(b64) = source.strip_prefix("data:;base64,") {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert_eq!(compression, Some("gzip"));
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut out).unwrap();
        return out;
    }
    let text = source.strip_prefix("data:,").unwrap_or_else(|| panic!("not a data URL: {source}"));
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn ignition_validate(path: &Path) -> std::process::Output {
    std::process::Command::new("ignition-validate")
        .arg(path)
        .output()
        .expect("ignition-validate is installed (apt-get install ignition; dev/test does it)")
}

#[test]
fn ignition_configs_pass_ignition_validate_and_the_check_can_fail() {
    let dir = tempfile::tempdir().unwrap();
    let env = write(dir.path(), "ignition.yml", IGNITION);
    let run = render_in(dir, &[SEED, &env], &[]);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(!run.out.join("manager.cloud-config").exists());
    for name in ["manager.ign", "worker.ign"] {
        let out = ignition_validate(&run.out.join(name));
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(run.yaml(name)["ignition"]["version"], "3.3.0");
    }
    assert_eq!(get_files(&run.yaml("template.yaml")), ["manager.ign"]);
    assert_eq!(get_files(&run.yaml("worker.yaml")), ["worker.ign"]);
    // Broken on purpose: a mode as a string, and a unit without a name.
    let mut v: Value = serde_json::from_str(&run.read("worker.ign")).unwrap();
    v["storage"]["files"][0]["mode"] = Value::String("0644".into());
    let bad = run.out.join("bad-mode.ign");
    std::fs::write(&bad, v.to_string()).unwrap();
    assert!(!ignition_validate(&bad).status.success(), "a mode as a string must be refused");
    let bad = run.out.join("bad-json.ign");
    std::fs::write(&bad, run.read("worker.ign").replacen("\"systemd\"", "\"systemd", 1)).unwrap();
    assert!(!ignition_validate(&bad).status.success(), "broken JSON must be refused");
}

/// Both formats carry the same node: host name, login key, files (path,
/// mode, contents), units (contents, drop-ins) and what runs at boot.
#[test]
fn cloud_config_and_ignition_describe_the_same_nodes() {
    // One state directory: the same keys, certificates and secrets.
    let dir = tempfile::tempdir().unwrap();
    let env = write(dir.path(), "ignition.yml", IGNITION);
    let bundle = |name: &str, envs: &[&str]| {
        let out = dir.path().join(name);
        let mut cmd = provision(dir.path());
        cmd.arg("render").arg("--out").arg(&out).arg("--state-dir").arg(dir.path().join("state"));
        for e in envs {
            cmd.args(["--env", e]);
        }
        assert!(cmd.output().unwrap().status.success());
        out
    };
    let (cc, ign) = (bundle("cc", &[SEED]), bundle("ign", &[SEED, &env]));
    for role in ["manager", "worker"] {
        let c: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(cc.join(format!("{role}.cloud-config"))).unwrap()).unwrap();
        let i: Value =
            serde_json::from_str(&std::fs::read_to_string(ign.join(format!("{role}.ign"))).unwrap()).unwrap();
        let mut c_files: Vec<(String, u64, String)> = c["write_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let mode = u64::from_str_radix(f["permissions"].as_str().unwrap(), 8).unwrap();
                (f["path"].as_str().unwrap().to_string(), mode, f["content"].as_str().unwrap().to_string())
            })
            .collect();
        c_files.push(("/etc/hostname".into(), 0o644, format!("{}\n", c["hostname"].as_str().unwrap())));
        let mut i_files: Vec<(String, u64, String)> = i["storage"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let contents =
                    data_url(f["contents"]["source"].as_str().unwrap(), f["contents"]["compression"].as_str());
                (f["path"].as_str().unwrap().to_string(), f["mode"].as_u64().unwrap(), contents)
            })
            .collect();
        c_files.sort();
        i_files.sort();
        assert_eq!(c_files.len(), i_files.len(), "{role}: the same files");
        for (a, b) in c_files.iter().zip(&i_files) {
            assert_eq!(a, b, "{role}: {}", a.0);
        }
        assert_eq!(c["ssh_authorized_keys"], i["passwd"]["users"][0]["sshAuthorizedKeys"], "{role}: login key");
        assert_eq!(i["passwd"]["users"][0]["name"], "core");
        let c_units = c["coreos"]["units"].as_array().unwrap();
        let i_units = i["systemd"]["units"].as_array().unwrap();
        assert_eq!(c_units.len(), i_units.len(), "{role}: the same units");
        for (a, b) in c_units.iter().zip(i_units) {
            assert_eq!(a["name"], b["name"]);
            assert_eq!(a["content"], b["contents"], "{role}: {}", a["name"]);
            let runs_at_boot = a["enable"] == true || a["command"] == "start";
            assert_eq!(b["enabled"] == true, runs_at_boot, "{role}: {} runs at boot in both", a["name"]);
            let c_dropins = a["drop_ins"].as_array().cloned().unwrap_or_default();
            let i_dropins = b["dropins"].as_array().cloned().unwrap_or_default();
            assert_eq!(c_dropins.len(), i_dropins.len());
            for (x, y) in c_dropins.iter().zip(&i_dropins) {
                assert_eq!((&x["name"], &x["content"]), (&y["name"], &y["contents"]));
            }
        }
    }
}

/// Nova takes at most 65,535 bytes of user_data after base64: a node
/// config that would not fit stops the render, with every size and the
/// budget, before anything reaches a cloud.
#[test]
fn a_node_config_too_large_for_nova_is_refused_with_the_sizes() {
    for extra in [&[][..], &["ignition"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let tpl = dir.path().join("tpl/nodes");
        std::fs::create_dir_all(&tpl).unwrap();
        // Padding that does not compress (Ignition gzips what it can).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: String = (0..48_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let padded = format!("{}\n# {noise}\n", include_str!("../templates/nodes/signal.sh"));
        std::fs::write(tpl.join("signal.sh"), padded).unwrap();
        let tpl_root = dir.path().join("tpl").to_string_lossy().to_string();
        let mut envs = vec![SEED.to_string()];
        if !extra.is_empty() {
            envs.push(write(dir.path(), "ignition.yml", IGNITION));
        }
        let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
        let run = render_in(dir, &envs, &["--templates", &tpl_root]);
        assert_eq!(run.output.status.code(), Some(2), "{}\n{}", run.stderr(), run.stdout());
        let err = run.stderr();
        let (m, w) = if extra.is_empty() {
            ("manager.cloud-config", "worker.cloud-config")
        } else {
            ("manager.ign", "worker.ign")
        };
        assert!(err.contains(&format!("{m} ")) && err.contains(&format!("{w} ")), "each node config's size: {err}");
        assert!(err.contains("at most 65535 bytes"), "the budget: {err}");
        assert!(!run.out.join(m).exists(), "nothing written");
    }
}

/// Usage and path mistakes are found before anything is made, exit 2, and
/// say each OS error once.
#[test]
fn path_mistakes_are_found_first_and_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a-file", "x");
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        let out = provision(dir.path()).arg("render").args(["--env", SEED]).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let s = state.to_str().unwrap();
    let (code, err) = run(&["--out", &file, "--state-dir", s]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("error: --out {file}: is a file")), "{err}");
    let (code, err) =
        run(&["--out", dir.path().join("o").to_str().unwrap(), "--state-dir", s, "--templates", "/nonexistent"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("error: --templates /nonexistent: does not exist"), "{err}");
    assert!(!state.exists(), "nothing is made for a command line that cannot work");
    // A state directory under a file: the OS error once, not twice.
    let under = format!("{file}/state");
    let (code, err) = run(&["--out", dir.path().join("o").to_str().unwrap(), "--state-dir", &under]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}

#[test]
fn the_cache_opens_beyond_the_stack_only_to_cache_allowed_cidr() {
    let dir = tempfile::tempdir().unwrap();
    let extra = write(dir.path(), "cache.yml", "parameters:\n  cache_allowed_cidr: 192.0.2.0/24\n");
    let run = render(&[SEED, &extra], &[]);
    let env = run.yaml("environment.yaml");
    assert_eq!(env["parameters"]["cache_allowed_cidr"], "192.0.2.0/24");
    let summary = run.read("summary.txt");
    assert!(summary.contains("from the stack's nodes, 192.0.2.0/24"), "{summary}");
    let bad = write(dir.path(), "bad.yml", "parameters:\n  cache_allowed_cidr: 192.0.2.1/24\n");
    let run = render_in(tempfile::tempdir().unwrap(), &[SEED, &bad], &[]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains("bad.yml:2"), "{}", run.stderr());
}

/// A CA and a registry certificate as an operator would bring them, in `dir`.
fn own_certificate(dir: &Path, names: &[&str]) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.clone().self_signed(&ca_key).unwrap().pem();
    let key = KeyPair::generate().unwrap();
    let crt = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &Issuer::new(ca, &ca_key))
        .unwrap()
        .pem();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/ca.crt"), &ca_pem).unwrap();
    std::fs::write(dir.join("tls/registry.crt"), &crt).unwrap();
    std::fs::write(dir.join("tls/registry.key"), key.serialize_pem()).unwrap();
    (crt, key.serialize_pem())
}

const OWN: &str = "parameters:\n  registry_cert_file: tls/registry.crt\n  registry_key_file: tls/registry.key\n  \
                   registry_ca_file: tls/ca.crt\n";

#[test]
fn the_operators_own_certificate_goes_to_the_manager_and_its_key_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    // The seed names the registry myhost.mydomain.com.
    let (crt, key) = own_certificate(dir.path(), &["myhost.mydomain.com"]);
    let env = write(dir.path(), "own.yml", OWN);
    let run = render(&[SEED, &env], &[]);
    let manager = run.read("manager.cloud-config");
    let cc = run.yaml("manager.cloud-config");
    let file = |path: &str| {
        cc["write_files"].as_array().unwrap().iter().find(|f| f["path"] == path).unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(file("/etc/provision/certs/registry.crt").trim(), crt.trim());
    assert_eq!(file("/etc/provision/certs/registry.key").trim(), key.trim());
    let ca = std::fs::read_to_string(dir.path().join("tls/ca.crt")).unwrap();
    assert!(run.read("worker.cloud-config").contains(ca.lines().nth(1).unwrap()), "workers trust the given CA");
    let key_line = key.lines().nth(1).unwrap();
    for other in ["worker.cloud-config", "template.yaml", "environment.yaml", "summary.txt"] {
        assert!(!run.read(other).contains(key_line), "the key is in {other}");
    }
    assert!(manager.contains(key_line));
    assert!(!run.state.join("myhost.mydomain.com/certs/ca.key").exists(), "no CA of our own is made");
    assert!(!run.stdout().contains(key_line) && !run.stderr().contains(key_line));
    let summary = run.read("summary.txt");
    assert!(summary.contains("yours: ") && summary.contains("tls/ca.crt"), "{summary}");
}

#[test]
fn an_own_certificate_that_does_not_fit_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    own_certificate(dir.path(), &["other.example.com"]);
    let env = write(dir.path(), "own.yml", OWN);
    let run = render_in(tempfile::tempdir().unwrap(), &[SEED, &env], &[]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stderr().contains("own.yml:2") && run.stderr().contains("does not name myhost.mydomain.com"),
        "{}",
        run.stderr()
    );

    let partial = write(dir.path(), "partial.yml", "parameters:\n  registry_key_file: tls/registry.key\n");
    let run = render_in(tempfile::tempdir().unwrap(), &[SEED, &partial], &[]);
    assert_eq!(run.output.status.code(), Some(2));
    assert!(run.stderr().contains("needs registry_cert_file and registry_ca_file too"), "{}", run.stderr());
}

#[test]
fn bash_completes_cloud_names_from_clouds_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".config/openstack")).unwrap();
    std::fs::write(
        dir.path().join(".config/openstack/clouds.yaml"),
        "clouds:\n  lab: {auth: {auth_url: http://l/v3}}\n  labs-old: {}\n  prod: {region_name: R}\n",
    )
    .unwrap();
    let script = provision(dir.path()).args(["completions", "bash"]).output().unwrap().stdout;
    std::fs::write(dir.path().join("provision.bash"), script).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("provision");
    let complete = |words: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source provision.bash; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _provision provision \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.parent().unwrap().display()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete("provision --os-cloud la"), ["lab", "labs-old"]);
    assert_eq!(complete("provision status --os-cloud p"), ["prod"]);
    let listed = provision(dir.path()).args(["--output", "json", "clouds"]).output().unwrap();
    let v: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v["clouds"][2]["region"], "R");
}

/// The JSON documents pipelines read, pinned: a render, a bad env file
/// under `deploy`, a cloud command with no credentials, and `clouds` with
/// none. Paths are the test's own and shown as their place.
#[test]
fn json_documents_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let bad = write(dir.path(), "bad.yml", "parameters:\n  hostname: h\n  server_flavour: m1.small\n");
    // A copy of the seed with a known mode: the warning about it must not
    // depend on the checkout's umask.
    let seed = write(dir.path(), "env_params.yml", &std::fs::read_to_string(SEED).unwrap());
    std::fs::set_permissions(&seed, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let cases: [(&str, Vec<String>); 4] = [
        ("render", vec!["render".into(), "--env".into(), seed, "--out".into(), format!("{root}/out")]),
        ("deploy-bad-input", vec!["--env".into(), bad.clone()]),
        ("destroy-no-credentials", vec!["destroy".into(), "--name".into(), "teststack".into()]),
        ("clouds-none", vec!["clouds".into()]),
    ];
    for (name, args) in cases {
        let o = provision(dir.path())
            .args(&args)
            .args(["--output", "json", "--state-dir", &format!("{root}/state")])
            .env_remove("OS_CLIENT_CONFIG_FILE")
            .env_remove("OS_USERNAME")
            .env_remove("OS_PASSWORD")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).replace(&root, "[dir]");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text}"));
        insta::assert_snapshot!(format!("json-{name}"), format!("exit {:?}\n{:#}", o.status.code(), v));
    }
}

/// Every file a render keeps is one the state directory's layout names,
/// and is kept as private or public as the layout says (a key 0600).
#[test]
fn the_state_directory_holds_only_what_its_layout_names_with_its_modes() {
    use std::os::unix::fs::PermissionsExt;

    use provision::state::{Mode, layout};
    let dir = tempfile::tempdir().unwrap();
    let workers = write(dir.path(), "workers.yml", "parameters:\n  worker_count: 2\n");
    let run = render_in(dir, &[SEED, &workers], &[]);
    assert!(run.output.status.success(), "{}", run.stderr());
    let stack = run.state.join("myhost");
    let mut todo = vec![stack.clone()];
    let mut seen = Vec::new();
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(&stack).unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                todo.push(p);
                continue;
            }
            if rel == ".lock" {
                continue;
            }
            let (pattern, mode, _) = layout::kept(&rel).unwrap_or_else(|| panic!("{rel} is not in the layout"));
            let bits = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            let want = if mode == Mode::Private { 0o600 } else { 0o644 };
            assert_eq!(bits, want, "{rel} (as {pattern}) is {bits:o}");
            seen.push(pattern);
        }
    }
    // What a render makes: everything but the floating IP and the hand-off's folder.
    for (pattern, _, _) in layout::KEPT {
        let made_later = [layout::FLOATING_IP, "imixs-cloud/**"].contains(pattern);
        assert_eq!(seen.contains(pattern), !made_later, "{pattern}");
    }
}
