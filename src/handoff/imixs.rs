//! The Imixs-Cloud configuration directory: `management/` (reverse proxy,
//! UI) and `apps/` (one example app), each stack a `docker-compose.yml`
//! rendered from `templates/imixs/`. Written locally (for the operator to
//! read, change and deploy again) and on the manager under the login
//! user's `imixs-cloud/`, then deployed in order with
//! `docker stack deploy --with-registry-auth`. The private registry, the
//! cache and Redis are not stacks: they run on the manager from its node
//! config, before the swarm pulls anything, so none is deployed here.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tera::Context;

use super::HandoffError;
use super::ssh::Cmd;
use super::swarm::Remote;
use crate::state::{self, Mode};
use crate::templates::Templates;

/// Where the directory goes on the manager, relative to the login user's
/// home (Flatcar's `core` may write there without sudo).
pub const REMOTE_DIR: &str = "imixs-cloud";

pub use crate::bundle::exposure::{PROXY_HTTP_PORT, PROXY_HTTPS_PORT, UI_PORT};

/// The stacks in deployment order: the proxy first (the others register
/// with it), the UI, then the apps.
const STACKS: &[(&str, &str)] = &[("proxy", "management/proxy"), ("ui", "management/ui"), ("hello", "apps/hello")];

/// The images the stacks run.
#[derive(Debug, Clone, Serialize)]
pub struct Images {
    pub proxy: String,
    pub ui: String,
    pub app: String,
}

impl Default for Images {
    fn default() -> Images {
        // Pinned, so a re-run renders (and deploys) the same thing.
        Images { proxy: "traefik:v2.11".into(), ui: "portainer/portainer-ce:2.19.4".into(), app: "busybox:1.36".into() }
    }
}

/// One stack of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFile {
    pub name: String,
    /// Its folder in the directory, e.g. `management/proxy`.
    pub dir: String,
    pub compose: String,
}

impl StackFile {
    pub fn path(&self) -> String {
        format!("{}/docker-compose.yml", self.dir)
    }
}

pub fn render(templates: &Templates, fqdn: &str, images: &Images) -> Result<Vec<StackFile>, HandoffError> {
    let mut ctx = Context::new();
    ctx.insert("fqdn", fqdn);
    // Traefik's rule for the example app, whole, so it enters its YAML as one value.
    ctx.insert("hello_rule", &format!("Host(`hello.{fqdn}`)"));
    ctx.insert("images", images);
    ctx.insert("proxy_http_port", &PROXY_HTTP_PORT);
    ctx.insert("proxy_https_port", &PROXY_HTTPS_PORT);
    ctx.insert("ui_port", &UI_PORT);
    STACKS
        .iter()
        .map(|(name, dir)| {
            let template = format!("imixs/{dir}/docker-compose.yml");
            let compose = templates.render(&template, &ctx).map_err(|e| HandoffError::Swarm(e.to_string()))?;
            serde_saphyr::from_str::<serde_json::Value>(&compose)
                .map_err(|e| HandoffError::Swarm(format!("rendered {template} is not valid YAML: {e}")))?;
            Ok(StackFile { name: name.to_string(), dir: dir.to_string(), compose })
        })
        .collect()
}

/// Writes the directory under `dir`; no secret is in it.
pub fn write_local(dir: &Path, stacks: &[StackFile]) -> Result<Vec<PathBuf>, HandoffError> {
    stacks
        .iter()
        .map(|s| {
            let path = dir.join(s.path());
            state::write_file(&path, s.compose.as_bytes(), Mode::Public)?;
            Ok(path)
        })
        .collect()
}

/// Names are plain words and paths come from [`STACKS`], so quoting is
/// not needed; this keeps it that way if a name ever comes from outside.
fn word(s: &str) -> Result<&str, HandoffError> {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) && !s.contains("..") {
        Ok(s)
    } else {
        Err(HandoffError::Swarm(format!("`{s}` is not a usable stack name or path")))
    }
}

