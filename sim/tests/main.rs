//! The sim's integration tests, one binary: the apiserver's conformance suite through the real
//! `kube` client and kube-runtime, and the `beskar7-sim` command line.

mod apiserver;
mod bmc;
mod capi;
mod cli;
mod demo;
mod host;
mod kubectl;
mod support;
