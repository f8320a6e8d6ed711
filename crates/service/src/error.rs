//! The service's own error: one variant per kind of failure Kinesis answers with, each carrying
//! the message for the client. The service knows nothing of the wire; the server turns a
//! `ServiceError` into the AWS-worded wire error (`From<ServiceError> for ApiError`: the
//! exception's name, its HTTP status, the JSON or CBOR body).
//!
//! The constructors mirror `kinesin_wire::error::ApiError`'s (`new(kind, message)`,
//! `invalid_argument`, `validation`, `internal`), so code builds either the same way.

use std::fmt;

use kinesin_wire::error::{ApiError, ErrorKind};

/// Why the service refused or failed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// A member's value is not valid for this call (InvalidArgumentException).
    InvalidArgument(String),
    /// A member breaks a constraint of the model the service checks itself (ValidationException).
    Validation(String),
    /// The stream, shard or consumer does not exist (ResourceNotFoundException).
    ResourceNotFound(String),
    /// The resource is not in a state that allows the call (ResourceInUseException).
    ResourceInUse(String),
    /// An account or stream limit, or a control-plane call rate (LimitExceededException).
    LimitExceeded(String),
    /// A shard's read or write throughput (ProvisionedThroughputExceededException).
    ProvisionedThroughputExceeded(String),
    /// A shard iterator past its lifetime (ExpiredIteratorException).
    ExpiredIterator(String),
    /// A pagination token past its lifetime (ExpiredNextTokenException).
    ExpiredNextToken(String),
    /// DryRun was set and the call would have succeeded (DryRunOperationException).
    DryRun(String),
    /// Not allowed (AccessDeniedException).
    AccessDenied(String),
    /// The KMS key refuses kinesin (KMSAccessDeniedException).
    KmsAccessDenied(String),
    /// The KMS key is disabled (KMSDisabledException).
    KmsDisabled(String),
    /// The KMS key is not in a usable state (KMSInvalidStateException).
    KmsInvalidState(String),
    /// No such KMS key (KMSNotFoundException).
    KmsNotFound(String),
    /// KMSOptInRequired.
    KmsOptInRequired(String),
    /// KMSThrottlingException.
    KmsThrottling(String),
    /// A failure of kinesin itself (InternalFailureException); the detail is in the server log.
    Internal(String),
}

impl ServiceError {
    /// The error of `kind` with `message`. Kinds the service never answers with (the protocol
    /// errors of the front end: serialization, authentication, unknown operation) are internal
    /// failures here: reaching one is a defect.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        let m = message.into();
        match kind {
            ErrorKind::InvalidArgument => ServiceError::InvalidArgument(m),
            ErrorKind::Validation => ServiceError::Validation(m),
            ErrorKind::ResourceNotFound => ServiceError::ResourceNotFound(m),
            ErrorKind::ResourceInUse => ServiceError::ResourceInUse(m),
            ErrorKind::LimitExceeded => ServiceError::LimitExceeded(m),
            ErrorKind::ProvisionedThroughputExceeded => ServiceError::ProvisionedThroughputExceeded(m),
            ErrorKind::ExpiredIterator => ServiceError::ExpiredIterator(m),
            ErrorKind::ExpiredNextToken => ServiceError::ExpiredNextToken(m),
            ErrorKind::DryRunOperation => ServiceError::DryRun(m),
            ErrorKind::AccessDenied => ServiceError::AccessDenied(m),
            ErrorKind::KmsAccessDenied => ServiceError::KmsAccessDenied(m),
            ErrorKind::KmsDisabled => ServiceError::KmsDisabled(m),
            ErrorKind::KmsInvalidState => ServiceError::KmsInvalidState(m),
            ErrorKind::KmsNotFound => ServiceError::KmsNotFound(m),
            ErrorKind::KmsOptInRequired => ServiceError::KmsOptInRequired(m),
            ErrorKind::KmsThrottling => ServiceError::KmsThrottling(m),
            ErrorKind::InternalFailure => ServiceError::Internal(m),
            other => ServiceError::Internal(format!("{other}: {m}")),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> ServiceError {
        ServiceError::InvalidArgument(message.into())
    }

    pub fn validation(message: impl Into<String>) -> ServiceError {
        ServiceError::Validation(message.into())
    }

    pub fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError::Internal(message.into())
    }

