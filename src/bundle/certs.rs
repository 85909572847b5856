//! The registry's certificates. A CA whose key never leaves the operator's
//! machine, and a server certificate for the registry signed by it, with the
//! names and addresses Docker checks (subjectAltNames; Docker has rejected
//! CN-only certificates since Go 1.15).
//!
//! Both live in the stack's state directory and are reused on every run.
//! The server certificate is issued again only when the names it must carry
//! change (for example the floating IP becomes known) or it nears expiry,
//! and the caller is told so.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::state::{Mode, StateDir, StateError};

const CA_YEARS: i64 = 10;
const SERVER_DAYS: i64 = 825;
/// A certificate this close to its end is replaced on the next run.
const RENEW_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0}")]
    Inconsistent(String),
}

/// What the server certificate must name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl Names {
    pub fn for_registry(hostname: &str, domain: &str, ips: &[IpAddr]) -> Names {
        Names { dns: vec![format!("{hostname}.{domain}"), hostname.to_string()], ips: ips.to_vec() }
    }
    fn covers(&self, other: &Names) -> bool {
        other.dns.iter().all(|d| self.dns.contains(d)) && other.ips.iter().all(|i| self.ips.contains(i))
    }
}

/// Facts about the stored server certificate, kept beside it so a re-run
/// can decide without parsing X.509.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    names: Names,
    not_after_unix: i64,
}

/// What [`ensure`] did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Reused,
    Reissued(String),
    /// The operator's own, from this file.
    Given(std::path::PathBuf),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Created => write!(f, "created"),
            Outcome::Reused => write!(f, "reused"),
            Outcome::Reissued(why) => write!(f, "reissued: {why}"),
            Outcome::Given(file) => write!(f, "yours: {}", file.display()),
        }
    }
}

/// As the text above, in the JSON report.
impl serde::Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The certificates a bundle needs. The CA key stays in the state directory.
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca_pem: String,
    pub server_pem: String,
    pub server_key_pem: crate::params::Secret,
    pub ca: Outcome,
    pub server: Outcome,
}

/// The operator's own certificate and CA, checked when the parameters
/// were read; the stack's CA is then neither made nor used.
pub fn given(own: &crate::params::own_cert::OwnCertificate) -> Certs {
    Certs {
        ca_pem: own.ca_pem.clone(),
        server_pem: own.cert_pem.clone(),
        server_key_pem: own.key_pem.clone(),
        ca: Outcome::Given(own.ca_file.clone()),
        server: Outcome::Given(own.cert_file.clone()),
    }
}

use crate::state::layout::{CA_CRT, CA_KEY, SERVER_CRT, SERVER_KEY, SERVER_RECORD};

/// The CA's subject. It is rebuilt from the stack name on every run, and
/// with the stored key that is all rcgen needs to sign as this CA.
fn ca_params(stack: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "provision");
    dn.push(DnType::CommonName, format!("provision CA for {stack}"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(365 * CA_YEARS);
    p
}

fn server_params(names: &Names, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.dns.first().cloned().unwrap_or_default());
    p.distinguished_name = dn;
    p.subject_alt_names = names
        .dns
        .iter()
        .filter_map(|d| d.clone().try_into().ok().map(SanType::DnsName))
        .chain(names.ips.iter().map(|ip| SanType::IpAddress(*ip)))
        .collect();
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    // A clock a little behind on the node must not make the cert "not yet valid".
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(SERVER_DAYS);
    p
}

