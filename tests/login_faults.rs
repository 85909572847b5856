//! Logging in to a Keystone that is not there, not well, or not trusted:
//! stand-in servers on 127.0.0.1 that refuse, hang, answer 500 or an HTML
//! 502, present a certificate from an unknown CA, or refuse the
//! credentials. Each case gets its own message, naming the URL and where the
//! credentials came from, within a bounded time, and no secret.
//! (Faults a real Keystone cannot be made to show; the live path against a
//! real one is tests/live.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::Command;

const PASSWORD: &str = "Pw-never-shown-81";

/// A server that answers every connection with `answer` (or never, for None).
fn serve(answer: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v3", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes());
                    }
                    None => std::thread::sleep(Duration::from_secs(120)),
                }
            });
        }
    });
    url
}

fn http(status: &str, content_type: &str, body: &str) -> &'static str {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Box::leak(text.into_boxed_str())
}

/// A TLS server whose certificate comes from a CA nobody here trusts.
fn serve_untrusted_tls() -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let issuer = rcgen::Issuer::new(rcgen::CertificateParams::new(Vec::<String>::new()).unwrap(), &ca_key);
    let leaf = leaf.signed_by(&key, &issuer).unwrap();
    drop(ca);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/v3", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                // The client gives up in the handshake; nothing to answer.
                let _ = conn.complete_io(&mut s);
            });
        }
    });
    url
}

fn refused() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    // Nothing listens there now (a race with another test taking the port
    // is possible but harmless: it would not answer as Keystone).
    assert!(TcpStream::connect(addr).is_err());
    format!("http://{addr}/v3")
}

/// `provision status` logging in at `url` with OS_* credentials: exit
/// code, stderr, and how long it took.
fn login(url: &str) -> (Option<i32>, String, Duration) {
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::cargo_bin("provision")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--env", "examples/env_params.yml", "status", "--state-dir"])
        .arg(state.path())
        .env_remove("OS_CLOUD")
        .env("OS_AUTH_URL", url)
        .env("OS_USERNAME", "operator")
        .env("OS_PASSWORD", PASSWORD)
        .env("OS_PROJECT_NAME", "demo")
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_DOMAIN_NAME", "Default")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains(PASSWORD), "the password was printed:\n{stderr}");
    (out.status.code(), stderr, started.elapsed())
}

fn error_line(stderr: &str) -> &str {
    stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line:\n{stderr}"))
}

#[test]
fn each_login_fault_has_its_own_message_in_bounded_time() {
    let json = "application/json";
    let cases: Vec<(&str, String, &str, Duration)> = vec![
        ("refused", refused(), "connection refused", Duration::from_secs(10)),
        (
            "500",
            serve(Some(http("500 Internal Server Error", json, "{}"))),
            "answered HTTP 500",
            Duration::from_secs(10),
        ),
        (
            "502 HTML",
            serve(Some(http("502 Bad Gateway", "text/html", "<html><body>Bad Gateway</body></html>"))),
            "answered HTTP 502",
            Duration::from_secs(10),
        ),
        ("unknown CA", serve_untrusted_tls(), "signed by a CA this machine does not trust", Duration::from_secs(10)),
        (
            "401",
            serve(Some(http(
                "401 Unauthorized",
                json,
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#,
            ))),
            "did not accept the credentials",
            Duration::from_secs(10),
        ),
        // 30 s of waiting, then the answer; bounded at 60 s here.
        ("hang", serve(None), "no answer within 30 s", Duration::from_secs(60)),
    ];
    let mut report = Vec::new();
    for (name, url, want, bound) in &cases {
        let (code, stderr, took) = login(url);
        let line = error_line(&stderr);
        assert_eq!(code, Some(1), "{name}: exit code\n{stderr}");
        assert!(line.contains(want), "{name}: {line}");
        assert!(line.contains(url.as_str()), "{name}: the URL is named: {line}");
        assert!(line.contains("OS_* environment variables"), "{name}: the credentials' source is named: {line}");
        assert!(took < *bound, "{name}: took {took:?}");
        if *name == "hang" {
            assert!(stderr.contains("waiting for Keystone at"), "a line while waiting:\n{stderr}");
        }
        report.push(format!("{name}: {:.2} s", took.as_secs_f64()));
    }
    // The messages are all different: no fault is reported as another.
    eprintln!("{}", report.join(", "));
}

