//! Where the OpenStack credentials come from. Three sources, first match wins:
//!
//! 1. `--os-cloud NAME` / `OS_CLOUD`: an entry of clouds.yaml, with
//!    secure.yaml merged over it (the OpenStack client's own files);
//! 2. `OS_AUTH_URL` and the other `OS_*` variables (an openrc file);
//! 3. the `os_*` parameters of the environment files (the seed's way).
//!
//! The result says which source it used, and never shows the secret.

use std::path::{Path, PathBuf};

use super::error::{Problem, Where, redact_userinfo};
use super::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CloudsYaml { cloud: String, file: PathBuf },
    Environment,
    EnvFile(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Source::CloudsYaml { cloud, file } => write!(f, "cloud `{cloud}` in {}", file.display()),
            Source::Environment => f.write_str("the OS_* environment variables"),
            Source::EnvFile(p) => write!(f, "the os_* parameters in {}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Password {
        username: String,
        password: Secret,
        user_domain: String,
    },
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        username: Option<String>,
        user_domain: String,
        secret: Secret,
    },
}

/// Which project a token is for. Application credentials carry their own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Project {
    pub name: Option<String>,
    pub id: Option<String>,
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub source: Source,
    pub auth_url: String,
    pub auth: Auth,
    pub project: Option<Project>,
    pub region: Option<String>,
    pub interface: String,
    pub cacert: Option<PathBuf>,
    pub verify: bool,
}

/// Where a cloud command acts, said on one line before it starts and
/// carried in its JSON. Names only, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    pub cloud: Option<String>,
    pub auth_url: String,
    pub project: Option<String>,
    pub region: Option<String>,
    pub user: Option<String>,
    pub interface: String,
}

