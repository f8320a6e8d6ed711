//! AWS Signature Version 4: parsing the signature a request carries (the `Authorization` header
//! or the query-string form), the canonical request, the string to sign, the signing key, and a
//! constant-time verification. No I/O and no clock: the caller passes the request's parts and
//! the current time.
//!
//! The checks run in the order AWS's front end runs them (dynalite's captures of DynamoDB, which
//! shares that front end with Kinesis): date format, clock skew, `host` signed, algorithm,
//! credential shape, credential scope, then — in the caller, which owns the keys — the access key
//! id, the signature and the session token.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::echo;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const TERMINATOR: &str = "aws4_request";
/// The `x-amz-content-sha256` value of a body left out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a request's date may be from the server's clock (Kinesis: 5 minutes).
pub const CLOCK_SKEW_SECONDS_MAX: i64 = 5 * 60;
/// Longest `X-Amz-Expires` of a query-string signature AWS accepts: 7 days.
pub const QUERY_EXPIRES_SECONDS_MAX: i64 = 7 * 24 * 3600;

/// Where a request carried its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Header,
    Query,
}

/// The signature a request carries, as sent; nothing in it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub form: Form,
    pub algorithm: String,
    /// `keyid/date/region/service/terminator`, as sent.
    pub credential: String,
    /// Lower-case header names, in the order sent (`;`-separated on the wire).
    pub signed_headers: Vec<String>,
    /// Lower-case hex, as sent.
    pub signature: String,
    /// `YYYYMMDDTHHMMSSZ` (or the `Date` header, converted).
    pub amz_date: String,
    pub security_token: Option<String>,
    /// Query form only: seconds the signature stays valid.
    pub expires_seconds: Option<i64>,
}

/// Why a signature is refused. The caller maps these to the API's error kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `IncompleteSignatureException`.
    Incomplete(String),
    /// `InvalidSignatureException`.
    Invalid(String),
}

/// The credential scope, split: `keyid/date/region/service/terminator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub terminator: &'a str,
}

