//! IAM-style policy documents and their evaluation, as AWS evaluates them for same-account
//! access. Pure: no I/O, no clock; the server supplies the principal, action and resource.
//!
//! Supported: `Version`, `Id`, `Statement` (one object or a list), and per statement `Sid`,
//! `Effect` (`Allow` / `Deny`), `Action` or `NotAction`, `Resource` or `NotResource`, and — in
//! resource policies — `Principal` or `NotPrincipal`. Each of those takes a string or a list of
//! strings. Actions match case-insensitively, resources case-sensitively; both take the `*`
//! (any run of characters) and `?` (one character) wildcards. `Condition` is refused when a
//! document is parsed, rather than ignored: a condition that silently never applied would turn a
//! narrow Allow into a broad one, or a Deny into nothing.
//!
//! Evaluation ([`evaluate`]), as AWS's for a principal and a resource of the same account:
//! 1. an explicit `Deny` in any identity policy or in the resource policy decides: denied;
//! 2. otherwise an `Allow` in an identity policy **or** in the resource policy allows;
//! 3. otherwise denied (implicitly).

use serde_json::Value;

use crate::error::echo;

/// Longest policy document accepted, in bytes (AWS: 20 KiB for a resource policy; 10 KiB for an
/// inline identity policy). Bounds parsing and evaluation work.
pub const POLICY_BYTES_MAX: usize = 64 * 1024;
/// Statements in one document.
pub const STATEMENTS_MAX: usize = 500;

/// Which kind of document a policy is: identity policies must not name a principal; resource
/// policies must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Identity,
    Resource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, matched directly (`Action`) or negated (`NotAction`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Patterns {
    In(Vec<String>),
    NotIn(Vec<String>),
}

impl Patterns {
    fn matches(&self, value: &str, case_insensitive: bool) -> bool {
        let any = |ps: &Vec<String>| ps.iter().any(|p| glob_match(p, value, case_insensitive));
        match self {
            Patterns::In(ps) => any(ps),
            Patterns::NotIn(ps) => !any(ps),
        }
    }
}

/// `Principal` / `NotPrincipal` of a resource-policy statement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Principals {
    /// `"*"` or `{"AWS": "*"}`.
    Anyone,
    In(Vec<String>),
    NotIn(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    principal: Option<Principals>,
    action: Patterns,
    resource: Patterns,
}

/// A parsed policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    kind: Kind,
    statements: Vec<Statement>,
}

/// The caller, the action and the resource of one request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The caller's ARN, e.g. `arn:aws:iam::000000000000:user/producer`.
    pub principal_arn: &'a str,
    /// `kinesis:PutRecord`.
    pub action: &'a str,
    /// A stream or consumer ARN, or `*` for operations without a resource.
    pub resource: &'a str,
}

/// Where an explicit deny came from, for the error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenySource {
    Identity,
    Resource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows; nothing denies explicitly.
    ImplicitDeny,
    ExplicitDeny(DenySource),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }

    /// AWS's `AccessDeniedException` message for a denial (`None` when allowed).
    pub fn message(self, req: &Request<'_>) -> Option<String> {
        let head = format!(
            "User: {} is not authorized to perform: {} on resource: {}",
            req.principal_arn,
            req.action,
            echo(req.resource)
        );
        match self {
            Decision::Allow => None,
            Decision::ImplicitDeny => {
                Some(format!("{head} because no identity-based policy allows the {} action", req.action))
            }
            Decision::ExplicitDeny(DenySource::Identity) => {
                Some(format!("{head} with an explicit deny in an identity-based policy"))
            }
            Decision::ExplicitDeny(DenySource::Resource) => {
                Some(format!("{head} with an explicit deny in a resource-based policy"))
            }
        }
    }
}

impl Policy {
    /// Parses a policy document; errors say which statement and element are at fault.
    pub fn parse(text: &str, kind: Kind) -> Result<Policy, String> {
        if text.len() > POLICY_BYTES_MAX {
            return Err(format!("the policy is {} bytes; at most {POLICY_BYTES_MAX}", text.len()));
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("the policy is not JSON: {e}"))?;
        Policy::from_value(&doc, kind)
    }

