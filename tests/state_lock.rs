//! One provision run per stack at a time: a second one waits and says so,
//! or with --no-wait fails at once (exit 1).

mod state_common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use state_common::{STACK, consistent, render, run};

/// Holds the stack's lock as another provision run would.
fn hold(root: &std::path::Path) -> std::fs::File {
    let stack = root.join(STACK);
    std::fs::create_dir_all(&stack).unwrap();
    std::fs::set_permissions(&stack, std::fs::Permissions::from_mode(0o700)).unwrap();
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(stack.join(".lock")).unwrap();
    f.lock().unwrap();
    f
}

#[test]
fn no_wait_fails_at_once_while_another_run_holds_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let lock = hold(&root);
    let started = Instant::now();
    let mut c = render(&root, &dir.path().join("bundle"));
    c.arg("--no-wait");
    let r = run(c);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("another provision run"), "{}", r.stderr);
    assert!(r.stderr.contains(STACK), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dir.path().join("bundle").exists());
    drop(lock);
}

#[test]
fn a_second_run_waits_for_the_first_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let lock = hold(&root);
    let mut c = render(&root, &dir.path().join("bundle"));
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the run did not wait for the lock");
    drop(lock);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let waiting: Vec<_> = stderr.lines().filter(|l| l.contains("waiting for another provision run")).collect();
    assert_eq!(waiting.len(), 1, "{stderr}");
    assert!(waiting[0].contains(STACK), "{stderr}");
    consistent(&root.join(STACK)).unwrap();
    // The lock is released with the run.
    let r = run(render(&root, &dir.path().join("again")));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}