impl Credentials {
    pub fn target(&self) -> Target {
        let user = match &self.auth {
            Auth::Password { username, .. } => Some(username.clone()),
            Auth::ApplicationCredential { username, id, name, .. } => username
                .clone()
                .or_else(|| name.as_ref().map(|n| format!("application credential {n}")))
                .or_else(|| id.as_ref().map(|i| format!("application credential {i}"))),
        };
        Target {
            cloud: match &self.source {
                Source::CloudsYaml { cloud, .. } => Some(cloud.clone()),
                _ => None,
            },
            auth_url: self.auth_url.clone(),
            project: self.project.as_ref().and_then(|p| p.name.clone().or_else(|| p.id.clone())),
            region: self.region.clone(),
            user,
            interface: self.interface.clone(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let or = |v: &Option<String>, none: &'static str| v.clone().unwrap_or_else(|| none.to_string());
        match &self.cloud {
            Some(c) => write!(f, "cloud {c} ({})", self.auth_url)?,
            None => write!(f, "{}", self.auth_url)?,
        }
        write!(
            f,
            ", project {}, region {}, user {}, {} endpoints",
            or(&self.project, "(the user's default)"),
            or(&self.region, "(any)"),
            or(&self.user, "(from the credential)"),
            self.interface
        )
    }
}

/// What the command line says about credentials.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub os_cloud: Option<String>,
    pub cacert: Option<PathBuf>,
    pub insecure: bool,
}

/// The seed's `os_*` parameters as read from the environment files.
#[derive(Debug, Clone, Default)]
pub struct EnvFileCredentials {
    pub file: Option<PathBuf>,
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub region: Option<String>,
    pub project_name: Option<String>,
    pub user_domain: String,
    pub project_domain: String,
}

pub struct Resolved {
    pub credentials: Option<Credentials>,
    pub warnings: Vec<String>,
}

/// Picks the source and reads it. `var` reads an environment variable, so
/// tests can give their own.
pub fn resolve(
    req: &Request,
    var: &dyn Fn(&str) -> Option<String>,
    from_env_files: &EnvFileCredentials,
) -> Result<Resolved, Problem> {
    let mut warnings = Vec::new();
    let cloud = req.os_cloud.clone().or_else(|| var("OS_CLOUD")).filter(|c| !c.is_empty());
    let mut creds = if let Some(cloud) = cloud {
        let mut c = from_clouds_yaml(&cloud, var, &mut warnings)?;
        over_cloud(&mut c, var, &mut warnings);
        c
    } else if let Some(url) = var("OS_AUTH_URL").filter(|u| !u.is_empty()) {
        from_os_vars(url, var)?
    } else if let Some(url) = &from_env_files.auth_url {
        from_env_file(url, from_env_files, &mut warnings)?
    } else {
        return Ok(Resolved { credentials: None, warnings });
    };
    let (url, warning) = keystone_v3_url(&creds.auth_url);
    creds.auth_url = url;
    warnings.extend(warning);
    // As the OpenStack client: --os-cacert, else OS_CACERT, else the
    // cloud's own `cacert`.
    if let Some(ca) = &req.cacert {
        creds.cacert = Some(ca.clone());
    } else if let Some(ca) = var("OS_CACERT").filter(|c| !c.is_empty()) {
        creds.cacert = Some(PathBuf::from(ca));
    }
    // Input, found before any request: exit 2, not a TLS failure later.
    let at = |variable: &str| match &creds.source {
        Source::CloudsYaml { file, .. } | Source::EnvFile(file) => Where::file(file),
        Source::Environment => Where::variable(variable),
    };
    if let Some(ca) = &creds.cacert
        && !ca.is_file()
    {
        return Err(Problem::new(
            at("OS_CACERT"),
            format!("the CA file {} does not exist or is not a file", ca.display()),
        )
        .hint("give the cloud's CA bundle with --os-cacert, OS_CACERT or the cloud's `cacert`"));
    }
    if let Auth::ApplicationCredential { id, name, username, .. } = &creds.auth
        && (id.is_none() && (name.is_none() || username.is_none()))
    {
        return Err(Problem::new(
            at("OS_APPLICATION_CREDENTIAL_ID"),
            "an application credential needs its ID, or its name and the user's name",
        )
        .hint("set OS_APPLICATION_CREDENTIAL_ID (or application_credential_id in clouds.yaml)"));
    }
    if req.insecure || var("OS_INSECURE").is_some_and(|v| truthy(&v)) {
        creds.verify = false;
        warnings.push("TLS certificates of the cloud will NOT be verified (--insecure)".into());
    }
    Ok(Resolved { credentials: Some(creds), warnings })
}

/// The OpenStack client lets `OS_*` variables override the named cloud's
/// values (its options default to them, and options win over clouds.yaml):
/// the same here, each override said in a warning so none is a surprise.
fn over_cloud(c: &mut Credentials, var: &dyn Fn(&str) -> Option<String>, warnings: &mut Vec<String>) {
    let get = |k: &str| var(k).filter(|v| !v.is_empty());
    let mut used = Vec::new();
    let mut take = |k: &'static str| {
        let v = get(k);
        if v.is_some() {
            used.push(k);
        }
        v
    };
    if let Some(v) = take("OS_AUTH_URL") {
        c.auth_url = v;
    }
    if let Some(v) = take("OS_REGION_NAME") {
        c.region = Some(v);
    }
    if let Some(v) = take("OS_INTERFACE") {
        c.interface = v;
    }
    match &mut c.auth {
        Auth::Password { username, password, user_domain } => {
            if let Some(v) = take("OS_USERNAME") {
                *username = v;
            }
            if let Some(v) = take("OS_PASSWORD") {
                *password = Secret::new(v);
            }
            if let Some(v) = take("OS_USER_DOMAIN_NAME") {
                *user_domain = v;
            }
        }
        Auth::ApplicationCredential { id, secret, .. } => {
            if let Some(v) = take("OS_APPLICATION_CREDENTIAL_ID") {
                *id = Some(v);
            }
            if let Some(v) = take("OS_APPLICATION_CREDENTIAL_SECRET") {
                *secret = Secret::new(v);
            }
        }
    }
    let (name, id) = (take("OS_PROJECT_NAME"), take("OS_PROJECT_ID"));
    if name.is_some() || id.is_some() {
        let p = c.project.get_or_insert_with(|| Project { domain: "Default".into(), ..Default::default() });
        p.name = name;
        p.id = id;
    }
    if let Some(v) = take("OS_PROJECT_DOMAIN_NAME")
        && let Some(p) = &mut c.project
    {
        p.domain = v;
    }
    if !used.is_empty() {
        warnings.push(format!(
            "{} from the environment override{} the cloud's own values, as with the OpenStack client",
            used.join(", "),
            if used.len() == 1 { "s" } else { "" }
        ));
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Keystone v2 is gone from every supported cloud; the seed's
/// `https://identity:5000/v2` means the same service's v3.
pub fn keystone_v3_url(url: &str) -> (String, Option<String>) {
    let trimmed = url.trim_end_matches('/');
    for v2 in ["/v2.0", "/v2"] {
        if let Some(base) = trimmed.strip_suffix(v2) {
            let v3 = format!("{base}/v3");
            // Shown on stderr and kept in the JSON result: never the password
            // of a URL from clouds.yaml or OS_AUTH_URL.
            let (from, to) = (redact_userinfo(trimmed), redact_userinfo(&v3));
            return (v3, Some(format!("Keystone v2 URL {from} is used as {to} (v2 is no longer served)")));
        }
    }
    if trimmed.ends_with("/v3") { (trimmed.to_string(), None) } else { (format!("{trimmed}/v3"), None) }
}

fn from_env_file(url: &str, e: &EnvFileCredentials, warnings: &mut Vec<String>) -> Result<Credentials, Problem> {
    let file = e.file.clone().unwrap_or_default();
    let missing = |what: &str| {
        Problem::new(Where::file(&file), format!("os_authurl is set but {what} is missing"))
            .key(what)
            .hint("give all of os_authurl, os_username, os_password, or use clouds.yaml (--os-cloud)")
    };
    let username = e.username.clone().ok_or_else(|| missing("os_username"))?;
    let password = e.password.clone().ok_or_else(|| missing("os_password"))?;
    warnings.extend(readable_by_others(&file));
    Ok(Credentials {
        source: Source::EnvFile(file),
        auth_url: url.to_string(),
        auth: Auth::Password { username, password, user_domain: e.user_domain.clone() },
        project: e.project_name.as_ref().map(|name| Project {
            name: Some(name.clone()),
            id: None,
            domain: e.project_domain.clone(),
        }),
        region: e.region.clone(),
        interface: "public".into(),
        cacert: None,
        verify: true,
    })
}

fn from_os_vars(url: String, var: &dyn Fn(&str) -> Option<String>) -> Result<Credentials, Problem> {
    let get = |k: &str| var(k).filter(|v| !v.is_empty());
    let user_domain =
        get("OS_USER_DOMAIN_NAME").or_else(|| get("OS_USER_DOMAIN_ID")).unwrap_or_else(|| "Default".into());
    let env_problem = |variable: &str, msg: &str| Problem::new(Where::variable(variable), msg.to_string());
    let auth = match get("OS_AUTH_TYPE").as_deref() {
        Some("v3applicationcredential") => Auth::ApplicationCredential {
            id: get("OS_APPLICATION_CREDENTIAL_ID"),
            name: get("OS_APPLICATION_CREDENTIAL_NAME"),
            username: get("OS_USERNAME"),
            user_domain,
            secret: Secret::new(get("OS_APPLICATION_CREDENTIAL_SECRET").ok_or_else(|| {
                env_problem(
                    "OS_APPLICATION_CREDENTIAL_SECRET",
                    "OS_AUTH_TYPE=v3applicationcredential needs OS_APPLICATION_CREDENTIAL_SECRET",
                )
            })?),
        },
        None | Some("password") | Some("v3password") => Auth::Password {
            username: get("OS_USERNAME")
                .ok_or_else(|| env_problem("OS_USERNAME", "OS_AUTH_URL is set but OS_USERNAME is not"))?,
            password: Secret::new(
                get("OS_PASSWORD")
                    .ok_or_else(|| env_problem("OS_PASSWORD", "OS_AUTH_URL is set but OS_PASSWORD is not"))?,
            ),
            user_domain,
        },
        Some(other) => {
            return Err(env_problem(
                "OS_AUTH_TYPE",
                &format!("OS_AUTH_TYPE={other} is not supported; use password or v3applicationcredential"),
            ));
        }
    };
    let project_name = get("OS_PROJECT_NAME").or_else(|| get("OS_TENANT_NAME"));
    let project_id = get("OS_PROJECT_ID").or_else(|| get("OS_TENANT_ID"));
    let project = (project_name.is_some() || project_id.is_some()).then(|| Project {
        name: project_name,
        id: project_id,
        domain: get("OS_PROJECT_DOMAIN_NAME")
            .or_else(|| get("OS_PROJECT_DOMAIN_ID"))
            .unwrap_or_else(|| "Default".into()),
    });
    Ok(Credentials {
        source: Source::Environment,
        auth_url: url,
        auth,
        project,
        region: get("OS_REGION_NAME"),
        interface: get("OS_INTERFACE").unwrap_or_else(|| "public".into()),
        cacert: None,
        verify: true,
    })
}

/// The places the OpenStack client looks for its files, in its order.
fn config_dirs(var: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Some(x) = var("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        dirs.push(PathBuf::from(x).join("openstack"));
    } else if let Some(home) = var("HOME") {
        dirs.push(PathBuf::from(home).join(".config/openstack"));
    }
    dirs.push(PathBuf::from("/etc/openstack"));
    dirs
}

/// One cloud of clouds.yaml, as far as choosing one goes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CloudEntry {
    pub name: String,
    pub auth_url: Option<String>,
    pub region: Option<String>,
    pub file: PathBuf,
}

/// The clouds of the clouds.yaml the OpenStack client would read, by
/// name; none when there is no such file.
pub fn clouds(var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<CloudEntry>, Problem> {
    let Some(file) = find_file(var, "OS_CLIENT_CONFIG_FILE", &["clouds.yaml", "clouds.yml"]) else {
        return Ok(Vec::new());
    };
    let doc = read_yaml(&file)?;
    let s = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).map(str::to_string);
    Ok(doc
        .get("clouds")
        .and_then(|c| c.as_object())
        .map(|c| {
            c.iter()
                .map(|(name, e)| CloudEntry {
                    name: name.clone(),
                    auth_url: s(e.pointer("/auth/auth_url")),
                    region: s(e.get("region_name"))
                        .or_else(|| s(e.pointer("/regions/0")))
                        .or_else(|| s(e.pointer("/regions/0/name"))),
                    file: file.clone(),
                })
                .collect()
        })
        .unwrap_or_default())
}

fn find_file(var: &dyn Fn(&str) -> Option<String>, explicit: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = var(explicit).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    config_dirs(var).into_iter().flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file())
}