    /// The document as a JSON value (already parsed).
    pub fn from_value(doc: &Value, kind: Kind) -> Result<Policy, String> {
        let obj = doc.as_object().ok_or("the policy must be a JSON object")?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!(
                    "unknown policy element `{}` (expected Version, Id, Statement)",
                    echo(key)
                ));
            }
        }
        if let Some(v) = obj.get("Version") {
            if !matches!(v.as_str(), Some("2012-10-17") | Some("2008-10-17")) {
                return Err(format!(
                    "Version {} is not a policy language version (2012-10-17)",
                    echo(&v.to_string())
                ));
            }
        }
        let statements: Vec<&Value> = match obj.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(s @ Value::Object(_)) => vec![s],
            Some(_) => return Err("Statement must be an object or a list of objects".into()),
            None => return Err("the policy has no Statement".into()),
        };
        if statements.is_empty() {
            return Err("the policy has no Statement".into());
        }
        if statements.len() > STATEMENTS_MAX {
            return Err(format!("{} statements; at most {STATEMENTS_MAX}", statements.len()));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, kind).map_err(|e| format!("statement {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { kind, statements })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The effects of the statements that apply to `req`: (any Allow, any Deny).
    fn effects(&self, req: &Request<'_>) -> (bool, bool) {
        let (mut allow, mut deny) = (false, false);
        for s in &self.statements {
            if !s.action.matches(req.action, true) || !s.resource.matches(req.resource, false) {
                continue;
            }
            if let Some(p) = &s.principal {
                if !principal_matches(p, req.principal_arn, s.effect) {
                    continue;
                }
            }
            match s.effect {
                Effect::Allow => allow = true,
                Effect::Deny => deny = true,
            }
        }
        (allow, deny)
    }

    /// The `Sid`s of the statements, for diagnostics.
    pub fn sids(&self) -> Vec<Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref()).collect()
    }
}

/// Decides a request. `identity` are the caller's identity policies; `resource` the policy attached
/// to the resource, if any. A caller whose identity is fully trusted (an "admin" principal with no
/// policies, see the server's docs) passes `identity_allows_all`.
pub fn evaluate(
    identity: &[Policy],
    identity_allows_all: bool,
    resource: Option<&Policy>,
    req: &Request<'_>,
) -> Decision {
    let mut allowed = identity_allows_all;
    for p in identity {
        let (a, d) = p.effects(req);
        if d {
            return Decision::ExplicitDeny(DenySource::Identity);
        }
        allowed |= a;
    }
    if let Some(p) = resource {
        let (a, d) = p.effects(req);
        if d {
            return Decision::ExplicitDeny(DenySource::Resource);
        }
        allowed |= a;
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn parse_statement(v: &Value, kind: Kind) -> Result<Statement, String> {
    let obj = v.as_object().ok_or("a statement must be a JSON object")?;
    for key in obj.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Principal"
            | "NotPrincipal" => {}
            "Condition" => {
                return Err("Condition is not supported by kinesin; express the rule with Action and \
                            Resource, or split the principal"
                    .into())
            }
            other => return Err(format!("unknown element `{}`", echo(other))),
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("Sid must be a string".into()),
    };
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(format!("Effect {:?} is neither Allow nor Deny", echo(other))),
        None => return Err("Effect (Allow or Deny) is missing".into()),
    };
    let action = either(obj, "Action", "NotAction")?.ok_or("Action or NotAction is missing")?;
    for p in match &action {
        Patterns::In(ps) | Patterns::NotIn(ps) => ps,
    } {
        if p != "*" && !p.contains(':') {
            return Err(format!("action {:?} has no service prefix (e.g. kinesis:PutRecord)", echo(p)));
        }
    }
    let resource = match either(obj, "Resource", "NotResource")? {
        Some(r) => r,
        // A resource policy applies to the resource it is attached to.
        None if kind == Kind::Resource => Patterns::In(vec!["*".into()]),
        None => return Err("Resource or NotResource is missing".into()),
    };
    let principal = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err("give Principal or NotPrincipal, not both".into()),
        (None, None) => None,
        (Some(p), None) => Some(parse_principal(p, false)?),
        (None, Some(p)) => Some(parse_principal(p, true)?),
    };
    match (kind, &principal) {
        (Kind::Identity, Some(_)) => {
            return Err("an identity policy must not name a Principal (it applies to its principal)".into())
        }
        (Kind::Resource, None) => return Err("a resource policy statement needs a Principal".into()),
        _ => {}
    }
    Ok(Statement { sid, effect, principal, action, resource })
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or(format!("{what} must list strings")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(format!("{what} must be a string or a list of strings")),
    };
    if list.is_empty() {
        return Err(format!("{what} is empty"));
    }
    Ok(list)
}

