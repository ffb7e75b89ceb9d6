//! The agent's integration tests (one binary): the golden contract files, the dry-run and
//! report-only binary, the callback client against local HTTPS servers, and the run loop end to
//! end.
#![forbid(unsafe_code)]

use beskar7_agent::probe::Root;

#[path = "../src/probe/testing.rs"]
mod testing;

mod binary;
mod callbacks;
mod golden;
mod https_server;
mod run;