/// Makes sure the stack has a CA and a server certificate covering `names`,
/// creating or reissuing only what is needed. What is stored is checked
/// first: the keys match their certificates and the server certificate is
/// the CA's; a mismatch is an error, never a silent new CA.
pub fn ensure(state: &StateDir, stack: &str, names: &Names, now: OffsetDateTime) -> Result<Certs, CertError> {
    let (ca_key, ca_pem, ca_outcome) = match (state.read_private(CA_KEY)?, state.read(CA_CRT)?) {
        (Some(key), Some(crt)) => {
            let key = private_key(state, CA_KEY, &key)?;
            let der = pem(state, CA_CRT, &crt, "CERTIFICATE")?;
            if ca_spki(state, &der)? != key.subject_public_key_info() {
                return Err(bad(
                    state,
                    CA_KEY,
                    "is not the key of ca.crt beside it; restore the ca.key that was made with this ca.crt \
                     (a new CA would have to be given to every client that trusts this one)",
                ));
            }
            (key, crt, Outcome::Reused)
        }
        (None, Some(_)) => {
            return Err(bad(
                state,
                CA_KEY,
                "is missing but ca.crt is there; restore it, or remove ca.crt too to make a new CA \
                 (every client that trusts the old one must then be given the new ca.crt)",
            ));
        }
        // ca.key alone is a first run killed before its ca.crt was put in
        // place: no one can trust a CA that has no certificate, so it is
        // made afresh.
        (_, None) => {
            let key = KeyPair::generate()?;
            let crt = ca_params(stack, now).self_signed(&key)?.pem();
            state.write_group(&[(CA_KEY, &key.serialize_pem(), Mode::Private), (CA_CRT, &crt, Mode::Public)])?;
            (key, crt, Outcome::Created)
        }
    };
    let ca_der = pem(state, CA_CRT, &ca_pem, "CERTIFICATE")?;

    // registry.json is written last: without it the group was never
    // completed and is issued again (the key is kept if there is one).
    let key_text = state.read_private(SERVER_KEY)?;
    let key = key_text.as_deref().map(|k| private_key(state, SERVER_KEY, k)).transpose()?;
    let crt_text = state.read(SERVER_CRT)?;
    let record: Option<Record> = match state.read(SERVER_RECORD)? {
        Some(r) => Some(
            serde_json::from_str(&r)
                .map_err(|e| bad(state, SERVER_RECORD, format!("is not a record provision wrote ({e}); {REISSUE}")))?,
        ),
        None => None,
    };
    let reason = match (&key, &crt_text, &record) {
        (Some(_), Some(_), Some(_)) if ca_outcome == Outcome::Created => Some("the CA is new".to_string()),
        (Some(key), Some(crt), Some(r)) => {
            let der = pem(state, SERVER_CRT, crt, "CERTIFICATE")?;
            if check_server(state, &der, key, &ca_der, &r.names, now)? == Validity::Expired {
                Some("it has expired".to_string())
            } else if !r.names.covers(names) {
                Some(format!("it must now also name {}", describe_missing(&r.names, names)))
            } else if r.not_after_unix - now.unix_timestamp() < RENEW_DAYS * 86400 {
                Some(format!("it expires within {RENEW_DAYS} days"))
            } else {
                None
            }
        }
        _ => Some(String::new()),
    };
    let Some(reason) = reason else {
        let (Some(key), Some(crt)) = (key_text, crt_text) else { unreachable!("checked above") };
        return Ok(Certs {
            ca_pem,
            server_pem: crt,
            server_key_pem: crate::params::Secret::new(key),
            ca: ca_outcome,
            server: Outcome::Reused,
        });
    };
    // Keep the server key across reissues: nothing on the node depends on
    // it changing, and a new one is one more secret in flight.
    let new_key = key.is_none();
    let server_key = match key {
        Some(k) => k,
        None => KeyPair::generate()?,
    };
    // The union, so a reissue never drops a name clients already use.
    let mut all = names.clone();
    if let Some(r) = &record {
        for d in &r.names.dns {
            if !all.dns.contains(d) {
                all.dns.push(d.clone());
            }
        }
    }
    let params = server_params(&all, now);
    let not_after = params.not_after.unix_timestamp();
    let issuer = Issuer::new(ca_params(stack, now), &ca_key);
    let crt = params.signed_by(&server_key, &issuer)?.pem();
    let key_pem = server_key.serialize_pem();
    let rec = serde_json::to_string_pretty(&Record { names: all, not_after_unix: not_after }).expect("plain data");
    if new_key {
        // Until the new key, certificate and record are all in place, the
        // group must read as incomplete, not as a pair that does not match.
        state.remove(SERVER_RECORD)?;
        state.write_group(&[
            (SERVER_KEY, &key_pem, Mode::Private),
            (SERVER_CRT, &crt, Mode::Public),
            (SERVER_RECORD, &rec, Mode::Public),
        ])?;
    } else {
        // A crash between the two leaves the new certificate with the old
        // record, whose names it carries too (the union above).
        state.write_group(&[(SERVER_CRT, &crt, Mode::Public), (SERVER_RECORD, &rec, Mode::Public)])?;
    }
    let server = if reason.is_empty() { Outcome::Created } else { Outcome::Reissued(reason) };
    Ok(Certs { ca_pem, server_pem: crt, server_key_pem: crate::params::Secret::new(key_pem), ca: ca_outcome, server })
}