fn either(obj: &serde_json::Map<String, Value>, yes: &str, no: &str) -> Result<Option<Patterns>, String> {
    match (obj.get(yes), obj.get(no)) {
        (Some(_), Some(_)) => Err(format!("give {yes} or {no}, not both")),
        (Some(v), None) => Ok(Some(Patterns::In(strings(v, yes)?))),
        (None, Some(v)) => Ok(Some(Patterns::NotIn(strings(v, no)?))),
        (None, None) => Ok(None),
    }
}

fn parse_principal(v: &Value, negated: bool) -> Result<Principals, String> {
    let list = match v {
        Value::String(s) if s == "*" => {
            return Ok(if negated { Principals::NotIn(vec![]) } else { Principals::Anyone })
        }
        Value::Object(m) => {
            let mut list = Vec::new();
            for (k, v) in m {
                if k != "AWS" {
                    return Err(format!("Principal type {:?} is not supported (only \"AWS\")", echo(k)));
                }
                list.extend(strings(v, "Principal.AWS")?);
            }
            list
        }
        _ => return Err("Principal must be \"*\" or {\"AWS\": ...}".into()),
    };
    if list.iter().any(|p| p == "*") {
        return Ok(if negated { Principals::NotIn(vec![]) } else { Principals::Anyone });
    }
    Ok(if negated { Principals::NotIn(list) } else { Principals::In(list) })
}

/// The account id of an ARN (`arn:aws:iam::ACCOUNT:...`), if it has one.
pub fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let account = parts.nth(3)?;
    parts.next()?;
    Some(account)
}

/// Whether a principal named in a policy (`arn:...`, a 12-digit account id, or an account root
/// `arn:aws:iam::ACCOUNT:root`) means the caller `arn`.
///
/// An account root in an **Allow** means the root user only: on AWS, naming your own account in a
/// resource policy delegates to the account's identity policies and grants other principals
/// nothing by itself. In a **Deny** it means everyone in the account. An IAM role ARN also means
/// its assumed-role sessions (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
fn names_principal(named: &str, arn: &str, effect: Effect) -> bool {
    let account = arn_account(arn);
    let root_of = |acct: &str| format!("arn:aws:iam::{acct}:root");
    let named_root_account = if named.len() == 12 && named.bytes().all(|b| b.is_ascii_digit()) {
        Some(named)
    } else {
        named.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root"))
    };
    if let Some(acct) = named_root_account {
        return match effect {
            Effect::Deny => account == Some(acct),
            Effect::Allow => arn == root_of(acct),
        };
    }
    if named == arn {
        return true;
    }
    // arn:aws:iam::A:role/R names arn:aws:sts::A:assumed-role/R/<session>.
    if let (Some(role), Some(rest)) = (named.strip_prefix("arn:aws:iam::"), arn.strip_prefix("arn:aws:sts::"))
    {
        if let (Some((acct_r, role_path)), Some((acct_s, session))) =
            (role.split_once(':'), rest.split_once(':'))
        {
            if let (Some(role_name), Some(assumed)) =
                (role_path.strip_prefix("role/"), session.strip_prefix("assumed-role/"))
            {
                let role_name = role_name.rsplit('/').next().unwrap_or(role_name);
                return acct_r == acct_s && assumed.split_once('/').is_some_and(|(r, _)| r == role_name);
            }
        }
    }
    false
}

fn principal_matches(p: &Principals, arn: &str, effect: Effect) -> bool {
    match p {
        Principals::Anyone => true,
        Principals::In(list) => list.iter().any(|n| names_principal(n, arn, effect)),
        Principals::NotIn(list) => !list.iter().any(|n| names_principal(n, arn, effect)),
    }
}

