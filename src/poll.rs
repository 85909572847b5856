//! One way to wait for something that is not ready yet: a bounded number
//! of tries, a pause before each retry, and a word before each retry on
//! why the last one did not do. The hand-off's waits (SSH, Docker, SSH
//! channels) and `gc`'s deletions use it; Heat's event-following wait
//! paces itself on what it sees and keeps its own loop.

use std::future::Future;
use std::time::Duration;

/// What one try came to.
#[derive(Debug)]
pub enum Try<T, E> {
    Done(T),
    /// Not yet, and why (shown before the next try, kept after the last).
    Again(String),
    /// No point in trying again.
    Fail(E),
}

/// Why the tries stopped without a result.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop<E> {
    Failed(E),
    /// Every try said "not yet"; `last` is the last one's reason.
    GaveUp {
        tries: u32,
        last: String,
    },
}

/// The pause before try `n + 1` (after try `n`).
#[derive(Debug, Clone, Copy)]
pub enum Pause {
    Every(Duration),
    /// `first`, then twice the one before.
    Doubling(Duration),
    /// `n` times `step`.
    Growing(Duration),
}

impl Pause {
    pub fn after(self, n: u32) -> Duration {
        match self {
            Pause::Every(d) => d,
            Pause::Doubling(first) => first.saturating_mul(1 << (n.saturating_sub(1)).min(16)),
            Pause::Growing(step) => step.saturating_mul(n),
        }
    }
}

/// Runs `attempt(n)` for n = 1, 2, ... up to `tries` (at least once) until
/// it is done or fails; before each retry it pauses, then calls
/// `before_retry(n, last reason)`.
pub async fn retry<T, E, F, Fut>(
    tries: u32,
    pause: Pause,
    mut before_retry: impl FnMut(u32, &str),
    mut attempt: F,
) -> Result<T, Stop<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Try<T, E>>,
{
    let tries = tries.max(1);
    let mut last = String::new();
    for n in 1..=tries {
        if n > 1 {
            tokio::time::sleep(pause.after(n - 1)).await;
            before_retry(n, &last);
        }
        match attempt(n).await {
            Try::Done(t) => return Ok(t),
            Try::Fail(e) => return Err(Stop::Failed(e)),
            Try::Again(why) => last = why,
        }
    }
    Err(Stop::GaveUp { tries, last })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn tries_until_done_saying_why_before_each_retry() {
        let said = RefCell::new(Vec::new());
        let r: Result<u32, Stop<()>> = run(retry(
            5,
            Pause::Every(Duration::from_secs(2)),
            |n, last| said.borrow_mut().push(format!("{n}: {last}")),
            |n| async move { if n < 3 { Try::Again(format!("not yet {n}")) } else { Try::Done(n * 10) } },
        ));
        assert_eq!(r, Ok(30));
        assert_eq!(*said.borrow(), ["2: not yet 1", "3: not yet 2"]);
    }

    #[test]
    fn gives_up_with_the_last_reason_and_stops_at_a_failure() {
        let r: Result<(), Stop<&str>> =
            run(retry(3, Pause::Every(Duration::ZERO), |_, _| {}, |n| async move { Try::Again(format!("no {n}")) }));
        assert_eq!(r, Err(Stop::GaveUp { tries: 3, last: "no 3".into() }));
        let tried = RefCell::new(0);
        let r: Result<(), Stop<&str>> = run(retry(
            9,
            Pause::Every(Duration::ZERO),
            |_, _| {},
            |_| {
                *tried.borrow_mut() += 1;
                async { Try::Fail("refused") }
            },
        ));
        assert_eq!((r, *tried.borrow()), (Err(Stop::Failed("refused")), 1), "a failure is not tried again");
        let zero: Result<(), Stop<()>> =
            run(retry(0, Pause::Every(Duration::ZERO), |_, _| {}, |_| async { Try::Again("x".into()) }));
        assert_eq!(zero, Err(Stop::GaveUp { tries: 1, last: "x".into() }), "zero tries is one try");
    }

    #[test]
    fn pauses_wait_as_said() {
        let s = Duration::from_secs;
        assert_eq!([1, 2, 3].map(|n| Pause::Every(s(5)).after(n)), [s(5), s(5), s(5)]);
        assert_eq!([1, 2, 3].map(|n| Pause::Doubling(s(1)).after(n)), [s(1), s(2), s(4)]);
        assert_eq!([1, 2, 3].map(|n| Pause::Growing(s(5)).after(n)), [s(5), s(10), s(15)]);
        // The pauses are really taken (a sleep is never shorter than asked).
        let ms = Duration::from_millis;
        let started = std::time::Instant::now();
        let _: Result<(), Stop<()>> =
            run(retry(3, Pause::Every(ms(20)), |_, _| {}, |_| async { Try::Again(String::new()) }));
        assert!(started.elapsed() >= ms(40), "{:?}", started.elapsed());
    }
}