/// A stand-in that answers each request by `route(method, path)` and
/// counts the requests it got; returns its base URL and the count.
fn serve_routes(route: fn(&str, &str, &str, &str) -> String) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (me, count) = (base.clone(), hits.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let me = me.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = vec![0u8; 65536];
                let n = s.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                let _ = s.write_all(route(&me, method, path, &head).as_bytes());
            });
        }
    });
    (base, hits)
}

fn answer(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A Heat that has no stacks, and wants to know who asks.
fn heat(_: &str, _: &str, _: &str, head: &str) -> String {
    if !head.lines().any(|l| l.to_ascii_lowercase().starts_with("user-agent: provision/")) {
        return answer("400 Bad Request", "", r#"{"error": {"message": "no User-Agent: provision/VERSION"}}"#);
    }
    answer(
        "404 Not Found",
        "",
        r#"{"code": 404, "error": {"message": "The Stack (myhost) could not be found.", "type": "EntityNotFound"}, "title": "Not Found"}"#,
    )
}

/// Each stand-in Keystone's Heats (public, internal, admin), by its URL:
/// the tests run at once, each with its own.
static HEATS: std::sync::Mutex<Vec<(String, [String; 3])>> = std::sync::Mutex::new(Vec::new());

/// A Keystone whose catalog points at these Heats.
fn keystone_for(heats: [String; 3]) -> String {
    let (url, _) = serve_routes(keystone);
    HEATS.lock().unwrap().push((url.clone(), heats));
    url
}

/// A Keystone whose catalog gives every service a different URL per
/// interface: public, internal and admin Heat are three servers.
fn keystone(me: &str, method: &str, path: &str, _: &str) -> String {
    let heats = HEATS.lock().unwrap();
    let [public, internal, admin] = &heats.iter().find(|(k, _)| k == me).expect("a registered Keystone").1;
    match (method, path) {
        ("GET", p) if p.trim_end_matches('/') == "/v3" => answer(
            "200 OK",
            "",
            &format!(
                r#"{{"version": {{"id": "v3.14", "status": "stable", "links": [{{"rel": "self", "href": "{me}/v3/"}}]}}}}"#
            ),
        ),
        ("POST", "/v3/auth/tokens") => {
            let endpoints = |base: &str, path: &str| {
                format!(
                    r#"[{{"id": "1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "{public}{path}"}},
                        {{"id": "2", "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "{internal}{path}"}},
                        {{"id": "3", "interface": "admin", "region": "RegionOne", "region_id": "RegionOne", "url": "{admin}{path}"}}]"#
                )
                .replace("{base}", base)
            };
            let service = |kind: &str, path: &str| {
                format!(
                    r#"{{"id": "{kind}", "type": "{kind}", "name": "{kind}", "endpoints": {}}}"#,
                    endpoints(me, path)
                )
            };
            let catalog = ["orchestration", "compute", "network", "image"]
                .iter()
                .map(|k| service(k, if *k == "orchestration" { "/v1/p1" } else { "" }))
                .chain(std::iter::once(format!(
                    r#"{{"id": "identity", "type": "identity", "name": "keystone", "endpoints": [{{"id": "9", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "{me}/v3"}}]}}"#
                )))
                .collect::<Vec<_>>()
                .join(",");
            let body = format!(
                r#"{{"token": {{"methods": ["password"], "expires_at": "2999-01-01T00:00:00.000000Z", "issued_at": "2026-01-01T00:00:00.000000Z",
                   "user": {{"id": "u1", "name": "operator", "domain": {{"id": "default", "name": "Default"}}, "password_expires_at": null}},
                   "project": {{"id": "p1", "name": "demo", "domain": {{"id": "default", "name": "Default"}}}},
                   "roles": [{{"id": "r1", "name": "member"}}], "catalog": [{catalog}]}}}}"#
            );
            answer("201 Created", "X-Subject-Token: stand-in-token\r\n", &body)
        }
        _ => answer("404 Not Found", "", "{}"),
    }
}

