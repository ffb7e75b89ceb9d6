//! Conformance of the in-memory apiserver, one test per behaviour, through the real `kube` client.

mod crud;
mod finalizers;
mod lifecycle;
mod lists;
mod patches;
mod protobuf;
mod rbac;
mod representations;
mod runtime;
mod schema;
mod semantics;
mod smp;
mod ssa;
mod watches;
