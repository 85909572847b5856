//! The network edge: a Keystone v3 session made by `openstack_sdk` from the
//! resolved [`Credentials`], and [`Cloud::send`], which every request goes
//! through. Reads that get no answer or a 5xx are retried with backoff and
//! say so in one line; writes are never repeated blindly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openstack_sdk::api::{QueryAsync, raw};
use openstack_sdk::config::{Auth as SdkAuth, CloudConfig};
use openstack_sdk::{AsyncOpenStack, OpenStackError};
use serde_json::Value;

use super::api::Call;
use crate::params::credentials::{Auth, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("Keystone at {url} did not accept the credentials from {source_name}: {message}")]
    Auth { url: String, source_name: String, message: String },
    /// Keystone could not be asked at all: the network, TLS or the server.
    #[error("cannot reach Keystone at {url} (credentials from {source_name}): {message}")]
    Login { url: String, source_name: String, message: String },
    #[error("{what}: HTTP {status}: {message}")]
    Http { what: String, status: u16, message: String },
    /// A success whose body is not the JSON it should be: never read as
    /// "nothing", which would pass for an empty list or a missing field.
    #[error("{what}: HTTP {status}, but the answer is not JSON: {message}")]
    NotJson { what: String, status: u16, message: String },
    #[error("{what}: no answer from the cloud after {tries} tries: {message}")]
    Unreachable { what: String, tries: u32, message: String },
    /// The catalog has no endpoint for what the credentials ask for (an
    /// unknown region, an interface the cloud does not offer): input, not
    /// an outage, so it is said at once and never retried.
    #[error("{0}")]
    Catalog(String),
}

