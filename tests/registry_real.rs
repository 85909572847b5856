//! The registry configurations `provision` renders, proved with the real
//! programs: the Docker distribution registry serves them, skopeo pushes and
//! pulls through them over TLS verified against the generated CA, and the
//! blob-descriptor cache lands in a real Redis behind its password.
//!
//! Needs these Debian packages (12, bookworm), or the tests FAIL saying so:
//!   docker-registry (2.8.2: /usr/bin/docker-registry), redis-server,
//!   redis-tools (redis-cli; pulled in by redis-server), skopeo, umoci, curl
//! Installing docker-registry or redis-server may start a system daemon on
//! 5000 or 6379; these tests do not use it (every port is picked here).

#[path = "support/registry/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::client::{self, Creds, Image, Skopeo, Tls, curl, text};
use harness::{Redis, Registry, free_port, require_tools, wait_until};
use provision::bundle::registry::{self, Blobs, Inputs, Layout};
use serde_json::json;

const REPO: &str = "provision/tiny";
const USER: &str = "provision";

/// What the library needs to render both configurations, owned here.
struct Site {
    redis_addr: String,
    secrets: registry::Secrets,
    registry_port: u16,
    cache_port: u16,
    remote_url: String,
    layout: Layout,
}

impl Site {
    fn new(dir: &Path, tls: &Tls, redis: &Redis, remote_url: String, registry_port: u16) -> Site {
        let at = |p: PathBuf| p.to_str().expect("a UTF-8 temp path").to_string();
        Site {
            redis_addr: redis.addr(),
            secrets: redis.secrets(),
            registry_port,
            cache_port: free_port(),
            remote_url,
            layout: Layout {
                cert: at(tls.cert.clone()),
                key: at(tls.key.clone()),
                htpasswd: at(dir.join("htpasswd")),
                registry_data: at(dir.join("registry-data")),
                cache_data: at(dir.join("cache-data")),
            },
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            // The host the registry puts in its Location headers: it must
            // lead back here, and be a name the certificate carries.
            fqdn: "127.0.0.1",
            registry_port: self.registry_port,
            cache_port: self.cache_port,
            bind: "127.0.0.1",
            redis_addr: &self.redis_addr,
            blobs: Blobs::Filesystem,
            remote_url: &self.remote_url,
            layout: self.layout.clone(),
        }
    }
}

fn docker_ref(r: &Registry, repo: &str) -> String {
    format!("docker://{}/{repo}:v1", r.host)
}

fn assert_ok(out: &std::process::Output, what: &str, server: &Registry) {
    assert!(out.status.success(), "{what}\n{}\n{}", text(out), server.tail());
}

#[test]
fn private_registry_takes_a_push_with_the_generated_password_and_refuses_a_wrong_one() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let tls = Tls::issue(dir.path());
    let redis = Redis::start(dir.path());
    let site = Site::new(dir.path(), &tls, &redis, "https://unused.invalid".into(), free_port());
    let password = provision::bundle::random_token(24);
    std::fs::write(&site.layout.htpasswd, registry::htpasswd_line(USER, &password)).unwrap();
    let private = Registry::start("private", dir.path(), &registry::private(&site.inputs()), &site.secrets, &[]);
    let image = client::build_image(dir.path());
    let skopeo = Skopeo::new(dir.path(), &tls);

    let push = skopeo.copy(&image.reference, &docker_ref(&private, REPO), Creds::Dest(USER, &password));
    assert_ok(&push, "push with the generated user and password", &private);

    let catalog = format!("{}/v2/_catalog", private.url);
    let r = curl("GET", &catalog, &tls.ca_file, Some((USER, &password)));
    assert_eq!(r.status, 200, "catalog with the right password: {}", r.body);
    let listed: serde_json::Value = serde_json::from_str(&r.body).expect("the catalog is JSON");
    assert_eq!(listed["repositories"], json!([REPO]));

    for (who, basic) in [("a wrong password", Some((USER, "not-the-password"))), ("no credentials", None)] {
        let r = curl("GET", &catalog, &tls.ca_file, basic);
        assert_eq!(r.status, 401, "catalog with {who}: {}", r.body);
        assert!(
            r.headers.to_ascii_lowercase().contains("www-authenticate: basic realm=\"127.0.0.1 registry\""),
            "the challenge is the rendered htpasswd realm:\n{}",
            r.headers
        );
    }
    let refused = skopeo.copy(&image.reference, &docker_ref(&private, "provision/other"), Creds::Dest(USER, "nope"));
    assert!(!refused.status.success(), "a push with a wrong password succeeded\n{}", text(&refused));
    let why = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        why.contains("unauthorized") || why.contains("401"),
        "not refused for its credentials:\n{}",
        text(&refused)
    );
    let r = curl("GET", &catalog, &tls.ca_file, Some((USER, &password)));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["repositories"], json!([REPO]));
}

/// An upstream registry holding the test image and the pull-through cache
/// in front of it, sharing one Redis as on the node. Fields drop in order:
/// the processes are killed before their folder goes.
struct Chain {
    cache: Registry,
    upstream: Registry,
    redis: Redis,
    skopeo: Skopeo,
    image: Image,
    tls: Tls,
    dir: tempfile::TempDir,
}