const REISSUE: &str = "remove registry.key, registry.crt and registry.json from the same folder to have them issued \
                       again by the stack's CA";

fn bad(state: &StateDir, name: &str, problem: impl Into<String>) -> CertError {
    StateError::new(&state.file(name), problem).into()
}

/// The DER inside `text`, which must be exactly one PEM block of `label`.
/// The file's text is never quoted: it may be a secret.
fn pem(state: &StateDir, name: &str, text: &str, label: &str) -> Result<Vec<u8>, CertError> {
    let refuse = |why: &str| bad(state, name, format!("is not one PEM {label} ({why}); restore it from a backup"));
    let (begin, end) = (format!("-----BEGIN {label}-----"), format!("-----END {label}-----"));
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(begin.as_str()) {
        return Err(refuse(&format!("it does not begin with {begin}")));
    }
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if ended {
            return Err(refuse("there is more after its end"));
        }
        if line == end {
            ended = true;
        } else {
            body.push_str(line);
        }
    }
    if !ended {
        return Err(refuse(&format!("{end} is missing")));
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| refuse("its body is not base64"))
}

fn private_key(state: &StateDir, name: &str, text: &str) -> Result<KeyPair, CertError> {
    let der = pem(state, name, text, "PRIVATE KEY")?;
    KeyPair::try_from(der.as_slice()).map_err(|e| {
        bad(state, name, format!("is not a private key provision can use ({e}); restore it from a backup"))
    })
}

/// The public key a CA certificate holds.
fn ca_spki(state: &StateDir, der: &[u8]) -> Result<Vec<u8>, CertError> {
    let cert = CertificateDer::from(der);
    let anchor = webpki::anchor_from_trusted_cert(&cert)
        .map_err(|e| bad(state, CA_CRT, format!("is not a certificate provision can read ({e:?})")))?;
    Ok(webpki::spki_for_anchor(&anchor).as_ref().to_vec())
}

#[derive(Debug, PartialEq, Eq)]
enum Validity {
    Valid,
    Expired,
}

/// The stored server certificate: its key is `key`, it is issued by the
/// CA for server use, and it names everything its record says it does.
fn check_server(
    state: &StateDir,
    der: &[u8],
    key: &KeyPair,
    ca_der: &[u8],
    names: &Names,
    now: OffsetDateTime,
) -> Result<Validity, CertError> {
    let cert = CertificateDer::from(der);
    let ee = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| bad(state, SERVER_CRT, format!("is not a certificate provision can read ({e:?}); {REISSUE}")))?;
    if ee.subject_public_key_info().as_ref() != key.subject_public_key_info() {
        return Err(bad(state, SERVER_KEY, format!("is not the key of registry.crt beside it; {REISSUE}")));
    }
    let ca = CertificateDer::from(ca_der);
    let anchors = [webpki::anchor_from_trusted_cert(&ca)
        .map_err(|e| bad(state, CA_CRT, format!("is not a certificate provision can read ({e:?})")))?];
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.unix_timestamp().max(0) as u64));
    let usage = webpki::KeyUsage::server_auth();
    match ee.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &anchors, &[], at, usage, None, None) {
        Ok(_) => {}
        Err(webpki::Error::CertExpired { .. }) => return Ok(Validity::Expired),
        Err(e) => {
            return Err(bad(
                state,
                SERVER_CRT,
                format!("is not a server certificate issued by the stack's ca.crt ({e:?}); {REISSUE}"),
            ));
        }
    }
    let dns = names.dns.iter().filter_map(|d| ServerName::try_from(d.clone()).ok().map(|n| (d.clone(), n)));
    let ips = names.ips.iter().map(|ip| (ip.to_string(), ServerName::IpAddress((*ip).into())));
    for (shown, name) in dns.chain(ips) {
        if ee.verify_is_valid_for_subject_name(&name).is_err() {
            return Err(bad(
                state,
                SERVER_CRT,
                format!("does not name {shown}, which registry.json says it does; {REISSUE}"),
            ));
        }
    }
    Ok(Validity::Valid)
}