/// The interface of the credentials (OS_INTERFACE, clouds.yaml
/// `interface`) picks the endpoints, as the OpenStack client picks them:
/// each interface's Heat gets the requests, and only it. They say
/// `User-Agent: provision/VERSION`.
#[test]
fn the_interface_chooses_the_endpoints_from_the_catalog() {
    let heats = [serve_routes(heat), serve_routes(heat), serve_routes(heat)];
    let keystone_url = keystone_for([heats[0].0.clone(), heats[1].0.clone(), heats[2].0.clone()]);
    for (interface, which) in [("internal", 1), ("admin", 2), ("public", 0)] {
        let before: Vec<usize> = heats.iter().map(|h| h.1.load(std::sync::atomic::Ordering::SeqCst)).collect();
        let state = tempfile::tempdir().unwrap();
        let out = Command::cargo_bin("provision")
            .unwrap()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--env", "examples/env_params.yml", "status", "--state-dir"])
            .arg(state.path())
            .env_remove("OS_CLOUD")
            .env("OS_AUTH_URL", format!("{keystone_url}/v3"))
            .env("OS_USERNAME", "operator")
            .env("OS_PASSWORD", PASSWORD)
            .env("OS_PROJECT_NAME", "demo")
            .env("OS_REGION_NAME", "RegionOne")
            .env("OS_INTERFACE", interface)
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no stack named myhost"), "{interface}: {stderr}");
        assert!(stderr.contains(&format!("{interface} endpoints")), "{interface}: said where it acts: {stderr}");
        let after: Vec<usize> = heats.iter().map(|h| h.1.load(std::sync::atomic::Ordering::SeqCst)).collect();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(a > b, i == which, "{interface}: Heat #{i} was asked {} times", a - b);
        }
    }
}

static BUSY_ANSWERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A Heat that turns the first request away with 429, then has no stacks.
fn busy_heat(me: &str, method: &str, path: &str, head: &str) -> String {
    if BUSY_ANSWERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        return answer("429 Too Many Requests", "Retry-After: 1\r\n", r#"{"error": {"message": "slow down"}}"#);
    }
    heat(me, method, path, head)
}

/// A 429 is a request turned away, not carried out: it is sent again.
#[test]
fn too_many_requests_is_tried_again() {
    let busy = serve_routes(busy_heat);
    let quiet = serve_routes(heat);
    let keystone_url = keystone_for([busy.0.clone(), quiet.0.clone(), quiet.0.clone()]);
    let out = status_against(&keystone_url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 429; trying again"), "{stderr}");
    assert!(stderr.contains("no stack named myhost"), "{stderr}");
}

/// A gateway's page with a 200: something answered, but not Heat.
fn garbled_heat(_: &str, _: &str, _: &str, _: &str) -> String {
    answer("200 OK", "", "<html><body>Welcome to the portal</body></html>")
}

/// A success whose body is not JSON is an error that says so, never
/// "nothing there" (which here would read as "no such stack").
#[test]
fn a_success_that_is_not_json_is_an_error() {
    let garbled = serve_routes(garbled_heat);
    let keystone_url = keystone_for([garbled.0.clone(), garbled.0.clone(), garbled.0.clone()]);
    let out = status_against(&keystone_url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("HTTP 200, but the answer is not JSON"), "{stderr}");
    assert!(stderr.contains("Welcome to the portal"), "shows what came instead: {stderr}");
    assert!(!stderr.contains("no stack named"), "{stderr}");
}

/// `provision status` of the seed's stack against a stand-in Keystone.
fn status_against(keystone_url: &str) -> std::process::Output {
    let state = tempfile::tempdir().unwrap();
    Command::cargo_bin("provision")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--env", "examples/env_params.yml", "status", "--state-dir"])
        .arg(state.path())
        .env_remove("OS_CLOUD")
        .env("OS_AUTH_URL", format!("{keystone_url}/v3"))
        .env("OS_USERNAME", "operator")
        .env("OS_PASSWORD", PASSWORD)
        .env("OS_PROJECT_NAME", "demo")
        .env("OS_REGION_NAME", "RegionOne")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}
