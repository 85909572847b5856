//! The operator's per-stack state directory: the CA and its key, the
//! registry certificate, SSH keys, generated passwords.
//!
//! Everything here is checked before it is used, in this file only: the
//! stack's directory and every file in it belong to the running user, none
//! is a link, secrets are 0600 in a 0700 directory. A problem is an error
//! naming the file and what to do; nothing is chmod-ed or made again behind
//! the operator's back.
//!
//! A run that writes holds the stack's lock (an advisory `flock` on
//! `.lock`) for as long as its [`StateDir`] lives, so two runs never
//! interleave their writes. Files that belong together are written with
//! [`StateDir::write_group`]: a crash leaves the old set or the new one,
//! or a set whose last file is missing, which the caller recognises as
//! never completed. What a killed run leaves behind (`*.tmp<pid>`,
//! `.new-*`) is removed by the next run that holds the lock.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// What is wrong with a file of the state directory, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct StateError {
    path: PathBuf,
    problem: String,
}

impl StateError {
    pub fn new(path: &Path, problem: impl Into<String>) -> StateError {
        StateError { path: path.into(), problem: problem.into() }
    }
    fn io(path: &Path, doing: &str, e: std::io::Error) -> StateError {
        StateError::new(path, format!("cannot {doing}: {e}"))
    }
}

/// The lock of one stack, released when the last clone of its
/// [`StateDir`] is dropped (or the process dies).
#[derive(Debug)]
struct Lock(#[allow(dead_code)] fs::File);

/// One stack's directory under the state root.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    uid: u32,
    /// None for a read-only view (`check`, `ssh`), which may not write.
    lock: Option<Arc<Lock>>,
}

/// Who may read a file that is written, and so what is checked on reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Private,
    Public,
}

/// The state directory's layout: every file a stack keeps, named once.
/// The stages that write them and the commands that read them take their
/// names from here, and [`layout::KEPT`] says who may read each, which a
/// test holds a rendered stack's directory to.
pub mod layout {
    use super::Mode;

    pub const CA_KEY: &str = "certs/ca.key";
    pub const CA_CRT: &str = "certs/ca.crt";
    pub const SERVER_KEY: &str = "certs/registry.key";
    pub const SERVER_CRT: &str = "certs/registry.crt";
    /// What the server certificate was issued for, to know when to reissue.
    pub const SERVER_RECORD: &str = "certs/registry.json";
    pub const REGISTRY_PASSWORD: &str = "registry-password";
    pub const HTPASSWD: &str = "registry-htpasswd";
    /// One folder per node, holding [`HOST_KEY_FILE`] and its `.pub`.
    pub const HOST_KEYS: &str = "ssh/host";
    pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";
    /// The one host key every worker gets (workers come and go with
    /// their count; their names are not known before Heat makes them).
    pub const WORKER_HOST_KEY: &str = "ssh/workers/ssh_host_ed25519_key";
    pub const CLIENT_KEY: &str = "ssh/client_ed25519";
    /// The manager's floating IP, kept between runs.
    pub const FLOATING_IP: &str = "floating_ip.json";
    /// The Imixs-Cloud configuration the hand-off copies to the manager.
    pub const IMIXS_DIR: &str = "imixs-cloud";

