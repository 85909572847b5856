//! The SSH keys of a stack, made on the operator's machine and kept in its
//! state directory: one ed25519 host key per node (the node is given it, and
//! SSH accepts the node only if it shows exactly that key: nothing is
//! trusted on first use) and one client key for logging in.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey, PublicKey};

use crate::state::{Mode, StateDir, StateError};

/// A key that cannot be made, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    State(#[from] StateError),
}

// Under HOST_KEYS: `<node>/ssh_host_ed25519_key(.pub)`, the layout
// `dev/nodes/nodes up --host-keys DIR` and sshd both expect.
use crate::state::layout::{CLIENT_KEY, HOST_KEY_FILE, HOST_KEYS, WORKER_HOST_KEY};

/// The host key each node must show, by node name.
#[derive(Debug, Clone, Default)]
pub struct Pins(BTreeMap<String, PublicKey>);

impl Pins {
    pub fn get(&self, node: &str) -> Option<&PublicKey> {
        self.0.get(node)
    }

    pub fn insert(&mut self, node: &str, key: PublicKey) {
        self.0.insert(node.to_string(), key);
    }
}

/// `SHA256:...`, as `ssh-keygen -l` shows it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The same key, whatever its comment says.
pub fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

fn keys_err(what: String) -> impl FnOnce(russh::keys::ssh_key::Error) -> KeyError {
    move |e| KeyError::Bad(format!("{what}: {e}"))
}

/// A fresh ed25519 key from the system's random source (through aws-lc, as
/// the certificates are made).
pub fn generate(comment: &str) -> Result<PrivateKey, KeyError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut seed[..]).map_err(|_| KeyError::Bad("the system's random source failed".into()))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    Ok(key)
}

/// The pair is one group: the private key first, its `.pub` last, so a
/// crash leaves no `.pub` without its key (see [`read_pair`]).
fn write_pair(state: &StateDir, name: &str, key: &PrivateKey) -> Result<(), KeyError> {
    let private = key.to_openssh(LineEnding::LF).map_err(keys_err(format!("cannot encode {name}")))?;
    let public = key.public_key().to_openssh().map_err(keys_err(format!("cannot encode {name}.pub")))?;
    let pub_name = format!("{name}.pub");
    state.write_group(&[(name, &private, Mode::Private), (&pub_name, &format!("{public}\n"), Mode::Public)])?;
    Ok(())
}

/// A stored pair, checked: the `.pub` is one `ssh-ed25519 <base64>
/// [comment]` line (it is pasted into node configs), the private key is an
/// unencrypted ed25519 key, and they are the same key. None when the pair
/// was never completed: no key at all, or a key whose `.pub` a killed run
/// did not get to write (it is made again). A `.pub` without its key is an
/// error: it may be pinned or on a node already.
pub fn read_pair(state: &StateDir, name: &str) -> Result<Option<(zeroize::Zeroizing<String>, String)>, KeyError> {
    let pub_name = format!("{name}.pub");
    let bad =
        |file: &str, problem: String| -> KeyError { crate::state::StateError::new(&state.file(file), problem).into() };
    let (private, public) = match (state.read_private(name)?, state.read(&pub_name)?) {
        (Some(private), Some(public)) => (zeroize::Zeroizing::new(private), public),
        (_, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(bad(
                name,
                format!(
                    "is missing but its .pub is there; restore it, or remove {} to make a new pair (a node given \
                     the old one must then be given the new one)",
                    state.file(&pub_name).display()
                ),
            ));
        }
    };
    let line = public.strip_suffix('\n').unwrap_or(&public);
    let fields: Vec<&str> = line.splitn(3, ' ').collect();
    if line.is_empty() || line.chars().any(char::is_control) || fields.len() < 2 || fields[0] != "ssh-ed25519" {
        return Err(bad(
            &pub_name,
            format!("is not one line `ssh-ed25519 <key> [comment]`; remove {} and {name} to make a new pair", pub_name),
        ));
    }
    let public_key = PublicKey::from_openssh(line).map_err(|e| {
        bad(&pub_name, format!("is not an OpenSSH public key ({e}); remove it and {name} to make a new pair"))
    })?;
    let key = PrivateKey::from_openssh(private.as_bytes())
        .map_err(|e| bad(name, format!("is not an OpenSSH private key ({e}); restore it from a backup")))?;
    if key.is_encrypted() || key.algorithm() != russh::keys::Algorithm::Ed25519 {
        return Err(bad(name, "is not an unencrypted ed25519 key, as provision makes them; restore it".into()));
    }
    if !same_key(key.public_key(), &public_key) {
        return Err(bad(
            name,
            format!("does not match {pub_name} beside it; restore the pair, or remove both to make a new one"),
        ));
    }
    Ok(Some((private, line.to_string())))
}

pub fn host_key_name(node: &str) -> String {
    format!("{HOST_KEYS}/{node}/{HOST_KEY_FILE}")
}

