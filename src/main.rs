//! Entry point: parse the command line, run one command, print the outcome,
//! and choose the exit code here and nowhere else.

mod cli;
mod commands;
mod live;
mod nodes;
mod terminal;
mod ui;

use std::process::ExitCode;

use clap::Parser;

use provision::params::InputError;

/// Exit codes, documented in `--help` and the README.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_TIMED_OUT: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.color);
    let mut ui = ui::Ui::new(cli.global.output, cli.global.color);
    match commands::run(&cli, &mut ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let still_running = err.downcast_ref::<live::StillRunning>();
            let too_large = matches!(
                err.downcast_ref::<provision::bundle::BundleError>(),
                Some(provision::bundle::BundleError::UserDataTooLarge(_))
            );
            let usage = err.downcast_ref::<commands::Usage>().is_some();
            let (code, kind) = match (err.downcast_ref::<InputError>(), still_running) {
                (Some(_), _) => (EXIT_BAD_INPUT, "input"),
                _ if usage => (EXIT_BAD_INPUT, "usage"),
                _ if too_large => (EXIT_BAD_INPUT, "input"),
                (None, Some(s)) if s.interrupted => (EXIT_INTERRUPTED, "interrupted"),
                (None, Some(_)) => (EXIT_TIMED_OUT, "timeout"),
                // `provision ssh` exits as the remote command did.
                (None, None) => match err.downcast_ref::<nodes::RemoteExit>() {
                    Some(r) => (r.code, "remote"),
                    None => (EXIT_FAILED, "failed"),
                },
            };
            let message = one_line(&err);
            ui.error(&message);
            let problems = err.downcast_ref::<InputError>().map(|e| {
                e.0.iter()
                    .map(|p| {
                        serde_json::json!({
                            "file": p.at.path, "line": p.at.line, "column": p.at.column,
                            "key": p.key, "message": p.message, "hint": p.hint,
                        })
                    })
                    .collect::<Vec<_>>()
            });
            ui.json(&serde_json::json!({
                "ok": false, "exit_code": code, "kind": kind, "error": message,
                "problems": problems, "warnings": ui.warnings(),
            }));
            ExitCode::from(code)
        }
    }
}

/// The error and its causes on one line, each said once: an error that
/// already ends with its cause's text (an I/O error it names) is not
/// followed by that cause again.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// `RUST_LOG` turns on tracing (to stderr); without it nothing is traced.
fn init_tracing(color: cli::Color) {
    use std::io::IsTerminal;
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG") else { return };
    let ansi = match color {
        cli::Color::Always => true,
        cli::Color::Never => false,
        cli::Color::Auto => std::io::stderr().is_terminal(),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}