impl CloudError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CloudError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Heat's own words, without the request.
    pub fn message(&self) -> String {
        match self {
            CloudError::Http { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// How long reads keep trying through an outage (a restarting heat-api
/// takes about 10 s here), and how they space the tries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub tries: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry { tries: 12, first: Duration::from_millis(500), max: Duration::from_secs(8) }
    }
}

impl Retry {
    /// The pause before try `n` (1-based): doubling, capped.
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(16));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// `openstack_sdk` 0.22.8 finds its Keystone plugins by link-time
/// registration, and its build script anchors none of them (it looks for a
/// Cargo.toml layout that crates.io rewrites). Naming the plugins keeps
/// them linked; without this, application credentials are refused as "not
/// a supported type".
#[used]
static AUTH_PLUGINS: (
    &openstack_sdk_auth_password::PasswordAuthenticator,
    &openstack_sdk_auth_applicationcredential::ApplicationCredentialAuthenticator,
) = (&openstack_sdk_auth_password::ANCHOR, &openstack_sdk_auth_applicationcredential::ANCHOR);

pub struct Cloud {
    os: AsyncOpenStack,
    retry: Retry,
    requests: AtomicU64,
    notice: Box<dyn Fn(&str) + Send + Sync>,
}

/// The SDK's configuration from ours. Its on-disk token cache stays off:
/// a token on disk is a secret left behind.
fn cloud_config(c: &Credentials) -> CloudConfig {
    let mut auth = SdkAuth { auth_url: Some(c.auth_url.clone()), ..Default::default() };
    let auth_type = match &c.auth {
        Auth::Password { username, password, user_domain } => {
            auth.username = Some(username.clone());
            auth.password = Some(password.to_secret_string());
            auth.user_domain_name = Some(user_domain.clone());
            "v3password"
        }
        Auth::ApplicationCredential { id, name, username, user_domain, secret } => {
            auth.application_credential_id = id.clone();
            auth.application_credential_name = name.clone();
            auth.username = username.clone();
            auth.user_domain_name = Some(user_domain.clone());
            auth.application_credential_secret = Some(secret.to_secret_string());
            "v3applicationcredential"
        }
    };
    if let Some(p) = &c.project {
        auth.project_name = p.name.clone();
        auth.project_id = p.id.clone();
        auth.project_domain_name = Some(p.domain.clone());
    }
    // The SDK looks Keystone up in the catalog by the interface asked for,
    // and before the login the catalog holds the auth URL as `public` only:
    // with `internal` it went round asking for a catalog without a token.
    // Keystone is where the credentials say, whatever the interface.
    // (With its trailing slash: the SDK joins `auth/tokens` onto it.)
    let keystone = format!("{}/", c.auth_url.trim_end_matches('/'));
    let options = serde_json::from_value(serde_json::json!({"identity_endpoint_override": keystone}))
        .expect("a string is a configuration value");
    CloudConfig {
        options,
        auth: Some(auth),
        auth_type: Some(auth_type.into()),
        region_name: c.region.clone(),
        interface: Some(c.interface.clone()),
        cacert: c.cacert.as_ref().map(|p| p.display().to_string()),
        verify: Some(c.verify),
        auth_cache: Some(false),
        name: Some("provision".into()),
        ..Default::default()
    }
}

impl Cloud {
    /// Logs in. `notice` gets one-line messages about retries.
    pub async fn connect(c: &Credentials, notice: Box<dyn Fn(&str) + Send + Sync>) -> Result<Cloud, CloudError> {
        reach(c, notice.as_ref()).await.map_err(|message| CloudError::Login {
            url: c.auth_url.clone(),
            source_name: c.source.to_string(),
            message,
        })?;
        let config = cloud_config(c);
        let login = AsyncOpenStack::builder(&config)
            .disable_auth_cache(true)
            .max_auth_retries(2)
            .http_connect_timeout(Duration::from_secs(10))
            .http_timeout(Duration::from_secs(120))
            .connect();
        // Keystone answered the reachability check, so a login that does
        // not end is the SDK going round (openstack_sdk 0.22.8 did with
        // interface `internal` before the override above): bounded, and said.
        let os = match tokio::time::timeout(LOGIN_LIMIT, login).await {
            Ok(r) => r.map_err(|e| CloudError::Auth {
                url: c.auth_url.clone(),
                source_name: c.source.to_string(),
                message: auth_message(&e),
            })?,
            Err(_) => {
                return Err(CloudError::Login {
                    url: c.auth_url.clone(),
                    source_name: c.source.to_string(),
                    message: format!(
                        "the login did not finish within {} s although Keystone answers (interface {})",
                        LOGIN_LIMIT.as_secs(),
                        c.interface
                    ),
                });
            }
        };
        if let Some(catalog) = os.get_token_catalog() {
            let endpoints: Vec<CatalogEntry> = catalog
                .iter()
                .flat_map(|s| {
                    s.endpoints.iter().map(|e| CatalogEntry {
                        service: s.service_type.clone(),
                        interface: e.interface.clone(),
                        region: e.region.clone(),
                    })
                })
                .collect();
            check_catalog(&endpoints, c.region.as_deref(), &c.interface).map_err(CloudError::Catalog)?;
        }
        // The reachability check, Keystone and version discovery: counted so
        // the benchmark's number is every request this tool made.
        Ok(Cloud { os, retry: Retry::default(), requests: AtomicU64::new(3), notice })
    }

    pub fn with_retry(mut self, retry: Retry) -> Cloud {
        self.retry = retry;
        self
    }

    /// Heat acts with the token a create or update is sent with: one about
    /// to run out would fail the stack midway on a cloud without trusts.
    /// So log in again first when less than `margin` is left.
    pub async fn fresh_token(&self, margin: Duration) -> Result<(), CloudError> {
        use openstack_sdk::auth::AuthState;
        let offset = chrono::TimeDelta::from_std(margin).unwrap_or(chrono::TimeDelta::MAX);
        if matches!(self.os.get_auth_state(Some(offset)), Some(AuthState::Valid)) {
            return Ok(());
        }
        tracing::debug!("token expires within {margin:?}; logging in again");
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.os.authorize(None, false, true).await.map_err(|e| CloudError::Auth {
            url: String::new(),
            source_name: "the same credentials".into(),
            message: auth_message(&e),
        })
    }

    /// The project the token is scoped to.
    pub fn project_id(&self) -> Option<String> {
        self.os.get_auth_info()?.token.project?.id
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sends one call whose target may be gone: `None` for a 404, which for
    /// a show means "no such thing" and for a delete "already done".
    pub async fn send_opt(&self, call: &Call) -> Result<Option<Value>, CloudError> {
        match self.send(call).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one call; a JSON answer (or `null` for an empty one) on 2xx.
    pub async fn send(&self, call: &Call) -> Result<Value, CloudError> {
        let mut attempt = 1;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(call = %call.describe(), attempt, "request");
            let result: Result<http::Response<bytes::Bytes>, _> =
                raw(call.clone()).skip_error_check(true).query_async(&self.os).await;
            let failure = match result {
                Ok(rsp) if rsp.status().is_success() => {
                    let body = rsp.body();
                    if body.is_empty() {
                        return Ok(Value::Null);
                    }
                    return serde_json::from_slice(body).map_err(|e| CloudError::NotJson {
                        what: call.describe(),
                        status: rsp.status().as_u16(),
                        message: format!(
                            "{e}; it begins: {:?}",
                            String::from_utf8_lossy(body).trim().chars().take(120).collect::<String>()
                        ),
                    });
                }
                Ok(rsp) => {
                    let status = rsp.status().as_u16();
                    let err = CloudError::Http { what: call.describe(), status, message: error_message(rsp.body()) };
                    // 429 means the request was turned away, not carried
                    // out: any method may be sent again. A 5xx on a write
                    // may have done it, so only reads are repeated.
                    let again = status == 429 || (status >= 500 && call.idempotent());
                    if !again {
                        return Err(err);
                    }
                    err
                }
                Err(openstack_sdk::api::ApiError::Catalog { source }) => {
                    return Err(CloudError::Catalog(format!("{}: {source}", call.describe())));
                }
                Err(e) => {
                    let message = transport_message(&e.to_string());
                    if !call.idempotent() {
                        return Err(CloudError::Unreachable { what: call.describe(), tries: attempt, message });
                    }
                    CloudError::Unreachable { what: call.describe(), tries: attempt, message }
                }
            };
            if attempt >= self.retry.tries {
                return Err(failure);
            }
            let pause = self.retry.backoff(attempt);
            (self.notice)(&format!(
                "{}: {}; trying again in {:.1} s ({attempt}/{})",
                call.describe(),
                short(&failure),
                pause.as_secs_f64(),
                self.retry.tries
            ));
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }
}

/// One endpoint of the token's catalog, as far as choosing goes.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub service: String,
    pub interface: String,
    pub region: Option<String>,
}

/// The services provision calls.
const NEEDED: [&str; 4] = ["orchestration", "compute", "network", "image"];

/// Every needed service has an endpoint for the region and interface the
/// credentials ask for; otherwise what the catalog does have.
pub fn check_catalog(catalog: &[CatalogEntry], region: Option<&str>, interface: &str) -> Result<(), String> {
    // openstacksdk accepts the v2 spellings too.
    let interface = interface.trim_end_matches("URL");
    let in_region = |e: &&CatalogEntry| region.is_none_or(|r| e.region.as_deref() == Some(r));
    if let Some(r) = region
        && !catalog.iter().any(|e| e.region.as_deref() == Some(r))
    {
        let mut regions: Vec<&str> = catalog.iter().filter_map(|e| e.region.as_deref()).collect();
        regions.sort_unstable();
        regions.dedup();
        let hint = crate::params::error::did_you_mean(r, &regions)
            .unwrap_or_else(|| format!("the catalog's regions: {}", regions.join(", ")));
        return Err(format!("region `{r}` is not in this cloud's catalog; {hint}"));
    }
    for service in NEEDED {
        let offered: Vec<&str> =
            catalog.iter().filter(in_region).filter(|e| e.service == service).map(|e| e.interface.as_str()).collect();
        if offered.contains(&interface) {
            continue;
        }
        let where_ = region.map(|r| format!(" in region {r}")).unwrap_or_default();
        return Err(if offered.is_empty() {
            format!("the catalog has no `{service}` service{where_}; provision needs {}", NEEDED.join(", "))
        } else {
            format!(
                "the catalog has no {interface} endpoint for `{service}`{where_}; it has: {} (set interface / OS_INTERFACE)",
                offered.join(", ")
            )
        });
    }
    Ok(())
}

fn short(e: &CloudError) -> String {
    match e {
        CloudError::Http { status, .. } => format!("HTTP {status}"),
        CloudError::Unreachable { message, .. } => message.clone(),
        CloudError::Auth { message, .. } | CloudError::Login { message, .. } => message.clone(),
        CloudError::Catalog(message) => message.clone(),
        CloudError::NotJson { message, .. } => message.clone(),
    }
}

/// How long a login waits for Keystone to answer at all, and when it says
/// that it is waiting.
const LOGIN_WAIT: Duration = Duration::from_secs(30);
const LOGIN_NOTICE: Duration = Duration::from_secs(5);
/// The whole login, once Keystone is known to answer.
const LOGIN_LIMIT: Duration = Duration::from_secs(60);

/// One GET of the auth URL before the SDK logs in. Its version discovery
/// reports every failure as "discovery error", tries several URLs and waits
/// up to two minutes on each; this says why (refused, DNS, TLS and the
/// verifier's reason, no answer, 5xx) within [`LOGIN_WAIT`].
async fn reach(c: &Credentials, notice: &(dyn Fn(&str) + Send + Sync)) -> Result<(), String> {
    let mut client =
        reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(LOGIN_WAIT).user_agent(USER_AGENT);
    if let Some(ca) = &c.cacert {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| format!("the CA file {} holds no PEM certificate", ca.display()))?;
        client = client.tls_certs_merge(certs);
    }
    if !c.verify {
        client = client.tls_danger_accept_invalid_certs(true);
    }
    let client = client.build().map_err(|e| format!("cannot set up HTTPS: {e}"))?;
    let get = client.get(&c.auth_url).send();
    tokio::pin!(get);
    let answer = tokio::select! {
        a = &mut get => a,
        _ = tokio::time::sleep(LOGIN_NOTICE) => {
            notice(&format!("waiting for Keystone at {} (up to {} s)", c.auth_url, LOGIN_WAIT.as_secs()));
            get.await
        }
    };
    match answer {
        Ok(rsp) if rsp.status().is_server_error() => {
            Err(format!("the server answered HTTP {}: it is there but failing", rsp.status().as_u16()))
        }
        Ok(_) => Ok(()),
        Err(e) if e.is_timeout() => Err(format!("no answer within {} s", LOGIN_WAIT.as_secs())),
        Err(e) => {
            let mut chain = vec![e.to_string()];
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                chain.push(c.to_string());
                cause = c.source();
            }
            Err(login_failure(&chain))
        }
    }
}