fn read_yaml(path: &Path) -> Result<serde_json::Value, Problem> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Problem::new(Where::file(path), format!("cannot read: {e}")))?;
    serde_saphyr::from_str::<serde_json::Value>(&text).map_err(|e| {
        let at = e.location().map_or(Where::file(path), |l| Where::at(path, l.line(), l.column()));
        Problem::new(at, format!("not valid YAML: {}", e.without_snippet().to_string().lines().next().unwrap_or("")))
    })
}

fn from_clouds_yaml(
    cloud: &str,
    var: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Credentials, Problem> {
    let Some(file) = find_file(var, "OS_CLIENT_CONFIG_FILE", &["clouds.yaml", "clouds.yml"]) else {
        return Err(Problem::new(
            Where::file(Path::new("clouds.yaml")),
            format!("cloud `{cloud}` was asked for, but no clouds.yaml was found"),
        )
        .hint("looked in ./, ~/.config/openstack/, /etc/openstack/ and OS_CLIENT_CONFIG_FILE"));
    };
    let doc = read_yaml(&file)?;
    let clouds = doc.get("clouds").and_then(|c| c.as_object());
    let Some(mut entry) = clouds.and_then(|c| c.get(cloud)).cloned() else {
        let known: Vec<&str> = clouds.map(|c| c.keys().map(String::as_str).collect()).unwrap_or_default();
        return Err(Problem::new(Where::file(&file), format!("no cloud named `{cloud}`"))
            .key(cloud)
            .suggest_from(cloud, &known)
            .hint_if_none(format!("clouds in this file: {}", known.join(", "))));
    };
    let mut files_with_secrets = vec![file.clone()];
    if let Some(secure) = find_file(var, "OS_CLIENT_SECURE_FILE", &["secure.yaml", "secure.yml"]) {
        let sdoc = read_yaml(&secure)?;
        if let Some(s) = sdoc.get("clouds").and_then(|c| c.get(cloud)) {
            merge(&mut entry, s);
            files_with_secrets = vec![secure];
        }
    }
    let auth = entry.get("auth").cloned().unwrap_or_default();
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let bad = |msg: String| Problem::new(Where::file(&file), msg).key(cloud);
    let auth_url = s(&auth, "auth_url").ok_or_else(|| bad(format!("cloud `{cloud}` has no auth.auth_url")))?;
    let user_domain =
        s(&auth, "user_domain_name").or_else(|| s(&auth, "user_domain_id")).unwrap_or_else(|| "Default".into());
    let auth_type = s(&entry, "auth_type").unwrap_or_else(|| "password".into());
    let creds_auth = match auth_type.as_str() {
        "password" | "v3password" => {
            Auth::Password {
                username: s(&auth, "username").ok_or_else(|| bad(format!("cloud `{cloud}` has no auth.username")))?,
                password: Secret::new(s(&auth, "password").ok_or_else(|| {
                    bad(format!("cloud `{cloud}` has no auth.password (in clouds.yaml or secure.yaml)"))
                })?),
                user_domain,
            }
        }
        "v3applicationcredential" => Auth::ApplicationCredential {
            id: s(&auth, "application_credential_id"),
            name: s(&auth, "application_credential_name"),
            username: s(&auth, "username"),
            user_domain,
            secret: Secret::new(
                s(&auth, "application_credential_secret")
                    .ok_or_else(|| bad(format!("cloud `{cloud}` has no auth.application_credential_secret")))?,
            ),
        },
        other => {
            return Err(bad(format!("auth_type `{other}` is not supported; use password or v3applicationcredential")));
        }
    };
    for f in &files_with_secrets {
        warnings.extend(readable_by_others(f));
    }
    let project_name = s(&auth, "project_name").or_else(|| s(&auth, "tenant_name"));
    let project_id = s(&auth, "project_id").or_else(|| s(&auth, "tenant_id"));
    let project = (project_name.is_some() || project_id.is_some()).then(|| Project {
        name: project_name,
        id: project_id,
        domain: s(&auth, "project_domain_name")
            .or_else(|| s(&auth, "project_domain_id"))
            .unwrap_or_else(|| "Default".into()),
    });
    let verify = entry.get("verify").and_then(|v| v.as_bool()).unwrap_or(true);
    Ok(Credentials {
        source: Source::CloudsYaml { cloud: cloud.to_string(), file: file.clone() },
        auth_url,
        auth: creds_auth,
        project,
        // openstacksdk's rule: region_name, else the first of `regions:`
        // (each a name or a mapping with `name`).
        region: s(&entry, "region_name").or_else(|| {
            let first = entry.get("regions")?.as_array()?.first()?;
            first.as_str().map(str::to_string).or_else(|| s(first, "name"))
        }),
        interface: s(&entry, "interface").unwrap_or_else(|| "public".into()),
        cacert: s(&entry, "cacert").map(PathBuf::from),
        verify,
    })
}

/// secure.yaml's values go over clouds.yaml's, key by key.
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A warning when a file that holds a password can be read by group or others.
pub fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} holds a password and is readable by others (mode {:04o}); run: chmod 600 {}",
            path.display(),
            mode,
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_v2_warning_never_shows_userinfo() {
        let (url, w) = keystone_v3_url("https://admin:hunter2@identity:5000/v2.0");
        assert_eq!(url, "https://admin:hunter2@identity:5000/v3", "the URL itself is used as given");
        let w = w.unwrap();
        assert!(!w.contains("hunter2") && !w.contains("admin"), "{w}");
        assert!(w.contains("https://***@identity:5000/v2.0"), "{w}");
    }

    #[test]
    fn v2_urls_become_v3_with_a_warning() {
        let (u, w) = keystone_v3_url("https://identity:5000/v2");
        assert_eq!(u, "https://identity:5000/v3");
        assert!(w.unwrap().contains("v2"));
        assert_eq!(keystone_v3_url("https://k:5000/v2.0/").0, "https://k:5000/v3");
        assert_eq!(keystone_v3_url("https://k:5000/v3").1, None);
        assert_eq!(keystone_v3_url("https://k:5000").0, "https://k:5000/v3");
    }

    #[test]
    fn os_vars_beat_env_file_and_clouds_yaml_beats_both() {
        let envfile = EnvFileCredentials {
            file: Some("seed.yml".into()),
            auth_url: Some("https://seed:5000/v2".into()),
            username: Some("engapa".into()),
            password: Some(Secret::new("xxxxx")),
            ..Default::default()
        };
        let r = resolve(&Request::default(), &vars(&[]), &envfile).unwrap();
        assert_eq!(r.credentials.unwrap().source, Source::EnvFile("seed.yml".into()));

        let os = vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_NAME", "demo"),
        ]);
        let c = resolve(&Request::default(), &os, &envfile).unwrap().credentials.unwrap();
        assert_eq!(c.source, Source::Environment);
        assert_eq!(c.project.unwrap().name.as_deref(), Some("demo"));

        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(&clouds, "clouds:\n  lab:\n    auth:\n      auth_url: http://lab/v3\n      username: a\n      project_name: p\n    region_name: R\n").unwrap();
        std::fs::write(dir.path().join("secure.yaml"), "clouds:\n  lab:\n    auth:\n      password: s3cret\n").unwrap();
        let p = |f: &str| dir.path().join(f).to_string_lossy().to_string();
        let env = vars(&[
            ("OS_CLOUD", "lab"),
            ("OS_CLIENT_CONFIG_FILE", &p("clouds.yaml")),
            ("OS_CLIENT_SECURE_FILE", &p("secure.yaml")),
        ]);
        let c = resolve(&Request::default(), &env, &envfile).unwrap().credentials.unwrap();
        assert!(matches!(c.source, Source::CloudsYaml { .. }));
        assert_eq!(c.region.as_deref(), Some("R"));
        assert_eq!(c.auth_url, "http://lab/v3");
        match c.auth {
            Auth::Password { password, .. } => assert_eq!(password.expose(), "s3cret"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clouds_are_listed_from_the_file_the_client_would_read() {
        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(
            &clouds,
            "clouds:\n  prod:\n    auth: {auth_url: http://p/v3, password: hunter2}\n    regions: [{name: R2}]\n  \
             lab:\n    region_name: R1\n",
        )
        .unwrap();
        let listed = clouds_from(&vars(&[("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap())]));
        let names: Vec<(&str, Option<&str>)> = listed.iter().map(|c| (c.name.as_str(), c.region.as_deref())).collect();
        assert_eq!(names, [("lab", Some("R1")), ("prod", Some("R2"))]);
        assert_eq!(listed[1].auth_url.as_deref(), Some("http://p/v3"));
        assert!(!format!("{listed:?}").contains("hunter2"));
    }

    fn clouds_from(var: &dyn Fn(&str) -> Option<String>) -> Vec<CloudEntry> {
        clouds(var).unwrap()
    }

    #[test]
    fn the_region_is_region_name_else_the_first_of_regions_and_the_secure_file_is_os_client_secure_file() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        let secure = elsewhere.path().join("my-secure.yaml");
        std::fs::write(&secure, "clouds:\n  a:\n    auth: {password: from-secure}\n").unwrap();
        let region = |entry: &str| {
            std::fs::write(
                &clouds,
                format!("clouds:\n  a:\n    auth: {{auth_url: http://x/v3, username: u, password: p}}\n{entry}"),
            )
            .unwrap();
            let env = vars(&[
                ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
                ("OS_CLIENT_SECURE_FILE", secure.to_str().unwrap()),
            ]);
            let req = Request { os_cloud: Some("a".into()), ..Default::default() };
            let c = resolve(&req, &env, &EnvFileCredentials::default()).unwrap().credentials.unwrap();
            match &c.auth {
                Auth::Password { password, .. } => assert_eq!(password.expose(), "from-secure"),
                other => panic!("{other:?}"),
            }
            c.region
        };
        assert_eq!(region("    regions: [Two, Three]\n").as_deref(), Some("Two"));
        assert_eq!(region("    regions:\n      - name: Four\n        values: {}\n").as_deref(), Some("Four"));
        assert_eq!(region("    region_name: One\n    regions: [Two]\n").as_deref(), Some("One"));
        assert_eq!(region(""), None);
    }

    /// Observed with the OpenStack client on the local cloud: with OS_CLOUD
    /// set, OS_REGION_NAME, OS_PASSWORD, OS_AUTH_URL (and the rest) win over
    /// clouds.yaml, and OS_CACERT over its `cacert`.
    #[test]
    fn os_variables_override_the_named_cloud_as_the_openstack_client_does() {
        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        let (cloud_ca, env_ca) = (dir.path().join("cloud-ca.pem"), dir.path().join("env-ca.pem"));
        std::fs::write(&cloud_ca, "").unwrap();
        std::fs::write(&env_ca, "").unwrap();
        std::fs::write(
            &clouds,
            format!("clouds:\n  lab:\n    auth: {{auth_url: http://lab/v3, username: a, password: p, project_name: demo}}\n    region_name: R\n    cacert: {}\n", cloud_ca.display()),
        )
        .unwrap();
        let base = [("OS_CLOUD", "lab"), ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap())];
        let resolved = |more: &[(&str, &str)]| {
            let all: Vec<(&str, &str)> = base.iter().chain(more).copied().collect();
            resolve(&Request::default(), &vars(&all), &EnvFileCredentials::default()).unwrap()
        };
        let plain = resolved(&[]);
        assert!(plain.warnings.iter().all(|w| !w.contains("override")), "{:?}", plain.warnings);
        assert_eq!(plain.credentials.unwrap().cacert.unwrap(), cloud_ca);
        let r = resolved(&[
            ("OS_REGION_NAME", "Two"),
            ("OS_PASSWORD", "from-env"),
            ("OS_AUTH_URL", "http://other:5000/v3"),
            ("OS_INTERFACE", "internal"),
            ("OS_PROJECT_NAME", "other"),
            ("OS_CACERT", env_ca.to_str().unwrap()),
        ]);
        let c = r.credentials.unwrap();
        assert_eq!(c.region.as_deref(), Some("Two"));
        assert_eq!(c.auth_url, "http://other:5000/v3");
        assert_eq!(c.interface, "internal");
        assert_eq!(c.project.unwrap().name.as_deref(), Some("other"));
        assert_eq!(c.cacert.unwrap(), env_ca);
        match c.auth {
            Auth::Password { password, .. } => assert_eq!(password.expose(), "from-env"),
            other => panic!("{other:?}"),
        }
        let w = r.warnings.join("\n");
        assert!(
            w.contains(
                "OS_AUTH_URL, OS_REGION_NAME, OS_INTERFACE, OS_PASSWORD, OS_PROJECT_NAME from the environment override"
            ),
            "{w}"
        );
        assert!(!w.contains("from-env"), "the value is never shown: {w}");
    }

    #[test]
    fn a_missing_ca_file_and_an_application_credential_without_id_are_input_problems() {
        let env = |extra: &[(&str, &str)]| {
            let mut all = vec![("OS_AUTH_URL", "http://k/v3"), ("OS_USERNAME", "u"), ("OS_PASSWORD", "p")];
            all.extend_from_slice(extra);
            resolve(&Request::default(), &vars(&all), &EnvFileCredentials::default())
        };
        let e = env(&[("OS_CACERT", "/nonexistent/ca.pem")]).err().unwrap();
        assert!(e.message.contains("/nonexistent/ca.pem does not exist"), "{}", e.message);
        let e = env(&[("OS_AUTH_TYPE", "v3applicationcredential"), ("OS_APPLICATION_CREDENTIAL_SECRET", "s")])
            .err()
            .unwrap();
        assert!(e.message.contains("needs its ID"), "{}", e.message);
        let ok = env(&[
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
        ]);
        assert!(ok.is_ok());
    }

    #[test]
    fn unknown_cloud_gets_a_suggestion() {
        let dir = tempfile::tempdir().unwrap();
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(&clouds, "clouds:\n  production:\n    auth: {auth_url: http://x/v3}\n").unwrap();
        let env = vars(&[("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap())]);
        let req = Request { os_cloud: Some("prodution".into()), ..Default::default() };
        let e = resolve(&req, &env, &EnvFileCredentials::default()).err().unwrap();
        assert_eq!(e.hint.as_deref(), Some("did you mean `production`?"));
    }

    #[test]
    fn group_readable_password_file_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secure.yaml");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by_others(&f).unwrap().contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(readable_by_others(&f), None);
    }
}
