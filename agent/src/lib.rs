//! `beskar7-agent`: the in-RAM agent that runs on the servers Beskar7 provisions.
//!
//! Phase 1: read the kernel command line ([`cmdline`]), probe the hardware from firmware and
//! kernel truth ([`probe`]), resolve the root device hints ([`disk_select`]) and build the
//! inspection report of the wire contract ([`report`]). Phase 2: the callbacks of the contract
//! ([`callbacks`]) over a small blocking HTTPS client pinned to `beskar7.ca` ([`http`]). Phase 3:
//! the run loop ([`run`]) with the Kexec and Image handoffs and cleaning ([`handoff`]), and what
//! PID 1 of the initramfs sets up first ([`init`]: [`modules`], [`netup`]). The syscalls no safe
//! crate offers are in [`sys`], the only module allowed `unsafe`. See `docs/agent.md`.
// `deny`, not `forbid`: the audited syscall module `sys` is the one `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod callbacks;
pub mod cmdline;
pub mod disk_select;
pub mod handoff;
pub mod http;
pub mod init;
pub mod modules;
pub mod netup;
pub mod probe;
pub mod report;
pub mod run;
mod secret;
pub mod sys;

pub use secret::{SecretBytes, Token, wipe};