    /// Every file kept, as a pattern (`*` is one folder name, a trailing
    /// `/**` all below), with who may read it and what it is.
    pub const KEPT: &[(&str, Mode, &str)] = &[
        (CA_KEY, Mode::Private, "the CA's private key; never leaves this machine"),
        (CA_CRT, Mode::Public, "the CA certificate, for Docker hosts to trust"),
        (SERVER_KEY, Mode::Private, "the registry's TLS key (goes to the manager)"),
        (SERVER_CRT, Mode::Public, "the registry's certificate"),
        (SERVER_RECORD, Mode::Public, "the names and addresses the certificate was issued for"),
        (REGISTRY_PASSWORD, Mode::Private, "the registry login's password"),
        (HTPASSWD, Mode::Private, "its bcrypt line (goes to the manager)"),
        ("ssh/host/*/ssh_host_ed25519_key", Mode::Private, "a node's host key (goes to that node)"),
        ("ssh/host/*/ssh_host_ed25519_key.pub", Mode::Public, "its public half, pinned"),
        (WORKER_HOST_KEY, Mode::Private, "the workers' host key (goes to them)"),
        ("ssh/workers/ssh_host_ed25519_key.pub", Mode::Public, "its public half, pinned"),
        (CLIENT_KEY, Mode::Private, "the SSH client key the hand-off logs in with"),
        ("ssh/client_ed25519.pub", Mode::Public, "its public half (in every node's authorized_keys)"),
        (FLOATING_IP, Mode::Public, "the manager's floating IP, kept between runs"),
        ("imixs-cloud/**", Mode::Public, "the Imixs-Cloud configuration the hand-off copies"),
    ];

    /// The entry of [`KEPT`] a path (relative to the stack's folder) is.
    pub fn kept(path: &str) -> Option<(&'static str, Mode, &'static str)> {
        KEPT.iter().copied().find(|(pattern, _, _)| matches(pattern, path))
    }

    fn matches(pattern: &str, path: &str) -> bool {
        if let Some(dir) = pattern.strip_suffix("/**") {
            return path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'));
        }
        let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
        p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| *a == "*" && !b.is_empty() || a == b)
    }
}

/// The manager's floating IP as the stack keeps it ([`layout::FLOATING_IP`]):
/// allocated by the stack stage before the bundle, so the registry
/// certificate can name the address.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FloatingIp {
    pub id: String,
    pub address: std::net::IpAddr,
}

/// What a run does when another holds the stack.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Wait, saying so once through this notice (the library prints
    /// nothing itself).
    Block(fn(&str)),
    /// Fail at once (`--no-wait`).
    Fail,
}

const LOCK_FILE: &str = ".lock";
/// Prefix of the folders a group of files is staged in.
const STAGING: &str = ".new-";

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

impl StateDir {
    /// `$PROVISION_STATE_DIR`, else `$XDG_STATE_HOME/provision`, else
    /// `~/.local/state/provision`; the stack's directory is under it.
    pub fn default_root(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
        if let Some(d) = var("PROVISION_STATE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        if let Some(x) = var("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(x).join("provision");
        }
        PathBuf::from(var("HOME").unwrap_or_else(|| ".".into())).join(".local/state/provision")
    }

    /// The stack's directory, made if needed, checked, locked (waiting for
    /// another run) and cleared of a killed run's leftovers.
    pub fn open(root: &Path, stack: &str) -> Result<StateDir, StateError> {
        StateDir::open_with(root, stack, Wait::Block(|_| {}))
    }

