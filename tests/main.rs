//! The operator's integration tests, one binary.

mod api;
mod controller;
mod redfish;
