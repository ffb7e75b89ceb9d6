//! The API types and their CRDs.

mod capi;
mod cel;
mod crds;
mod fixtures;
mod rules;
mod support;