    pub fn open_with(root: &Path, stack: &str, wait: Wait) -> Result<StateDir, StateError> {
        let dir = root.join(stack);
        let uid = euid();
        fs::create_dir_all(root).map_err(|e| StateError::io(root, "create the state directory", e))?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::io(&dir, "create the stack's state directory", e));
            }
            _ => {}
        }
        check_stack_dir(&dir, uid)?;
        let lock = lock(&dir, stack, uid, wait)?;
        let state = StateDir { root: dir, uid, lock: Some(Arc::new(lock)) };
        state.check_tree(true)?;
        Ok(state)
    }

    /// A read-only view for commands that only read (`check`, `ssh`): the
    /// same checks, no lock, nothing made. A stack never rendered reads as
    /// empty.
    pub fn inspect(root: &Path, stack: &str) -> Result<StateDir, StateError> {
        let state = StateDir { root: root.join(stack), uid: euid(), lock: None };
        if fs::symlink_metadata(&state.root).is_ok() {
            check_stack_dir(&state.root, state.uid)?;
            state.check_tree(false)?;
        }
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A public file (certificate, `.pub`, record), checked; None if absent.
    pub fn read(&self, name: &str) -> Result<Option<String>, StateError> {
        self.read_as(name, Mode::Public)
    }

    /// A secret, refused when others may read it.
    pub fn read_private(&self, name: &str) -> Result<Option<String>, StateError> {
        self.read_as(name, Mode::Private)
    }

    fn read_as(&self, name: &str, mode: Mode) -> Result<Option<String>, StateError> {
        let path = self.file(name);
        let mut f = match fs::OpenOptions::new().read(true).custom_flags(no_follow()).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(link_error(&path));
            }
            Err(e) => return Err(StateError::io(&path, "read", e)),
        };
        let meta = f.metadata().map_err(|e| StateError::io(&path, "read", e))?;
        if !meta.is_file() {
            return Err(StateError::new(&path, "is not a regular file; remove it and run again"));
        }
        check_owner_and_mode(&path, &meta, self.uid, mode)?;
        let mut text = String::new();
        f.read_to_string(&mut text).map_err(|e| StateError::io(&path, "read (is it text?)", e))?;
        Ok(Some(text))
    }

    pub fn write(&self, name: &str, contents: &str, mode: Mode) -> Result<PathBuf, StateError> {
        self.write_group(&[(name, contents, mode)])?;
        Ok(self.file(name))
    }

    /// Files that belong together, in place in the order given: the last one
    /// is the group's commit, present only once all the others are. Each
    /// file is first written and synced in a staging folder, then renamed
    /// into place, each rename made durable before the next.
    pub fn write_group(&self, files: &[(&str, &str, Mode)]) -> Result<(), StateError> {
        self.must_hold_lock()?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let staging = self.file(&format!("{STAGING}{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        fs::DirBuilder::new().mode(0o700).create(&staging).map_err(|e| StateError::io(&staging, "create", e))?;
        for (i, (_, contents, mode)) in files.iter().enumerate() {
            write_new(&staging.join(i.to_string()), contents.as_bytes(), *mode)?;
        }
        sync_dir(&staging)?;
        for (i, (name, _, _)) in files.iter().enumerate() {
            let target = self.file(name);
            let parent = target.parent().expect("a file in the stack's directory");
            self.make_dirs(parent)?;
            fs::rename(staging.join(i.to_string()), &target).map_err(|e| StateError::io(&target, "write", e))?;
            sync_dir(parent)?;
        }
        fs::remove_dir(&staging).map_err(|e| StateError::io(&staging, "remove", e))
    }

    /// Forgets a file; one that is not there is already forgotten.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        self.must_hold_lock()?;
        let path = self.file(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StateError::io(&path, "remove", e)),
            _ => {
                if let Some(parent) = path.parent() {
                    sync_dir(parent)?;
                }
                Ok(())
            }
        }
    }

    fn must_hold_lock(&self) -> Result<(), StateError> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(StateError::new(&self.root, "is open read-only here (a bug: this command must lock it)")),
        }
    }

    /// The folders down to `dir`, made 0700 where missing; those already
    /// there were checked when the stack was opened.
    fn make_dirs(&self, dir: &Path) -> Result<(), StateError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| StateError::io(dir, "create", e))
    }

    /// Every entry under the stack's directory: owned by us, no link, not
    /// writable by others. With the lock held, a killed run's temporary
    /// files and staging folders are removed: no other run can be using
    /// them.
    fn check_tree(&self, clean: bool) -> Result<(), StateError> {
        let mut todo = vec![self.root.clone()];
        while let Some(dir) = todo.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| StateError::io(&dir, "list", e))?;
            for entry in entries {
                let path = entry.map_err(|e| StateError::io(&dir, "list", e))?.path();
                let meta = fs::symlink_metadata(&path).map_err(|e| StateError::io(&path, "inspect", e))?;
                if meta.file_type().is_symlink() {
                    return Err(link_error(&path));
                }
                check_owner_and_mode(&path, &meta, self.uid, Mode::Public)?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if clean && dir == self.root && meta.is_dir() && name.starts_with(STAGING) {
                    fs::remove_dir_all(&path).map_err(|e| StateError::io(&path, "remove a killed run's", e))?;
                } else if clean && meta.is_file() && is_temporary(&name) {
                    fs::remove_file(&path).map_err(|e| StateError::io(&path, "remove a killed run's", e))?;
                } else if meta.is_dir() {
                    todo.push(path);
                } else if !meta.is_file() {
                    return Err(StateError::new(&path, "is not a regular file or folder; remove it"));
                }
            }
        }
        Ok(())
    }
}

