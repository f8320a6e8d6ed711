//! Wire types and codecs of the Kinesis API: errors, the service model and request validation,
//! typed requests, operation inputs and outputs, identifiers. No I/O lives here.

// TODO(issue 14): remove after the typed-boundary merge (unwrap/expect are denied workspace-wide,
// see [workspace.lints] in Cargo.toml; this crate is being rewritten on other branches).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cbor;
pub mod error;
pub mod eventstream;
pub mod fast;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod model;
pub mod operation;
pub mod ops;
pub mod policy;
pub mod request;
pub mod sigv4;
pub mod token;
