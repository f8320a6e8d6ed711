//! Wire types and codecs of the Kinesis API: errors, the service model and request validation,
//! typed requests, operation inputs and outputs, identifiers. No I/O lives here.

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