/// `name.tmp<pid>` as [`write_file`] makes it, and `name.tmp<pid>` with
/// the extension replaced, as earlier versions did.
fn is_temporary(name: &str) -> bool {
    name.rsplit_once(".tmp").is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

fn link_error(path: &Path) -> StateError {
    StateError::new(
        path,
        format!(
            "is a symbolic link; provision follows no link in its state directory: remove it (`rm {}`) and put the \
             file itself there",
            path.display()
        ),
    )
}

fn check_owner_and_mode(path: &Path, meta: &fs::Metadata, uid: u32, mode: Mode) -> Result<(), StateError> {
    let bits = meta.mode() & 0o777;
    if meta.uid() != uid {
        return Err(StateError::new(
            path,
            format!(
                "is owned by uid {}, not by you (uid {uid}): another user may have put it there; check it, then \
                 remove it or `chown` it to yourself",
                meta.uid()
            ),
        ));
    }
    if bits & 0o022 != 0 {
        return Err(StateError::new(
            path,
            format!("may be changed by others (mode {bits:04o}); run `chmod go-w {}`", path.display()),
        ));
    }
    if mode == Mode::Private && bits & 0o077 != 0 {
        return Err(StateError::new(
            path,
            format!(
                "is a secret readable by others (mode {bits:04o}); run `chmod 600 {}` (and consider it exposed)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The stack's own directory: a real directory of ours that only we can
/// enter. Checked before the lock file is made in it.
fn check_stack_dir(dir: &Path, uid: u32) -> Result<(), StateError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| StateError::io(dir, "inspect", e))?;
    if meta.file_type().is_symlink() {
        return Err(link_error(dir));
    }
    if !meta.is_dir() {
        return Err(StateError::new(dir, "is not a directory; move it away"));
    }
    check_owner_and_mode(dir, &meta, uid, Mode::Public)?;
    let bits = meta.mode() & 0o777;
    if bits & 0o077 != 0 {
        return Err(StateError::new(
            dir,
            format!("may be entered by others (mode {bits:04o}); run `chmod 700 {}`", dir.display()),
        ));
    }
    Ok(())
}

fn lock(dir: &Path, stack: &str, uid: u32, wait: Wait) -> Result<Lock, StateError> {
    let path = dir.join(LOCK_FILE);
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(no_follow())
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(n) if n == rustix::io::Errno::LOOP.raw_os_error() => link_error(&path),
            _ => StateError::io(&path, "open the lock", e),
        })?;
    let meta = f.metadata().map_err(|e| StateError::io(&path, "inspect", e))?;
    check_owner_and_mode(&path, &meta, uid, Mode::Public)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            if matches!(wait, Wait::Fail) {
                return Err(StateError::new(
                    dir,
                    format!("another provision run{holder} is using stack {stack}; run again when it is done"),
                ));
            }
            if let Wait::Block(notice) = wait {
                notice(&format!("waiting for another provision run on stack {stack}{holder}…"));
            }
            f.lock().map_err(|e| StateError::io(&path, "lock", e))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(StateError::io(&path, "lock", e)),
    }
    // Who holds it, for the message of the run that waits.
    let _ = f.set_len(0).and_then(|_| f.write_all(format!("{}\n", std::process::id()).as_bytes()));
    Ok(Lock(f))
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StateError::io(dir, "sync", e))
}

