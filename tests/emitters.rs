//! A property test of every document the bundle writes: whatever string a
//! value holds (from the parameters or from the state directory), it stays
//! one value. The node configs in both formats, the registry configs, the
//! environment and the Heat templates are rendered with hostile strings (CR,
//! LS/PS, NEL, BOM, quotes, `\n  - path:`, `{{`, YAML indicators, NUL) in
//! every value; each output must parse, have the structure it has with
//! plain values, and give every value back exactly.
//!
//! Seeded: PROVISION_EMIT_SEED=N replays a run; PROVISION_EMIT_CASES=N
//! changes the number of cases (10,000 by default).
// A test reads its knobs (seeds, paths) from the environment itself.
#![allow(clippy::disallowed_methods)]

use std::io::Read;

use base64::Engine;
use provision::bundle::node::NodeConfig;
use provision::bundle::nodes::{self, Common, Manager, Probe, Service};
use provision::bundle::registry::{self, Blobs, Inputs, Layout, Swift};
use provision::bundle::{self, Shape};
use provision::params::{Network, NodeConfigFormat, Params};
use provision::templates::Templates;
use serde_json::Value;

/// Pieces of trouble for YAML, JSON, data URLs, Tera, shells and Heat.
const FRAGMENTS: &[&str] = &[
    "a",
    "x.y",
    " ",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\u{2028}",
    "\u{2029}",
    "\u{85}",
    "\u{feff}",
    "\u{202e}",
    "\0",
    "'",
    "\"",
    "\\",
    "\\n",
    "\n  - path: /etc/passwd\n    content: pwned\n",
    "\nruncmd: [id]\n",
    "\n---\n",
    "{{ fqdn }}",
    "{% raw %}",
    "@@SIGNAL_TOKEN@@",
    "@@",
    "%",
    "%0A",
    "#",
    ": ",
    "- ",
    "? ",
    "&a ",
    "*a",
    "!!binary ",
    "|",
    ">-",
    "[",
    "{",
    "$(id)",
    "`id`",
    "é",
    "😀",
    "null",
    "012",
    "true",
    "~",
];

/// SplitMix64: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Up to six fragments, or now and then a plain random character run.
    fn nasty(&mut self) -> String {
        let mut s = String::new();
        for _ in 0..self.below(7) {
            if self.below(8) == 0 {
                s.extend((0..self.below(4)).filter_map(|_| char::from_u32(self.below(0x3000) as u32)));
            } else {
                s.push_str(FRAGMENTS[self.below(FRAGMENTS.len())]);
            }
        }
        s
    }
}

fn seed_and_cases() -> (u64, usize) {
    let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    (num("PROVISION_EMIT_SEED").unwrap_or(0x5EED_2026), num("PROVISION_EMIT_CASES").unwrap_or(10_000) as usize)
}

/// Runs `case` on `cases` generators from one seed; a failure names the
/// case's seed.
fn property(name: &str, case: impl Fn(&mut Rng)) {
    let (seed, cases) = seed_and_cases();
    for i in 0..cases {
        let case_seed = seed.wrapping_add(i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut Rng(case_seed))));
        if let Err(e) = outcome {
            panic!("{name}: case {i} of seed {seed:#x} failed (PROVISION_EMIT_SEED={seed} replays it): {e:?}");
        }
    }
}

/// The document with every string replaced by "" and every number by 0:
/// what a value could change if it escaped its scalar.
fn skeleton(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::String(String::new()),
        Value::Number(_) => Value::from(0),
        Value::Array(a) => Value::Array(a.iter().map(skeleton).collect()),
        // Keys are structure (no value of ours becomes a key), except
        // Ignition's `compression`, there when gzip makes a file smaller.
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| *k != "compression").map(|(k, v)| (k.clone(), skeleton(v))).collect(),
        ),
        other => other.clone(),
    }
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

// ---- node configs ----------------------------------------------------------

