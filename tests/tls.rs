//! The registry certificate, checked by a real TLS stack (rustls with
//! webpki, which like Go ignores the CN and reads only subjectAltNames):
//! a full handshake against the operator's CA succeeds for hostname.domain,
//! the bare hostname and the floating IP, and fails for any other name.

use std::sync::Arc;

use provision::bundle::certs::{self, Names};
use provision::state::StateDir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn handshake(ca_pem: &str, cert_pem: &str, key_pem: &str, name: &str) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client_cfg), server_name).unwrap();
    let mut server = rustls::ServerConnection::new(Arc::new(server_cfg)).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets()?;
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn registry_certificate_is_accepted_for_its_names_and_refused_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path(), "myhost").unwrap();
    let names = Names::for_registry("myhost", "mydomain.com", &["192.0.2.10".parse().unwrap()]);
    let c = certs::ensure(&state, "myhost", &names, time::OffsetDateTime::now_utc()).unwrap();
    let key = c.server_key_pem.expose();
    for good in ["myhost.mydomain.com", "myhost", "192.0.2.10"] {
        handshake(&c.ca_pem, &c.server_pem, key, good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in ["other.mydomain.com", "mydomain.com", "192.0.2.11"] {
        let err = handshake(&c.ca_pem, &c.server_pem, key, bad).expect_err(bad);
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{bad}: {err:?}");
    }
}

#[test]
fn another_ca_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let names = Names::for_registry("myhost", "mydomain.com", &[]);
    let now = time::OffsetDateTime::now_utc();
    let a = certs::ensure(&StateDir::open(dir.path(), "a").unwrap(), "a", &names, now).unwrap();
    let b = certs::ensure(&StateDir::open(dir.path(), "b").unwrap(), "b", &names, now).unwrap();
    let err = handshake(&b.ca_pem, &a.server_pem, a.server_key_pem.expose(), "myhost.mydomain.com").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err:?}");
}

#[test]
fn a_reissued_certificate_still_chains_to_the_kept_ca() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path(), "s").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let first = certs::ensure(&state, "s", &Names::for_registry("h", "d.test", &[]), now).unwrap();
    let second =
        certs::ensure(&state, "s", &Names::for_registry("h", "d.test", &["198.51.100.4".parse().unwrap()]), now)
            .unwrap();
    assert_eq!(first.ca_pem, second.ca_pem);
    handshake(&first.ca_pem, &second.server_pem, second.server_key_pem.expose(), "198.51.100.4").unwrap();
    handshake(&first.ca_pem, &second.server_pem, second.server_key_pem.expose(), "h.d.test").unwrap();
}
