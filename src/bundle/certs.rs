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
    KeyUsagePurpose, SanType,
};
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

pub const CA_KEY: &str = "certs/ca.key";
pub const CA_CRT: &str = "certs/ca.crt";
pub const SERVER_KEY: &str = "certs/registry.key";
pub const SERVER_CRT: &str = "certs/registry.crt";
const SERVER_RECORD: &str = "certs/registry.json";

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
/// creating or reissuing only what is needed.
pub fn ensure(state: &StateDir, stack: &str, names: &Names, now: OffsetDateTime) -> Result<Certs, CertError> {
    let (ca_key, ca_pem, ca_outcome) = match (state.read(CA_KEY)?, state.read(CA_CRT)?) {
        (Some(key), Some(crt)) => (KeyPair::from_pem(&key)?, crt, Outcome::Reused),
        (None, None) => {
            let key = KeyPair::generate()?;
            let crt = ca_params(stack, now).self_signed(&key)?.pem();
            state.write(CA_KEY, &key.serialize_pem(), Mode::Private)?;
            state.write(CA_CRT, &crt, Mode::Public)?;
            (key, crt, Outcome::Created)
        }
        _ => {
            return Err(CertError::Inconsistent(format!(
                "{} has only one of ca.key and ca.crt; restore the missing file, or remove both to make a new CA \
                 (every client that trusts the old one must then be given the new ca.crt)",
                state.file("certs").display()
            )));
        }
    };
    let record: Option<Record> = state.read(SERVER_RECORD)?.and_then(|r| serde_json::from_str(&r).ok());
    let existing = (state.read(SERVER_KEY)?, state.read(SERVER_CRT)?);
    let reason = match (&record, &existing) {
        (Some(_), (Some(_), Some(_))) if ca_outcome == Outcome::Created => Some("the CA is new".to_string()),
        (Some(r), (Some(_), Some(_))) => {
            if !r.names.covers(names) {
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
        let (Some(key), Some(crt)) = existing else { unreachable!("checked above") };
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
    let server_key = match &existing.0 {
        Some(k) => KeyPair::from_pem(k)?,
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
    state.write(SERVER_KEY, &key_pem, Mode::Private)?;
    state.write(SERVER_CRT, &crt, Mode::Public)?;
    let rec = Record { names: all, not_after_unix: not_after };
    state.write(SERVER_RECORD, &serde_json::to_string_pretty(&rec).expect("plain data"), Mode::Public)?;
    let server = if reason.is_empty() { Outcome::Created } else { Outcome::Reissued(reason) };
    Ok(Certs { ca_pem, server_pem: crt, server_key_pem: crate::params::Secret::new(key_pem), ca: ca_outcome, server })
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
        assert!(e.to_string().contains("only one of ca.key and ca.crt"));
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