struct NodeValues {
    fqdn: String,
    hostname: String,
    daemon_json: String,
    ca_cert: String,
    client_key: String,
    host_key: (String, String),
    server_cert: String,
    server_key: String,
    registry_config: String,
    cache_config: String,
    htpasswd: String,
}

impl NodeValues {
    fn plain() -> NodeValues {
        let v = |s: &str| s.to_string();
        NodeValues {
            fqdn: v("reg.example.test"),
            hostname: v("reg"),
            daemon_json: v("{}"),
            ca_cert: v("ca"),
            client_key: v("ssh-ed25519 AAAA client"),
            host_key: (v("host"), v("ssh-ed25519 AAAA host")),
            server_cert: v("cert"),
            server_key: v("key"),
            registry_config: v("version: 0.1"),
            cache_config: v("version: 0.1"),
            htpasswd: v("provision:$2y$10$x"),
        }
    }

    fn nasty(r: &mut Rng) -> NodeValues {
        NodeValues {
            fqdn: r.nasty(),
            hostname: r.nasty(),
            daemon_json: r.nasty(),
            ca_cert: r.nasty(),
            client_key: r.nasty(),
            host_key: (r.nasty(), r.nasty()),
            server_cert: r.nasty(),
            server_key: r.nasty(),
            registry_config: r.nasty(),
            cache_config: r.nasty(),
            htpasswd: r.nasty(),
        }
    }

    fn configs(&self, t: &Templates, services: &[Service], probes: &[Probe]) -> [NodeConfig; 2] {
        let common = Common {
            fqdn: &self.fqdn,
            daemon_json: &self.daemon_json,
            ca_cert: &self.ca_cert,
            client_public_key: &self.client_key,
            signal_timeout: 540,
        };
        let manager = nodes::manager(
            t,
            &common,
            &Manager {
                hostname: &self.hostname,
                host_key: (&self.host_key.0, &self.host_key.1),
                server_cert: &self.server_cert,
                server_key: &self.server_key,
                registry_config: &self.registry_config,
                cache_config: &self.cache_config,
                htpasswd: &self.htpasswd,
                redis_port: 6379,
                services,
                probes,
                volume: true,
            },
        )
        .unwrap();
        let worker = nodes::worker(t, &common, (&self.host_key.0, &self.host_key.1)).unwrap();
        [manager, worker]
    }
}

fn services() -> Vec<Service> {
    vec![Service {
        unit: "docker-registry.service",
        description: "Private registry",
        container: "provision-registry",
        data: "/data/registry".into(),
        mount: "/var/lib/registry",
        after: &[],
        args: "registry:2.8.3 /etc/provision/registry/config.yml".into(),
        optional: false,
        env_file: Some(nodes::REGISTRY_ENV),
    }]
}

