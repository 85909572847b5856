//! **After the hand-off: check.** Takes where the registry is, the CA and
//! the stored credentials, and gives a [`Report`]: whether the private
//! registry and the pull-through cache answer as a Docker client needs them
//! to, step by step, and what a client must be configured with.
//!
//! Every step verifies TLS against the operator's CA only (never the
//! system's roots, never unverified), for the registry's DNS name, while
//! connecting to whatever address the operator gives.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::params::Secret;

/// What to check.
pub struct Target {
    pub fqdn: String,
    /// Where to connect; the certificate is still checked for `fqdn`.
    pub address: std::net::IpAddr,
    pub registry_port: u16,
    pub cache_port: u16,
    pub ca_pem: String,
    pub user: String,
    pub password: Secret,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: Vec<Step>,
    pub repositories: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }
}

/// Runs the steps in order. A step that cannot succeed because an earlier
/// one failed is not run: one clear cause beats a cascade.
pub async fn run(t: &Target) -> Report {
    let mut steps = Vec::new();
    let mut repositories = Vec::new();
    let client = match client(t) {
        Ok(c) => c,
        Err(e) => {
            steps.push(Step { name: "CA".into(), ok: false, detail: e });
            return Report { steps, repositories };
        }
    };
    let registry = format!("https://{}:{}", t.fqdn, t.registry_port);
    let cache = if t.cache_port == 443 {
        format!("https://{}", t.fqdn)
    } else {
        format!("https://{}:{}", t.fqdn, t.cache_port)
    };

    // 1-2: TLS and the anonymous challenge.
    let challenge = client.get(format!("{registry}/v2/")).send().await;
    match challenge {
        Err(e) => {
            steps.push(Step {
                name: format!("TLS to {}:{}", t.address, t.registry_port),
                ok: false,
                detail: explain(&e, t, t.registry_port),
            });
        }
        Ok(resp) => {
            steps.push(Step {
                name: format!("TLS to {}:{}", t.address, t.registry_port),
                ok: true,
                detail: format!("certificate valid for {} under the CA", t.fqdn),
            });
            let status = resp.status().as_u16();
            let www = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let ok = status == 401 && www.to_ascii_lowercase().starts_with("basic");
            steps.push(Step {
                name: "registry asks for credentials".into(),
                ok,
                detail: if ok {
                    format!("401 with {www}")
                } else {
                    format!("expected 401 with a Basic challenge, got {status} {www}; anyone could push if auth is off")
                },
            });
            // 3-4: the stored credentials and the catalog.
            let auth = client
                .get(format!("{registry}/v2/_catalog"))
                .basic_auth(&t.user, Some(t.password.expose()))
                .send()
                .await;
            match auth {
                Ok(r) if r.status().is_success() => {
                    steps.push(Step {
                        name: "stored credentials accepted".into(),
                        ok: true,
                        detail: format!("user {}", t.user),
                    });
                    match r.json::<serde_json::Value>().await {
                        Ok(v) => {
                            repositories = v["repositories"]
                                .as_array()
                                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                                .unwrap_or_default();
                            steps.push(Step {
                                name: "catalog".into(),
                                ok: true,
                                detail: format!("{} repositories", repositories.len()),
                            });
                        }
                        Err(e) => steps.push(Step {
                            name: "catalog".into(),
                            ok: false,
                            detail: format!("not a catalog: {e}"),
                        }),
                    }
                }
                Ok(r) if r.status().as_u16() == 401 => steps.push(Step {
                    name: "stored credentials accepted".into(),
                    ok: false,
                    detail: format!(
                        "401: the registry refused user {} with the stored password; its htpasswd does not match",
                        t.user
                    ),
                }),
                Ok(r) => steps.push(Step {
                    name: "stored credentials accepted".into(),
                    ok: false,
                    detail: format!("unexpected {}", r.status()),
                }),
                Err(e) => steps.push(Step {
                    name: "stored credentials accepted".into(),
                    ok: false,
                    detail: explain(&e, t, t.registry_port),
                }),
            }
        }
    }

    // 5: the cache: TLS, and it answers without credentials (Docker's
    // registry-mirrors never sends any).
    match client.get(format!("{cache}/v2/")).send().await {
        Ok(r) if r.status().is_success() => steps.push(Step {
            name: format!("cache at {}:{}", t.address, t.cache_port),
            ok: true,
            detail: "TLS valid, answers anonymously".into(),
        }),
        Ok(r) => steps.push(Step {
            name: format!("cache at {}:{}", t.address, t.cache_port),
            ok: false,
            detail: format!("expected 200 on /v2/ without credentials, got {}", r.status()),
        }),
        Err(e) => steps.push(Step {
            name: format!("cache at {}:{}", t.address, t.cache_port),
            ok: false,
            detail: explain(&e, t, t.cache_port),
        }),
    }
    Report { steps, repositories }
}

