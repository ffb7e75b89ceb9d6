//! `beskar7-agent`: the in-RAM agent that runs on the servers Beskar7 provisions.
//!
//! It is built by the agent issue; until then this binary only says so, so that nobody mistakes it
//! for a working agent.
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "beskar7-agent {}: not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(1);
}