/// A file's contents from an Ignition data URL.
fn data_url(file: &Value) -> String {
    let source = file["contents"]["source"].as_str().unwrap();
    let (meta, data) = source.strip_prefix("data:").unwrap().split_once(',').unwrap();
    let bytes = if meta.ends_with(";base64") {
        base64::engine::general_purpose::STANDARD.decode(data).unwrap()
    } else {
        percent_decode(data)
    };
    let bytes = if file["contents"]["compression"] == "gzip" {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).unwrap()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The node config as the agent will see it, checked against the typed
/// model it came from: same files, same contents, same units, same keys.
fn check_node(node: &NodeConfig, format: NodeConfigFormat) -> Value {
    let text = node.render(format);
    let doc = match format {
        NodeConfigFormat::CloudConfig => {
            assert!(text.starts_with("#cloud-config\n"));
            let doc = yaml(&text);
            let files = doc["write_files"].as_array().unwrap();
            assert_eq!(files.len(), node.files.len(), "one write_files entry per file");
            for (got, want) in files.iter().zip(&node.files) {
                assert_eq!(got["path"], want.path.as_str());
                assert_eq!(got["content"], want.contents.as_str(), "the contents of {:?}", want.path);
            }
            assert_eq!(doc["hostname"], node.hostname.as_str());
            assert_eq!(doc["ssh_authorized_keys"], serde_json::json!(node.authorized_keys));
            let units = doc["coreos"]["units"].as_array().unwrap();
            assert_eq!(units.len(), node.units.len());
            for (got, want) in units.iter().zip(&node.units) {
                assert_eq!(got["name"], want.name.as_str());
                assert_eq!(got["content"].as_str(), want.contents.as_deref());
            }
            doc
        }
        NodeConfigFormat::Ignition => {
            let doc: Value = serde_json::from_str(&text).unwrap();
            let files = doc["storage"]["files"].as_array().unwrap();
            // Ignition writes /etc/hostname as one more file.
            assert_eq!(files.len(), node.files.len() + 1);
            assert_eq!(data_url(&files[0]), format!("{}\n", node.hostname));
            for (got, want) in files[1..].iter().zip(&node.files) {
                assert_eq!(got["path"], want.path.as_str());
                assert_eq!(data_url(got), want.contents, "the contents of {:?}", want.path);
            }
            assert_eq!(doc["passwd"]["users"][0]["sshAuthorizedKeys"], serde_json::json!(node.authorized_keys));
            doc
        }
    };
    skeleton(&doc)
}

#[test]
fn node_configs_keep_every_value_in_its_place() {
    let t = Templates::load(None).unwrap();
    let (services, probes) = (services(), vec![Probe { url: "https://x/v2/".into(), code: 401, optional: false }]);
    let plain = NodeValues::plain().configs(&t, &services, &probes);
    let formats = [NodeConfigFormat::CloudConfig, NodeConfigFormat::Ignition];
    let shapes: Vec<Vec<Value>> = formats.iter().map(|f| plain.iter().map(|n| check_node(n, *f)).collect()).collect();
    property("node configs", |r| {
        let values = NodeValues::nasty(r);
        let nodes = values.configs(&t, &services, &probes);
        // The typed model holds the values as given...
        let manager = &nodes[0];
        let file =
            |path: &str| manager.files.iter().find(|f| f.path == path).map(|f| f.contents.trim_end_matches('\n'));
        assert_eq!(file("/etc/provision/certs/registry.key"), Some(values.server_key.trim_end_matches('\n')));
        assert_eq!(file("/etc/provision/registry/htpasswd"), Some(values.htpasswd.trim_end_matches('\n')));
        assert_eq!(manager.hostname, values.hostname);
        // ...and no unit's text depends on them: units are templates with
        // nothing but the code's own constants in them.
        for (hostile, plain) in nodes.iter().zip(&plain) {
            let texts = |n: &NodeConfig| n.units.iter().map(|u| u.contents.clone()).collect::<Vec<_>>();
            assert_eq!(texts(hostile), texts(plain), "a value reached a unit's text");
        }
        // ...and the documents keep the structure and give them back.
        for (f, shape) in formats.iter().zip(&shapes) {
            for (node, want) in nodes.iter().zip(shape) {
                assert_eq!(&check_node(node, *f), want, "{f:?} structure changed");
            }
        }
    });
}

// ---- registry configs ------------------------------------------------------

#[test]
fn registry_configs_keep_every_value_in_its_place() {
    let plain = |s: &str| s.to_string();
    let shape = |v: &dyn Fn(&str) -> String| {
        let (fqdn, redis, remote) = (v("reg.example.test"), v("127.0.0.1:6379"), v("https://registry-1.docker.io"));
        let layout = Layout { cert: v("c"), key: v("k"), htpasswd: v("h"), registry_data: v("r"), cache_data: v("d") };
        let swift = Swift {
            authurl: v("https://k/v3"),
            username: v("u"),
            password: v("p"),
            tenant: Some(v("t")),
            domain: v("Default"),
            region: Some(v("r")),
            container: v("c"),
        };
        let i = Inputs {
            fqdn: &fqdn,
            registry_port: 5000,
            cache_port: 443,
            bind: "",
            redis_addr: &redis,
            blobs: Blobs::Swift(swift),
            remote_url: &remote,
            layout,
        };
        [registry::private(&i), registry::cache(&i)]
    };
    let want: Vec<Value> = shape(&plain).iter().map(|c| skeleton(&serde_json::to_value(c).unwrap())).collect();
    property("registry configs", |r| {
        let r = std::cell::RefCell::new(r);
        let configs = shape(&|_| r.borrow_mut().nasty());
        for (c, want) in configs.iter().zip(&want) {
            let back = yaml(&registry::to_yaml(c));
            assert_eq!(back, serde_json::to_value(c).unwrap(), "a value did not come back as it went in");
            assert_eq!(&skeleton(&back), want);
        }
    });
}

// ---- environment and Heat templates ------------------------------------------

fn seed_params() -> Params {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/env_params.yml");
    Params::load(&[std::path::PathBuf::from(seed)]).unwrap_or_else(|e| panic!("the seed loads: {e:?}"))
}

#[test]
fn the_environment_keeps_every_value_in_its_place() {
    let base = seed_params();
    let floating = provision::state::FloatingIp { id: "fip".into(), address: "203.0.113.7".parse().unwrap() };
    let env_of = |p: &Params| yaml(&bundle::environment_yaml(p, Some(&floating), "stack"));
    let want = skeleton(&env_of(&base));
    property("environment", |r| {
        let mut p = base.clone();
        for field in [
            &mut p.hostname,
            &mut p.domain,
            &mut p.server_key,
            &mut p.server_flavor,
            &mut p.server_image,
            &mut p.fip_network,
            &mut p.workers.flavor,
            &mut p.workers.image,
            &mut p.ssh_allowed_cidr,
        ] {
            *field = r.nasty();
        }
        p.network = Network::Create { cidr: r.nasty() };
        let key = "resource_registry".to_string();
        p.passthrough.insert(key.clone(), serde_json::json!({ "OS::Provision::Thing": r.nasty() }));
        let env = env_of(&p);
        let mut want = want.clone();
        want[&key] = serde_json::json!({ "OS::Provision::Thing": "" });
        assert_eq!(skeleton(&env), want);
        let params = &env["parameters"];
        assert_eq!(params["server_image"], p.server_image.as_str());
        assert_eq!(
            params["private_cidr"],
            serde_json::json!(match &p.network {
                Network::Create { cidr } => cidr,
                Network::Existing(n) => n,
            })
        );
        assert_eq!(env[&key], p.passthrough[&key]);
    });
}

#[test]
fn heat_templates_keep_every_value_in_its_place() {
    let t = Templates::load(None).unwrap();
    let render = |fqdn: &str| {
        let shape = Shape { fqdn, volume: true, existing_network: false, format: NodeConfigFormat::Ignition };
        let (template, worker) = bundle::heat_templates(&t, &shape).unwrap();
        (yaml(&template), yaml(&worker))
    };
    let (template, worker) = render("reg.example.test");
    let want = (skeleton(&template), skeleton(&worker));
    property("heat templates", |r| {
        let fqdn = r.nasty();
        let (template, worker) = render(&fqdn);
        assert_eq!((skeleton(&template), skeleton(&worker)), want);
        assert_eq!(template["outputs"]["registry"]["value"], format!("{fqdn}:5000"));
        assert_eq!(template["outputs"]["cache"]["value"], format!("https://{fqdn}"));
    });
}

// The generator itself must reach the cases that matter.
#[test]
fn the_generator_makes_the_nasty_cases() {
    let mut r = Rng(seed_and_cases().0);
    let made: Vec<String> = (0..2000).map(|_| r.nasty()).collect();
    for needle in ["\r", "\u{2028}", "\u{85}", "\n  - path:", "{{", "\"", "\0"] {
        assert!(made.iter().any(|s| s.contains(needle)), "never made {needle:?}");
    }
    let distinct: std::collections::BTreeSet<&String> = made.iter().collect();
    assert!(distinct.len() > 1200, "{} distinct strings of 2000", distinct.len());
}