fn client(t: &Target) -> Result<reqwest::Client, String> {
    let ca = reqwest::Certificate::from_pem(t.ca_pem.as_bytes())
        .map_err(|e| format!("the CA file is not a PEM certificate: {e}"))?;
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .connect_timeout(t.timeout)
        .timeout(t.timeout)
        .resolve(&t.fqdn, SocketAddr::new(t.address, 0))
        .build()
        .map_err(|e| format!("cannot set up TLS with the CA: {e}"))
}

/// One line saying what went wrong, from the error's chain of causes.
fn explain(e: &reqwest::Error, t: &Target, port: u16) -> String {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        chain.push(c.to_string());
        cur = c.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    if all.contains("connection refused") {
        format!(
            "connection refused on {}:{port}: is the service running, and is the port open in the security group?",
            t.address
        )
    } else if e.is_timeout() || all.contains("timed out") {
        format!("no answer from {}:{port} within {:?}: a firewall, or the wrong address", t.address, t.timeout)
    } else if all.contains("unknownissuer") || all.contains("unknown issuer") || all.contains("badsignature") {
        format!(
            "the certificate on {}:{port} is not signed by this CA: the CA file and the registry do not belong together",
            t.address
        )
    } else if all.contains("notvalidforname") || all.contains("not valid for name") {
        format!("the certificate on {}:{port} does not name {}", t.address, t.fqdn)
    } else if all.contains("expired") {
        format!("the certificate on {}:{port} has expired", t.address)
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!("TLS failed on {}:{port}: {}", t.address, chain.last().cloned().unwrap_or_default())
    } else {
        format!("{}:{port}: {}", t.address, chain.join(": "))
    }
}

/// What a Docker client needs to use the registry and the cache.
#[derive(Debug, Clone, Serialize)]
pub struct ClientHints {
    pub certs_d: Vec<String>,
    pub daemon_json: serde_json::Value,
    pub login: String,
}

pub fn client_hints(fqdn: &str, registry_port: u16, cache_port: u16, user: &str, password_file: &str) -> ClientHints {
    let cache = if cache_port == 443 { fqdn.to_string() } else { format!("{fqdn}:{cache_port}") };
    ClientHints {
        certs_d: vec![
            format!("/etc/docker/certs.d/{fqdn}:{registry_port}/ca.crt"),
            format!("/etc/docker/certs.d/{cache}/ca.crt"),
        ],
        daemon_json: serde_json::json!({"registry-mirrors": [format!("https://{cache}")]}),
        login: format!("docker login --username {user} --password-stdin {fqdn}:{registry_port} < {password_file}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_both_certs_d_paths_and_never_the_password() {
        let h = client_hints("reg.example.test", 5000, 443, "provision", "/s/registry-password");
        assert_eq!(
            h.certs_d,
            vec!["/etc/docker/certs.d/reg.example.test:5000/ca.crt", "/etc/docker/certs.d/reg.example.test/ca.crt"]
        );
        assert_eq!(h.daemon_json["registry-mirrors"][0], "https://reg.example.test");
        assert!(h.login.contains("--password-stdin") && h.login.ends_with("< /s/registry-password"));
        let h = client_hints("r.t", 5000, 5001, "u", "p");
        assert_eq!(h.daemon_json["registry-mirrors"][0], "https://r.t:5001");
    }
}
