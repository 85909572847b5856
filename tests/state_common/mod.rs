//! Shared by the state tests: running `provision render` offline on the
//! seed's env file, and checking a stack's state directory with tools that
//! are not provision's own (rustls for the certificates, ssh-key for SSH),
//! so a bug in provision's checks cannot hide a bug in what it writes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

pub const SEED: &str = "examples/env_params.yml";
/// The seed's hostname, and so its stack name.
pub const STACK: &str = "myhost";

/// `provision render` on the seed, with its state under `state` and its
/// bundle in `out`; no cloud, no credentials.
pub fn render(state: &Path, out: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("provision"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("HOME", state)
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env_remove("RUST_LOG")
        .env_remove("PROVISION_STATE_DIR")
        .args(["render", "--env", SEED, "--out"])
        .arg(out)
        .arg("--state-dir")
        .arg(state);
    c
}

pub struct Ran {
    pub code: Option<i32>,
    pub stderr: String,
}

pub fn run(mut c: Command) -> Ran {
    let o = c.output().unwrap();
    Ran { code: o.status.code(), stderr: String::from_utf8_lossy(&o.stderr).into_owned() }
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Every file under `dir`, recursively, without following links.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p);
            } else {
                all.push(p);
            }
        }
    }
    all.sort();
    all
}

/// Whether `key` is the private key of `cert`, as rustls decides when it
/// is given both.
fn pair_matches(cert: &str, key: &str) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = CertificateDer::from_pem_slice(cert.as_bytes()).map_err(|e| format!("certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| format!("key: {e}"))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A stack's state is whole: each key matches its certificate or its
/// `.pub`, the registry certificate verifies against the CA for the names
/// its record lists, the secrets are single plain lines, and no temporary
/// file or folder is left.
pub fn consistent(stack: &Path) -> Result<(), String> {
    let certs = stack.join("certs");
    let ca = read(&certs.join("ca.crt"))?;
    pair_matches(&ca, &read(&certs.join("ca.key"))?).map_err(|e| format!("ca.key/ca.crt: {e}"))?;
    let crt = read(&certs.join("registry.crt"))?;
    pair_matches(&crt, &read(&certs.join("registry.key"))?).map_err(|e| format!("registry.key/registry.crt: {e}"))?;
    let record: serde_json::Value =
        serde_json::from_str(&read(&certs.join("registry.json"))?).map_err(|e| format!("registry.json: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
    let end = CertificateDer::from_pem_slice(crt.as_bytes()).unwrap();
    for name in record["names"]["dns"].as_array().ok_or("registry.json has no names")? {
        let name = ServerName::try_from(name.as_str().unwrap().to_string()).unwrap();
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(&end, &[], &name, &[], UnixTime::now())
            .map_err(|e| format!("registry.crt for {name:?} against ca.crt: {e}"))?;
    }
    for f in files(stack) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let rel = f.strip_prefix(stack).unwrap().display().to_string();
        if name.contains(".tmp") || rel.starts_with(".new") || rel.contains("/.new") {
            return Err(format!("leftover {rel}"));
        }
        if f.starts_with(stack.join("ssh")) && !name.ends_with(".pub") {
            let private =
                russh::keys::PrivateKey::from_openssh(read(&f)?.as_bytes()).map_err(|e| format!("{rel}: {e}"))?;
            let public_text = read(&f.with_file_name(format!("{name}.pub")))?;
            if public_text.trim_end().lines().count() != 1 {
                return Err(format!("{rel}.pub is not one line"));
            }
            let public =
                russh::keys::PublicKey::from_openssh(public_text.trim()).map_err(|e| format!("{rel}.pub: {e}"))?;
            if private.public_key().key_data() != public.key_data() {
                return Err(format!("{rel} does not match {rel}.pub"));
            }
        }
        if name.ends_with("-password") || name.ends_with("-secret") {
            let s = read(&f)?;
            if s.is_empty() || !s.trim_end_matches('\n').chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("{rel} is not one plain line"));
            }
        }
    }
    for must in ["ssh/client_ed25519.pub", "ssh/workers/ssh_host_ed25519_key.pub", "registry-htpasswd"] {
        if !stack.join(must).is_file() {
            return Err(format!("{must} is missing"));
        }
    }
    Ok(())
}