impl Presented {
    /// From an `Authorization` header already checked to name `Credential`, `SignedHeaders` and
    /// `Signature`; `amz_date` is the `X-Amz-Date` header (or the `Date` header converted).
    pub fn from_header(authorization: &str, amz_date: &str, security_token: Option<&str>) -> Presented {
        let (algorithm, rest) = authorization.trim().split_once(' ').unwrap_or((authorization, ""));
        let mut p = Presented {
            form: Form::Header,
            algorithm: algorithm.to_string(),
            credential: String::new(),
            signed_headers: Vec::new(),
            signature: String::new(),
            amz_date: amz_date.to_string(),
            security_token: security_token.map(str::to_string),
            expires_seconds: None,
        };
        for part in rest.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else { continue };
            match k.trim() {
                "Credential" => p.credential = v.trim().to_string(),
                "SignedHeaders" => p.signed_headers = split_signed_headers(v.trim()),
                "Signature" => p.signature = v.trim().to_string(),
                _ => {}
            }
        }
        p
    }

    /// From a query string already checked to carry every `X-Amz-*` signing parameter.
    pub fn from_query(query: &str) -> Presented {
        let mut p = Presented {
            form: Form::Query,
            algorithm: String::new(),
            credential: String::new(),
            signed_headers: Vec::new(),
            signature: String::new(),
            amz_date: String::new(),
            security_token: None,
            expires_seconds: None,
        };
        for (k, v) in query_pairs(query) {
            match k.as_str() {
                "X-Amz-Algorithm" => p.algorithm = v,
                "X-Amz-Credential" => p.credential = v,
                "X-Amz-SignedHeaders" => p.signed_headers = split_signed_headers(&v),
                "X-Amz-Signature" => p.signature = v,
                "X-Amz-Date" => p.amz_date = v,
                "X-Amz-Security-Token" => p.security_token = Some(v),
                "X-Amz-Expires" => p.expires_seconds = Some(v.parse().unwrap_or(-1)),
                _ => {}
            }
        }
        p
    }

    /// Every check that needs no key, in AWS's order; `now` is seconds since the Unix epoch.
    pub fn check(&self, region: &str, service: &str, now: i64) -> Result<Credential<'_>, Refusal> {
        let Some(date) = parse_amz_date(&self.amz_date) else {
            return Err(Refusal::Incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
                echo(&self.amz_date)
            )));
        };
        match self.expires_seconds {
            Some(e) if !(1..=QUERY_EXPIRES_SECONDS_MAX).contains(&e) => {
                return Err(Refusal::Incomplete(format!(
                    "X-Amz-Expires must be between 1 and {QUERY_EXPIRES_SECONDS_MAX} seconds. Re-examine the query-string parameters."
                )));
            }
            Some(e) if now > date + e => {
                return Err(Refusal::Invalid(format!(
                    "Signature expired: {} is now earlier than {} ({} - {e} sec.)",
                    self.amz_date,
                    format_amz_date(now - e),
                    format_amz_date(now)
                )));
            }
            _ => {}
        }
        if self.expires_seconds.is_none() && date < now - CLOCK_SKEW_SECONDS_MAX {
            return Err(Refusal::Invalid(format!(
                "Signature expired: {} is now earlier than {} ({} - 5 min.)",
                self.amz_date,
                format_amz_date(now - CLOCK_SKEW_SECONDS_MAX),
                format_amz_date(now)
            )));
        }
        if date > now + CLOCK_SKEW_SECONDS_MAX {
            return Err(Refusal::Invalid(format!(
                "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                self.amz_date,
                format_amz_date(now + CLOCK_SKEW_SECONDS_MAX),
                format_amz_date(now)
            )));
        }
        // Over HTTP/2 the JS SDK v3 signs the `:authority` pseudo-header instead of `host`.
        if !self.signed_headers.iter().any(|h| h == "host" || h == ":authority") {
            return Err(Refusal::Invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.".into()));
        }
        if self.algorithm != ALGORITHM {
            return Err(Refusal::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
                echo(&self.algorithm)
            )));
        }
        let parts: Vec<&str> = self.credential.trim_end_matches('/').split('/').collect();
        let [access_key_id, cdate, cregion, cservice, terminator] = parts[..] else {
            return Err(Refusal::Incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                echo(&self.credential)
            )));
        };
        let mut msg = Vec::new();
        if cregion != region {
            msg.push(format!("Credential should be scoped to a valid region, not '{}'. ", echo(cregion)));
        }
        if cservice != service {
            msg.push(format!("Credential should be scoped to correct service: '{service}'. "));
        }
        if terminator != TERMINATOR {
            msg.push(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'. ",
                echo(terminator)
            ));
        }
        let day = &self.amz_date[..8];
        if cdate != day {
            msg.push(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{}'.",
                echo(cdate),
                self.amz_date
            ));
        }
        if !msg.is_empty() {
            return Err(Refusal::Invalid(msg.concat().trim_end().to_string()));
        }
        Ok(Credential { access_key_id, date: cdate, region: cregion, service: cservice, terminator })
    }

    /// The scope line of the string to sign: `date/region/service/aws4_request`.
    pub fn scope(c: &Credential<'_>) -> String {
        format!("{}/{}/{}/{}", c.date, c.region, c.service, c.terminator)
    }
}

fn split_signed_headers(v: &str) -> Vec<String> {
    v.split(';').filter(|h| !h.is_empty()).map(|h| h.trim().to_ascii_lowercase()).collect()
}

/// The canonical request (SigV4 task 1). `path` and `query` are as received (already
/// percent-encoded); `headers` are (name, value) pairs with any case, possibly repeated;
/// `query_form` drops `X-Amz-Signature` from the query.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    signed_headers: &[String],
    payload_hash: &str,
    query_form: bool,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query, query_form));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// Each byte of the received path that is not unreserved or `/` percent-encoded once more, as
/// every SDK but S3's does; an empty path is `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        push_encoded(&mut out, b, b == b'/');
    }
    out
}

