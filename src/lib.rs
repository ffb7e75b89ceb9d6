//! Beskar7: a Cluster API infrastructure provider for bare-metal servers with Redfish BMCs.
#![forbid(unsafe_code)]

pub mod api;
pub mod callback;
pub mod controllers;
pub mod kube_errors;
pub mod manager;
pub mod metrics;
pub mod redfish;
pub mod tokens;
