//! The errors a Kinesis endpoint answers with, as the wire sees them.
//!
//! Names are the model's exception shapes plus the protocol-level errors of the AWS front end
//! (reference §1.6). The status code follows awsJson1_1: client errors 400, server faults 500.

use std::borrow::Cow;
use std::fmt;

/// Characters of a client's value an error message repeats at most: a 15 MB stream name must
/// not come back as a 15 MB message, nor enter the audit trail as one.
pub const ECHO_CHARS_MAX: usize = 256;

/// A value from the request as an error message may repeat it: whole when it has at most
/// [`ECHO_CHARS_MAX`] characters, otherwise its first ones (cut on a character boundary) and
/// `… (N bytes)`, N the value's full length in bytes.
pub fn echo(value: &str) -> Cow<'_, str> {
    echo_to(value, ECHO_CHARS_MAX)
}

/// [`echo`] with another limit, in characters.
pub fn echo_to(value: &str, chars_max: usize) -> Cow<'_, str> {
    match value.char_indices().nth(chars_max) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &value[..cut], value.len())),
    }
}

/// Builds an echo of a value rendered piece by piece (a list, a map) without rendering all of
/// it: keeps the first [`ECHO_CHARS_MAX`] characters written and counts the bytes of the rest.
#[derive(Debug, Default)]
pub struct Echo {
    kept: String,
    kept_chars: usize,
    total_bytes: usize,
}

impl Echo {
    pub fn new() -> Echo {
        Echo::default()
    }

    /// The echo: what was written, or its first characters and `… (N bytes)`.
    pub fn finish(self) -> String {
        if self.total_bytes == self.kept.len() {
            self.kept
        } else {
            format!("{}… ({} bytes)", self.kept, self.total_bytes)
        }
    }
}

impl fmt::Write for Echo {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total_bytes += s.len();
        if self.kept_chars < ECHO_CHARS_MAX {
            let room = ECHO_CHARS_MAX - self.kept_chars;
            let cut = s.char_indices().nth(room).map_or(s.len(), |(i, _)| i);
            self.kept.push_str(&s[..cut]);
            self.kept_chars += s[..cut].chars().count();
        }
        Ok(())
    }
}

impl std::io::Write for Echo {
    /// For `serde_json::to_writer`, which writes whole UTF-8 sequences per call.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = String::from_utf8_lossy(buf);
        fmt::Write::write_str(self, &s).map_err(|_| std::io::Error::other("echo"))?;
        // Count the bytes received, not the lossy string's.
        self.total_bytes = self.total_bytes + buf.len() - s.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Declares [`ErrorKind`] once: each variant with its wire name (`__type` / `x-amzn-ErrorType`),
/// and [`ErrorKind::ALL`] listing every variant, so the list cannot fall behind the enum.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal,)*) => {
        /// Every error type this server emits. The string form is the `__type` / `x-amzn-ErrorType`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, e.g. for per-error-code metrics.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    AccessDenied => "AccessDeniedException",
    ExpiredIterator => "ExpiredIteratorException",
    ExpiredNextToken => "ExpiredNextTokenException",
    InternalFailure => "InternalFailureException",
    InvalidArgument => "InvalidArgumentException",
    KmsAccessDenied => "KMSAccessDeniedException",
    KmsDisabled => "KMSDisabledException",
    KmsInvalidState => "KMSInvalidStateException",
    KmsNotFound => "KMSNotFoundException",
    KmsOptInRequired => "KMSOptInRequired",
    KmsThrottling => "KMSThrottlingException",
    LimitExceeded => "LimitExceededException",
    ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
    ResourceInUse => "ResourceInUseException",
    ResourceNotFound => "ResourceNotFoundException",
    Validation => "ValidationException",
    /// DryRun was set and the request would have succeeded.
    DryRunOperation => "DryRunOperationException",
    // Protocol-level errors of the AWS front end (not in the model).
    UnknownOperation => "UnknownOperationException",
    Serialization => "SerializationException",
    MissingAuthenticationToken => "MissingAuthenticationTokenException",
    IncompleteSignature => "IncompleteSignatureException",
    InvalidSignature => "InvalidSignatureException",
    UnrecognizedClient => "UnrecognizedClientException",
    /// Overloaded or shutting down: SDKs retry 503.
    ServiceUnavailable => "ServiceUnavailableException",
}

impl ErrorKind {
    /// HTTP status of this error. The AWS front end answers authentication errors on the JSON
    /// protocol with 400 too (captured by kinesalite's tests against AWS).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalFailure => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

#[cfg(test)]
#[test]
fn kinds_have_distinct_names() {
    let names: std::collections::HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), ErrorKind::ALL.len(), "no name used twice");
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

    /// The error's type (the same accessor as the service's own error has).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error's message, if it has one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn short_values_are_echoed_whole() {
        assert!(matches!(echo("orders"), Cow::Borrowed("orders")));
        let exact = "x".repeat(ECHO_CHARS_MAX);
        assert_eq!(echo(&exact), exact);
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary_with_their_size() {
        let long = "é".repeat(10_000);
        let e = echo(&long);
        assert_eq!(e, format!("{}… (20000 bytes)", "é".repeat(ECHO_CHARS_MAX)));
        assert_eq!(echo_to("abcdef", 3), "abc… (6 bytes)");
    }

    #[test]
    fn piecewise_echo_agrees_with_echo() {
        for text in ["short", &"ab".repeat(300), &"€".repeat(257)] {
            let mut e = Echo::new();
            for ch in text.chars() {
                write!(e, "{ch}").unwrap();
            }
            assert_eq!(e.finish(), echo(text));
        }
        let mut e = Echo::new();
        serde_json::to_writer(&mut e, &vec!["é"; 1000]).unwrap();
        let whole = serde_json::to_string(&vec!["é"; 1000]).unwrap();
        assert_eq!(e.finish(), echo(&whole));
    }
}
