//! The operator's integration tests, one binary.

mod api;
mod callback;
mod controller;
mod redfish;
