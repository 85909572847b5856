//! The operator's side of `provision ssh` without a command: standard
//! input fed to the node's shell, and, on a terminal, the terminal put in
//! raw mode (so keys like Ctrl-C reach the node rather than this process)
//! and its size passed on, also when the window changes.

use std::io::{IsTerminal, Read};

use provision::handoff::ssh::{Input, Terminal};
use tokio::sync::mpsc;

/// The terminal's settings as found, put back when this is dropped (also
/// on an error or a panic), so the operator's shell is usable afterwards.
pub struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Raw mode on standard input, when it is a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, &self.saved);
    }
}

/// The terminal to ask the node's pty for, when standard input is one.
pub fn terminal() -> Option<Terminal> {
    std::io::stdin().is_terminal().then(|| {
        let (cols, rows) = size();
        Terminal { term: crate::env_var("TERM").unwrap_or_else(|| "xterm".into()), cols, rows }
    })
}

/// Columns and rows of the terminal on standard output or input; 80x24
/// when neither says.
fn size() -> (u32, u32) {
    let of = |w: rustix::termios::Winsize| (w.ws_col > 0 && w.ws_row > 0).then_some((w.ws_col, w.ws_row));
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .and_then(of)
        .or_else(|| rustix::termios::tcgetwinsize(std::io::stdin()).ok().and_then(of))
        .map_or((80, 24), |(c, r)| (u32::from(c), u32::from(r)))
}

/// Standard input as [`Input`]s, ending with `Eof`; on a terminal, window
/// changes too. Reading happens on a thread of its own: a blocking read of
/// stdin cannot be cancelled, and the process ends without waiting for it.
pub fn input(with_resizes: bool) -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(64);
    let keys = tx.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = keys.blocking_send(Input::Eof);
                    return;
                }
                Ok(n) => {
                    if keys.blocking_send(Input::Data(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    if with_resizes {
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut changes) = signal(SignalKind::window_change()) else { return };
            while changes.recv().await.is_some() {
                let (cols, rows) = size();
                if tx.send(Input::Resize { cols, rows }).await.is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// Whether a question can be asked: both standard input and standard error
/// are terminals (off a terminal, in a pipeline, nothing is asked).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on the terminal; only `y` or `yes` is a yes.
pub fn confirm(question: &str) -> std::io::Result<bool> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr().lock();
    err.write_all(question.as_bytes())?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
