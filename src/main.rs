//! Entry point: parse the command line, run one command, print the outcome,
//! and choose the exit code here and nowhere else.

mod cli;
mod commands;
mod input;
mod live;
mod nodes;
mod terminal;
mod ui;

use std::process::ExitCode;

use provision::params::InputError;

/// Exit codes, documented in `--help` and the README.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_TIMED_OUT: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

/// The one reader of the process environment (clippy.toml forbids the
/// others): the library gets it as a lookup function. Present but not
/// UTF-8 reads as present, lossily.
#[allow(clippy::disallowed_methods)]
pub fn env_var(key: &str) -> Option<String> {
    std::env::var_os(key).map(|v| v.to_string_lossy().into_owned())
}

/// The one async runtime. Each command drives its cloud or SSH work on it
/// with `block_on`, one call after another, never nested.
pub fn runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_tracing(cli.global.color);
    let mut ui = ui::Ui::new(cli.global.output, cli.global.color);
    match dispatch(&cli, &mut ui) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let still_running = err.downcast_ref::<live::StillRunning>();
            let too_large = matches!(
                err.downcast_ref::<provision::bundle::BundleError>(),
                Some(provision::bundle::BundleError::UserDataTooLarge(_))
            );
            let quota = err.downcast_ref::<provision::stack::quota::QuotaError>();
            let usage = err.downcast_ref::<input::Usage>().is_some()
                || matches!(
                    err.downcast_ref::<provision::stack::CloudError>(),
                    Some(provision::stack::CloudError::Catalog(_))
                );
            let (code, kind) = match (err.downcast_ref::<InputError>(), still_running) {
                (Some(_), _) => (EXIT_BAD_INPUT, "input"),
                _ if usage => (EXIT_BAD_INPUT, "usage"),
                _ if too_large => (EXIT_BAD_INPUT, "input"),
                _ if quota.is_some() => (EXIT_BAD_INPUT, "quota"),
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
                    .map(|p| ProblemDoc {
                        at: &p.at,
                        key: p.key.as_deref(),
                        message: &p.message,
                        hint: p.hint.as_deref(),
                    })
                    .collect()
            });
            let doc = ErrorDoc {
                ok: false,
                exit_code: code,
                kind,
                error: &message,
                problems,
                warnings: ui.warnings(),
                quota: quota.map(|q| q.0.as_slice()),
            };
            ui.json(&serde_json::to_value(&doc).unwrap_or_default());
            ExitCode::from(code)
        }
    }
}

/// Which module runs a command: `live` those that talk to the cloud,
/// `nodes` those that work over SSH, `commands` the rest. None of them
/// calls another; they share only `cli`, `input` and `ui`.
fn dispatch(cli: &cli::Cli, ui: &mut ui::Ui) -> anyhow::Result<()> {
    use cli::Command;
    use provision::params::{Problem, Where};
    let global = &cli.global;
    let Some(command) = &cli.command else { return live::deploy(global, &cli.deploy, ui) };
    if let Some(flag) = cli.deploy.given() {
        return Err(InputError(vec![Problem::new(
            Where::flag(flag),
            format!(
                "{flag} is for deploying (`provision --env FILE {flag}`); put a command's own options after its name"
            ),
        )])
        .into());
    }
    match command {
        Command::Deploy(args) => live::deploy(global, args, ui),
        Command::Status(args) => live::status(global, ui, args),
        Command::Outputs(args) => live::outputs(global, ui, args),
        Command::Destroy(args) => live::destroy(global, args, ui),
        Command::List(args) => live::list(global, args, ui),
        Command::Gc(args) => live::gc(global, args, ui),
        Command::Logs(args) => live::logs(global, ui, args),
        Command::Ssh(args) => nodes::ssh(global, args, ui),
        Command::Handoff(args) => nodes::handoff(global, args, ui),
        Command::Render(args) => commands::render(global, args, ui),
        Command::Check(args) => commands::check(global, args, ui),
        Command::Params { markdown } => commands::params(*markdown, ui),
        Command::Clouds { names } => commands::clouds(*names, ui),
        Command::Completions { shell } => commands::completions(*shell),
        Command::Man(args) => commands::man(args, ui),
    }
}

/// The command line, or the exit code after clap said why not. A bare
/// `provision` shows the help. Under `--output json` a usage error is
/// also the same JSON document as every other failure, on stdout.
fn parse() -> Result<cli::Cli, ExitCode> {
    use clap::CommandFactory;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        let _ = cli::Cli::command().print_help();
        return Err(ExitCode::SUCCESS);
    }
    let parsed = cli::Cli::command()
        .try_get_matches_from(&args)
        .and_then(|m| Ok((<cli::Cli as clap::FromArgMatches>::from_arg_matches(&m)?, m)));
    let err = match parsed {
        Ok((mut cli, matches)) => {
            cli.global.name_suffix_from_env = from_env(&matches, "name_suffix");
            return Ok(cli);
        }
        Err(err) => err,
    };
    use clap::error::ErrorKind;
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        err.exit();
    }
    let _ = err.print();
    if wants_json(&args) {
        let rendered = err.render().to_string();
        let first = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        let doc = ErrorDoc {
            ok: false,
            exit_code: EXIT_BAD_INPUT,
            kind: "usage",
            error: &first,
            problems: None,
            warnings: &[],
            quota: None,
        };
        let value = serde_json::to_value(&doc).unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    }
    Err(ExitCode::from(EXIT_BAD_INPUT))
}

/// Whether a global argument's value came from its environment variable,
/// at whichever level of the command line clap keeps it.
fn from_env(matches: &clap::ArgMatches, id: &str) -> bool {
    let here = matches.value_source(id) == Some(clap::parser::ValueSource::EnvVariable);
    here || matches.subcommand().is_some_and(|(_, sub)| from_env(sub, id))
}

/// The one JSON document of every failure, clap's included.
#[derive(serde::Serialize)]
struct ErrorDoc<'a> {
    ok: bool,
    exit_code: u8,
    kind: &'a str,
    error: &'a str,
    /// Each problem of bad input, where it is (file and line, flag,
    /// variable or rendered file).
    problems: Option<Vec<ProblemDoc<'a>>>,
    warnings: &'a [String],
    /// The quota table, when a create would not fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<&'a [provision::stack::quota::Row]>,
}

#[derive(serde::Serialize)]
struct ProblemDoc<'a> {
    #[serde(flatten)]
    at: &'a provision::params::Where,
    key: Option<&'a str>,
    message: &'a str,
    hint: Option<&'a str>,
}

/// `--output json` (or `--output=json`) anywhere on a command line that
/// clap refused.
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    let words: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    words.iter().any(|w| w == "--output=json") || words.windows(2).any(|w| w[0] == "--output" && w[1] == "json")
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