fn describe_missing(have: &Names, want: &Names) -> String {
    want.dns
        .iter()
        .filter(|d| !have.dns.contains(d))
        .cloned()
        .chain(want.ips.iter().filter(|i| !have.ips.contains(i)).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ips: &[&str]) -> Names {
        Names::for_registry("reg", "example.test", &ips.iter().map(|i| i.parse().unwrap()).collect::<Vec<_>>())
    }

    #[test]
    fn second_run_reuses_everything() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        let now = OffsetDateTime::now_utc();
        let a = ensure(&s, "st", &names(&[]), now).unwrap();
        assert_eq!((a.ca.clone(), a.server.clone()), (Outcome::Created, Outcome::Created));
        let b = ensure(&s, "st", &names(&[]), now).unwrap();
        assert_eq!((b.ca, b.server), (Outcome::Reused, Outcome::Reused));
        assert_eq!(a.server_pem, b.server_pem);
        assert_eq!(a.ca_pem, b.ca_pem);
    }

    #[test]
    fn a_new_ip_reissues_with_a_reason_and_keeps_the_ca() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        let now = OffsetDateTime::now_utc();
        let a = ensure(&s, "st", &names(&[]), now).unwrap();
        let b = ensure(&s, "st", &names(&["192.0.2.7"]), now).unwrap();
        assert_eq!(b.ca, Outcome::Reused);
        assert_eq!(b.server, Outcome::Reissued("it must now also name 192.0.2.7".into()));
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_ne!(a.server_pem, b.server_pem);
        assert_eq!(a.server_key_pem, b.server_key_pem);
    }

    #[test]
    fn near_expiry_reissues() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        let then = OffsetDateTime::now_utc() - Duration::days(SERVER_DAYS - 10);
        ensure(&s, "st", &names(&[]), then).unwrap();
        let b = ensure(&s, "st", &names(&[]), OffsetDateTime::now_utc()).unwrap();
        assert!(matches!(b.server, Outcome::Reissued(r) if r.contains("expires")));
    }

    #[test]
    fn half_a_ca_is_an_error_not_a_silent_new_ca() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        ensure(&s, "st", &names(&[]), OffsetDateTime::now_utc()).unwrap();
        std::fs::remove_file(s.file(CA_KEY)).unwrap();
        let e = ensure(&s, "st", &names(&[]), OffsetDateTime::now_utc()).unwrap_err();
        assert!(e.to_string().contains("ca.key: is missing but ca.crt is there"), "{e}");
    }

    #[test]
    fn a_group_a_killed_run_left_incomplete_is_completed() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        let now = OffsetDateTime::now_utc();
        // Killed between ca.key and ca.crt on its first run: a new CA.
        s.write(CA_KEY, &KeyPair::generate().unwrap().serialize_pem(), Mode::Private).unwrap();
        let a = ensure(&s, "st", &names(&[]), now).unwrap();
        assert_eq!((a.ca, a.server), (Outcome::Created, Outcome::Created));
        // Killed before registry.json: issued again with the same key.
        s.remove(SERVER_RECORD).unwrap();
        let b = ensure(&s, "st", &names(&[]), now).unwrap();
        assert_eq!((b.ca, b.server), (Outcome::Reused, Outcome::Created));
        assert_eq!(a.server_key_pem, b.server_key_pem);
        assert_eq!(a.ca_pem, b.ca_pem);
        // Killed after registry.key, before the rest: a new pair.
        s.remove(SERVER_RECORD).unwrap();
        s.remove(SERVER_CRT).unwrap();
        let c = ensure(&s, "st", &names(&[]), now).unwrap();
        assert_eq!(c.server, Outcome::Created);
        assert_eq!(ensure(&s, "st", &names(&[]), now).unwrap().server, Outcome::Reused);
    }

    #[test]
    fn a_complete_but_mismatched_pair_is_an_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        let now = OffsetDateTime::now_utc();
        ensure(&s, "st", &names(&[]), now).unwrap();
        s.write(SERVER_KEY, &KeyPair::generate().unwrap().serialize_pem(), Mode::Private).unwrap();
        let e = ensure(&s, "st", &names(&[]), now).unwrap_err().to_string();
        assert!(e.contains("certs/registry.key: is not the key of registry.crt"), "{e}");
        s.write(CA_KEY, "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n", Mode::Private).unwrap();
        let e = ensure(&s, "st", &names(&[]), now).unwrap_err().to_string();
        assert!(e.contains("certs/ca.key: is not one PEM PRIVATE KEY"), "{e}");
    }

    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "st").unwrap();
        ensure(&s, "st", &names(&[]), OffsetDateTime::now_utc()).unwrap();
        for f in [CA_KEY, SERVER_KEY] {
            let mode = std::fs::metadata(s.file(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
}
