//! Who may call: the principals of a credentials file, and the AWS Signature V4 check of every
//! request against them.
//!
//! Without a credentials file the server accepts any well-formed signature (local development);
//! with one, a request must be signed by one of its principals, over the exact bytes received,
//! within the clock-skew window, for this region and the `kinesis` service. The pure SigV4
//! arithmetic lives in `kinesin_wire::sigv4`; this module adds the keys and the request's parts.
//!
//! The file, TOML:
//!
//! ```toml
//! [[principal]]
//! arn = "arn:aws:iam::000000000000:user/producer"
//! access_key_id = "AKIAPRODUCER"
//! secret_access_key = "..."
//! session_token = "..."        # optional: then every request must carry it
//! # optional, any combination; see "Authorization" below
//! policy = '''{"Statement": [{"Effect": "Allow", "Action": "kinesis:PutRecord*", "Resource": "*"}]}'''
//! policies = ['''{...}''', '''{...}''']
//! policy_file = "producer-policy.json"   # relative to the credentials file
//! ```
//!
//! ## Authorization
//!
//! A principal with none of `policy`, `policies`, `policy_file` is an **admin**: it may call every
//! operation (kinesin's behaviour before policies existed, kept so that existing credentials files
//! keep working), though an explicit Deny in a stream's resource policy still binds it. A principal
//! with any of them is evaluated strictly, as AWS does (`kinesin_wire::policy`): denied unless an
//! identity policy or the resource's policy allows, and denied whenever either denies explicitly.
//! `policies = []` therefore means "nothing".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper::http::request::Parts;
use serde::Deserialize;

use kinesin_wire::error::{ApiError, ErrorKind};
use kinesin_wire::policy::{self, Decision, Kind, Policy};
use kinesin_wire::sigv4::{self, Form, Presented, Refusal};

/// The signing name of the Kinesis service in credential scopes.
pub const SERVICE: &str = "kinesis";
/// Principals one credentials file may list.
pub const PRINCIPALS_MAX: usize = 10_000;

const UNRECOGNIZED: &str = "The security token included in the request is invalid.";
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// One `[[principal]]` as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalEntry {
    arn: String,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    policy_file: Option<PathBuf>,
}

/// One identity that may sign requests.
#[derive(Clone)]
pub struct Principal {
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Identity policies; `None`: an admin, allowed everything an explicit deny does not forbid.
    pub policies: Option<Vec<Policy>>,
}

impl Principal {
    /// The 12-digit account of the principal's ARN (empty when the ARN has none).
    pub fn account_id(&self) -> &str {
        policy::arn_account(&self.arn).unwrap_or("")
    }

    /// Decides whether this principal may perform `action` (`kinesis:PutRecord`) on `resource`
    /// (a stream or consumer ARN, or `*`), given the resource's own policy; a denial is AWS's
    /// `AccessDeniedException`.
    pub fn authorize(
        &self,
        action: &str,
        resource: &str,
        resource_policy: Option<&Policy>,
    ) -> Result<(), ApiError> {
        let req = policy::Request { principal_arn: &self.arn, action, resource };
        let (identity, admin) = match &self.policies {
            Some(p) => (p.as_slice(), false),
            None => (&[][..], true),
        };
        let decision = policy::evaluate(identity, admin, resource_policy, &req);
        match decision.message(&req) {
            None => Ok(()),
            Some(m) => {
                debug_assert!(decision != Decision::Allow);
                Err(ApiError::new(ErrorKind::AccessDenied, m))
            }
        }
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("Principal")
            .field("arn", &self.arn)
            .field("access_key_id", &self.access_key_id)
            .field("policies", &self.policies.as_ref().map(Vec::len))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    principal: Vec<PrincipalEntry>,
}

/// The principals of a credentials file, by access key id.
#[derive(Debug)]
pub struct Credentials {
    by_key: HashMap<String, Principal>,
}

impl Credentials {
    /// Parses a credentials file's text; errors name the principal at fault. `policy_file`s are
    /// read relative to the working directory.
    pub fn from_toml(text: &str) -> Result<Credentials, String> {
        Credentials::from_toml_in(text, Path::new(""))
    }

