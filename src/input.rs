//! What the command line asks for, read into the library's types: the
//! inputs ([`load`]), the credentials, the stack's state directory, and
//! the commands printed as hints ([`again`]). Every command module reads
//! its input through here; none calls another.

use anyhow::Result;

use provision::bundle::registry::Swift;
use provision::params::inputs::{self, Inputs, Selection};
use provision::params::{InputError, Problem, Where, credentials};
use provision::stack::Cloud;
use provision::state::StateDir;

use crate::cli::Global;
use crate::ui::{Progress, Ui};

/// A command line that cannot work, found before anything is read or made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

fn selection(global: &Global) -> Selection {
    Selection {
        env_files: global.env.clone(),
        name: global.name.clone(),
        name_suffix: global.name_suffix.clone().map(|s| {
            let at = if global.name_suffix_from_env {
                Where::variable("PROVISION_NAME_SUFFIX")
            } else {
                Where::flag("--name-suffix")
            };
            (s, at)
        }),
        credentials: credentials::Request {
            os_cloud: global.os_cloud.clone(),
            cacert: global.os_cacert.clone(),
            insecure: global.insecure,
        },
    }
}

/// The environment files, the stack name and the credentials; every
/// warning shown.
pub fn load(global: &Global, ui: &mut Ui) -> Result<Inputs> {
    if let Some(dir) = &global.templates
        && !dir.is_dir()
    {
        let what = if dir.exists() { "is not a folder" } else { "does not exist" };
        return Err(Usage(format!(
            "--templates {}: {what}; give a folder laid out like templates/ in provision's source",
            dir.display()
        ))
        .into());
    }
    let loaded = inputs::load(&selection(global), &|k| crate::env_var(k))?;
    for w in &loaded.warnings {
        ui.warn(w);
    }
    Ok(loaded)
}

/// The registry's Swift login when it stores in Swift, said aloud: the
/// operator's password goes to the node.
pub fn swift_login(inputs: &Inputs, ui: &mut Ui) -> Result<Option<Swift>, InputError> {
    let swift = Swift::login(&inputs.params, inputs.credentials.as_ref())?;
    if swift.is_some() {
        ui.warn(provision::bundle::registry::SWIFT_WARNING);
    }
    Ok(swift)
}

/// The credentials the flags and the environment give, without env files.
pub fn credentials_alone(global: &Global, ui: &mut Ui) -> Result<Option<credentials::Credentials>, InputError> {
    let (found, warnings) =
        inputs::resolve_credentials(&selection(global), &|k| crate::env_var(k), &Default::default())?;
    for w in &warnings {
        ui.warn(w);
    }
    Ok(found)
}

/// Commands that need only the stack's name and credentials: `--name`
/// alone will do, without environment files, when the credentials come
/// from clouds.yaml or OS_* variables.
pub fn load_for_name(global: &Global, ui: &mut Ui) -> Result<(String, Option<credentials::Credentials>)> {
    if global.env.is_empty()
        && let Some(name) = &global.name
    {
        let credentials = credentials_alone(global, ui)?;
        return Ok((inputs::stack_name(name, global.name_suffix.as_deref())?, credentials));
    }
    let loaded = load(global, ui)?;
    Ok((loaded.stack_name, loaded.credentials))
}

/// The credentials alone, for the commands about the whole project: from
/// the env files when given, else clouds.yaml or the OS_* variables.
pub fn project_credentials(global: &Global, ui: &mut Ui) -> Result<credentials::Credentials> {
    let given = if global.env.is_empty() { credentials_alone(global, ui)? } else { load(global, ui)?.credentials };
    Ok(need_credentials(&given, ui)?)
}

/// The credentials a cloud command needs; once found, the command says
/// where it will act.
pub fn need_credentials(
    given: &Option<credentials::Credentials>,
    ui: &mut Ui,
) -> Result<credentials::Credentials, InputError> {
    if let Some(c) = given {
        ui.acting_on(&c.target());
    }
    given.clone().ok_or_else(|| {
        InputError(vec![
            Problem::new(Where::flag("--os-cloud"), "no OpenStack credentials found")
                .hint("give --os-cloud NAME (clouds.yaml), the OS_* variables of an openrc file, or os_authurl, os_username and os_password in the environment file"),
        ])
    })
}

pub async fn connect(creds: &credentials::Credentials, progress: &Progress) -> Result<Cloud> {
    Ok(Cloud::connect(creds, provision::deploy::Reporter::notice_fn(progress)).await?)
}

fn state_root(global: &Global) -> std::path::PathBuf {
    global.state_dir.clone().unwrap_or_else(|| StateDir::default_root(&|k| crate::env_var(k)))
}

/// The stack's state for a command that writes it: locked until the
/// returned value (and its clones) are dropped.
pub fn state_dir(global: &Global, stack: &str) -> Result<StateDir> {
    let wait =
        if global.no_wait { provision::state::Wait::Fail } else { provision::state::Wait::Block(|m| eprintln!("{m}")) };
    Ok(StateDir::open_with(&state_root(global), stack, wait)?)
}

/// Whether this machine's state directory has the stack (made or tried by
/// a run here).
pub fn state_known(global: &Global, stack: &str) -> bool {
    std::fs::symlink_metadata(state_root(global).join(stack)).is_ok()
}

/// The stack's state for a command that only reads it (`check`, `ssh`):
/// checked as for writing, not locked, so a long `ssh` session holds up
/// no render.
pub fn state_view(global: &Global, stack: &str) -> Result<StateDir> {
    Ok(StateDir::inspect(&state_root(global), stack)?)
}

/// The command that does `sub` to the same stack, with the same inputs,
/// ready to paste.
pub fn again(global: &Global, sub: &str) -> String {
    use provision::handoff::commands::shell_word;
    let mut words = vec!["provision".to_string()];
    if !sub.is_empty() {
        words.extend(sub.split(' ').map(str::to_string));
    }
    for e in &global.env {
        words.push("--env".into());
        words.push(shell_word(&e.display().to_string()));
    }
    let mut flag = |f: &str, v: Option<String>| {
        if let Some(v) = v {
            words.push(f.into());
            words.push(shell_word(&v));
        }
    };
    flag("--name", global.name.clone());
    flag("--name-suffix", global.name_suffix.clone());
    flag("--os-cloud", global.os_cloud.clone());
    flag("--state-dir", global.state_dir.as_ref().map(|p| p.display().to_string()));
    flag("--templates", global.templates.as_ref().map(|p| p.display().to_string()));
    words.join(" ")
}

/// [`again`] for another stack name.
pub fn again_named(global: &Global, sub: &str, name: &str) -> String {
    let mut other = global.clone();
    other.name = Some(name.to_string());
    other.name_suffix = None;
    again(&other, sub)
}
