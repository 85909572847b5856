//! A render killed (SIGKILL) at any moment leaves a state the next render
//! uses or rebuilds by itself, and that render leaves it consistent and
//! free of temporary files. The moments are spread over the measured length
//! of a render by a seeded generator; the seed is printed, and
//! STATE_KILL_SEED=N replays a run.
// A test reads its knobs (seeds, paths) from the environment itself.
#![allow(clippy::disallowed_methods)]

mod state_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use state_common::{STACK, consistent, render, run};

const ROUNDS: usize = 100;

/// splitmix64: enough to spread delays, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// How long one render takes on a fresh state here (the slowest of three).
fn render_length() -> Duration {
    (0..3)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let t = Instant::now();
            let r = run(render(&dir.path().join("state"), &dir.path().join("bundle")));
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            t.elapsed()
        })
        .max()
        .unwrap()
}

#[test]
fn a_render_killed_at_any_moment_is_followed_by_one_that_succeeds() {
    let seed = std::env::var("STATE_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let length = render_length();
    eprintln!("seed {seed} (STATE_KILL_SEED={seed} replays it); a render takes {} ms", length.as_millis());
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut finished_before_kill = 0;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let delay = Duration::from_micros(rng.next() % (length.as_micros() as u64 * 6 / 5).max(1));
        let mut first =
            render(&root, &dir.path().join("first")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        first.kill().unwrap();
        if first.wait().unwrap().success() {
            finished_before_kill += 1;
        }
        let r = run(render(&root, &dir.path().join("second")));
        assert_eq!(r.code, Some(0), "round {round} (seed {seed}, killed after {delay:?}):\n{}", r.stderr);
        consistent(&root.join(STACK))
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}, killed after {delay:?}): {e}"));
    }
    eprintln!(
        "{ROUNDS} rounds in {:.1} s; {finished_before_kill} first renders finished before their kill",
        started.elapsed().as_secs_f64()
    );
}