    /// Parses a credentials file's text, reading `policy_file`s relative to `base`.
    pub fn from_toml_in(text: &str, base: &Path) -> Result<Credentials, String> {
        let file: CredentialsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.principal.is_empty() {
            return Err(
                "no [[principal]] listed: a credentials file with none would refuse every request".into()
            );
        }
        if file.principal.len() > PRINCIPALS_MAX {
            return Err(format!("{} principals listed; at most {PRINCIPALS_MAX}", file.principal.len()));
        }
        let mut by_key = HashMap::with_capacity(file.principal.len());
        for (i, p) in file.principal.into_iter().enumerate() {
            let n = i + 1;
            for (field, value) in [("arn", &p.arn), ("access_key_id", &p.access_key_id)] {
                if value.is_empty() {
                    return Err(format!("principal {n}: `{field}` is empty"));
                }
            }
            if p.secret_access_key.is_empty() {
                return Err(format!("principal {n} ({}): `secret_access_key` is empty", p.arn));
            }
            if p.session_token.as_deref() == Some("") {
                return Err(format!(
                    "principal {n} ({}): `session_token` is empty; leave it out instead",
                    p.arn
                ));
            }
            if by_key.contains_key(&p.access_key_id) {
                return Err(format!(
                    "principal {n} ({}): access key id {} is listed twice",
                    p.arn, p.access_key_id
                ));
            }
            let at_fault = |e: String| format!("principal {n} ({}): {e}", p.arn);
            let mut documents: Vec<(String, String)> = Vec::new();
            if let Some(d) = &p.policy {
                documents.push(("`policy`".into(), d.clone()));
            }
            for (i, d) in p.policies.iter().flatten().enumerate() {
                documents.push((format!("`policies` entry {}", i + 1), d.clone()));
            }
            if let Some(f) = &p.policy_file {
                let path = base.join(f);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| at_fault(format!("cannot read policy_file {}: {e}", path.display())))?;
                documents.push((format!("policy_file {}", path.display()), text));
            }
            let policies = if p.policy.is_none() && p.policies.is_none() && p.policy_file.is_none() {
                None
            } else {
                let parsed = documents
                    .iter()
                    .map(|(what, d)| {
                        Policy::parse(d, Kind::Identity).map_err(|e| at_fault(format!("{what}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(parsed)
            };
            let principal = Principal {
                arn: p.arn,
                access_key_id: p.access_key_id,
                secret_access_key: p.secret_access_key,
                session_token: p.session_token,
                policies,
            };
            by_key.insert(principal.access_key_id.clone(), principal);
        }
        Ok(Credentials { by_key })
    }

    /// Reads and parses a credentials file.
    pub fn load(path: &Path) -> Result<Credentials, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        Credentials::from_toml_in(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Checks the signature of a request whose signing parameters are present and well formed
    /// (the front end's shape check ran first). `now` is seconds since the Unix epoch.
    pub fn verify(&self, parts: &Parts, body: &[u8], region: &str, now: i64) -> Result<&Principal, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let query = parts.uri.query().unwrap_or("");
        let presented = match header("authorization") {
            Some(auth) => {
                let date = match (header("x-amz-date"), header("date")) {
                    (Some(d), _) => d.to_string(),
                    (None, Some(d)) => sigv4::http_date_to_amz(d).unwrap_or_else(|| d.to_string()),
                    (None, None) => String::new(),
                };
                Presented::from_header(auth, &date, header("x-amz-security-token"))
            }
            None => Presented::from_query(query),
        };
        let credential = presented.check(region, SERVICE, now).map_err(|r| match r {
            Refusal::Incomplete(m) => ApiError::new(ErrorKind::IncompleteSignature, m),
            Refusal::Invalid(m) => ApiError::new(ErrorKind::InvalidSignature, m),
        })?;
        let Some(principal) = self.by_key.get(credential.access_key_id) else {
            return Err(ApiError::new(ErrorKind::UnrecognizedClient, UNRECOGNIZED));
        };

        let mut headers: Vec<(&str, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        // HTTP/2 has no Host header: hyper keeps `:authority` in the URI. Most SDKs sign it as
        // `host`; the JS SDK v3 signs the pseudo-header itself, as `:authority`.
        if let Some(authority) = parts.uri.authority() {
            if !parts.headers.contains_key("host") {
                headers.push(("host", authority.as_str().to_string()));
            }
            headers.push((":authority", authority.as_str().to_string()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let payload_hash = match header("x-amz-content-sha256") {
            Some(sigv4::UNSIGNED_PAYLOAD) => sigv4::UNSIGNED_PAYLOAD.to_string(),
            _ => sigv4::sha256_hex(body),
        };
        let canonical = sigv4::canonical_request(
            parts.method.as_str(),
            parts.uri.path(),
            query,
            &headers,
            &presented.signed_headers,
            &payload_hash,
            presented.form == Form::Query,
        );
        let to_sign = sigv4::string_to_sign(&presented.amz_date, &Presented::scope(&credential), &canonical);
        let key = sigv4::signing_key(
            &principal.secret_access_key,
            credential.date,
            credential.region,
            credential.service,
        );
        if !sigv4::verify(&key, &to_sign, &presented.signature) {
            tracing::debug!(access_key_id = credential.access_key_id, canonical, "signature mismatch");
            return Err(ApiError::new(ErrorKind::InvalidSignature, MISMATCH));
        }
        let token_ok = match (&principal.session_token, &presented.security_token) {
            (None, None) => true,
            (Some(want), Some(got)) => sigv4::constant_time_eq(want.as_bytes(), got.as_bytes()),
            _ => false,
        };
        if !token_ok {
            return Err(ApiError::new(ErrorKind::UnrecognizedClient, UNRECOGNIZED));
        }
        Ok(principal)
    }
}

/// Milliseconds since the Unix epoch by the system clock.
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The access key id a request presents (header or query-string form), verified or not, for
/// the audit trail.
pub(crate) fn presented_access_key(authorization: Option<&str>, query: Option<&str>) -> Option<String> {
    let credential = match authorization {
        Some(a) => a.split([',', ' ']).find_map(|p| p.trim().strip_prefix("Credential="))?.to_string(),
        None => query?.split('&').find_map(|p| p.strip_prefix("X-Amz-Credential="))?.replace("%2F", "/"),
    };
    let key = credential.split('/').next()?;
    (!key.is_empty() && key.len() <= 128).then(|| key.to_string())
}

/// Seconds since the Unix epoch by the system clock, which is what signers use.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    const FILE: &str = r#"
[[principal]]
arn = "arn:aws:iam::000000000000:user/alice"
access_key_id = "AKIDALICE"
secret_access_key = "alice-secret"

[[principal]]
arn = "arn:aws:sts::000000000000:assumed-role/r/s"
access_key_id = "ASIATEMP"
secret_access_key = "temp-secret"
session_token = "tok"
"#;
    const NOW: &str = "20240102T030405Z";

    fn now() -> i64 {
        sigv4::parse_amz_date(NOW).unwrap()
    }

    /// Signs like an SDK: host, x-amz-date, x-amz-target and the token if any.
    fn signed(key: &str, secret: &str, region: &str, body: &[u8], token: Option<&str>) -> Request<()> {
        let mut b = Request::post("/")
            .header("host", "localhost:4567")
            .header("x-amz-date", NOW)
            .header("x-amz-target", "Kinesis_20131202.ListStreams");
        let mut names = vec!["host", "x-amz-date", "x-amz-target"];
        let mut headers = vec![
            ("host", "localhost:4567"),
            ("x-amz-date", NOW),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ];
        if let Some(t) = token {
            b = b.header("x-amz-security-token", t);
            names.push("x-amz-security-token");
            headers.push(("x-amz-security-token", t));
        }
        let signed_headers: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cr = sigv4::canonical_request(
            "POST",
            "/",
            "",
            &headers,
            &signed_headers,
            &sigv4::sha256_hex(body),
            false,
        );
        let scope = format!("20240102/{region}/kinesis/aws4_request");
        let sts = sigv4::string_to_sign(NOW, &scope, &cr);
        let sig = sigv4::sign(&sigv4::signing_key(secret, "20240102", region, "kinesis"), &sts);
        b.header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={}, Signature={sig}",
                names.join(";")
            ),
        )
        .body(())
        .unwrap()
    }

    fn verify(c: &Credentials, req: Request<()>, body: &[u8], at: i64) -> Result<String, ErrorKind> {
        let (parts, ()) = req.into_parts();
        c.verify(&parts, body, "us-east-1", at).map(|p| p.arn.clone()).map_err(|e| e.kind)
    }

    #[test]
    fn signatures_checked() {
        let c = Credentials::from_toml(FILE).unwrap();
        assert_eq!(c.len(), 2);
        let body = b"{}";
        let ok = signed("AKIDALICE", "alice-secret", "us-east-1", body, None);
        assert_eq!(verify(&c, ok, body, now()).unwrap(), "arn:aws:iam::000000000000:user/alice");
        let altered = signed("AKIDALICE", "alice-secret", "us-east-1", body, None);
        assert_eq!(verify(&c, altered, b"{ }", now()), Err(ErrorKind::InvalidSignature));
        let wrong = signed("AKIDALICE", "nope", "us-east-1", body, None);
        assert_eq!(verify(&c, wrong, body, now()), Err(ErrorKind::InvalidSignature));
        let unknown = signed("AKIDBOB", "x", "us-east-1", body, None);
        assert_eq!(verify(&c, unknown, body, now()), Err(ErrorKind::UnrecognizedClient));
        let region = signed("AKIDALICE", "alice-secret", "eu-west-1", body, None);
        assert_eq!(verify(&c, region, body, now()), Err(ErrorKind::InvalidSignature));
        let stale = signed("AKIDALICE", "alice-secret", "us-east-1", body, None);
        assert_eq!(verify(&c, stale, body, now() + 3600), Err(ErrorKind::InvalidSignature));
    }

    /// HTTP/2 requests have no Host header; the SDKs sign `:authority`, which is in the URI.
    #[test]
    fn http2_authority_is_the_host() {
        let c = Credentials::from_toml(FILE).unwrap();
        let body = b"{}";
        let (mut parts, ()) = signed("AKIDALICE", "alice-secret", "us-east-1", body, None).into_parts();
        parts.headers.remove("host");
        parts.uri = "http://localhost:4567/".parse().unwrap();
        assert!(c.verify(&parts, body, "us-east-1", now()).is_ok());
        parts.uri = "http://localhost:4568/".parse().unwrap();
        assert_eq!(c.verify(&parts, body, "us-east-1", now()).unwrap_err().kind, ErrorKind::InvalidSignature);
    }

    /// The JS SDK v3 over HTTP/2 signs the `:authority` pseudo-header, not `host`.
    #[test]
    fn http2_signed_authority_pseudo_header() {
        let c = Credentials::from_toml(FILE).unwrap();
        let body = b"{}";
        let sign = |authority: &str| {
            let headers = [
                (":authority", authority),
                ("x-amz-date", NOW),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ];
            let names: Vec<String> = headers.iter().map(|(k, _)| k.to_string()).collect();
            let cr =
                sigv4::canonical_request("POST", "/", "", &headers, &names, &sigv4::sha256_hex(body), false);
            let scope = "20240102/us-east-1/kinesis/aws4_request";
            let sts = sigv4::string_to_sign(NOW, scope, &cr);
            let sig =
                sigv4::sign(&sigv4::signing_key("alice-secret", "20240102", "us-east-1", "kinesis"), &sts);
            let (parts, ()) = Request::post("http://localhost:4567/")
                .header("x-amz-date", NOW)
                .header("x-amz-target", "Kinesis_20131202.ListStreams")
                .header(
                    "authorization",
                    format!(
                        "AWS4-HMAC-SHA256 Credential=AKIDALICE/{scope}, SignedHeaders={}, Signature={sig}",
                        names.join(";")
                    ),
                )
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        assert!(c.verify(&sign("localhost:4567"), body, "us-east-1", now()).is_ok());
        let other = sign("localhost:4568");
        assert_eq!(c.verify(&other, body, "us-east-1", now()).unwrap_err().kind, ErrorKind::InvalidSignature);
    }

    #[test]
    fn session_tokens_must_match() {
        let c = Credentials::from_toml(FILE).unwrap();
        let body = b"{}";
        let ok = signed("ASIATEMP", "temp-secret", "us-east-1", body, Some("tok"));
        assert!(verify(&c, ok, body, now()).is_ok());
        let bad = signed("ASIATEMP", "temp-secret", "us-east-1", body, Some("tik"));
        assert_eq!(verify(&c, bad, body, now()), Err(ErrorKind::UnrecognizedClient));
        let missing = signed("ASIATEMP", "temp-secret", "us-east-1", body, None);
        assert_eq!(verify(&c, missing, body, now()), Err(ErrorKind::UnrecognizedClient));
        let extra = signed("AKIDALICE", "alice-secret", "us-east-1", body, Some("tok"));
        assert_eq!(verify(&c, extra, body, now()), Err(ErrorKind::UnrecognizedClient));
    }

    #[test]
    fn policies_loaded_and_applied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("reader.json"),
            r#"{"Statement":{"Effect":"Allow","Action":["kinesis:Get*","kinesis:Describe*"],"Resource":"*"}}"#,
        )
        .unwrap();
        let text = r#"
[[principal]]
arn = "arn:aws:iam::000000000000:user/admin"
access_key_id = "AKIDADMIN"
secret_access_key = "s"

[[principal]]
arn = "arn:aws:iam::000000000000:user/producer"
access_key_id = "AKIDPRODUCER"
secret_access_key = "s"
policy = '''{"Statement":{"Effect":"Allow","Action":"kinesis:PutRecord*","Resource":"arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}'''

[[principal]]
arn = "arn:aws:iam::000000000000:user/reader"
access_key_id = "AKIDREADER"
secret_access_key = "s"
policy_file = "reader.json"
policies = ['''{"Statement":{"Effect":"Deny","Action":"kinesis:GetRecords","Resource":"*"}}''']

[[principal]]
arn = "arn:aws:iam::000000000000:user/nobody"
access_key_id = "AKIDNOBODY"
secret_access_key = "s"
policies = []
"#;
        let c = Credentials::from_toml_in(text, dir.path()).unwrap();
        let orders = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
        let p = |k: &str| c.by_key.get(k).unwrap().clone();
        assert!(p("AKIDADMIN").authorize("kinesis:DeleteStream", orders, None).is_ok());
        assert_eq!(p("AKIDADMIN").account_id(), "000000000000");
        assert!(p("AKIDPRODUCER").authorize("kinesis:PutRecords", orders, None).is_ok());
        let e = p("AKIDPRODUCER").authorize("kinesis:GetRecords", orders, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AccessDenied);
        assert_eq!(
            e.message.unwrap(),
            "User: arn:aws:iam::000000000000:user/producer is not authorized to perform: kinesis:GetRecords \
             on resource: arn:aws:kinesis:us-east-1:000000000000:stream/orders because no identity-based \
             policy allows the kinesis:GetRecords action"
        );
        assert!(p("AKIDREADER").authorize("kinesis:DescribeStream", orders, None).is_ok());
        let e = p("AKIDREADER").authorize("kinesis:GetRecords", orders, None).unwrap_err();
        assert!(e.message.unwrap().ends_with("with an explicit deny in an identity-based policy"));
        assert!(p("AKIDNOBODY").authorize("kinesis:ListStreams", "*", None).is_err());

        let bad =
            "[[principal]]\narn = \"a\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\npolicy = \"{}\"\n";
        let e = Credentials::from_toml(bad).unwrap_err();
        assert!(e.contains("principal 1 (a): `policy`: the policy has no Statement"), "{e}");
        let missing = "[[principal]]\narn = \"a\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\npolicy_file = \"nope.json\"\n";
        assert!(Credentials::from_toml_in(missing, dir.path())
            .unwrap_err()
            .contains("cannot read policy_file"));
    }

    #[test]
    fn files_validated() {
        assert!(Credentials::from_toml("").unwrap_err().contains("no [[principal]]"));
        let dup = format!(
            "{FILE}\n[[principal]]\narn = \"a\"\naccess_key_id = \"AKIDALICE\"\nsecret_access_key = \"s\"\n"
        );
        assert!(Credentials::from_toml(&dup).unwrap_err().contains("listed twice"));
        assert!(Credentials::from_toml(
            "[[principal]]\narn = \"a\"\naccess_key_id = \"k\"\nsecret_access_key = \"\"\n"
        )
        .unwrap_err()
        .contains("secret_access_key"));
        assert!(Credentials::from_toml(
            "[[principal]]\narn = \"a\"\naccess_key_id = \"k\"\nsecret = \"s\"\n"
        )
        .is_err());
    }
}
