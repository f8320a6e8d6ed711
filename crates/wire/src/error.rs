//! The errors a Kinesis endpoint answers with, as the wire sees them.
//!
//! Names are the model's exception shapes plus the protocol-level errors of the AWS front end
//! (reference §1.6). The status code follows awsJson1_1: client errors 400, server faults 500.

use std::fmt;

/// Every error type this server emits. The string form is the `__type` / `x-amzn-ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    AccessDenied,
    ExpiredIterator,
    ExpiredNextToken,
    InternalFailure,
    InvalidArgument,
    KmsAccessDenied,
    KmsDisabled,
    KmsInvalidState,
    KmsNotFound,
    KmsOptInRequired,
    KmsThrottling,
    LimitExceeded,
    ProvisionedThroughputExceeded,
    ResourceInUse,
    ResourceNotFound,
    Validation,
    /// DryRun was set and the request would have succeeded.
    DryRunOperation,
    // Protocol-level errors of the AWS front end (not in the model).
    UnknownOperation,
    Serialization,
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
    /// Overloaded or shutting down: SDKs retry 503.
    ServiceUnavailable,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorKind::InternalFailure => "InternalFailureException",
            ErrorKind::InvalidArgument => "InvalidArgumentException",
            ErrorKind::KmsAccessDenied => "KMSAccessDeniedException",
            ErrorKind::KmsDisabled => "KMSDisabledException",
            ErrorKind::KmsInvalidState => "KMSInvalidStateException",
            ErrorKind::KmsNotFound => "KMSNotFoundException",
            ErrorKind::KmsOptInRequired => "KMSOptInRequired",
            ErrorKind::KmsThrottling => "KMSThrottlingException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::DryRunOperation => "DryRunOperationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::IncompleteSignature => "IncompleteSignatureException",
            ErrorKind::InvalidSignature => "InvalidSignatureException",
            ErrorKind::UnrecognizedClient => "UnrecognizedClientException",
            ErrorKind::ServiceUnavailable => "ServiceUnavailableException",
        }
    }

    /// HTTP status of this error. The AWS front end answers authentication errors on the JSON
    /// protocol with 400 too (captured by kinesalite's tests against AWS).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalFailure => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// Every kind, e.g. for per-error-code metrics (`all_kinds_are_listed` keeps it complete).
    pub const ALL: [ErrorKind; 24] = {
        use ErrorKind::*;
        [
            AccessDenied,
            ExpiredIterator,
            ExpiredNextToken,
            InternalFailure,
            InvalidArgument,
            KmsAccessDenied,
            KmsDisabled,
            KmsInvalidState,
            KmsNotFound,
            KmsOptInRequired,
            KmsThrottling,
            LimitExceeded,
            ProvisionedThroughputExceeded,
            ResourceInUse,
            ResourceNotFound,
            Validation,
            DryRunOperation,
            UnknownOperation,
            Serialization,
            MissingAuthenticationToken,
            IncompleteSignature,
            InvalidSignature,
            UnrecognizedClient,
            ServiceUnavailable,
        ]
    };
}

/// Adding a kind breaks this match until [`ErrorKind::ALL`] lists it too.
#[cfg(test)]
#[test]
fn all_kinds_are_listed() {
    use ErrorKind::*;
    let position = |k: ErrorKind| ErrorKind::ALL.iter().position(|x| *x == k);
    for k in ErrorKind::ALL {
        match k {
            AccessDenied
            | ExpiredIterator
            | ExpiredNextToken
            | InternalFailure
            | InvalidArgument
            | KmsAccessDenied
            | KmsDisabled
            | KmsInvalidState
            | KmsNotFound
            | KmsOptInRequired
            | KmsThrottling
            | LimitExceeded
            | ProvisionedThroughputExceeded
            | ResourceInUse
            | ResourceNotFound
            | Validation
            | DryRunOperation
            | UnknownOperation
            | Serialization
            | MissingAuthenticationToken
            | IncompleteSignature
            | InvalidSignature
            | UnrecognizedClient
            | ServiceUnavailable => assert!(position(k).is_some()),
        }
    }
    let names: std::collections::HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), ErrorKind::ALL.len(), "no kind listed twice");
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error answer: its type and its message (absent for a few protocol errors, as on AWS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: Some(message.into()) }
    }

    pub fn bare(kind: ErrorKind) -> ApiError {
        ApiError { kind, message: None }
    }

    pub fn invalid_argument(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Validation, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InternalFailure, message)
    }

    /// The JSON body: `{"__type": ..., "message": ...}`. The AWS front end spells the key
    /// `Message` for SerializationException; every SDK reads both.
    pub fn to_json(&self) -> Vec<u8> {
        let mut obj = serde_json::Map::new();
        obj.insert("__type".into(), self.kind.as_str().into());
        if let Some(message) = &self.message {
            let key = if self.kind == ErrorKind::Serialization { "Message" } else { "message" };
            obj.insert(key.into(), message.clone().into());
        }
        serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {}", self.kind, m),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for ApiError {}
