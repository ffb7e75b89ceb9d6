//! The agent's integration tests (one binary): the golden contract files, the dry-run and
//! report-only binary, and the callback client against local HTTPS servers.
#![forbid(unsafe_code)]

use beskar7_agent::probe::Root;

#[path = "../src/probe/testing.rs"]
mod testing;

mod binary;
mod callbacks;
mod golden;
mod https_server;
mod run;
