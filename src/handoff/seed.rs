//! `seed_images`: each image copied into the stack's private registry on
//! the manager, and pulled through its cache on the way, so a CI job finds
//! its base images there instead of asking Docker Hub again. The copy runs
//! on the manager with its Docker; the logins it needs go in on stdin and
//! are logged out again at the end, whatever happened. Nothing of this is
//! in Heat.

use super::HandoffError;
use super::commands::shell_word;
use super::ssh::Cmd;
use super::swarm::Remote;
use crate::params::Secret;

/// A registry and the login it takes.
#[derive(Debug, Clone)]
pub struct Login {
    pub registry: String,
    pub user: String,
    pub password: Secret,
}

/// What to seed, from where, into where.
#[derive(Debug, Clone)]
pub struct Seed {
    pub images: Vec<String>,
    /// The stack's private registry (`fqdn:5000`) and its login.
    pub into: Login,
    /// The registry the images come from, when not Docker Hub through the
    /// stack's cache; the login when it takes one.
    pub from: Option<(String, Option<Login>)>,
}

/// An image as the manager pulls it: through the daemon's mirror (the
/// cache) for Docker Hub, or from the given registry.
pub fn source_ref(image: &str, from: Option<&str>) -> String {
    match from {
        Some(registry) => format!("{registry}/{image}"),
        None => image.to_string(),
    }
}

/// The image's name in the private registry: Docker Hub's short names
/// become `library/…`, so `redis:7` is `fqdn:5000/library/redis:7`.
pub fn target_ref(image: &str, registry: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_registry = image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let path = if has_registry {
        image.split_once('/').map_or(image, |(_, rest)| rest).to_string()
    } else if image.contains('/') {
        image.to_string()
    } else {
        format!("library/{image}")
    };
    format!("{registry}/{path}")
}

fn login(l: &Login) -> Cmd {
    let mut c = Cmd::new(format!("docker login {} -u {} --password-stdin", l.registry, shell_word(&l.user)));
    c.stdin = Some(l.password.expose().as_bytes().to_vec());
    c
}

fn logout(registry: &str) -> Cmd {
    Cmd::new(format!("docker logout {registry}"))
}

/// The commands that copy one image, in order.
pub fn copy_commands(image: &str, seed: &Seed) -> Vec<Cmd> {
    let from = source_ref(image, seed.from.as_ref().map(|(r, _)| r.as_str()));
    let to = target_ref(image, &seed.into.registry);
    vec![
        Cmd::new(format!("docker pull -q {}", shell_word(&from))),
        Cmd::new(format!("docker tag {} {}", shell_word(&from), shell_word(&to))),
        Cmd::new(format!("docker push -q {}", shell_word(&to))),
    ]
}

