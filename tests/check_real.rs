//! `provision check` against the real registry and cache, started with the
//! configurations the library renders and the certificates and password
//! `provision render` left in the state directory: it passes, lists the
//! catalog, and fails with one clear line when the CA, the password or the
//! port is wrong.

#[path = "support/registry/mod.rs"]
mod harness;

use std::path::Path;

use assert_cmd::Command;
use harness::{Redis, Registry, free_port, require_tools};
use provision::bundle::registry::{self, Blobs, Inputs, Layout};
use serde_json::Value;

const FQDN: &str = "registry.test";

struct Deployed {
    dir: tempfile::TempDir,
    env: String,
    state: std::path::PathBuf,
    registry_port: u16,
    cache_port: u16,
    _redis: Redis,
    _upstream: Registry,
    _private: Registry,
    _cache: Registry,
}

/// Renders a stack, then serves its registry and cache on 127.0.0.1 from
/// the same state directory `provision check` reads.
fn deploy() -> Deployed {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env.yml");
    std::fs::write(
        &env,
        "parameters:\n  hostname: registry\n  domain: test\n  server_key: k\n  server_flavor: f\n  server_image: i\n  fip_network: n\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = Command::cargo_bin("provision")
        .unwrap()
        // As if 127.0.0.1 were the manager's floating IP: the certificate
        // then names it, and the cache can reach its stand-in upstream there.
        .args(["render", "--floating-ip", "fip=127.0.0.1", "--env"])
        .arg(&env)
        .arg("--out")
        .arg(dir.path().join("bundle"))
        .arg("--state-dir")
        .arg(&state)
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stack = state.join("registry");
    let password = std::fs::read_to_string(stack.join("registry-password")).unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, registry::htpasswd_line("provision", password.trim())).unwrap();

    let redis = Redis::start(dir.path());
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let layout = |name: &str| Layout {
        cert: s(&stack.join("certs/registry.crt")),
        key: s(&stack.join("certs/registry.key")),
        htpasswd: s(&htpasswd),
        registry_data: s(&dir.path().join(format!("{name}-data"))),
        cache_data: s(&dir.path().join(format!("{name}-data"))),
    };
    let (registry_port, cache_port, upstream_port) = (free_port(), free_port(), free_port());
    let redis_addr = redis.addr();
    // The cache's upstream; the other two never proxy.
    let upstream_url = format!("https://127.0.0.1:{upstream_port}");
    let inputs = |name: &str, proxied: bool| Inputs {
        fqdn: FQDN,
        registry_port,
        cache_port,
        bind: "127.0.0.1",
        redis_addr: &redis_addr,
        blobs: Blobs::Filesystem,
        remote_url: if proxied { &upstream_url } else { "" },
        layout: layout(name),
    };
    // The cache needs an upstream that answers at start; a plain registry
    // stands in for Docker Hub.
    let mut up = registry::private(&Inputs { registry_port: upstream_port, ..inputs("upstream", false) });
    up.auth = None;
    let upstream = Registry::start("upstream", dir.path(), &up, &redis.secrets(), &[]);
    let private =
        Registry::start("private", dir.path(), &registry::private(&inputs("private", false)), &redis.secrets(), &[]);
    let ca = stack.join("certs/ca.crt");
    let cache = Registry::start(
        "cache",
        dir.path(),
        &registry::cache(&inputs("cache", true)),
        &redis.secrets(),
        &[("SSL_CERT_FILE", &ca)],
    );
    Deployed {
        env: s(&env),
        state,
        registry_port,
        cache_port,
        dir,
        _redis: redis,
        _upstream: upstream,
        _private: private,
        _cache: cache,
    }
}

impl Deployed {
    fn check(&self, registry_port: u16) -> (Option<i32>, Value, String) {
        let out = Command::cargo_bin("provision")
            .unwrap()
            .args(["check", "--output", "json", "--address", "127.0.0.1", "--timeout", "5", "--env", &self.env])
            .args(["--registry-port", &registry_port.to_string(), "--cache-port", &self.cache_port.to_string()])
            .arg("--state-dir")
            .arg(&self.state)
            .env_remove("OS_CLOUD")
            .env_remove("OS_AUTH_URL")
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), v, String::from_utf8_lossy(&out.stderr).to_string())
    }

    fn failed_step(v: &Value) -> String {
        let steps = v["steps"].as_array().unwrap();
        let failed: Vec<_> = steps.iter().filter(|s| s["ok"] == false).collect();
        failed.first().map(|s| format!("{}: {}", s["name"], s["detail"])).unwrap_or_default()
    }
}

#[test]
fn check_passes_against_the_rendered_registry_and_fails_clearly() {
    let d = deploy();

    let (code, v, stderr) = d.check(d.registry_port);
    assert_eq!(code, Some(0), "{v:#}\n{stderr}");
    assert_eq!(v["ok"], true);
    let names: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(v["repositories"], serde_json::json!([]));
    assert_eq!(v["client"]["certs_d"][0], format!("/etc/docker/certs.d/{FQDN}:{}/ca.crt", d.registry_port));
    assert!(v["client"]["login"].as_str().unwrap().contains("--password-stdin"));
    let password = std::fs::read_to_string(d.state.join("registry/registry-password")).unwrap();
    assert!(!v.to_string().contains(password.trim()), "the password was printed");

    // Wrong port: nothing listens there.
    let (code, v, _) = d.check(free_port());
    assert_eq!(code, Some(1));
    assert!(Deployed::failed_step(&v).contains("connection refused"), "{v:#}");

    // Wrong password: the stored one no longer matches the htpasswd.
    let pw_file = d.state.join("registry/registry-password");
    std::fs::write(&pw_file, "not-the-password").unwrap();
    let (code, v, stderr) = d.check(d.registry_port);
    assert_eq!(code, Some(1));
    assert!(Deployed::failed_step(&v).contains("401: the registry refused user provision"), "{v:#}");
    assert!(stderr.contains("error: registry check failed: stored credentials accepted"), "{stderr}");
    std::fs::write(&pw_file, password).unwrap();

    // Wrong CA: another stack's CA did not sign this registry's certificate.
    let other = d.dir.path().join("other");
    let c = provision::bundle::certs::ensure(
        &provision::state::StateDir::open(&other, "x").unwrap(),
        "x",
        &provision::bundle::certs::Names::for_registry("registry", "test", &[]),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    std::fs::write(d.state.join("registry/certs/ca.crt"), c.ca_pem).unwrap();
    let (code, v, _) = d.check(d.registry_port);
    assert_eq!(code, Some(1));
    assert!(Deployed::failed_step(&v).contains("not signed by this CA"), "{v:#}");
}
