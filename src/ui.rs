//! The one place output goes: results on stdout (for people, or one JSON
//! document), warnings and notes on stderr. Nothing else prints.

use std::io::{IsTerminal, Write};

use provision::deploy::{Expected, Step};

use crate::cli::{Color, Output};

pub struct Ui {
    pub json: bool,
    color: bool,
    warnings: Vec<String>,
    /// One JSON document per run: once a command printed its result, a
    /// failure after it adds only the exit code.
    json_printed: std::cell::Cell<bool>,
    /// Where a cloud command acts; every JSON document it prints carries it.
    target: Option<serde_json::Value>,
}

impl Ui {
    pub fn new(output: Output, color: Color) -> Ui {
        let color = match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::io::stderr().is_terminal() && crate::env_var("NO_COLOR").is_none(),
        };
        Ui {
            json: output == Output::Json,
            color,
            warnings: Vec::new(),
            json_printed: std::cell::Cell::new(false),
            target: None,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    /// A warning: shown on stderr now, and kept for the JSON result.
    pub fn warn(&mut self, msg: &str) {
        eprintln!("{} {msg}", self.paint("1;33", "warning:"));
        self.warnings.push(msg.to_string());
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The result for people.
    pub fn human(&self, text: &str) {
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
        }
    }

    /// Says, before a cloud command sends anything, where it acts; the
    /// JSON result says the same under `target`.
    pub fn acting_on(&mut self, target: &provision::params::credentials::Target) {
        eprintln!("{} {target}", self.paint("1", "acting on"));
        self.target = serde_json::to_value(target).ok();
    }

    /// The result for programs: the command's own fields, with whether it
    /// did what was asked, the command's name and the warnings said.
    pub fn result(&self, command: &str, ok: bool, fields: &impl serde::Serialize) {
        if self.json {
            self.json(&document(command, ok, fields, Some(&self.warnings)));
        }
    }

    /// A document as it is, for the error of any command.
    pub fn json(&self, value: &serde_json::Value) {
        if self.json && !self.json_printed.replace(true) {
            let mut value = value.clone();
            if let (Some(t), Some(map)) = (&self.target, value.as_object_mut()) {
                map.entry("target").or_insert_with(|| t.clone());
            }
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, &value);
            let _ = out.write_all(b"\n");
        }
    }

    /// What the stack will open to the whole world, said before it is
    /// made (render and deploy): the default stays compatible, the
    /// warning says how to close it.
    pub fn warn_open(&mut self, params: &provision::params::Params) {
        let ports = provision::bundle::exposure::plan(params, None).world_open_admin_ports();
        if !ports.is_empty() {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            self.warn(&format!(
                "the manager's SSH and management UI ports ({}) are open to {}; \
                 set ssh_allowed_cidr to the addresses you work from",
                ports.join(", "),
                params.ssh_allowed_cidr
            ));
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("{} {msg}", self.paint("1;31", "error:"));
    }
}

/// One JSON result: `fields` (a struct of the command's own) with `ok`,
/// `command` and, when given, `warnings` beside them.
pub fn document(
    command: &str,
    ok: bool,
    fields: &impl serde::Serialize,
    warnings: Option<&[String]>,
) -> serde_json::Value {
    let mut value = serde_json::to_value(fields)
        .unwrap_or_else(|e| serde_json::json!({ "error": format!("the result could not be written as JSON: {e}") }));
    if let Some(map) = value.as_object_mut() {
        map.insert("ok".into(), ok.into());
        map.insert("command".into(), command.into());
        if let Some(w) = warnings {
            map.insert("warnings".into(), w.into());
        }
    }
    value
}

/// Shows a stack operation as it happens, on stderr: one line per Heat
/// event, and on a terminal a spinner with the status and elapsed time.
/// Stdout stays for the result, so `--output json` pipes cleanly.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// Off a terminal: when something was last printed, so a long quiet
    /// wait still gets a line every [`HEARTBEAT`] (CI logs show progress).
    last_line: std::sync::Mutex<std::time::Instant>,
    plan: std::sync::Mutex<Expected>,
    /// The deploy's step now, for what an interruption says.
    current: std::sync::Mutex<Option<Step>>,
}

const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            last_line: std::sync::Mutex::new(std::time::Instant::now()),
            plan: std::sync::Mutex::new(Expected::default()),
            current: std::sync::Mutex::new(None),
        }
    }

    /// The deploy step that began last.
    pub fn current_step(&self) -> Option<Step> {
        self.current.lock().ok().and_then(|c| *c)
    }

    /// A line above the spinner (or plain on stderr).
    pub fn print(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => {
                eprintln!("{text}");
                self.printed();
            }
        }
    }

    fn printed(&self) {
        if let Ok(mut t) = self.last_line.lock() {
            *t = std::time::Instant::now();
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl provision::stack::Watch for Progress {
    fn event(&self, e: &provision::stack::Event) {
        self.print(&e.line());
    }

    fn progress(&self, now: &provision::stack::Snapshot) {
        let text = self.plan.lock().map(|p| p.describe(now)).unwrap_or_default();
        match &self.bar {
            Some(b) => b.set_message(text),
            None => {
                let quiet = self.last_line.lock().map(|t| t.elapsed() >= HEARTBEAT).unwrap_or(false);
                if quiet {
                    self.print(&format!("still {text}"));
                }
            }
        }
    }
}

impl provision::deploy::Reporter for Progress {
    /// On a terminal the spinner says the step until its first event;
    /// off one a step makes no line of its own (the lines it prints say it).
    fn begin(&self, step: Step) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(step);
        }
        if let Some(b) = &self.bar {
            b.set_message(step.doing());
        }
    }

    fn line(&self, text: &str) {
        self.print(text);
    }

    /// A step of the hand-off: printed, and on a terminal the spinner
    /// says it until the next one.
    fn step(&self, text: &str) {
        self.print(text);
        if let Some(b) = &self.bar {
            b.set_message(format!("hand-off: {text}"));
        }
    }

    fn expect(&self, expected: Expected) {
        if let Ok(mut p) = self.plan.lock() {
            *p = expected;
        }
    }

    fn notice_fn(&self) -> Box<dyn Fn(&str) + Send + Sync> {
        let bar = self.bar.clone();
        Box::new(move |msg: &str| match &bar {
            Some(b) => b.println(format!("note: {msg}")),
            None => eprintln!("note: {msg}"),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