/// A new file, never one already there (so never through a link), synced.
fn write_new(path: &Path, contents: &[u8], mode: Mode) -> Result<(), StateError> {
    let bits = if mode == Mode::Private { 0o600 } else { 0o644 };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(bits)
        .custom_flags(no_follow())
        .open(path)
        .map_err(|e| StateError::io(path, "write", e))?;
    // The umask may have taken bits away from a public file; never adds any.
    f.set_permissions(fs::Permissions::from_mode(bits)).map_err(|e| StateError::io(path, "restrict", e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| StateError::io(path, "write", e))
}

/// Writes a file outside the state directory (the bundle) through a
/// temporary file and a rename. A private file is created 0600, never
/// chmod-ed after the fact, so it is not readable for a moment.
pub fn write_file(path: &Path, contents: &[u8], mode: Mode) -> Result<(), StateError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| StateError::io(parent, "create", e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // A leftover of a killed run with our pid is ours to replace.
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, contents, mode)?;
    fs::rename(&tmp, path).map_err(|e| StateError::io(path, "write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_in_a_0700_dir() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        let p = s.write("key", "secret", Mode::Private).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(s.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let p = s.write("cert", "public", Mode::Public).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(s.read_private("key").unwrap().as_deref(), Some("secret"));
        assert_eq!(s.read("missing").unwrap(), None);
    }

    #[test]
    fn root_follows_the_documented_order() {
        let v = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(StateDir::default_root(&v(&[("PROVISION_STATE_DIR", "/s"), ("HOME", "/h")])), PathBuf::from("/s"));
        assert_eq!(
            StateDir::default_root(&v(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/provision")
        );
        assert_eq!(StateDir::default_root(&v(&[("HOME", "/h")])), PathBuf::from("/h/.local/state/provision"));
    }

    #[test]
    fn a_second_open_fails_at_once_with_no_wait_and_succeeds_after_the_first_is_dropped() {
        let t = tempfile::tempdir().unwrap();
        let first = StateDir::open(t.path(), "stack").unwrap();
        let e = StateDir::open_with(t.path(), "stack", Wait::Fail).unwrap_err().to_string();
        assert!(e.contains("another provision run"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        StateDir::open_with(t.path(), "stack", Wait::Fail).unwrap();
    }

    #[test]
    fn a_killed_runs_leftovers_are_removed_under_the_lock_only() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        s.write("certs/ca.key", "k", Mode::Private).unwrap();
        fs::write(s.file("certs/ca.crt.tmp4242"), "half").unwrap();
        fs::write(s.file("certs/ca.tmp77"), "older naming").unwrap();
        fs::create_dir(s.file(".new-4242-0")).unwrap();
        fs::write(s.file(".new-4242-0/0"), "staged").unwrap();
        drop(s);
        StateDir::inspect(t.path(), "stack").unwrap();
        assert!(t.path().join("stack/certs/ca.crt.tmp4242").exists(), "a read-only view removes nothing");
        let s = StateDir::open(t.path(), "stack").unwrap();
        assert!(!s.file("certs/ca.crt.tmp4242").exists());
        assert!(!s.file("certs/ca.tmp77").exists());
        assert!(!s.file(".new-4242-0").exists());
        assert!(s.file("certs/ca.key").exists());
    }

    #[test]
    fn links_and_open_secrets_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        let target = t.path().join("shadow");
        fs::write(&target, "root:x").unwrap();
        std::os::unix::fs::symlink(&target, s.file("pw")).unwrap();
        let e = s.read_private("pw").unwrap_err().to_string();
        assert!(e.contains("pw") && e.contains("symbolic link"), "{e}");
        drop(s);
        let e = StateDir::open(t.path(), "stack").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        fs::remove_file(t.path().join("stack/pw")).unwrap();
        let s = StateDir::open(t.path(), "stack").unwrap();
        s.write("pw", "x", Mode::Private).unwrap();
        fs::set_permissions(s.file("pw"), fs::Permissions::from_mode(0o640)).unwrap();
        let e = s.read_private("pw").unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(s.read("pw").is_ok(), "a public file may be read by others");
    }

    #[test]
    fn a_read_only_view_cannot_write() {
        let t = tempfile::tempdir().unwrap();
        let v = StateDir::inspect(t.path(), "stack").unwrap();
        assert_eq!(v.read("anything").unwrap(), None);
        assert!(v.write("x", "y", Mode::Public).is_err());
        assert!(!t.path().join("stack").exists(), "a read-only view makes nothing");
    }
}
