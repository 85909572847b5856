//! The operator's own registry certificate (the seed's "use pre-defined
//! certificates"), named by `registry_cert_file`, `registry_key_file` and
//! `registry_ca_file`. The files are input like the rest: read and checked
//! here, before anything is made, with each problem pointing at the line
//! that names the file. The key is held as a [`Secret`]; it goes to the
//! manager's node config and nowhere else.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use time::OffsetDateTime;

use super::{Problem, Secret, Where};

/// The three parameters, which come together or not at all.
pub const KEYS: [&str; 3] = ["registry_cert_file", "registry_key_file", "registry_ca_file"];

/// Larger than any certificate chain; a bigger file is not one.
const MAX_BYTES: u64 = 64 * 1024;
/// A certificate this close to its end is worth a warning.
const WARN_DAYS: i64 = 30;

/// A certificate and key the operator gave, checked.
#[derive(Debug, Clone)]
pub struct OwnCertificate {
    /// The server certificate, then any intermediates, as given.
    pub cert_pem: String,
    pub key_pem: Secret,
    pub ca_pem: String,
    pub cert_file: PathBuf,
    pub ca_file: PathBuf,
}

/// Where one of the three files is named, and the file.
pub struct Named {
    pub key: &'static str,
    pub at: Where,
    pub path: PathBuf,
}

impl Named {
    /// A path as written in an env file, taken relative to that file's
    /// folder (as Heat takes `get_file` paths).
    pub fn new(key: &'static str, at: Where, written: &str) -> Named {
        let written = Path::new(written);
        let path = match at.path().and_then(Path::parent) {
            Some(dir) if written.is_relative() => dir.join(written),
            _ => written.to_path_buf(),
        };
        Named { key, at, path }
    }

    fn problem(&self, message: impl std::fmt::Display) -> Problem {
        Problem::new(self.at.clone(), format!("`{}`: {}: {message}", self.key, self.path.display())).key(self.key)
    }

    fn read(&self) -> Result<String, Problem> {
        let size = std::fs::metadata(&self.path).map_err(|e| self.problem(format!("cannot be read ({e})")))?.len();
        if size > MAX_BYTES {
            return Err(self.problem(format!("is {size} bytes; a certificate file is far smaller")));
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.problem(format!("cannot be read ({e})")))?;
        String::from_utf8(bytes).map_err(|_| self.problem("is not PEM text"))
    }
}