/// Seeds every image not yet in the private registry; says each one as it
/// goes. Returns the steps done (empty on a re-run).
pub async fn seed<R: Remote>(
    r: &R,
    manager: &str,
    seed: &Seed,
    notice: &dyn Fn(&str),
) -> Result<Vec<String>, HandoffError> {
    if seed.images.is_empty() {
        return Ok(Vec::new());
    }
    let must = |cmd: Cmd| async move { r.run(manager, &cmd).await?.check(manager, &cmd) };
    let mut registries = vec![seed.into.registry.clone()];
    let copied = async {
        must(login(&seed.into)).await?;
        if let Some((registry, Some(l))) = &seed.from {
            registries.push(registry.clone());
            must(login(&Login { registry: registry.clone(), ..l.clone() })).await?;
        }
        let mut done = Vec::new();
        for (n, image) in seed.images.iter().enumerate() {
            let to = target_ref(image, &seed.into.registry);
            let present = r.run(manager, &Cmd::new(format!("docker pull -q {}", shell_word(&to)))).await?;
            if present.ok() {
                continue;
            }
            notice(&format!("seeding image {}/{}: {image} → {to}", n + 1, seed.images.len()));
            for cmd in copy_commands(image, seed) {
                must(cmd).await?;
            }
            done.push(format!("seed image {image}"));
        }
        Ok::<_, HandoffError>(done)
    }
    .await;
    // The logins leave the manager whatever happened.
    for registry in &registries {
        let _ = r.run(manager, &logout(registry)).await;
    }
    copied
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::ssh::Output;
    use super::*;

    #[test]
    fn names_in_the_private_registry_follow_dockers_rules() {
        let r = "reg.example.com:5000";
        assert_eq!(target_ref("redis:7.2-alpine", r), "reg.example.com:5000/library/redis:7.2-alpine");
        assert_eq!(target_ref("bitnami/redis:7", r), "reg.example.com:5000/bitnami/redis:7");
        assert_eq!(target_ref("quay.io/coreos/etcd:v3", r), "reg.example.com:5000/coreos/etcd:v3");
        assert_eq!(target_ref("localhost:5001/x/y", r), "reg.example.com:5000/x/y");
        assert_eq!(source_ref("x/y:1", Some("mirror.corp:443")), "mirror.corp:443/x/y:1");
        assert_eq!(source_ref("redis:7", None), "redis:7");
    }

    /// A manager that answers from a script and records what it was asked.
    struct Scripted {
        present: Vec<String>,
        fail_on: Option<&'static str>,
        asked: Mutex<Vec<(String, Option<Vec<u8>>)>>,
    }

    impl Remote for Scripted {
        async fn run(&self, _: &str, cmd: &Cmd) -> Result<Output, HandoffError> {
            self.asked.lock().unwrap().push((cmd.text.clone(), cmd.stdin.clone()));
            let pull_present = self.present.iter().any(|p| cmd.text == format!("docker pull -q {p}"));
            let failed = self.fail_on.is_some_and(|f| cmd.text.contains(f));
            let status = if cmd.text.starts_with("docker pull -q reg") && !pull_present || failed { 1 } else { 0 };
            Ok(Output { status: Some(status), stdout: String::new(), stderr: String::new() })
        }
    }

    fn seed(from: Option<(String, Option<Login>)>) -> Seed {
        Seed {
            images: vec!["redis:7".into(), "alpine:3".into()],
            into: Login { registry: "reg:5000".into(), user: "provision".into(), password: Secret::new("s3cret-pw") },
            from,
        }
    }

    #[tokio::test]
    async fn each_missing_image_is_copied_and_the_logins_always_leave() {
        let m = Scripted { present: vec!["reg:5000/library/alpine:3".into()], fail_on: None, asked: Mutex::default() };
        let said = Mutex::new(Vec::new());
        let done = super::seed(&m, "mgr", &seed(None), &|s| said.lock().unwrap().push(s.to_string())).await.unwrap();
        assert_eq!(done, ["seed image redis:7"], "alpine was there already");
        let asked = m.asked.into_inner().unwrap();
        let texts: Vec<&str> = asked.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "docker login reg:5000 -u provision --password-stdin",
                "docker pull -q reg:5000/library/redis:7",
                "docker pull -q redis:7",
                "docker tag redis:7 reg:5000/library/redis:7",
                "docker push -q reg:5000/library/redis:7",
                "docker pull -q reg:5000/library/alpine:3",
                "docker logout reg:5000",
            ]
        );
        assert_eq!(asked[0].1.as_deref(), Some(&b"s3cret-pw"[..]), "the password goes on stdin");
        assert!(texts.iter().all(|t| !t.contains("s3cret-pw")));
        assert_eq!(said.into_inner().unwrap(), ["seeding image 1/2: redis:7 → reg:5000/library/redis:7"]);
    }

    #[tokio::test]
    async fn a_failed_copy_still_logs_out_of_both_registries() {
        let from = Login { registry: "ignored".into(), user: "ci bot".into(), password: Secret::new("other-pw") };
        let m = Scripted { present: vec![], fail_on: Some("docker push"), asked: Mutex::default() };
        let e = super::seed(&m, "mgr", &seed(Some(("corp.example:443".into(), Some(from)))), &|_| {}).await;
        assert!(e.is_err());
        let asked = m.asked.into_inner().unwrap();
        let texts: Vec<&str> = asked.iter().map(|(t, _)| t.as_str()).collect();
        assert!(texts.contains(&"docker login corp.example:443 -u 'ci bot' --password-stdin"), "{texts:?}");
        assert!(texts.contains(&"docker pull -q corp.example:443/redis:7"), "{texts:?}");
        assert_eq!(texts[texts.len() - 2..], ["docker logout reg:5000", "docker logout corp.example:443"]);
    }
}
