//! The client side of the binary: `kinesin stream …`, `kinesin put`, `kinesin tail`, working
//! against kinesin or real AWS through the official AWS SDK for Rust.
//!
//! Credentials and region come from the SDK's usual chain (environment, profile, SSO, IMDS…).
//! When the endpoint is local (`localhost`, `127.*`, `::1`) and none are found, the CLI falls back
//! to dummy credentials and `us-east-1`, so `kinesin stream list` just works against a local
//! server.

pub mod health;
pub mod put;
pub mod stream;
pub mod tail;

use std::fmt::Display;
use std::io::Write as _;

use anyhow::Result;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::Client;
use clap::Args;

/// Where and as whom the CLI connects.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Endpoint, e.g. http://127.0.0.1:4567 for a local kinesin [default: AWS's endpoint for the region].
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    pub endpoint_url: Option<String>,
    /// Region [default: from AWS_REGION / the profile; us-east-1 for a local endpoint].
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Named profile of ~/.aws/config and ~/.aws/credentials [default: AWS_PROFILE or `default`].
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

/// Whether `endpoint` names this machine (then dummy credentials are acceptable).
pub fn is_local(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "::1"
        || host == "0.0.0.0"
}

/// The SDK's HTTP client on rustls + ring (the SDK's default one would bring aws-lc-sys, a long C
/// build; see the workspace Cargo.toml). Plain http endpoints work through it as well.
fn https_client() -> aws_sdk_kinesis::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Dummy credentials for a local server without configured ones (any key is accepted there).
const LOCAL_ACCESS_KEY: &str = "kinesin-local";

impl ClientArgs {
    pub async fn client(&self) -> Result<Client> {
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &self.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let local = self.endpoint_url.as_deref().is_some_and(is_local);
        match (&self.region, local) {
            (Some(r), _) => loader = loader.region(Region::new(r.clone())),
            (None, true) => {
                loader =
                    loader.region(RegionProviderChain::default_provider().or_else(Region::new("us-east-1")))
            }
            (None, false) => {}
        }
        if local {
            // Environment and profile only: the instance-metadata probe of the default chain
            // would add seconds to every command on a laptop.
            let mut profile = aws_config::profile::ProfileFileCredentialsProvider::builder();
            if let Some(p) = &self.profile {
                profile = profile.profile_name(p);
            }
            let chain = CredentialsProviderChain::first_try(
                "Environment",
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            )
            .or_else("Profile", profile.build())
            .or_else(
                "kinesin-local",
                Credentials::new(LOCAL_ACCESS_KEY, "kinesin-local", None, None, "kinesin-local"),
            );
            loader = loader.credentials_provider(chain);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            anyhow::bail!(
                "no AWS region configured.\nhint: pass --region, set AWS_REGION, or point --endpoint-url at a local kinesin"
            );
        }
        Ok(Client::new(&config))
    }
}

/// An SDK error as the user needs it: the AWS error code and message, and what to do.
pub fn aws_error<E, R>(what: &str, endpoint: Option<&str>, e: SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let target = endpoint.unwrap_or("AWS");
    match &e {
        SdkError::DispatchFailure(d) => anyhow::anyhow!(
            "{what}: could not reach {target} ({}).\nhint: is the server running? Start one with `kinesin serve`, or pass --endpoint-url (or set AWS_ENDPOINT_URL)",
            d.as_connector_error().map_or_else(|| "connection failed".to_string(), |c| c.to_string())
        ),
        SdkError::TimeoutError(_) => anyhow::anyhow!(
            "{what}: {target} did not answer in time.\nhint: check the endpoint and the network, then retry"
        ),
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or("UnknownError").to_string();
            let message = e.message().unwrap_or("").to_string();
            anyhow::anyhow!("{what}: {code}: {message}\nhint: {}", hint(&code, &message))
        }
        other => anyhow::anyhow!("{what}: {}", aws_sdk_kinesis::error::DisplayErrorContext(other)),
    }
}

/// Whether an AWS error can pass when the same call is made again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A rate, a busy stream: the same call can pass after a wait.
    Transient,
    /// A rule the call breaks (a quota, a bound, a 24-hour budget): retrying it now fails again.
    Permanent,
}

/// LimitExceededException covers both call rates (transient) and rules and quotas (permanent);
/// only the message tells them apart. AWS's wordings (and kinesin's, which copies them).
pub fn limit_kind(message: &str) -> Retry {
    let m = message.to_ascii_lowercase();
    if m.contains("rate exceeded") || m.contains("too many requests") || m.contains("throttl") {
        Retry::Transient
    } else {
        Retry::Permanent
    }
}

