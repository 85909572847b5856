//! What `provision render` refuses to use from a stack's state directory:
//! links, files of another user, secrets others may read, and files that
//! are not what their name says (keys that match nothing, certificates of
//! another CA, multi-line or injected secrets, garbage). Each refusal exits
//! 1, names the file, and writes no bundle.

mod state_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use state_common::{STACK, consistent, render, run};

/// A state made by a good render, and where a second render would write.
struct Made {
    dir: tempfile::TempDir,
}

impl Made {
    fn new() -> Made {
        let dir = tempfile::tempdir().unwrap();
        let r = run(render(&dir.path().join("state"), &dir.path().join("first")));
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        Made { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn stack(&self) -> PathBuf {
        self.root().join(STACK)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.stack().join(name)
    }
    /// Writes a file as provision would (0600), replacing what is there.
    fn put(&self, name: &str, text: &str) {
        let p = self.file(name);
        std::fs::remove_file(&p).ok();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    /// Renders again and expects a refusal naming `file` and saying `what`.
    fn refused(&self, file: &str, what: &[&str]) -> String {
        let out = self.dir.path().join("second");
        let r = run(render(&self.root(), &out));
        assert_eq!(r.code, Some(1), "expected exit 1 for {file}, got {:?}:\n{}", r.code, r.stderr);
        assert!(r.stderr.contains(file), "the error must name {file}:\n{}", r.stderr);
        for w in what {
            assert!(r.stderr.contains(w), "the error must say `{w}`:\n{}", r.stderr);
        }
        assert!(!out.exists(), "a refused state wrote a bundle to {}", out.display());
        r.stderr
    }
}

/// Another stack's state, for files that are valid but belong elsewhere.
fn other() -> Made {
    Made::new()
}

fn secret_target(m: &Made) -> PathBuf {
    let shadow = m.dir.path().join("shadow");
    std::fs::write(&shadow, "root:$6$secret:19000:0:99999:7:::\n").unwrap();
    shadow
}

#[test]
fn a_symlinked_registry_key_is_refused() {
    let m = Made::new();
    let target = secret_target(&m);
    std::fs::remove_file(m.file("certs/registry.key")).unwrap();
    std::os::unix::fs::symlink(&target, m.file("certs/registry.key")).unwrap();
    m.refused("certs/registry.key", &["link"]);
}

#[test]
fn a_symlinked_ssh_host_key_is_refused() {
    let m = Made::new();
    let target = secret_target(&m);
    let key = format!("ssh/host/{STACK}/ssh_host_ed25519_key");
    std::fs::remove_file(m.file(&key)).unwrap();
    std::os::unix::fs::symlink(&target, m.file(&key)).unwrap();
    let err = m.refused(&key, &["link"]);
    assert!(!err.contains("root:$6$"), "the target's contents leaked:\n{err}");
}

#[test]
fn a_symlinked_stack_directory_is_refused_and_its_target_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join(STACK)).unwrap();
    let out = dir.path().join("bundle");
    let r = run(render(&root, &out));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains(&root.join(STACK).display().to_string()), "{}", r.stderr);
    assert!(r.stderr.contains("link"), "{}", r.stderr);
    assert!(!out.exists());
    let mode = std::fs::metadata(&elsewhere).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the link's target was chmod-ed");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "something was written through the link");
}

/// Files of another user: as root, made so by chown to nobody; as anyone
/// else no other owner can be made, and the test says so.
fn chown_nobody(p: &Path) -> bool {
    if std::fs::metadata("/").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).ok() != Some(0)
        || std::os::unix::fs::chown(p, Some(65534), Some(65534)).is_err()
    {
        eprintln!("skipped: cannot give {} to another user (not root)", p.display());
        return false;
    }
    true
}

#[test]
fn a_ca_of_another_user_is_refused() {
    let m = Made::new();
    if !chown_nobody(&m.file("certs/ca.crt")) {
        return;
    }
    m.refused("certs/ca.crt", &["owned by"]);
}

