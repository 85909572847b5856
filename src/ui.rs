//! The one place output goes: results on stdout (for people, or one JSON
//! document), warnings and notes on stderr. Nothing else prints.

use std::io::{IsTerminal, Write};

use crate::cli::{Color, Output};

pub struct Ui {
    pub json: bool,
    color: bool,
    warnings: Vec<String>,
    /// One JSON document per run: once a command printed its result, a
    /// failure after it adds only the exit code.
    json_printed: std::cell::Cell<bool>,
}

impl Ui {
    pub fn new(output: Output, color: Color) -> Ui {
        let color = match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        Ui { json: output == Output::Json, color, warnings: Vec::new(), json_printed: std::cell::Cell::new(false) }
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

    /// The result for programs.
    pub fn json(&self, value: &serde_json::Value) {
        if self.json && !self.json_printed.replace(true) {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, value);
            let _ = out.write_all(b"\n");
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("{} {msg}", self.paint("1;31", "error:"));
    }
}