fn hint(code: &str, message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    match code {
        "ResourceNotFoundException" => "check the stream (and shard) name with `kinesin stream list` / `kinesin stream describe`, and that --endpoint-url and --region point where it lives",
        "ResourceInUseException" => "the stream is busy (CREATING, UPDATING or DELETING) or already exists; wait until `kinesin stream describe` shows ACTIVE and retry",
        "LimitExceededException" if limit_kind(message) == Retry::Transient => {
            "too many calls in a short time: wait a second and retry"
        }
        "LimitExceededException" if m.contains("shard limit") => {
            "the account's shard quota would be exceeded; retrying will fail the same way. Ask for fewer shards, delete streams you no longer need, or raise the quota (kinesin: `serve --shard-limit`; AWS: a Service Quotas increase)"
        }
        "LimitExceededException" if m.contains("24 hours") || m.contains("per day") || m.contains("rolling") => {
            "a per-24-hour budget of this call is used up; retrying will fail until the time named above"
        }
        "LimitExceededException" => {
            "the request breaks a limit rule; retrying the same request will fail the same way. Change the request (see the message above)"
        }
        "ProvisionedThroughputExceededException" => "the shard's throughput limit was hit; slow down or add shards with `kinesin stream scale`",
        "InvalidArgumentException" | "ValidationException" => "check the arguments against the message above (`kinesin <command> --help`)",
        "UnrecognizedClientException" | "InvalidSignatureException" | "MissingAuthenticationTokenException" | "IncompleteSignatureException" | "ExpiredTokenException" | "AccessDeniedException" => {
            "check the credentials (AWS_PROFILE / --profile, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and that they are allowed here"
        }
        "ExpiredIteratorException" => "the iterator is older than 5 minutes; start again",
        _ => "see the message above; `kinesin <command> --help` lists the options",
    }
}

/// A short human rendering of an SDK timestamp (RFC 3339).
pub fn timestamp(t: &aws_sdk_kinesis::primitives::DateTime) -> String {
    t.fmt(aws_sdk_kinesis::primitives::DateTimeFormat::DateTime).unwrap_or_else(|_| t.secs().to_string())
}

/// Whether `e` comes from writing to a closed stdout (EPIPE: `kinesin tail s | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `bytes` to stdout and flushes. When stdout's reader is gone (`… | head`) the command has
/// nothing more to do: it ends at once, quietly, with status 0. Other write errors are fatal.
pub fn stdout_write(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        exit_with(format_args!("cannot write to stdout: {e}"), 1);
    }
}

/// `println!` for the CLI's output: through [`stdout_write`], so a closed pipe ends quietly.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::cli::stdout_write(line.as_bytes());
    }};
}

/// Prints `error: …` and exits with `code` (1: the call failed, 2: bad input).
pub fn exit_with(e: impl Display, code: i32) -> ! {
    eprintln!("error: {e}");
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_endpoints() {
        assert!(is_local("http://127.0.0.1:4567"));
        assert!(is_local("http://localhost:4567/"));
        assert!(is_local("https://[::1]:4568"));
        assert!(is_local("localhost"));
        assert!(!is_local("https://kinesis.us-east-1.amazonaws.com"));
        assert!(!is_local("http://10.0.0.5:4567"));
    }

    /// LimitExceededException is transient only for call rates; rules and quotas say so.
    #[test]
    fn limits_told_apart() {
        let rate = "Rate exceeded for stream s under account 000000000000.";
        assert_eq!(limit_kind(rate), Retry::Transient);
        assert!(hint("LimitExceededException", rate).contains("retry"));
        for permanent in [
            "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: 1 Target shard count: 4",
            "This request would exceed the shard limit for the account 000000000000 in us-east-1. Current shard count for the account: 500. Limit: 500.",
            "Stream s under account 000000000000 has already been scaled 10 times in the last 24 hours, the limit of UpdateShardCount calls per rolling 24 hours. Retry after 2026-12-05T10:00:00Z.",
        ] {
            assert_eq!(limit_kind(permanent), Retry::Permanent, "{permanent}");
            let h = hint("LimitExceededException", permanent);
            assert!(h.contains("will fail"), "{h}");
            assert!(!h.contains("wait a moment and retry"), "{h}");
        }
    }
}
