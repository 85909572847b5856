//! The input every stack command shares, read in one place: the
//! environment files into [`Params`], the name suffix, the stack name, and
//! the credentials. Takes what the command line selected and an
//! environment lookup; gives [`Inputs`] with the warnings to show, or
//! every problem found.

use std::path::PathBuf;

use super::credentials::{self, Credentials, EnvFileCredentials};
use super::{InputError, Params, Problem, Where};

/// What the command line chose: which files, which stack, which cloud.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub env_files: Vec<PathBuf>,
    /// `--name`; the hostname parameter when absent.
    pub name: Option<String>,
    /// `--name-suffix` or `PROVISION_NAME_SUFFIX`, with which one it was.
    pub name_suffix: Option<(String, Where)>,
    pub credentials: credentials::Request,
}

/// The stack a command works on, read and checked.
pub struct Inputs {
    pub params: Params,
    pub credentials: Option<Credentials>,
    pub stack_name: String,
    /// Things that work but are likely a mistake, in the order found.
    pub warnings: Vec<String>,
}

/// Reads the environment files, applies the suffix, names the stack and
/// finds the credentials (flags, then the environment, then the env
/// files' `os_*` parameters, as the OpenStack client orders them).
pub fn load(selection: &Selection, var: &dyn Fn(&str) -> Option<String>) -> Result<Inputs, InputError> {
    let mut params = Params::load(&selection.env_files)?;
    if let Some((suffix, at)) = &selection.name_suffix {
        params.with_name_suffix(suffix, at.clone()).map_err(|p| InputError(vec![p]))?;
    }
    let mut warnings = params.warnings.clone();
    let (credentials, more) = resolve_credentials(selection, var, &params.env_credentials)?;
    warnings.extend(more);
    tracing::debug!(params = ?params, source = ?credentials.as_ref().map(|c| &c.source), "input");
    let stack_name = match &selection.name {
        Some(n) => stack_name(n, selection.name_suffix.as_ref().map(|(s, _)| s.as_str()))?,
        None => {
            check_stack_name(&params.hostname)?;
            params.hostname.clone()
        }
    };
    Ok(Inputs { params, credentials, stack_name, warnings })
}

/// The credentials alone (for commands that need no env file), with the
/// warnings their sources gave.
pub fn resolve_credentials(
    selection: &Selection,
    var: &dyn Fn(&str) -> Option<String>,
    from_env_files: &EnvFileCredentials,
) -> Result<(Option<Credentials>, Vec<String>), InputError> {
    let resolved =
        credentials::resolve(&selection.credentials, var, from_env_files).map_err(|p| InputError(vec![p]))?;
    Ok((resolved.credentials, resolved.warnings))
}

/// A stack name given with `--name`, with `--name-suffix` after it, checked.
pub fn stack_name(name: &str, suffix: Option<&str>) -> Result<String, InputError> {
    let name = match suffix {
        Some(s) => format!("{name}-{s}"),
        None => name.to_string(),
    };
    check_stack_name(&name)?;
    Ok(name)
}

/// Heat's rule for stack names: a letter first, then letters, digits, `_-.`.
/// The name also names the stack's state directory, so nothing else gets in.
pub fn check_stack_name(name: &str) -> Result<(), InputError> {
    let ok = name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(InputError(vec![
            Problem::new(Where::flag("--name"), format!("`{name}` is not a valid stack name"))
                .hint("a stack name starts with a letter and has only letters, digits, `_`, `-` and `.`; pass --name"),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_follow_heats_rule_and_keep_out_of_other_folders() {
        for good in ["a", "myhost", "my-host_1.test", "ci-4711"] {
            assert!(check_stack_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "-a", "..", "a/b", "a b", "../etc", "ä", &"a".repeat(256)] {
            assert!(check_stack_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(stack_name("web", Some("ci-7")).unwrap(), "web-ci-7");
        assert!(stack_name("web", Some("../x")).is_err(), "a suffix cannot escape either");
    }
}
