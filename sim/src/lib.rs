//! `beskar7-sim`: the simulated datacenter Beskar7 is tested and demonstrated in.
//!
//! The in-memory Kubernetes API server ([`apiserver`]), Redfish BMCs ([`bmc`]), the virtual
//! servers behind them that play the agent when PXE-booted ([`host`]), and a small stand-in for
//! Cluster API's core ([`capi`]).
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod bench;
pub mod bmc;
pub mod capi;
pub mod demo;
pub mod host;
