//! Runs that start together on one stack: every one succeeds and the
//! state they leave is one consistent set (a key that matches its .pub, a
//! registry certificate signed by the stack's CA), the same in every
//! bundle. A deploy preview needs a cloud, so the third run is a render
//! into another folder: it takes the same lock at the same point.

mod state_common;

use std::process::Stdio;
use std::time::Instant;

use state_common::{STACK, consistent, render};

const ROUNDS: usize = 50;

#[test]
fn three_runs_at_once_leave_one_consistent_state() {
    let started = Instant::now();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let outs: Vec<_> = (0..3).map(|i| dir.path().join(format!("bundle-{i}"))).collect();
        let children: Vec<_> = outs
            .iter()
            .map(|o| render(&root, o).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        }
        consistent(&root.join(STACK)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let ca = std::fs::read_to_string(root.join(STACK).join("certs/ca.crt")).unwrap();
        for o in &outs {
            let in_bundle = std::fs::read_to_string(o.join("certs/ca.crt")).unwrap();
            assert_eq!(in_bundle, ca, "round {round}: {} carries another CA", o.display());
        }
    }
    eprintln!("{ROUNDS} rounds of 3 concurrent renders in {:.1} s", started.elapsed().as_secs_f64());
}