/// Glob match with `*` (any run, also empty) and `?` (exactly one character), by characters.
/// Linear-time backtracking over the last `*`: O(pattern × value) at worst, never exponential.
pub fn glob_match(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let eq = |a: char, b: char| {
        if case_insensitive {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    let (mut pi, mut vi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], v[vi]))) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const USER: &str = "arn:aws:iam::000000000000:user/producer";
    const ORDERS: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";
    const CONSUMER: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app:1700000000";

    fn id(text: &str) -> Policy {
        Policy::parse(text, Kind::Identity).unwrap()
    }

    fn res(text: &str) -> Policy {
        Policy::parse(text, Kind::Resource).unwrap()
    }

    fn req<'a>(action: &'a str, resource: &'a str) -> Request<'a> {
        Request { principal_arn: USER, action, resource }
    }

    fn decide(identity: &[Policy], action: &str, resource: &str) -> Decision {
        evaluate(identity, false, None, &req(action, resource))
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "", false));
        assert!(glob_match("*", "anything", false));
        assert!(glob_match("kinesis:Put*", "kinesis:PutRecords", false));
        assert!(!glob_match("kinesis:Put*", "kinesis:GetRecords", false));
        assert!(glob_match("kinesis:Get?????Iterator", "kinesis:GetShardIterator", false));
        assert!(!glob_match("kinesis:Get????Iterator", "kinesis:GetShardIterator", false));
        assert!(glob_match("KINESIS:putrecord", "kinesis:PutRecord", true));
        assert!(!glob_match("KINESIS:putrecord", "kinesis:PutRecord", false));
        assert!(glob_match("a*b*c", "a-b-b-c", false));
        assert!(!glob_match("a*b*c", "a-b-b-d", false));
        assert!(glob_match("*/orders", "arn:x:stream/orders", false));
        assert!(!glob_match("", "x", false));
        assert!(glob_match("", "", false));
        assert!(glob_match("?", "é", false));
    }

    #[test]
    fn producer_scenario() {
        let p = id(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"{ORDERS}"}}]}}"#
        ));
        let ps = [p];
        assert_eq!(decide(&ps, "kinesis:PutRecord", ORDERS), Decision::Allow);
        assert_eq!(decide(&ps, "kinesis:putrecords", ORDERS), Decision::Allow);
        assert_eq!(decide(&ps, "kinesis:GetRecords", ORDERS), Decision::ImplicitDeny);
        let other = "arn:aws:kinesis:us-east-1:000000000000:stream/orders2";
        assert_eq!(decide(&ps, "kinesis:PutRecord", other), Decision::ImplicitDeny);
        let r = req("kinesis:GetRecords", ORDERS);
        assert_eq!(
            Decision::ImplicitDeny.message(&r).unwrap(),
            format!("User: {USER} is not authorized to perform: kinesis:GetRecords on resource: {ORDERS} because no identity-based policy allows the kinesis:GetRecords action")
        );
        assert_eq!(
            Decision::ExplicitDeny(DenySource::Identity).message(&r).unwrap(),
            format!("User: {USER} is not authorized to perform: kinesis:GetRecords on resource: {ORDERS} with an explicit deny in an identity-based policy")
        );
        assert_eq!(Decision::Allow.message(&r), None);
    }

    #[test]
    fn no_policies_deny_everything() {
        assert_eq!(decide(&[], "kinesis:ListStreams", "*"), Decision::ImplicitDeny);
        assert_eq!(evaluate(&[], true, None, &req("kinesis:ListStreams", "*")), Decision::Allow);
    }

    #[test]
    fn wildcards_and_not_action() {
        let all = id(r#"{"Statement":{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}}"#);
        assert_eq!(decide(&[all], "kinesis:DeleteStream", ORDERS), Decision::Allow);
        let star = id(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:kinesis:*:*:stream/ord*"}}"#,
        );
        assert_eq!(decide(std::slice::from_ref(&star), "kinesis:DeleteStream", ORDERS), Decision::Allow);
        assert_eq!(decide(std::slice::from_ref(&star), "kinesis:ListStreams", "*"), Decision::ImplicitDeny);
        // Consumer ARNs are not stream ARNs: stream/ord* matches them only through the wildcard.
        assert_eq!(decide(&[star], "kinesis:SubscribeToShard", CONSUMER), Decision::Allow);
        let not = id(
            r#"{"Statement":{"Effect":"Allow","NotAction":["kinesis:Delete*","kinesis:*Policy"],"Resource":"*"}}"#,
        );
        let not = [not];
        assert_eq!(decide(&not, "kinesis:CreateStream", ORDERS), Decision::Allow);
        assert_eq!(decide(&not, "kinesis:DeleteStream", ORDERS), Decision::ImplicitDeny);
        assert_eq!(decide(&not, "kinesis:PutResourcePolicy", ORDERS), Decision::ImplicitDeny);
        let not_res = id(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"kinesis:*","NotResource":"{ORDERS}"}}}}"#
        ));
        let not_res = [not_res];
        assert_eq!(decide(&not_res, "kinesis:PutRecord", ORDERS), Decision::ImplicitDeny);
        assert_eq!(decide(&not_res, "kinesis:ListStreams", "*"), Decision::Allow);
    }

    #[test]
    fn explicit_deny_wins() {
        let allow = id(r#"{"Statement":{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}}"#);
        let deny = id(&format!(
            r#"{{"Statement":[{{"Sid":"NoDelete","Effect":"Deny","Action":"kinesis:DeleteStream","Resource":"{ORDERS}"}}]}}"#
        ));
        let both = [allow, deny];
        assert_eq!(
            decide(&both, "kinesis:DeleteStream", ORDERS),
            Decision::ExplicitDeny(DenySource::Identity)
        );
        assert_eq!(decide(&both, "kinesis:PutRecord", ORDERS), Decision::Allow);
        // An admin principal is still bound by explicit denies.
        assert_eq!(
            evaluate(&both[1..], true, None, &req("kinesis:DeleteStream", ORDERS)),
            Decision::ExplicitDeny(DenySource::Identity)
        );
    }

    #[test]
    fn resource_policies() {
        let grant = res(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{USER}"}},"Action":"kinesis:GetRecords","Resource":"{ORDERS}"}}]}}"#
        ));
        assert_eq!(evaluate(&[], false, Some(&grant), &req("kinesis:GetRecords", ORDERS)), Decision::Allow);
        assert_eq!(
            evaluate(&[], false, Some(&grant), &req("kinesis:PutRecord", ORDERS)),
            Decision::ImplicitDeny
        );
        let other = Request {
            principal_arn: "arn:aws:iam::000000000000:user/other",
            ..req("kinesis:GetRecords", ORDERS)
        };
        assert_eq!(evaluate(&[], false, Some(&grant), &other), Decision::ImplicitDeny);

        let anyone = res(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:Describe*"}}"#);
        assert_eq!(
            evaluate(&[], false, Some(&anyone), &other_action(&other, "kinesis:DescribeStream")),
            Decision::Allow
        );

        // Own account root in an Allow delegates to identity policies: grants nothing by itself.
        let root = res(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kinesis:*"}}"#,
        );
        assert_eq!(
            evaluate(&[], false, Some(&root), &req("kinesis:GetRecords", ORDERS)),
            Decision::ImplicitDeny
        );
        let root_caller =
            Request { principal_arn: "arn:aws:iam::000000000000:root", ..req("kinesis:GetRecords", ORDERS) };
        assert_eq!(evaluate(&[], false, Some(&root), &root_caller), Decision::Allow);
        // ... but a Deny naming the account applies to everyone in it, admins included.
        let deny_acct = res(
            r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"000000000000"},"Action":"kinesis:DeleteStream"}}"#,
        );
        assert_eq!(
            evaluate(&[], true, Some(&deny_acct), &req("kinesis:DeleteStream", ORDERS)),
            Decision::ExplicitDeny(DenySource::Resource)
        );
        let msg = Decision::ExplicitDeny(DenySource::Resource)
            .message(&req("kinesis:DeleteStream", ORDERS))
            .unwrap();
        assert!(msg.ends_with("with an explicit deny in a resource-based policy"), "{msg}");
        assert_eq!(evaluate(&[], true, Some(&deny_acct), &req("kinesis:PutRecord", ORDERS)), Decision::Allow);
    }

    fn other_action<'a>(r: &Request<'a>, action: &'a str) -> Request<'a> {
        Request { action, ..*r }
    }

    #[test]
    fn roles_name_their_sessions() {
        let grant = res(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:role/reader"]},"Action":"kinesis:Get*"}}"#,
        );
        let session = Request {
            principal_arn: "arn:aws:sts::000000000000:assumed-role/reader/s1",
            action: "kinesis:GetRecords",
            resource: ORDERS,
        };
        assert_eq!(evaluate(&[], false, Some(&grant), &session), Decision::Allow);
        let wrong = Request { principal_arn: "arn:aws:sts::000000000000:assumed-role/readers/s1", ..session };
        assert_eq!(evaluate(&[], false, Some(&grant), &wrong), Decision::ImplicitDeny);
        let not = res(
            r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::000000000000:role/reader"},"Action":"kinesis:*"}}"#,
        );
        assert_eq!(evaluate(&[], true, Some(&not), &session), Decision::Allow);
        assert_eq!(
            evaluate(&[], true, Some(&not), &req("kinesis:GetRecords", ORDERS)),
            Decision::ExplicitDeny(DenySource::Resource)
        );
    }

    #[test]
    fn documents_validated() {
        let bad = [
            ("[]", "object"),
            ("{}", "no Statement"),
            (r#"{"Statement":[]}"#, "no Statement"),
            (r#"{"Version":"2020-01-01","Statement":[]}"#, "Version"),
            (r#"{"Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#, "neither Allow nor Deny"),
            (r#"{"Statement":{"Action":"*","Resource":"*"}}"#, "Effect"),
            (r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#, "Action or NotAction"),
            (r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#, "Resource or NotResource"),
            (r#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}}"#, "not both"),
            (r#"{"Statement":{"Effect":"Allow","Action":"PutRecord","Resource":"*"}}"#, "service prefix"),
            (r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#, "empty"),
            (r#"{"Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}"#, "strings"),
            (r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}}"#, "Condition"),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}}"#,
                "must not name",
            ),
            (r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Extra":1}}"#, "unknown element"),
            (r#"{"Statement":"x"}"#, "Statement must be"),
        ];
        for (doc, want) in bad {
            let e = Policy::parse(doc, Kind::Identity).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
        let e =
            Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#, Kind::Resource).unwrap_err();
        assert!(e.contains("Principal"), "{e}");
        let e = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Principal":{"Service":"x"}}}"#,
            Kind::Resource,
        )
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        assert!(Policy::parse(&"x".repeat(POLICY_BYTES_MAX + 1), Kind::Identity)
            .unwrap_err()
            .contains("bytes"));
        let p = id(r#"{"Statement":{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}}"#);
        assert_eq!(p.sids(), vec![Some("A")]);
        assert_eq!(p.kind(), Kind::Identity);
    }

    #[test]
    fn arn_accounts() {
        assert_eq!(arn_account(USER), Some("000000000000"));
        assert_eq!(arn_account(ORDERS), Some("000000000000"));
        assert_eq!(arn_account("nope"), None);
        assert_eq!(arn_account("arn:aws:iam::1"), None);
    }

    proptest! {
        /// A pattern made from the value by replacing characters with `?` and runs with `*`
        /// always matches it; and the matcher never panics on any input.
        #[test]
        fn glob_matches_its_own_generalisation(value in "[a-zA-Z:/*?-]{0,40}", cuts in proptest::collection::vec((0usize..40, 0usize..5, any::<bool>()), 0..5)) {
            let chars: Vec<char> = value.chars().collect();
            let mut pattern = String::new();
            let mut i = 0;
            let mut cuts = cuts;
            cuts.sort();
            for (at, len, star) in cuts {
                if at < i || at > chars.len() { continue; }
                pattern.extend(&chars[i..at]);
                let end = (at + len).min(chars.len());
                if star { pattern.push('*'); } else { pattern.extend(std::iter::repeat_n('?', end - at)); }
                i = end;
            }
            pattern.extend(&chars[i..]);
            prop_assert!(glob_match(&pattern, &value, false), "{} !~ {}", pattern, value);
            prop_assert!(glob_match(&pattern.to_uppercase(), &value.to_lowercase(), true));
        }

        /// Explicit deny always wins, whatever else allows; adding an Allow never turns an
        /// explicit deny into an allow.
        #[test]
        fn deny_dominates(action in "(Put|Get|Describe|List)(Record|Records|Stream|Shards)", deny_pattern in "kinesis:(\\*|Put\\*|Get\\*|[A-Za-z]{1,12})", admin in any::<bool>()) {
            let action = format!("kinesis:{action}");
            let allow = id(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
            let deny = id(&format!(r#"{{"Statement":{{"Effect":"Deny","Action":"{deny_pattern}","Resource":"*"}}}}"#));
            let d = evaluate(&[allow, deny], admin, None, &req(&action, ORDERS));
            let denied = glob_match(&deny_pattern, &action, true);
            prop_assert_eq!(d, if denied { Decision::ExplicitDeny(DenySource::Identity) } else { Decision::Allow });
        }

        /// Parsing arbitrary JSON-ish text never panics.
        #[test]
        fn parse_never_panics(text in ".{0,200}") {
            let _ = Policy::parse(&text, Kind::Identity);
            let _ = Policy::parse(&text, Kind::Resource);
        }
    }
}