/// Reads and checks the three files: the key is the certificate's, the
/// certificate is the CA's (through any intermediates in its file), is for
/// servers, names `fqdn` and is valid now. Returns the certificate and a
/// warning when it ends soon.
pub fn load(
    cert: &Named,
    key: &Named,
    ca: &Named,
    fqdn: &str,
    now: OffsetDateTime,
) -> Result<(OwnCertificate, Option<String>), Problem> {
    let (cert_pem, key_pem, ca_pem) = (cert.read()?, key.read()?, ca.read()?);
    let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| cert.problem(format!("is not PEM certificates ({e})")))?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(cert.problem("holds no CERTIFICATE block"));
    };
    let anchors_der: Vec<CertificateDer> = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ca.problem(format!("is not PEM certificates ({e})")))?;
    if anchors_der.is_empty() {
        return Err(ca.problem("holds no CERTIFICATE block"));
    }
    let anchors = anchors_der
        .iter()
        .map(|d| webpki::anchor_from_trusted_cert(d).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca.problem(format!("is not a CA certificate provision can read ({e:?})")))?;
    // The key's text is never quoted in a message: it is the secret.
    let private = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
        key.problem("is not a PEM private key (PKCS#8 `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)")
    })?;
    let pair = rcgen::KeyPair::try_from(&private)
        .map_err(|e| key.problem(format!("is a private key provision cannot use ({e})")))?;
    let ee = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| cert.problem(format!("is not a certificate provision can read ({e:?})")))?;
    if ee.subject_public_key_info().as_ref() != rcgen::PublicKeyData::subject_public_key_info(&pair) {
        return Err(key.problem(format!("is not the key of the certificate in {}", cert.path.display())));
    }
    let unix = |t: OffsetDateTime| {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.unix_timestamp().max(0) as u64))
    };
    let date = |t: UnixTime| {
        OffsetDateTime::from_unix_timestamp(t.as_secs() as i64).map_or_else(|_| "?".into(), |d| d.date().to_string())
    };
    let verify = |at: OffsetDateTime| {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            unix(at),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    match verify(now) {
        Ok(()) => {}
        Err(webpki::Error::CertExpired { not_after, .. }) => {
            return Err(cert.problem(format!("expired on {}; give one that is valid now", date(not_after))));
        }
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => {
            return Err(cert.problem(format!("is valid only from {}", date(not_before))));
        }
        // A CA with the same name but another key fails on the signature.
        Err(webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey) => {
            return Err(cert.problem(format!(
                "is not issued by the CA in {} (put any intermediate certificates after the server's in this file)",
                ca.path.display()
            )));
        }
        Err(e) => return Err(cert.problem(format!("is not a server certificate the CA vouches for ({e:?})"))),
    }
    let name = ServerName::try_from(fqdn.to_string()).map_err(|_| cert.problem(format!("`{fqdn}` is not a name")))?;
    if ee.verify_is_valid_for_subject_name(&name).is_err() {
        return Err(cert.problem(format!(
            "does not name {fqdn} (hostname.domain) in its subjectAltNames; Docker checks that name"
        )));
    }
    // Checked again as of a month from now: the end date is in the answer.
    let warning = match verify(now + time::Duration::days(WARN_DAYS)) {
        Err(webpki::Error::CertExpired { not_after, .. }) => Some(format!(
            "{}: the registry certificate ends in {} days ({})",
            cert.path.display(),
            (not_after.as_secs() as i64 - now.unix_timestamp()) / 86400,
            date(not_after)
        )),
        _ => None,
    };
    Ok((
        OwnCertificate {
            cert_pem,
            key_pem: Secret::new(key_pem),
            ca_pem,
            cert_file: cert.path.clone(),
            ca_file: ca.path.clone(),
        },
        warning,
    ))
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use time::Duration;

    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn named(&self, key: &'static str, file: &str) -> Named {
            Named::new(key, Where::at(&self.dir.path().join("env.yml"), 3, 3), file)
        }
        fn check(&self) -> Result<(OwnCertificate, Option<String>), Problem> {
            load(
                &self.named(KEYS[0], "reg.crt"),
                &self.named(KEYS[1], "reg.key"),
                &self.named(KEYS[2], "ca.crt"),
                "reg.example.com",
                OffsetDateTime::now_utc(),
            )
        }
        fn put(&self, name: &str, text: &str) {
            std::fs::write(self.dir.path().join(name), text).unwrap();
        }
    }

    /// A CA and a certificate for `names`, valid for `days` from now.
    fn issue(names: &[&str], days: i64) -> Files {
        let now = OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.clone().self_signed(&ca_key).unwrap().pem();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        p.not_before = now - Duration::days(400);
        p.not_after = now + Duration::days(days);
        let crt = p.signed_by(&key, &Issuer::new(ca, &ca_key)).unwrap().pem();
        let files = Files { dir: tempfile::tempdir().unwrap() };
        files.put("ca.crt", &ca_pem);
        files.put("reg.crt", &crt);
        files.put("reg.key", &key.serialize_pem());
        files
    }

    #[test]
    fn a_matching_pair_for_the_name_is_taken() {
        let f = issue(&["reg.example.com"], 90);
        let (own, warning) = f.check().unwrap();
        assert!(own.cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(warning.is_none());
        assert!(!format!("{own:?}").contains("PRIVATE KEY"), "the key never shows in a debug trace");
    }

    #[test]
    fn each_mistake_is_named_at_its_file() {
        let f = issue(&["other.example.com"], 90);
        let e = f.check().unwrap_err();
        assert!(e.message.contains("does not name reg.example.com"), "{}", e.message);
        assert_eq!(e.key.as_deref(), Some("registry_cert_file"));

        let f = issue(&["reg.example.com"], -1);
        assert!(f.check().unwrap_err().message.contains("expired on"));

        let f = issue(&["reg.example.com"], 90);
        f.put("reg.key", &KeyPair::generate().unwrap().serialize_pem());
        let e = f.check().unwrap_err();
        assert_eq!(e.key.as_deref(), Some("registry_key_file"));
        assert!(e.message.contains("is not the key of the certificate"), "{}", e.message);

        let f = issue(&["reg.example.com"], 90);
        let other = issue(&["reg.example.com"], 90);
        f.put("ca.crt", &std::fs::read_to_string(other.dir.path().join("ca.crt")).unwrap());
        assert!(f.check().unwrap_err().message.contains("is not issued by the CA"));

        let f = issue(&["reg.example.com"], 90);
        f.put("reg.key", "-----BEGIN PRIVATE KEY-----\nhunter2\n-----END PRIVATE KEY-----\n");
        let e = f.check().unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);

        let f = issue(&["reg.example.com"], 90);
        std::fs::remove_file(f.dir.path().join("ca.crt")).unwrap();
        assert!(f.check().unwrap_err().message.contains("cannot be read"));
    }

    #[test]
    fn an_ending_certificate_is_taken_with_a_warning() {
        let (_, warning) = issue(&["reg.example.com"], 10).check().unwrap();
        let warning = warning.expect("10 days left is worth saying");
        assert!(warning.contains("ends in 9 days") || warning.contains("ends in 10 days"), "{warning}");
        assert!(issue(&["reg.example.com"], 31).check().unwrap().1.is_none());
    }

    #[test]
    fn relative_paths_are_the_env_files() {
        let n = Named::new(KEYS[0], Where::at(Path::new("/etc/stacks/env.yml"), 1, 1), "certs/reg.crt");
        assert_eq!(n.path, Path::new("/etc/stacks/certs/reg.crt"));
        let n = Named::new(KEYS[0], Where::at(Path::new("/etc/stacks/env.yml"), 1, 1), "/abs/reg.crt");
        assert_eq!(n.path, Path::new("/abs/reg.crt"));
    }
}
