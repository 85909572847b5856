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
