//! The layout the README promises, checked on the source: no library
//! stage imports a later one, and no command module of the binary calls
//! another (they share `cli`, `input`, `ui` and `terminal` only).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The modules of this crate a file names: `crate::x` paths and the
/// names inside `use crate::{...}` groups.
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level items: split at commas outside inner braces.
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(item.trim().split("::").next().unwrap_or("").to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(item.trim().split("::").next().unwrap_or("").to_string());
        } else {
            found.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_stage_imports_a_later_one() {
    // In pipeline order; `deploy` runs them all, so nothing may use it.
    let order = ["params", "bundle", "stack", "handoff", "deploy"];
    let mut offences = Vec::new();
    for (rank, stage) in order.iter().enumerate() {
        let dir = src().join(stage);
        let files = if dir.is_dir() { rust_files(&dir) } else { vec![src().join(format!("{stage}.rs"))] };
        assert!(!files.is_empty() && files.iter().all(|f| f.exists()), "{stage}: {files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for m in crate_modules(&text) {
                if order[rank + 1..].contains(&m.as_str()) {
                    offences.push(format!("{} ({stage}) uses {m}", f.display()));
                }
            }
        }
    }
    // The shared helpers beside the stages use no stage after bundle.
    for shared in ["keys.rs", "poll.rs", "state.rs", "templates.rs"] {
        let text = std::fs::read_to_string(src().join(shared)).unwrap();
        for m in crate_modules(&text) {
            if ["stack", "handoff", "deploy"].contains(&m.as_str()) {
                offences.push(format!("{shared} uses {m}"));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

#[test]
fn no_command_module_calls_another() {
    let commands = ["commands", "live", "nodes"];
    let mut offences = Vec::new();
    for c in commands {
        let text = std::fs::read_to_string(src().join(format!("{c}.rs"))).unwrap();
        for m in crate_modules(&text) {
            if commands.contains(&m.as_str()) && m != c {
                offences.push(format!("{c}.rs uses {m}"));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

#[test]
fn the_module_reader_finds_paths_and_groups() {
    let text = "use crate::cli::Global;\nuse crate::{input::{a, b}, ui::Ui};\nlet x = crate::live::deploy();";
    assert_eq!(crate_modules(text), ["cli", "input", "ui", "live"]);
}

#[test]
fn the_readme_lists_the_state_directory_as_the_layout_names_it() {
    use provision::state::{Mode, layout};
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (pattern, mode, _) in layout::KEPT {
        let mode = if *mode == Mode::Private { "0600" } else { "0644" };
        let row = format!("| `{pattern}` | {mode} |");
        assert!(readme.contains(&row), "README.md has no row {row}");
    }
}
