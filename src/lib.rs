//! provision: a Heat environment file in, a Docker Swarm on OpenStack out.
//!
//! The program is a pipeline, one module per stage, data flowing forward:
//!
//! 1. [`params`]: environment files → typed, validated [`params::Params`];
//! 2. [`bundle`]: params → rendered Heat template, node configs and registry
//!    certificates (a [`bundle::Bundle`]), all offline;
//! 3. [`stack`]: the bundle → a Heat stack on the cloud, waited on;
//! 4. [`handoff`]: the stack's nodes → a Docker Swarm, over SSH with pinned
//!    host keys;
//!
//! and [`deploy`], which runs them in order for `provision --env FILE`,
//! step by step; after them [`check`], which looks at a deployed registry
//! from the operator's machine. Beside the stages, [`state`] (the per-stack
//! state directory), [`keys`] (the stack's SSH keys in it) and
//! [`templates`] (the template files), which bundle uses first and handoff
//! again. No stage imports a later one.

// Input problems carry file, line, column, key and hint; they are built only
// on the error path, where their size costs nothing.
#![allow(clippy::result_large_err)]
// The library reports through its return values and callbacks; only the
// binary prints, and reads the environment (clippy.toml).
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod bundle;
pub mod check;
pub mod deploy;
pub mod handoff;
pub mod keys;
pub mod params;
pub mod poll;
pub mod stack;
pub mod state;
pub mod templates;