/// Sent with every request this tool makes.
pub const USER_AGENT: &str = concat!("provision/", env!("CARGO_PKG_VERSION"));

/// The human part of an OpenStack error body. Heat says
/// `{"error": {"message": ..., "type": ...}, "title": ...}`; Nova and
/// Neutron `{"itemNotFound": {"message": ...}}` or `{"NeutronError": ...}`.
/// Heat's traceback is never shown.
pub fn error_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('<')).unwrap_or("");
        return line.chars().take(300).collect();
    };
    let pick = |e: &Value| e.get("message").and_then(Value::as_str).map(str::to_string);
    if let Some(m) = v.get("error").and_then(pick) {
        return m.trim().to_string();
    }
    if let Some(obj) = v.as_object() {
        for inner in obj.values() {
            if let Some(m) = pick(inner) {
                return m.trim().to_string();
            }
        }
    }
    v.get("explanation").and_then(Value::as_str).or_else(|| v.get("title").and_then(Value::as_str)).unwrap_or("").into()
}

/// "error sending request ... Connection refused" → "connection refused".
fn transport_message(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    for (needle, said) in [
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("connection reset", "connection reset"),
        ("dns error", "name not resolved"),
        ("certificate", "TLS certificate not accepted"),
    ] {
        if lower.contains(needle) {
            return said.into();
        }
    }
    text.lines().next().unwrap_or(text).chars().take(200).collect()
}

