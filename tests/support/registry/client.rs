//! The client side: the certificates from the library, a tiny OCI image
//! built offline with umoci, skopeo and curl. TLS is always verified
//! against the generated CA; nothing here turns verification off.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use provision::bundle::certs::{self, Names};
use provision::state::StateDir;
use serde_json::Value;

/// stdout and stderr of a finished command, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// The registry certificate as `provision` issues it, written where the
/// registries and the clients read it.
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA alone, for curl and for the cache's `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    /// A folder holding only `ca.crt`, for skopeo's `--*-cert-dir` (which
    /// would take any other `.key` there for a client key).
    pub trust_dir: PathBuf,
}

impl Tls {
    /// Everything listens on 127.0.0.1, so the certificate must name that
    /// address; clients connect to it and check it against the IP SAN.
    pub fn issue(dir: &Path) -> Tls {
        let state = StateDir::open(&dir.join("state"), "regtest").unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let names = Names::for_registry("registry", "test", &[ip]);
        let c = certs::ensure(&state, "regtest", &names, time::OffsetDateTime::now_utc()).expect("issue certificates");
        let (tls, trust) = (dir.join("tls"), dir.join("trust"));
        fs::create_dir_all(&tls).unwrap();
        fs::create_dir_all(&trust).unwrap();
        let t = Tls {
            cert: tls.join("registry.crt"),
            key: tls.join("registry.key"),
            ca_file: trust.join("ca.crt"),
            trust_dir: trust,
        };
        fs::write(&t.cert, &c.server_pem).unwrap();
        fs::write(&t.key, c.server_key_pem.expose()).unwrap();
        fs::write(&t.ca_file, &c.ca_pem).unwrap();
        t
    }
}

/// A one-layer OCI image in a local layout.
pub struct Image {
    /// `oci:PATH:TAG`
    pub reference: String,
    pub manifest: String,
    /// The config's digest, then each layer's.
    pub blobs: Vec<String>,
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{what} failed: {cmd:?}\n{}", text(&out));
    out
}

/// Reads the digests of the image tagged in an OCI layout.
pub fn layout_digests(layout: &Path) -> (String, Vec<String>) {
    let read_json = |p: PathBuf| -> Value {
        serde_json::from_str(&fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
    };
    let blob = |d: &str| layout.join("blobs/sha256").join(d.strip_prefix("sha256:").unwrap());
    let index = read_json(layout.join("index.json"));
    let manifest = index["manifests"][0]["digest"].as_str().expect("index names a manifest").to_string();
    let m = read_json(blob(&manifest));
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    blobs.extend(m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()));
    (manifest, blobs)
}

/// Whether an OCI layout holds the blob.
pub fn layout_has_blob(layout: &Path, digest: &str) -> bool {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()).is_file()
}

/// Builds the image offline: one file in one layer, and a command.
/// `--rootless` lets umoci run as any user.
pub fn build_image(dir: &Path) -> Image {
    let layout = dir.join("image");
    let tagged = format!("{}:v1", layout.display());
    let file = dir.join("hello.txt");
    fs::write(&file, format!("built by provision's registry tests in {}\n", dir.display())).unwrap();
    run("umoci init", Command::new("umoci").arg("init").arg("--layout").arg(&layout));
    run("umoci new", Command::new("umoci").args(["new", "--image", &tagged]));
    run(
        "umoci insert",
        Command::new("umoci").args(["insert", "--rootless", "--image", &tagged]).arg(&file).arg("/hello.txt"),
    );
    run("umoci config", Command::new("umoci").args(["config", "--image", &tagged, "--config.cmd", "/hello.txt"]));
    let (manifest, blobs) = layout_digests(&layout);
    assert_eq!(blobs.len(), 2, "a config and one layer");
    Image { reference: format!("oci:{tagged}"), manifest, blobs }
}

/// skopeo, isolated from the machine's configuration: its own signature
/// policy, no registries.conf mirrors, an empty auth file.
pub struct Skopeo {
    policy: PathBuf,
    registries_conf: PathBuf,
    auth_file: PathBuf,
    tmp: PathBuf,
    trust_dir: PathBuf,
}

/// Credentials for the destination of a copy (pulls here are anonymous).
pub enum Creds<'a> {
    None,
    Dest(&'a str, &'a str),
}

impl Skopeo {
    pub fn new(dir: &Path, tls: &Tls) -> Skopeo {
        let s = Skopeo {
            policy: dir.join("policy.json"),
            registries_conf: dir.join("registries.conf"),
            auth_file: dir.join("auth.json"),
            tmp: dir.join("skopeo-tmp"),
            trust_dir: tls.trust_dir.clone(),
        };
        // The policy is about image signatures, not TLS.
        fs::write(&s.policy, r#"{"default": [{"type": "insecureAcceptAnything"}]}"#).unwrap();
        fs::write(&s.registries_conf, "").unwrap();
        fs::write(&s.auth_file, "{}").unwrap();
        fs::create_dir_all(&s.tmp).unwrap();
        s
    }

    /// `skopeo copy SRC DEST`, trusting the generated CA on both sides.
    pub fn copy(&self, src: &str, dest: &str, creds: Creds) -> Output {
        let mut cmd = Command::new("skopeo");
        cmd.env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .env("REGISTRY_AUTH_FILE", &self.auth_file)
            .env("TMPDIR", &self.tmp)
            .arg("--policy")
            .arg(&self.policy)
            .args(["--command-timeout", "60s", "copy"])
            .arg("--src-cert-dir")
            .arg(&self.trust_dir)
            .arg("--dest-cert-dir")
            .arg(&self.trust_dir);
        match creds {
            Creds::None => {}
            Creds::Dest(u, p) => {
                cmd.args(["--dest-creds", &format!("{u}:{p}")]);
            }
        }
        cmd.args([src, dest]).output().expect("run skopeo")
    }
}

pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// One HTTPS request with curl, verified against `ca_file`, never through
/// a proxy.
pub fn curl(method: &str, url: &str, ca_file: &Path, basic: Option<(&str, &str)>) -> Response {
    let dir = tempfile::tempdir().unwrap();
    let (headers, body) = (dir.path().join("headers"), dir.path().join("body"));
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--noproxy", "*", "--max-time", "10", "--request", method])
        .arg("--cacert")
        .arg(ca_file)
        .arg("--dump-header")
        .arg(&headers)
        .arg("--output")
        .arg(&body)
        .args(["--write-out", "%{http_code}"]);
    if let Some((u, p)) = basic {
        cmd.args(["--user", &format!("{u}:{p}")]);
    }
    let out = run(&format!("curl {method} {url}"), cmd.arg(url));
    Response {
        status: String::from_utf8_lossy(&out.stdout).trim().parse().expect("curl writes the status code"),
        headers: fs::read_to_string(headers).unwrap_or_default(),
        body: fs::read_to_string(body).unwrap_or_default(),
    }
}
