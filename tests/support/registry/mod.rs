//! A harness for tests against the real programs: the Docker distribution
//! registry, redis-server, skopeo, umoci and curl, all on 127.0.0.1 with
//! ports picked here. Every process is a `Child` of the test, killed by its
//! handle when its guard drops (also when the test panics); nothing else is
//! ever signalled.
// A test reads its knobs (seeds, paths) from the environment itself.
#![allow(clippy::disallowed_methods)]
// Shared by several test crates; each uses only part of it.
#![allow(dead_code)]

pub mod client;

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use provision::bundle::registry::{self, Config};

/// How long a server may take to listen, and a stored blob to appear.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The programs the tests run, each with the Debian package that ships it.
const TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("redis-server", "redis-server"),
    ("redis-cli", "redis-tools"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("curl", "curl"),
];

/// Fails, naming the packages, when a program is missing: a test that
/// skipped would look like a pass and prove nothing.
pub fn require_tools() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = |bin: &str| {
        std::env::split_paths(&path)
            .any(|d| fs::metadata(d.join(bin)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    };
    let missing: Vec<_> = TOOLS.iter().filter(|(bin, _)| !found(bin)).collect();
    assert!(
        missing.is_empty(),
        "these tests run the real programs, and some are not on PATH: {}\ninstall them with: apt-get install -y {}",
        missing.iter().map(|(bin, pkg)| format!("{bin} (Debian package {pkg})")).collect::<Vec<_>>().join(", "),
        missing.iter().map(|(_, pkg)| *pkg).collect::<Vec<_>>().join(" "),
    );
}

/// A port nobody listens on: the kernel picks it for a listener that is
/// closed at once, and the server bound to it a moment later takes it.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// Polls `done` until it holds or [`READY_TIMEOUT`] passes.
pub fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process with its output in a log file, killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc { name: name.to_string(), child, log }
    }

    /// Waits until the process accepts TCP connections on `port`; fails
    /// early, with its log, if it exits instead.
    pub fn wait_listening(&mut self, port: u16) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut exited = None;
        let up = wait_until(|| {
            exited = self.child.try_wait().expect("try_wait");
            exited.is_some() || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        match exited {
            Some(status) => panic!("{} exited ({status}) instead of listening on {addr}\n{}", self.name, self.tail()),
            None if !up => panic!("{} is not listening on {addr} after {READY_TIMEOUT:?}\n{}", self.name, self.tail()),
            None => {}
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of the log, for failure messages.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        format!("--- last lines of {} ({}) ---\n{tail}\n---", self.name, self.log.display())
    }

    /// Kills and reaps the child; a reaped child is never signalled again.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A redis-server with a password, as the node runs it for the registries.
pub struct Redis {
    proc: Proc,
    pub port: u16,
    pub password: String,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        let port = free_port();
        let password = provision::bundle::random_token(32);
        let data = dir.join("redis");
        fs::create_dir_all(&data).unwrap();
        // A config file, like the node's, so the password is not on a command line.
        let conf = dir.join("redis.conf");
        let text = format!(
            "bind 127.0.0.1\nport {port}\nrequirepass {password}\nsave \"\"\nappendonly no\ndir {}\n",
            data.display()
        );
        fs::write(&conf, text).unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf);
        let mut proc = Proc::spawn("redis-server", cmd, dir.join("redis.log"));
        proc.wait_listening(port);
        Redis { proc, port, password }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What a registry using this Redis gets through its environment, as
    /// on the node (whose secrets script makes both).
    pub fn secrets(&self) -> registry::Secrets {
        registry::Secrets { redis_password: self.password.clone(), http_secret: provision::bundle::random_token(32) }
    }

    /// redis-cli against database `db`; the password goes through the
    /// environment when `auth` is set.
    pub fn cli(&self, db: u8, auth: bool, args: &[&str]) -> Output {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-n", &db.to_string()]).args(args);
        cmd.env_remove("REDISCLI_AUTH");
        if auth {
            cmd.env("REDISCLI_AUTH", &self.password);
        }
        cmd.output().expect("run redis-cli")
    }

    /// Every key of database `db`, sorted.
    pub fn keys(&self, db: u8) -> Vec<String> {
        let out = self.cli(db, true, &["--scan"]);
        assert!(out.status.success(), "redis-cli --scan: {}\n{}", client::text(&out), self.proc.tail());
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        keys.sort();
        keys
    }
}

/// A `docker-registry serve` of a rendered configuration.
pub struct Registry {
    proc: Proc,
    pub config: Config,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`, for image references.
    pub host: String,
}

impl Registry {
    /// Writes `config` as the library renders it and serves it, with the
    /// secrets and `env` added to the registry's environment.
    pub fn start(
        name: &str,
        dir: &Path,
        config: &Config,
        secrets: &registry::Secrets,
        env: &[(&str, &Path)],
    ) -> Registry {
        let host = config.http.addr.clone();
        let port: u16 = host.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("http.addr ends in a port");
        let file = dir.join(format!("{name}.yml"));
        fs::write(&file, registry::to_yaml(config)).unwrap();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&file);
        // REGISTRY_* variables override the file; the test must run the file.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in secrets.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn(name, cmd, dir.join(format!("{name}.log")));
        proc.wait_listening(port);
        Registry { proc, config: config.clone(), url: format!("https://{host}"), host }
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn tail(&self) -> String {
        self.proc.tail()
    }

    /// How many times the registry answered `GET /v2/<repo>/blobs/<digest>`,
    /// read from its access log (one combined-format line per request).
    pub fn blob_gets(&self, repo: &str, digest: &str) -> usize {
        let needle = format!("\"GET /v2/{repo}/blobs/{digest} HTTP/");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }

    /// Whether the registry's filesystem storage holds the blob.
    pub fn stores_blob(&self, digest: &str) -> bool {
        let root = &self.config.storage.filesystem.as_ref().expect("filesystem storage").rootdirectory;
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        Path::new(root).join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data").is_file()
    }

    pub fn stop(&mut self) {
        self.proc.stop();
    }
}