fn auth_message(e: &OpenStackError) -> String {
    // The SDK's own text ("endpoint version discovery error:") says where it
    // failed, not why; the why is down its chain of causes.
    let mut chain = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        chain.push(c.to_string());
        cause = c.source();
    }
    login_failure(&chain)
}

/// What an operator can act on, from an error and its causes (outermost
/// first): the network, TLS, the server, or the credentials.
fn login_failure(chain: &[String]) -> String {
    let find = |needle: &str| chain.iter().find(|t| t.to_ascii_lowercase().contains(needle));
    if let Some(t) = find("certificate") {
        // rustls names the reason; said in the operator's words.
        let reason = [
            ("UnknownIssuer", "signed by a CA this machine does not trust; give that CA with --os-cacert or cacert in clouds.yaml"),
            ("CaUsedAsEndEntity", "a CA certificate (CA:TRUE) serving as the server's own; the server needs a certificate issued by that CA"),
            ("Expired", "expired"),
            ("NotValidYet", "not valid yet (check the clocks)"),
            ("NotValidForName", "not issued for this host name"),
            ("Revoked", "revoked"),
        ]
        .iter()
        .find(|(k, _)| t.contains(k))
        .map_or_else(|| t.clone(), |(_, said)| said.to_string());
        return format!("the server's TLS certificate is not accepted: {reason}");
    }
    if find("dns error").or_else(|| find("failed to lookup address")).is_some() {
        return "the name does not resolve (DNS)".into();
    }
    if find("connection refused").is_some() {
        return "connection refused: nothing listens there".into();
    }
    if find("timed out").is_some() {
        return "no answer in time".into();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let refused = ["401", "unauthorized", "requires authentication", "could not find user", "invalid user"];
    if refused.iter().any(|r| all.contains(r)) || all.contains("authentication") && all.contains("fail") {
        return "wrong user, password or project (Keystone said 401)".into();
    }
    let mut said: Vec<&str> = Vec::new();
    for t in chain {
        let line = t.lines().next().unwrap_or("").trim().trim_end_matches(':');
        if !line.is_empty() && !said.iter().any(|s| s.contains(line)) {
            said.push(line);
        }
    }
    said.join(": ").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_check_names_the_region_or_interface_that_is_missing() {
        let e = |service: &str, interface: &str, region: &str| CatalogEntry {
            service: service.into(),
            interface: interface.into(),
            region: Some(region.into()),
        };
        let mut catalog = Vec::new();
        for service in NEEDED {
            for interface in ["public", "internal"] {
                catalog.push(e(service, interface, "RegionOne"));
            }
        }
        catalog.push(e("identity", "admin", "RegionTwo"));
        assert_eq!(check_catalog(&catalog, Some("RegionOne"), "public"), Ok(()));
        assert_eq!(check_catalog(&catalog, None, "internalURL"), Ok(()));
        assert_eq!(
            check_catalog(&catalog, Some("RegionOen"), "public").unwrap_err(),
            "region `RegionOen` is not in this cloud's catalog; did you mean `RegionOne`?"
        );
        assert_eq!(
            check_catalog(&catalog, Some("Mars"), "public").unwrap_err(),
            "region `Mars` is not in this cloud's catalog; the catalog's regions: RegionOne, RegionTwo"
        );
        let err = check_catalog(&catalog, Some("RegionOne"), "admin").unwrap_err();
        assert!(
            err.starts_with(
                "the catalog has no admin endpoint for `orchestration` in region RegionOne; it has: public, internal"
            ),
            "{err}"
        );
        assert!(
            check_catalog(&catalog, Some("RegionTwo"), "admin")
                .unwrap_err()
                .contains("no `orchestration` service in region RegionTwo")
        );
    }

    #[test]
    fn login_failures_say_what_to_act_on() {
        let said = |chain: &[&str]| login_failure(&chain.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(
            said(&["error sending request", "client error (Connect)", "Connection refused (os error 111)"])
                .starts_with("connection refused")
        );
        assert!(said(&["error sending request", "dns error", "failed to lookup address information"]).contains("DNS"));
        let tls = said(&["error sending request", "invalid peer certificate: UnknownIssuer"]);
        assert!(tls.contains("does not trust") && tls.contains("--os-cacert"), "{tls}");
        assert!(said(&["x", "invalid peer certificate: Expired"]).ends_with("expired"));
        assert!(said(&["The request you have made requires authentication. (HTTP 401)"]).contains("401"));
        // A port of 5000 is not an HTTP 500.
        assert_eq!(said(&["discovery error at http://k:5000/v3", "boom"]), "discovery error at http://k:5000/v3: boom");
    }

    #[test]
    fn heat_errors_lose_their_traceback() {
        let body = br#"{"explanation": "The server could not comply", "code": 400, "error": {"message": "Property error: resources.manager.properties.flavor: Error validating value 'm1.nope': The Flavor ID (m1.nope) could not be found.", "traceback": "Traceback (most recent call last):\n  File x", "type": "StackValidationFailed"}, "title": "Bad Request"}"#;
        let m = error_message(body);
        assert!(m.starts_with("Property error"));
        assert!(!m.contains("Traceback"));
    }

    #[test]
    fn nova_and_neutron_errors_are_read_too() {
        assert_eq!(
            error_message(br#"{"itemNotFound": {"code": 404, "message": "Keypair k not found"}}"#),
            "Keypair k not found"
        );
        assert_eq!(
            error_message(br#"{"NeutronError": {"type": "X", "message": "no more IPs", "detail": ""}}"#),
            "no more IPs"
        );
        assert_eq!(error_message(b"<html><body>\n502 Bad Gateway\n</body>"), "502 Bad Gateway");
    }

    #[test]
    fn backoff_doubles_and_stops_growing() {
        let r = Retry { tries: 10, first: Duration::from_millis(500), max: Duration::from_secs(4) };
        assert_eq!(r.backoff(1), Duration::from_millis(500));
        assert_eq!(r.backoff(2), Duration::from_secs(1));
        assert_eq!(r.backoff(4), Duration::from_secs(4));
        assert_eq!(r.backoff(40), Duration::from_secs(4));
    }
}
