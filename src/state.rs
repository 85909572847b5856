//! The operator's per-stack state directory: the CA and its key, the
//! registry certificate, generated passwords. Private files are written
//! 0600 in a 0700 directory, atomically, so an interrupted run never leaves
//! half a key behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct StateError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// One stack's directory under the state root.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Who may read a file that is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Private,
    Public,
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

    pub fn open(root: &Path, stack: &str) -> Result<StateDir, StateError> {
        let dir = root.join(stack);
        create_private_dir(&dir)?;
        Ok(StateDir { root: dir })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn read(&self, name: &str) -> Result<Option<String>, StateError> {
        let path = self.file(name);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError { what: "cannot read", path, source }),
        }
    }

    pub fn write(&self, name: &str, contents: &str, mode: Mode) -> Result<PathBuf, StateError> {
        let path = self.file(name);
        write_file(&path, contents.as_bytes(), mode)?;
        Ok(path)
    }

    /// Forgets a file; one that is not there is already forgotten.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StateError { what: "cannot remove", path, source: e })
            }
            _ => Ok(()),
        }
    }
}

pub fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(|source| StateError { what: "cannot create", path: dir.into(), source })?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| StateError {
        what: "cannot restrict",
        path: dir.into(),
        source,
    })
}

/// Writes through a temporary file and a rename. A private file is created
/// 0600, never chmod-ed after the fact, so it is not readable for a moment.
pub fn write_file(path: &Path, contents: &[u8], mode: Mode) -> Result<(), StateError> {
    let err = |what, source| StateError { what, path: path.into(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| err("cannot create the folder of", e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let bits = if mode == Mode::Private { 0o600 } else { 0o644 };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(bits)
        .open(&tmp)
        .map_err(|e| err("cannot write", e))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(|e| err("cannot write", e))?;
    // An existing file keeps its old mode through open(); set it explicitly.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(bits)).map_err(|e| err("cannot restrict", e))?;
    fs::rename(&tmp, path).map_err(|e| err("cannot write", e))
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
        assert_eq!(s.read("key").unwrap().as_deref(), Some("secret"));
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
}