#[test]
fn a_stack_directory_of_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    std::fs::create_dir_all(root.join(STACK)).unwrap();
    std::fs::set_permissions(root.join(STACK), std::fs::Permissions::from_mode(0o700)).unwrap();
    if !chown_nobody(&root.join(STACK)) {
        return;
    }
    let out = dir.path().join("bundle");
    let r = run(render(&root, &out));
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("owned by"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn a_group_readable_password_is_refused_not_chmod_ed() {
    let m = Made::new();
    let p = m.file("registry-password");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    m.refused("registry-password", &["chmod 600"]);
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
}

#[test]
fn a_registry_key_that_is_not_the_certificates_is_refused() {
    let m = Made::new();
    let o = other();
    m.put("certs/registry.key", &std::fs::read_to_string(o.file("certs/registry.key")).unwrap());
    m.refused("certs/registry.key", &["registry.crt"]);
}

#[test]
fn a_registry_certificate_of_another_ca_is_refused() {
    let m = Made::new();
    let o = other();
    for f in ["certs/registry.key", "certs/registry.json"] {
        m.put(f, &std::fs::read_to_string(o.file(f)).unwrap());
    }
    let crt = std::fs::read_to_string(o.file("certs/registry.crt")).unwrap();
    std::fs::write(m.file("certs/registry.crt"), crt).unwrap();
    m.refused("certs/registry.crt", &["ca.crt"]);
}

#[test]
fn a_ca_key_of_another_ca_is_refused() {
    let m = Made::new();
    let o = other();
    m.put("certs/ca.key", &std::fs::read_to_string(o.file("certs/ca.key")).unwrap());
    m.refused("certs/ca.key", &["ca.crt"]);
}

#[test]
fn garbage_in_a_key_file_is_refused_with_its_name() {
    let m = Made::new();
    m.put("certs/ca.key", "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n");
    m.refused("certs/ca.key", &[]);
}

#[test]
fn a_certificate_where_a_key_should_be_is_refused() {
    let m = Made::new();
    m.put("certs/registry.key", &std::fs::read_to_string(m.file("certs/registry.crt")).unwrap());
    m.refused("certs/registry.key", &["PRIVATE KEY"]);
}

#[test]
fn a_multi_line_pub_is_refused() {
    let m = Made::new();
    let name = "ssh/client_ed25519.pub";
    let mut text = std::fs::read_to_string(m.file(name)).unwrap();
    text.push_str("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIuAZbOl0uFqoHyw0BPAm8DBcGQ8HqbiWOuPQyDkOL4F intruder\n");
    std::fs::write(m.file(name), text).unwrap();
    m.refused(name, &["one line"]);
}

#[test]
fn an_ssh_key_that_is_not_its_pubs_is_refused() {
    let m = Made::new();
    let workers = std::fs::read_to_string(m.file("ssh/workers/ssh_host_ed25519_key")).unwrap();
    let key = format!("ssh/host/{STACK}/ssh_host_ed25519_key");
    m.put(&key, &workers);
    m.refused(&key, &[".pub"]);
}

#[test]
fn a_password_with_a_newline_is_refused() {
    let m = Made::new();
    m.put("registry-password", "pw\n  - path: /etc/passwd\n");
    m.refused("registry-password", &["one line"]);
}

#[test]
fn a_secret_with_other_characters_is_refused() {
    let m = Made::new();
    m.put("registry-password", "abc'; rm -rf / #AAAAAAAAAAAAAAAAAAAAAAAAAA");
    m.refused("registry-password", &[]);
}

#[test]
fn an_htpasswd_that_is_not_one_bcrypt_line_is_refused() {
    let m = Made::new();
    let line = std::fs::read_to_string(m.file("registry-htpasswd")).unwrap();
    m.put("registry-htpasswd", &format!("{}\nintruder:$2y$05$abc\n", line.trim_end()));
    m.refused("registry-htpasswd", &["one line"]);
}

#[test]
fn a_good_state_renders_again_unchanged_and_consistent() {
    let m = Made::new();
    let before = std::fs::read_to_string(m.file("certs/ca.crt")).unwrap();
    let r = run(render(&m.root(), &m.dir.path().join("second")));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(m.file("certs/ca.crt")).unwrap(), before);
    consistent(&m.stack()).unwrap();
}