/// Writes each stack's file on the manager and deploys it, in order. A
/// stack whose file on the manager is already this one and that is
/// deployed is left alone, so a re-run does nothing. Returns the steps done.
pub async fn deploy<R: Remote>(
    r: &R,
    manager: &str,
    stacks: &[StackFile],
    notice: &dyn Fn(&str),
) -> Result<Vec<String>, HandoffError> {
    let must = |cmd: Cmd| async move { r.run(manager, &cmd).await?.check(manager, &cmd) };
    let deployed = must(super::commands::stack_ls()).await?;
    let deployed: Vec<&str> = deployed.stdout.lines().map(str::trim).collect();
    let mut done = Vec::new();
    for s in stacks {
        let file = format!("{REMOTE_DIR}/{}", word(&s.path())?);
        let name = word(&s.name)?;
        let current = r.run(manager, &Cmd::new(format!("cat {file}"))).await?;
        if current.ok() && current.stdout == s.compose && deployed.contains(&name) {
            continue;
        }
        notice(&format!("deploying stack {name} from {file}"));
        must(Cmd::new(format!("mkdir -p {REMOTE_DIR}/{} && cat > {file}", word(&s.dir)?)).stdin(s.compose.clone()))
            .await?;
        must(super::commands::stack_deploy(&file, name)).await?;
        done.push(format!("deploy stack {name} ({})", s.path()));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_renders_in_order_with_the_ports_that_do_not_clash() {
        let t = Templates::load(None).unwrap();
        let images = Images { app: "local/busybox:latest".into(), ..Images::default() };
        let stacks = render(&t, "myhost.example.com", &images).unwrap();
        let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["proxy", "ui", "hello"]);
        let proxy: serde_json::Value = serde_saphyr::from_str(&stacks[0].compose).unwrap();
        let ports = &proxy["services"]["traefik"]["ports"];
        let published: Vec<u64> = ports.as_array().unwrap().iter().map(|p| p["published"].as_u64().unwrap()).collect();
        assert_eq!(published, [u64::from(PROXY_HTTP_PORT), u64::from(PROXY_HTTPS_PORT)]);
        assert!(!published.contains(&u64::from(crate::bundle::CACHE_PORT)), "443 is the cache's");
        for s in &stacks {
            let v: serde_json::Value = serde_saphyr::from_str(&s.compose).unwrap();
            assert_eq!(v["networks"]["imixs-proxy-net"]["external"], true, "{}", s.name);
            for (_, svc) in v["services"].as_object().unwrap() {
                assert_eq!(svc["deploy"]["endpoint_mode"], "dnsrr", "{}", s.name);
            }
        }
        let hello: serde_json::Value = serde_saphyr::from_str(&stacks[2].compose).unwrap();
        assert_eq!(hello["services"]["web"]["image"], "local/busybox:latest");
        assert_eq!(
            hello["services"]["web"]["deploy"]["labels"]["traefik.http.routers.hello.rule"],
            "Host(`hello.myhost.example.com`)"
        );
        let ui: serde_json::Value = serde_saphyr::from_str(&stacks[1].compose).unwrap();
        assert_eq!(ui["services"]["portainer"]["ports"][0]["published"], u64::from(UI_PORT));
    }

    #[test]
    fn odd_names_are_refused() {
        assert!(word("management/proxy").is_ok());
        assert!(word("../etc").is_err());
        assert!(word("a; rm -rf /").is_err());
    }

    /// A manager with a file system and a stack list in memory, answering
    /// only the commands `deploy` sends; records them.
    #[derive(Default)]
    struct FakeManager {
        files: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
        stacks: std::sync::Mutex<Vec<String>>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl Remote for FakeManager {
        async fn run(&self, _: &str, cmd: &Cmd) -> Result<crate::handoff::ssh::Output, HandoffError> {
            use crate::handoff::ssh::Output;
            self.asked.lock().unwrap().push(cmd.text.clone());
            let ok = |stdout: String| Output { status: Some(0), stdout, stderr: String::new() };
            let mut files = self.files.lock().unwrap();
            let mut stacks = self.stacks.lock().unwrap();
            if cmd.text == super::super::commands::stack_ls().text {
                return Ok(ok(stacks.iter().map(|s| format!("{s}\n")).collect()));
            }
            if let Some(file) = cmd.text.strip_prefix("cat ").filter(|f| !f.contains(' ')) {
                return Ok(match files.get(file) {
                    Some(text) => ok(text.clone()),
                    None => Output { status: Some(1), stdout: String::new(), stderr: "No such file".into() },
                });
            }
            if let Some((_, file)) = cmd.text.split_once(" && cat > ") {
                let text = String::from_utf8(cmd.stdin.clone().unwrap_or_default()).unwrap();
                files.insert(file.to_string(), text);
                return Ok(ok(String::new()));
            }
            if let Some(rest) = cmd.text.strip_prefix("docker stack deploy --with-registry-auth -c ") {
                let (file, name) = rest.split_once(' ').unwrap();
                assert!(files.contains_key(file), "{file} is deployed before it is written");
                stacks.push(name.to_string());
                return Ok(ok(String::new()));
            }
            Ok(Output {
                status: Some(127),
                stdout: String::new(),
                stderr: format!("fake: unknown command {}", cmd.text),
            })
        }
    }

    #[tokio::test]
    async fn stacks_are_written_and_deployed_in_order_then_left_alone() {
        let t = Templates::load(None).unwrap();
        let stacks = render(&t, "myhost.example.com", &Images::default()).unwrap();
        let m = FakeManager::default();
        let done = deploy(&m, "mgr", &stacks, &|_| {}).await.unwrap();
        assert_eq!(
            done,
            [
                "deploy stack proxy (management/proxy/docker-compose.yml)",
                "deploy stack ui (management/ui/docker-compose.yml)",
                "deploy stack hello (apps/hello/docker-compose.yml)"
            ]
        );
        assert_eq!(m.files.lock().unwrap()["imixs-cloud/apps/hello/docker-compose.yml"], stacks[2].compose);
        m.asked.lock().unwrap().clear();
        assert!(deploy(&m, "mgr", &stacks, &|_| {}).await.unwrap().is_empty(), "a re-run changes nothing");
        assert!(m.asked.lock().unwrap().iter().all(|c| !c.starts_with("docker stack deploy")));

        // A compose file changed on the manager is written and deployed again, alone.
        m.files.lock().unwrap().insert("imixs-cloud/management/ui/docker-compose.yml".into(), "edited".into());
        let done = deploy(&m, "mgr", &stacks, &|_| {}).await.unwrap();
        assert_eq!(done, ["deploy stack ui (management/ui/docker-compose.yml)"]);
    }
}