/// Makes what is missing: the client key, and a host key for each node that
/// has none. Existing keys are kept (a node keeps its identity across runs).
/// Returns the names of the keys made.
pub fn ensure(state: &StateDir, nodes: &[&str]) -> Result<Vec<String>, KeyError> {
    let mut made = Vec::new();
    let mut pair = |name: String, comment: String| -> Result<(), KeyError> {
        if read_pair(state, &name)?.is_none() {
            write_pair(state, &name, &generate(&comment)?)?;
            made.push(name);
        }
        Ok(())
    };
    pair(CLIENT_KEY.to_string(), "provision client".to_string())?;
    for node in nodes {
        pair(host_key_name(node), format!("provision host key of {node}"))?;
    }
    Ok(made)
}

// Why all workers of a stack share one host key (WORKER_HOST_KEY): workers are one
// `OS::Heat::ResourceGroup` of one worker config, and Heat can only hand
// every member the same file (`get_file` takes a literal name, and a
// per-index map would need a lookup function inside Heat, which nothing
// here could test). So the workers get one key, made here and pinned for
// each of them: anything that is not a node of this stack is still
// refused; what is given up is telling one worker from another by key,
// which matters little since they are reached only through the manager,
// by their private address, and are interchangeable. The manager has a key
// of its own. Kept outside `ssh/host` ([`WORKER_HOST_KEY`]) so no node
// name can clash with it.

/// The SSH material a stack's node configs carry, as OpenSSH text.
pub struct StackKeys {
    pub manager_private: zeroize::Zeroizing<String>,
    pub manager_public: String,
    pub worker_private: zeroize::Zeroizing<String>,
    pub worker_public: String,
    /// The operator's client key, authorized for the nodes' login user.
    pub client_public: String,
}

/// Only the public halves, so a `{:?}` cannot leak a host key.
impl std::fmt::Debug for StackKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackKeys")
            .field("manager", &self.manager_public)
            .field("worker", &self.worker_public)
            .field("client", &self.client_public)
            .finish()
    }
}

/// Makes (once) and reads the keys of a stack whose manager is `manager`.
pub fn stack_keys(state: &StateDir, manager: &str) -> Result<StackKeys, KeyError> {
    ensure(state, &[manager])?;
    let mut made = false;
    if read_pair(state, WORKER_HOST_KEY)?.is_none() {
        write_pair(state, WORKER_HOST_KEY, &generate("provision host key of the workers")?)?;
        made = true;
    }
    let read = |name: &str| -> Result<(zeroize::Zeroizing<String>, String), KeyError> {
        let (private, public) = read_pair(state, name)?
            .ok_or_else(|| KeyError::Bad(format!("{} is missing", state.file(name).display())))?;
        Ok((zeroize::Zeroizing::new(private.trim_end().to_string()), public))
    };
    tracing::debug!(made_worker_key = made, "stack SSH keys ready");
    let (manager_private, manager_public) = read(&host_key_name(manager))?;
    let (worker_private, worker_public) = read(WORKER_HOST_KEY)?;
    Ok(StackKeys { manager_private, manager_public, worker_private, worker_public, client_public: read(CLIENT_KEY)?.1 })
}

/// The pins of a stack's nodes: the manager's own key, the shared worker
/// key for each worker (see [`WORKER_HOST_KEY`]).
pub fn stack_pins(state: &StateDir, manager: &str, workers: &[&str]) -> Result<Pins, KeyError> {
    let public = |name: &str| -> Result<PublicKey, KeyError> {
        let (_, line) = read_pair(state, name)?.ok_or_else(|| {
            KeyError::Bad(format!(
                "no pinned host key {}.pub: it is made when the bundle is rendered",
                state.file(name).display()
            ))
        })?;
        PublicKey::from_openssh(&line).map_err(keys_err(format!("{}.pub", state.file(name).display())))
    };
    let mut pins = Pins::default();
    pins.insert(manager, public(&host_key_name(manager))?);
    if !workers.is_empty() {
        let shared = public(WORKER_HOST_KEY)?;
        for w in workers {
            pins.insert(w, shared.clone());
        }
    }
    Ok(pins)
}