impl Chain {
    fn start() -> Chain {
        require_tools();
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::issue(dir.path());
        let redis = Redis::start(dir.path());
        let upstream_port = free_port();
        let site = Site::new(dir.path(), &tls, &redis, format!("https://127.0.0.1:{upstream_port}"), upstream_port);
        // The upstream is the private registry's rendering without auth:
        // registry 2.8 sends proxy credentials only to a token-auth upstream,
        // never to a basic-auth one.
        let mut up = registry::private(&site.inputs());
        up.auth = None;
        let upstream = Registry::start("upstream", dir.path(), &up, &site.secrets, &[]);
        // The cache pings the upstream as it starts, through Go's TLS, which
        // trusts only the system roots unless told otherwise.
        let cache = Registry::start(
            "cache",
            dir.path(),
            &registry::cache(&site.inputs()),
            &site.secrets,
            &[("SSL_CERT_FILE", &tls.ca_file)],
        );
        let image = client::build_image(dir.path());
        let skopeo = Skopeo::new(dir.path(), &tls);
        let push = skopeo.copy(&image.reference, &docker_ref(&upstream, REPO), Creds::None);
        assert_ok(&push, "push to the upstream", &upstream);
        Chain { cache, upstream, redis, skopeo, image, tls, dir }
    }

    /// Pulls the image from the cache into a new local layout and checks
    /// every blob arrived.
    fn pull(&self, name: &str) {
        let layout = self.dir.path().join(name);
        let out =
            self.skopeo.copy(&docker_ref(&self.cache, REPO), &format!("oci:{}:v1", layout.display()), Creds::None);
        assert_ok(&out, &format!("{name} from the cache"), &self.cache);
        let (manifest, _) = client::layout_digests(&layout);
        assert_eq!(manifest, self.image.manifest, "{name} got another manifest");
        for b in &self.image.blobs {
            assert!(client::layout_has_blob(&layout, b), "{name} lacks {b}");
        }
    }

    /// The cache writes a blob to its storage after answering (in the
    /// background, 2.8's proxy blob store); wait for that before relying on it.
    fn wait_cache_stored(&self) {
        let stored = wait_until(|| self.image.blobs.iter().all(|b| self.cache.stores_blob(b)));
        assert!(stored, "the cache did not store the blobs it served\n{}", self.cache.tail());
    }

    fn upstream_blob_gets(&self) -> Vec<usize> {
        self.image.blobs.iter().map(|b| self.upstream.blob_gets(REPO, b)).collect()
    }
}

#[test]
fn pull_through_cache_fetches_blobs_upstream_once_then_serves_alone_and_refuses_pushes() {
    let mut c = Chain::start();
    assert_eq!(c.upstream_blob_gets(), vec![0, 0], "nothing was pulled from the upstream yet");

    c.pull("first-pull");
    c.wait_cache_stored();
    let after_first = c.upstream_blob_gets();
    assert!(
        after_first.iter().all(|&n| n > 0),
        "the first pull must fetch every blob upstream: {after_first:?}\n{}",
        c.upstream.tail()
    );

    c.pull("second-pull");
    assert_eq!(
        c.upstream_blob_gets(),
        after_first,
        "the second pull fetched blobs upstream again\n{}",
        c.upstream.tail()
    );

    // A push is refused by the cache itself (405), not for want of an
    // upstream: the upstream is still up here, and never gets the image.
    let push = c.skopeo.copy(&c.image.reference, &docker_ref(&c.cache, "provision/pushed"), Creds::None);
    assert!(!push.status.success(), "a push to the cache succeeded\n{}", text(&push));
    let why = String::from_utf8_lossy(&push.stderr).to_lowercase();
    assert!(why.contains("405") || why.contains("unsupported"), "the push failed for another reason:\n{}", text(&push));
    let upload = curl("POST", &format!("{}/v2/{REPO}/blobs/uploads/", c.cache.url), &c.tls.ca_file, None);
    assert_eq!(upload.status, 405, "starting an upload on the cache: {}", upload.body);
    assert!(upload.body.contains("UNSUPPORTED"), "{}", upload.body);
    let upstream_catalog = curl("GET", &format!("{}/v2/_catalog", c.upstream.url), &c.tls.ca_file, None);
    assert_eq!(upstream_catalog.status, 200, "{}", upstream_catalog.body);
    let listed: serde_json::Value = serde_json::from_str(&upstream_catalog.body).unwrap();
    assert_eq!(listed["repositories"], json!([REPO]), "the refused push reached the upstream");

    // With the upstream gone the cached tag still pulls: the cache holds it all.
    c.upstream.stop();
    c.pull("pull-without-upstream");
}

#[test]
fn both_registries_keep_blob_descriptors_in_their_own_redis_database_behind_the_password() {
    let c = Chain::start();
    c.pull("pull");
    c.wait_cache_stored();

    let (upstream_db, cache_db) = (c.upstream.config.redis.db, c.cache.config.redis.db);
    assert_ne!(upstream_db, cache_db);
    for (who, db) in [("upstream (the private rendering)", upstream_db), ("cache", cache_db)] {
        // `blobs::<digest>` is the descriptor key of distribution's Redis cache.
        let wanted: Vec<String> = c.image.blobs.iter().map(|b| format!("blobs::{b}")).collect();
        let described = wait_until(|| {
            let keys = c.redis.keys(db);
            wanted.iter().all(|k| keys.contains(k))
        });
        assert!(
            described,
            "the {who} did not describe {wanted:?} in Redis database {db}; it holds {:?}",
            c.redis.keys(db)
        );
    }
    // Without the password Redis refuses, so the keys above were written
    // with the password from REGISTRY_REDIS_PASSWORD (the file has none).
    let anonymous = c.redis.cli(cache_db, false, &["DBSIZE"]);
    assert!(text(&anonymous).contains("NOAUTH"), "Redis answered without a password:\n{}", text(&anonymous));
    // And the HTTP secret from REGISTRY_HTTP_SECRET: without one, registry
    // makes a random secret and says so.
    for r in [&c.upstream, &c.cache] {
        assert!(!r.log().contains("No HTTP secret provided"), "a registry did not read its HTTP secret:\n{}", r.tail());
    }
}
