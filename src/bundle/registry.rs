//! The private registry's and the pull-through cache's configurations, as
//! typed structures serialised to YAML. The distribution registry silently
//! ignores misspelled keys and panics on some bad values, so the only safe
//! config is one that cannot be misspelled.

use serde::Serialize;

/// Where things are, on a node or in a test.
#[derive(Debug, Clone)]
pub struct Layout {
    pub cert: String,
    pub key: String,
    pub htpasswd: String,
    pub registry_data: String,
    pub cache_data: String,
}

impl Layout {
    /// The paths on a node; the containers see /etc/provision read-only at
    /// the same path.
    pub fn node() -> Layout {
        Layout {
            cert: "/etc/provision/certs/registry.crt".into(),
            key: "/etc/provision/certs/registry.key".into(),
            htpasswd: "/etc/provision/registry/htpasswd".into(),
            registry_data: "/var/lib/registry".into(),
            cache_data: "/var/lib/registry".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Config {
    pub version: &'static str,
    pub log: Log,
    pub storage: Storage,
    pub http: Http,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    pub redis: Redis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    pub health: Health,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Log {
    pub level: &'static str,
    pub formatter: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Storage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<Filesystem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swift: Option<Swift>,
    pub cache: BlobCache,
    pub delete: Enabled,
    pub redirect: Disabled,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Filesystem {
    pub rootdirectory: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Swift {
    pub authurl: String,
    pub username: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub container: String,
}

impl Swift {
    /// The registry's Swift login: the operator's own, since the driver
    /// takes a user and password only. `None` for other storage, or when
    /// there are no credentials (the bundle then says what is missing).
    /// Application credentials are input that cannot work: exit 2, at
    /// the env file's `registry_storage` line.
    pub fn login(
        params: &crate::params::Params,
        credentials: Option<&crate::params::credentials::Credentials>,
    ) -> Result<Option<Swift>, crate::params::InputError> {
        use crate::params::{InputError, Problem, Storage, credentials::Auth};
        let Storage::Swift { container } = &params.registry.storage else { return Ok(None) };
        let Some(c) = credentials else { return Ok(None) };
        let Auth::Password { username, password, user_domain } = &c.auth else {
            return Err(InputError(vec![
                Problem::new(
                    params.origin("registry_storage"),
                    format!(
                        "registry_storage: swift logs the registry in with a user name and password, and the credentials from {} are an application credential",
                        c.source
                    ),
                )
                .hint("give password credentials (a user made for the registry is best), or use registry_storage: local"),
            ]));
        };
        Ok(Some(Swift {
            authurl: c.auth_url.clone(),
            username: username.clone(),
            password: password.expose().to_string(),
            tenant: c.project.as_ref().and_then(|p| p.name.clone()),
            domain: user_domain.clone(),
            region: c.region.clone(),
            container: container.clone(),
        }))
    }
}

/// What a run says when the registry's Swift login goes to the node.
pub const SWIFT_WARNING: &str = "registry_storage: swift puts your OpenStack password in the manager's node config (as the seed did); prefer an account made for the registry";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlobCache {
    pub blobdescriptor: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Disabled {
    pub disable: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Http {
    pub addr: String,
    pub host: String,
    pub tls: Tls,
    pub headers: Headers,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tls {
    pub certificate: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Headers {
    #[serde(rename = "X-Content-Type-Options")]
    pub content_type_options: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Auth {
    pub htpasswd: Htpasswd,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Htpasswd {
    pub realm: String,
    pub path: String,
}

/// Registry 2.8 reads `addr` (one address), not v3's `addrs`. The password
/// is not here: see [`Secrets`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Redis {
    pub addr: String,
    pub db: u8,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Proxy {
    pub remoteurl: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Health {
    pub storagedriver: HealthCheck,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthCheck {
    pub enabled: bool,
    pub interval: &'static str,
    pub threshold: u32,
}

/// Where the private registry keeps its blobs.
#[derive(Debug, Clone, PartialEq)]
pub enum Blobs {
    Filesystem,
    Swift(Swift),
}

/// What both configurations are made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub fqdn: &'a str,
    pub registry_port: u16,
    pub cache_port: u16,
    pub bind: &'a str,
    pub redis_addr: &'a str,
    pub blobs: Blobs,
    pub remote_url: &'a str,
    pub layout: Layout,
}

fn common(i: &Inputs, port: u16, rootdirectory: &str, db: u8) -> Config {
    let host = if port == 443 { format!("https://{}", i.fqdn) } else { format!("https://{}:{port}", i.fqdn) };
    Config {
        version: "0.1",
        log: Log { level: "info", formatter: "text" },
        storage: Storage {
            filesystem: Some(Filesystem { rootdirectory: rootdirectory.to_string() }),
            swift: None,
            cache: BlobCache { blobdescriptor: "redis" },
            delete: Enabled { enabled: true },
            redirect: Disabled { disable: true },
        },
        http: Http {
            addr: format!("{}:{port}", i.bind),
            host,
            tls: Tls { certificate: i.layout.cert.clone(), key: i.layout.key.clone() },
            headers: Headers { content_type_options: vec!["nosniff"] },
        },
        auth: None,
        redis: Redis { addr: i.redis_addr.to_string(), db },
        proxy: None,
        health: Health { storagedriver: HealthCheck { enabled: true, interval: "10s", threshold: 3 } },
    }
}

/// The private registry: push and pull, behind htpasswd (bcrypt) auth.
pub fn private(i: &Inputs) -> Config {
    let mut c = common(i, i.registry_port, &i.layout.registry_data, 1);
    if let Blobs::Swift(s) = &i.blobs {
        c.storage.filesystem = None;
        c.storage.swift = Some(s.clone());
    }
    c.auth =
        Some(Auth { htpasswd: Htpasswd { realm: format!("{} registry", i.fqdn), path: i.layout.htpasswd.clone() } });
    c
}

/// The pull-through cache: read-only, anonymous, in front of `remote_url`.
pub fn cache(i: &Inputs) -> Config {
    let mut c = common(i, i.cache_port, &i.layout.cache_data, 0);
    c.proxy = Some(Proxy { remoteurl: i.remote_url.to_string() });
    c
}

/// The two secrets a registry needs beyond its file: Redis's password and
/// the HTTP secret that signs upload state. They are made on the node at its
/// first boot (templates/nodes/secrets.sh) and reach the registry through
/// its environment, so neither the node config nor Heat ever holds them.
#[derive(Clone)]
pub struct Secrets {
    pub redis_password: String,
    pub http_secret: String,
}

impl Secrets {
    /// The variables the registry reads over its config file.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [("REGISTRY_REDIS_PASSWORD", &self.redis_password), ("REGISTRY_HTTP_SECRET", &self.http_secret)]
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

pub fn to_yaml(c: &Config) -> String {
    serde_saphyr::to_string(c).expect("the registry config is plain data")
}

/// One htpasswd line with a bcrypt hash; registry 2.8 accepts nothing else
/// (an `$apr1$` MD5 line is a 401).
pub fn htpasswd_line(user: &str, password: &str) -> String {
    let hash = bcrypt::hash_with_result(password, 10).expect("bcrypt with a valid cost");
    format!("{user}:{}\n", hash.format_for_version(bcrypt::Version::TwoY))
}

/// Whether `hash` (the part after `user:`) accepts `password`.
pub fn htpasswd_verifies(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs<'static> {
        Inputs {
            fqdn: "reg.example.test",
            registry_port: 5000,
            cache_port: 443,
            bind: "",
            redis_addr: "127.0.0.1:6379",
            blobs: Blobs::Filesystem,
            remote_url: "https://registry-1.docker.io",
            layout: Layout::node(),
        }
    }

    #[test]
    fn private_has_auth_and_no_proxy_cache_has_proxy_and_no_auth() {
        let p = private(&inputs());
        assert!(p.auth.is_some() && p.proxy.is_none());
        assert_eq!(p.http.addr, ":5000");
        assert_eq!(p.http.host, "https://reg.example.test:5000");
        let c = cache(&inputs());
        assert!(c.auth.is_none());
        assert_eq!(c.proxy.as_ref().unwrap().remoteurl, "https://registry-1.docker.io");
        assert_eq!(c.http.host, "https://reg.example.test");
        assert_ne!(p.redis.db, c.redis.db, "the two must not share a blob-descriptor cache");
    }

    #[test]
    fn yaml_round_trips_to_the_keys_registry_reads() {
        let y = to_yaml(&private(&inputs()));
        let v: serde_json::Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(v["version"], "0.1");
        assert_eq!(v["storage"]["cache"]["blobdescriptor"], "redis");
        assert_eq!(v["redis"]["addr"], "127.0.0.1:6379");
        assert_eq!(v["auth"]["htpasswd"]["path"], "/etc/provision/registry/htpasswd");
        assert_eq!(v["http"]["tls"]["certificate"], "/etc/provision/certs/registry.crt");
        assert!(v["storage"].get("swift").is_none());
        // Made on the node, given through the environment.
        assert!(v["redis"].get("password").is_none());
        assert!(v["http"].get("secret").is_none());
    }

    #[test]
    fn swift_replaces_filesystem() {
        let mut i = inputs();
        i.blobs = Blobs::Swift(Swift {
            authurl: "https://k/v3".into(),
            username: "u".into(),
            password: "p".into(),
            tenant: Some("t".into()),
            domain: "Default".into(),
            region: None,
            container: "c".into(),
        });
        let p = private(&i);
        assert!(p.storage.filesystem.is_none());
        assert_eq!(p.storage.swift.as_ref().unwrap().container, "c");
    }

    #[test]
    fn htpasswd_is_bcrypt_and_verifies() {
        let line = htpasswd_line("provision", "pw");
        let (user, hash) = line.trim_end().split_once(':').unwrap();
        assert_eq!(user, "provision");
        assert!(hash.starts_with("$2y$10$"));
        assert!(bcrypt::verify("pw", hash).unwrap());
        assert!(!bcrypt::verify("other", hash).unwrap());
    }
}