fn canonical_query(query: &str, query_form: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| !(query_form && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Decoded (name, value) pairs of a query string.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        push_encoded(&mut out, b, false);
    }
    out
}

fn push_encoded(out: &mut String, b: u8, keep: bool) {
    if keep || b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
        out.push(b as char);
    } else {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The string to sign (SigV4 task 2).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The signing key (SigV4 task 3): HMAC chain over date, region, service, `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, TERMINATOR.as_bytes())
}

/// Lower-case hex signature of `string_to_sign` (SigV4 task 4).
pub fn sign(key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac(key, string_to_sign.as_bytes()))
}

/// Whether `signature_hex` is the signature of `string_to_sign`, compared in constant time.
#[allow(clippy::expect_used, reason = "HMAC-SHA256 takes keys of any length: new_from_slice cannot fail")]
pub fn verify(key: &[u8; 32], string_to_sign: &str, signature_hex: &str) -> bool {
    let Some(sig) = unhex(signature_hex) else { return false };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[allow(clippy::expect_used, reason = "HMAC-SHA256 takes keys of any length: new_from_slice cannot fail")]
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// `YYYYMMDDTHHMMSSZ` → seconds since the Unix epoch.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, se) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// An HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`) → `YYYYMMDDTHHMMSSZ`.
pub fn http_date_to_amz(s: &str) -> Option<String> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, d, mon, y, t, "GMT"] = f[..] else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mo = MONTHS.iter().position(|m| *m == mon)? + 1;
    let d: u32 = d.parse().ok()?;
    let y: u32 = y.parse().ok()?;
    let t: Vec<&str> = t.split(':').collect();
    let [h, mi, se] = t[..] else { return None };
    let amz = format!("{y:04}{mo:02}{d:02}T{h:0>2}{mi:0>2}{se:0>2}Z");
    parse_amz_date(&amz).map(|_| amz)
}

