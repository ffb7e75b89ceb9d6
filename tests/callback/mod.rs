//! The callback servers over real HTTPS and HTTP on 127.0.0.1, against the sim API server.

mod agent;
mod boot;
mod golden;
mod interop;
mod keys;
mod secrets;
mod support;
mod tls;