/// Reads the pinned host key of every node from `dir/<node>/ssh_host_ed25519_key.pub`.
pub fn load_pins(dir: &Path, nodes: &[&str]) -> Result<Pins, KeyError> {
    let mut pins = Pins::default();
    let mut missing = Vec::new();
    for node in nodes {
        let path = dir.join(node).join(format!("{HOST_KEY_FILE}.pub"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = PublicKey::from_openssh(text.trim())
                    .map_err(keys_err(format!("{} is not an OpenSSH public key", path.display())))?;
                pins.insert(node, key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(*node),
            Err(e) => return Err(KeyError::Bad(format!("cannot read {}: {e}", path.display()))),
        }
    }
    if !missing.is_empty() {
        return Err(KeyError::Bad(format!(
            "no pinned host key for {} in {}: each node needs <node>/{HOST_KEY_FILE}.pub, made with the node \
             (its server must have been given that key)",
            missing.join(", "),
            dir.display()
        )));
    }
    Ok(pins)
}

/// Reads a private key the way ssh does: refused when others may read it.
pub fn load_client(path: &Path) -> Result<PrivateKey, KeyError> {
    let meta = std::fs::metadata(path).map_err(|e| KeyError::Bad(format!("client key {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Bad(format!(
            "client key {} is readable by others (mode {mode:04o}); `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| KeyError::Bad(format!("client key {}: {e}", path.display())))?,
    );
    let key = PrivateKey::from_openssh(text.as_bytes())
        .map_err(keys_err(format!("client key {} is not an OpenSSH private key", path.display())))?;
    if key.is_encrypted() {
        return Err(KeyError::Bad(format!(
            "client key {} has a passphrase; provision needs an unencrypted key (or use ssh-agent with ssh)",
            path.display()
        )));
    }
    Ok(key)
}

/// Where the client key of a stack is.
pub fn client_key_path(state: &StateDir) -> PathBuf {
    state.file(CLIENT_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_makes_private_keys_once_and_pins_read_back() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        let made = ensure(&s, &["manager", "worker-1"]).unwrap();
        assert_eq!(
            made,
            [CLIENT_KEY, "ssh/host/manager/ssh_host_ed25519_key", "ssh/host/worker-1/ssh_host_ed25519_key"]
        );
        for name in &made {
            let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(s.file(name)), 0o600, "{name}");
            assert_eq!(mode(s.file(&format!("{name}.pub"))), 0o644, "{name}.pub");
        }
        let before = s.read(&host_key_name("manager")).unwrap().unwrap();
        assert!(ensure(&s, &["manager", "worker-1"]).unwrap().is_empty(), "existing keys are kept");
        assert_eq!(s.read(&host_key_name("manager")).unwrap().unwrap(), before);

        let pins = load_pins(&s.file(HOST_KEYS), &["manager", "worker-1"]).unwrap();
        let private = load_client(&s.file(&host_key_name("manager"))).unwrap();
        assert!(same_key(pins.get("manager").unwrap(), private.public_key()));
        assert!(!same_key(pins.get("manager").unwrap(), pins.get("worker-1").unwrap()));
        assert!(fingerprint(pins.get("manager").unwrap()).starts_with("SHA256:"));

        let e = load_pins(&s.file(HOST_KEYS), &["manager", "worker-2"]).unwrap_err().to_string();
        assert!(e.contains("no pinned host key for worker-2"), "{e}");
    }

    #[test]
    fn stack_keys_pin_the_manager_alone_and_the_workers_together() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        let k = stack_keys(&s, "myhost").unwrap();
        assert!(k.manager_private.contains("OPENSSH PRIVATE KEY"));
        assert_ne!(k.manager_public, k.worker_public);
        assert!(!format!("{k:?}").contains("PRIVATE"));
        let again = stack_keys(&s, "myhost").unwrap();
        assert_eq!(*again.worker_private, *k.worker_private, "a re-run keeps the keys");
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.file(WORKER_HOST_KEY)), 0o600);

        let pins = stack_pins(&s, "myhost", &["myhost-worker-0", "myhost-worker-1"]).unwrap();
        let public = |t: &str| PublicKey::from_openssh(t).unwrap();
        assert!(same_key(pins.get("myhost").unwrap(), &public(&k.manager_public)));
        assert!(same_key(pins.get("myhost-worker-1").unwrap(), &public(&k.worker_public)));
        assert!(!same_key(pins.get("myhost").unwrap(), &public(&k.worker_public)));
        assert!(pins.get("other").is_none());
    }

    #[test]
    fn a_key_without_its_pub_is_made_again_and_a_pub_without_its_key_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        ensure(&s, &["manager"]).unwrap();
        let name = host_key_name("manager");
        s.remove(&format!("{name}.pub")).unwrap();
        assert_eq!(ensure(&s, &["manager"]).unwrap(), std::slice::from_ref(&name));
        assert!(read_pair(&s, &name).unwrap().is_some());
        s.remove(&name).unwrap();
        let e = ensure(&s, &["manager"]).unwrap_err().to_string();
        assert!(e.contains("ssh_host_ed25519_key: is missing but its .pub is there"), "{e}");
    }

    #[test]
    fn a_client_key_readable_by_others_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        ensure(&s, &[]).unwrap();
        let p = client_key_path(&s);
        assert!(load_client(&p).is_ok());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_client(&p).unwrap_err().to_string().contains("chmod 600"));
    }

    #[test]
    fn keys_are_distinct_and_never_in_debug_output() {
        let a = generate("a").unwrap();
        let b = generate("b").unwrap();
        assert!(!same_key(a.public_key(), b.public_key()));
        let private = a.to_openssh(LineEnding::LF).unwrap();
        let body: String = private.lines().nth(1).unwrap().to_string();
        assert!(!format!("{a:?}").contains(&body));
    }
}