    /// The AWS error this is answered as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            ServiceError::Validation(_) => ErrorKind::Validation,
            ServiceError::ResourceNotFound(_) => ErrorKind::ResourceNotFound,
            ServiceError::ResourceInUse(_) => ErrorKind::ResourceInUse,
            ServiceError::LimitExceeded(_) => ErrorKind::LimitExceeded,
            ServiceError::ProvisionedThroughputExceeded(_) => ErrorKind::ProvisionedThroughputExceeded,
            ServiceError::ExpiredIterator(_) => ErrorKind::ExpiredIterator,
            ServiceError::ExpiredNextToken(_) => ErrorKind::ExpiredNextToken,
            ServiceError::DryRun(_) => ErrorKind::DryRunOperation,
            ServiceError::AccessDenied(_) => ErrorKind::AccessDenied,
            ServiceError::KmsAccessDenied(_) => ErrorKind::KmsAccessDenied,
            ServiceError::KmsDisabled(_) => ErrorKind::KmsDisabled,
            ServiceError::KmsInvalidState(_) => ErrorKind::KmsInvalidState,
            ServiceError::KmsNotFound(_) => ErrorKind::KmsNotFound,
            ServiceError::KmsOptInRequired(_) => ErrorKind::KmsOptInRequired,
            ServiceError::KmsThrottling(_) => ErrorKind::KmsThrottling,
            ServiceError::Internal(_) => ErrorKind::InternalFailure,
        }
    }

    /// The message for the client (every service error has one; `Option` as on `ApiError`).
    pub fn message(&self) -> Option<&str> {
        Some(self.text())
    }

    fn text(&self) -> &str {
        match self {
            ServiceError::InvalidArgument(m)
            | ServiceError::Validation(m)
            | ServiceError::ResourceNotFound(m)
            | ServiceError::ResourceInUse(m)
            | ServiceError::LimitExceeded(m)
            | ServiceError::ProvisionedThroughputExceeded(m)
            | ServiceError::ExpiredIterator(m)
            | ServiceError::ExpiredNextToken(m)
            | ServiceError::DryRun(m)
            | ServiceError::AccessDenied(m)
            | ServiceError::KmsAccessDenied(m)
            | ServiceError::KmsDisabled(m)
            | ServiceError::KmsInvalidState(m)
            | ServiceError::KmsNotFound(m)
            | ServiceError::KmsOptInRequired(m)
            | ServiceError::KmsThrottling(m)
            | ServiceError::Internal(m) => m,
        }
    }

    fn into_text(self) -> String {
        match self {
            ServiceError::InvalidArgument(m)
            | ServiceError::Validation(m)
            | ServiceError::ResourceNotFound(m)
            | ServiceError::ResourceInUse(m)
            | ServiceError::LimitExceeded(m)
            | ServiceError::ProvisionedThroughputExceeded(m)
            | ServiceError::ExpiredIterator(m)
            | ServiceError::ExpiredNextToken(m)
            | ServiceError::DryRun(m)
            | ServiceError::AccessDenied(m)
            | ServiceError::KmsAccessDenied(m)
            | ServiceError::KmsDisabled(m)
            | ServiceError::KmsInvalidState(m)
            | ServiceError::KmsNotFound(m)
            | ServiceError::KmsOptInRequired(m)
            | ServiceError::KmsThrottling(m)
            | ServiceError::Internal(m) => m,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.text())
    }
}

impl std::error::Error for ServiceError {}

/// The wire's wording of a service error: the AWS exception of its kind, with its message.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let kind = e.kind();
        ApiError::new(kind, e.into_text())
    }
}

/// A wire error met inside the service (a token or model check of the wire crate), kept as the
/// same kind and message.
impl From<ApiError> for ServiceError {
    fn from(e: ApiError) -> ServiceError {
        ServiceError::new(e.kind, e.message.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_the_wire_error() {
        for &kind in ErrorKind::ALL {
            let e = ServiceError::new(kind, "m");
            let wire = ApiError::from(e.clone());
            if e.kind() == kind {
                assert_eq!(wire, ApiError::new(kind, "m"));
                assert_eq!(ServiceError::from(wire), e);
            } else {
                // A protocol-level kind is a defect inside the service: an internal failure.
                assert_eq!(e.kind(), ErrorKind::InternalFailure, "{kind}");
                assert!(e.message().unwrap().starts_with(kind.as_str()), "{e}");
            }
        }
        assert_eq!(ServiceError::invalid_argument("x").to_string(), "InvalidArgumentException: x");
    }
}
