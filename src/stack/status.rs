//! Heat's statuses as types. Heat writes a stack's or a resource's status
//! as `ACTION_STATE` text (`CREATE_IN_PROGRESS`, `ROLLBACK_COMPLETE`); it
//! is parsed once where it is read, so that the rest asks questions
//! ("settled?", "succeeded?") instead of matching suffixes.

use std::fmt;

use serde::{Serialize, Serializer};

/// What Heat is doing or did (its `ACTIONS`, plus the resources' `SIGNAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Init,
    Create,
    Update,
    Delete,
    Rollback,
    Suspend,
    Resume,
    Adopt,
    Snapshot,
    Check,
    Restore,
    Signal,
}

const ACTIONS: [(Action, &str); 12] = [
    (Action::Init, "INIT"),
    (Action::Create, "CREATE"),
    (Action::Update, "UPDATE"),
    (Action::Delete, "DELETE"),
    (Action::Rollback, "ROLLBACK"),
    (Action::Suspend, "SUSPEND"),
    (Action::Resume, "RESUME"),
    (Action::Adopt, "ADOPT"),
    (Action::Snapshot, "SNAPSHOT"),
    (Action::Check, "CHECK"),
    (Action::Restore, "RESTORE"),
    (Action::Signal, "SIGNAL"),
];

impl Action {
    pub fn as_str(self) -> &'static str {
        ACTIONS.iter().find(|(a, _)| *a == self).map(|(_, s)| *s).expect("every action has its text")
    }
}

/// Where that action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    InProgress,
    Complete,
    Failed,
}

const STATES: [(State, &str); 3] =
    [(State::InProgress, "IN_PROGRESS"), (State::Complete, "COMPLETE"), (State::Failed, "FAILED")];

/// A status as Heat reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackStatus {
    pub action: Action,
    pub state: State,
}

impl StackStatus {
    pub const fn new(action: Action, state: State) -> StackStatus {
        StackStatus { action, state }
    }

    /// `None` for text that is no Heat status (a newer Heat's action, or
    /// a missing field): the caller says what that means where it is.
    pub fn parse(text: &str) -> Option<StackStatus> {
        let (action, state) = ACTIONS.iter().find_map(|(a, name)| {
            let rest = text.strip_prefix(name)?.strip_prefix('_')?;
            STATES.iter().find(|(_, s)| *s == rest).map(|(state, _)| (*a, *state))
        })?;
        Some(StackStatus { action, state })
    }

    /// Heat has finished with it, one way or the other.
    pub fn settled(self) -> bool {
        self.state != State::InProgress
    }

    /// Finished as asked: a completed rollback is a failed create or update.
    pub fn succeeded(self) -> bool {
        self.state == State::Complete && self.action != Action::Rollback
    }

    pub fn failed(self) -> bool {
        self.state == State::Failed
    }
}

impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = STATES.iter().find(|(s, _)| *s == self.state).map(|(_, t)| *t).expect("every state has its text");
        write!(f, "{}_{state}", self.action.as_str())
    }
}

/// As Heat writes it, so the JSON reports keep Heat's words.
impl Serialize for StackStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What one run of this tool did to the stack, for its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAction {
    /// Heat did this on our request, or we followed it doing so.
    Heat(Action),
    /// The stack was up to date: nothing was asked of Heat.
    Nothing,
    /// Only looked at it (`status`, `outputs`).
    Show,
}

impl fmt::Display for RunAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunAction::Heat(a) => a.as_str(),
            RunAction::Nothing => "NONE",
            RunAction::Show => "SHOW",
        })
    }
}

impl Serialize for RunAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_heat_writes_them() {
        use Action::*;
        use State::*;
        // text, parsed, settled, succeeded, failed
        let table = [
            ("CREATE_IN_PROGRESS", Some((Create, InProgress)), false, false, false),
            ("CREATE_COMPLETE", Some((Create, Complete)), true, true, false),
            ("CREATE_FAILED", Some((Create, Failed)), true, false, true),
            ("UPDATE_COMPLETE", Some((Update, Complete)), true, true, false),
            ("UPDATE_IN_PROGRESS", Some((Update, InProgress)), false, false, false),
            ("ROLLBACK_COMPLETE", Some((Rollback, Complete)), true, false, false),
            ("ROLLBACK_IN_PROGRESS", Some((Rollback, InProgress)), false, false, false),
            ("DELETE_IN_PROGRESS", Some((Delete, InProgress)), false, false, false),
            ("DELETE_FAILED", Some((Delete, Failed)), true, false, true),
            ("DELETE_COMPLETE", Some((Delete, Complete)), true, true, false),
            ("CHECK_COMPLETE", Some((Check, Complete)), true, true, false),
            ("SIGNAL_COMPLETE", Some((Signal, Complete)), true, true, false),
            ("INIT_COMPLETE", Some((Init, Complete)), true, true, false),
            ("SNAPSHOT_FAILED", Some((Snapshot, Failed)), true, false, true),
            ("", None, false, false, false),
            ("CREATE", None, false, false, false),
            ("CREATE_", None, false, false, false),
            ("CREATE_DONE", None, false, false, false),
            ("create_complete", None, false, false, false),
            ("MIGRATE_COMPLETE", None, false, false, false),
            ("CREATE_COMPLETE ", None, false, false, false),
        ];
        for (text, parsed, settled, succeeded, failed) in table {
            let s = StackStatus::parse(text);
            assert_eq!(s.map(|s| (s.action, s.state)), parsed, "{text:?}");
            let Some(s) = s else { continue };
            assert_eq!((s.settled(), s.succeeded(), s.failed()), (settled, succeeded, failed), "{text}");
            assert_eq!(s.to_string(), text, "written back as Heat wrote it");
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn a_run_says_what_it_did_in_heats_words() {
        assert_eq!(RunAction::Heat(Action::Create).to_string(), "CREATE");
        assert_eq!(RunAction::Heat(Action::Delete).to_string(), "DELETE");
        assert_eq!(RunAction::Nothing.to_string(), "NONE");
        assert_eq!(serde_json::to_value(RunAction::Show).unwrap(), serde_json::json!("SHOW"));
    }
}
