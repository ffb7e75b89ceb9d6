//! The agent's integration tests (one binary): the golden contract files and the dry-run binary.
#![forbid(unsafe_code)]

use beskar7_agent::probe::Root;

#[path = "../src/probe/testing.rs"]
mod testing;

mod binary;
mod golden;
