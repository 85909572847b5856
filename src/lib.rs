//! provision: a Heat environment file in, a Docker Swarm on OpenStack out.
//!
//! The program is a pipeline, one module per stage, data flowing forward:
//!
//! 1. [`params`]: environment files → typed, validated [`params::Params`];
//! 2. [`bundle`]: params → rendered Heat template, node configs and registry
//!    certificates (a [`bundle::Bundle`]), all offline;
//! 3. `stack`: the bundle → a Heat stack on the cloud, waited on;
//! 4. `handoff`: the stack's nodes → a Docker Swarm.

pub mod bundle;
pub mod params;
pub mod state;