/// Seconds since the Unix epoch → `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// AWS's documented example ("Create a signed AWS API request", GET iam ListUsers).
    #[test]
    fn iam_list_users_example() {
        let headers = [
            ("Host", "iam.amazonaws.com"),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"].map(String::from).to_vec();
        let cr = canonical_request(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &headers,
            &signed,
            &sha256_hex(b""),
            false,
        );
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let sts = string_to_sign("20150830T123600Z", "20150830/us-east-1/iam/aws4_request", &cr);
        let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
        let expected = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        assert_eq!(sign(&key, &sts), expected);
        assert!(verify(&key, &sts, expected));
        assert!(!verify(&key, &sts, &expected.replace('5', "6")));
        assert!(!verify(&key, &sts, "zz"));
        assert!(!verify(&key, &sts, &expected[..62]));
    }

    /// aws-sig-v4-test-suite `get-vanilla`: GET / with host and x-amz-date, service `service`.
    #[test]
    fn get_vanilla() {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")];
        let signed: Vec<String> = ["host", "x-amz-date"].map(String::from).to_vec();
        let cr = canonical_request("GET", "/", "", &headers, &signed, &sha256_hex(b""), false);
        assert_eq!(
            cr,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &cr);
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        assert_eq!(sign(&key, &sts), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    }

    /// aws-sig-v4-test-suite `get-vanilla-query-order-key-case`: parameters sorted by name.
    #[test]
    fn get_vanilla_query_order() {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")];
        let signed: Vec<String> = ["host", "x-amz-date"].map(String::from).to_vec();
        let cr = canonical_request(
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &headers,
            &signed,
            &sha256_hex(b""),
            false,
        );
        assert!(cr.contains("\nParam1=value1&Param2=value2\n"));
        let sts = string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &cr);
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        assert_eq!(sign(&key, &sts), "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    }

    /// aws-sig-v4-test-suite `post-x-www-form-urlencoded`: a body hashed into the signature.
    #[test]
    fn post_form_body() {
        let body = b"Param1=value1";
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"].map(String::from).to_vec();
        let cr = canonical_request("POST", "/", "", &headers, &signed, &sha256_hex(body), false);
        let sts = string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &cr);
        let key = signing_key(SECRET, "20150830", "us-east-1", "service");
        assert_eq!(sign(&key, &sts), "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    }

    #[test]
    fn header_values_trimmed_and_repeats_joined() {
        let headers = [("My-Header1", "  a   b   c  "), ("my-header1", "d"), ("host", "h")];
        let signed: Vec<String> = ["host", "my-header1"].map(String::from).to_vec();
        let cr = canonical_request("GET", "/", "", &headers, &signed, "x", false);
        assert!(cr.contains("\nmy-header1:a b c,d\n"), "{cr}");
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(parse_amz_date("2015083T123600Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        assert_eq!(http_date_to_amz("Sun, 30 Aug 2015 12:36:00 GMT").as_deref(), Some("20150830T123600Z"));
        assert_eq!(http_date_to_amz("yesterday"), None);
    }

    fn presented(credential: &str, date: &str) -> Presented {
        Presented::from_header(
            &format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature=00"),
            date,
            None,
        )
    }

    #[test]
    fn checks_in_aws_order() {
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let ok = presented("AKID/20150830/us-east-1/kinesis/aws4_request", "20150830T123600Z");
        let c = ok.check("us-east-1", "kinesis", now).unwrap();
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(Presented::scope(&c), "20150830/us-east-1/kinesis/aws4_request");

        let stale = ok.check("us-east-1", "kinesis", now + 301).unwrap_err();
        assert_eq!(
            stale,
            Refusal::Invalid(
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
                    .into()
            )
        );
        assert!(ok.check("us-east-1", "kinesis", now + 300).is_ok());
        assert!(
            matches!(ok.check("us-east-1", "kinesis", now - 301), Err(Refusal::Invalid(m)) if m.starts_with("Signature not yet current"))
        );

        let bad = presented("AKID/20150830/us-west-2/dynamodb/aws4_request", "20150830T123600Z");
        assert_eq!(
            bad.check("us-east-1", "kinesis", now).unwrap_err(),
            Refusal::Invalid(
                "Credential should be scoped to a valid region, not 'us-west-2'. \
                 Credential should be scoped to correct service: 'kinesis'."
                    .into()
            )
        );
        let short = presented("AKID/20150830/us-east-1", "20150830T123600Z");
        assert!(
            matches!(short.check("us-east-1", "kinesis", now), Err(Refusal::Incomplete(m)) if m.starts_with("Credential must have exactly 5"))
        );
        let baddate = presented("AKID/20150830/us-east-1/kinesis/aws4_request", "2015");
        assert!(
            matches!(baddate.check("us-east-1", "kinesis", now), Err(Refusal::Incomplete(m)) if m.starts_with("Date must be in ISO-8601"))
        );
        let nohost = Presented::from_header(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "20150830T123600Z",
            None,
        );
        assert!(
            matches!(nohost.check("us-east-1", "kinesis", now), Err(Refusal::Invalid(m)) if m.contains("'Host' must be"))
        );
        let authority = Presented::from_header(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesis/aws4_request, \
             SignedHeaders=:authority;x-amz-date, Signature=00",
            "20150830T123600Z",
            None,
        );
        assert!(authority.check("us-east-1", "kinesis", now).is_ok());
    }

    #[test]
    fn query_form_parsed_and_signature_left_out() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fkinesis%2Faws4_request\
                 &X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd";
        let p = Presented::from_query(q);
        assert_eq!(p.credential, "AKID/20150830/us-east-1/kinesis/aws4_request");
        assert_eq!(p.expires_seconds, Some(60));
        assert_eq!(p.signature, "abcd");
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert!(p.check("us-east-1", "kinesis", now + 60).is_ok());
        assert!(
            matches!(p.check("us-east-1", "kinesis", now + 61), Err(Refusal::Invalid(m)) if m.starts_with("Signature expired"))
        );
        let cq = canonical_query(q, true);
        assert!(!cq.contains("X-Amz-Signature"));
        assert!(cq.contains("X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fkinesis%2Faws4_request"));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
