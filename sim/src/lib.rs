//! `beskar7-sim`: the simulated datacenter Beskar7 is tested and demonstrated in.
//!
//! Today it holds the in-memory Kubernetes API server ([`apiserver`]); the Redfish BMC simulator,
//! virtual hosts and the Cluster API stand-in join it in later issues.
#![forbid(unsafe_code)]

pub mod apiserver;
pub mod bench;
pub mod bmc;
