//! The Kinesis service model, reduced to what request validation needs, and the validator.
//!
//! `model/kinesis.json` is generated from botocore's `service-2.json` by `tools/gen_model.py`.
//! Validation runs in two passes, as the AWS front end does (reference §2.2, §2.4):
//! 1. types: a value of the wrong JSON type is a `SerializationException` (the first one found);
//!    nulls and unknown members are dropped, fractional integers truncated;
//! 2. constraints: required, length, range, pattern, enum — every violation (at most 10) is
//!    collected into one `ValidationException` worded like AWS's.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{echo, ApiError, Echo, ErrorKind, ECHO_CHARS_MAX};

const MODEL_JSON: &str = include_str!("../model/kinesis.json");
/// AWS reports at most this many constraint violations in one message.
const VALIDATION_ERRORS_MAX: usize = 10;

#[derive(Deserialize)]
struct RawModel {
    operations: HashMap<String, RawOp>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawOp {
    input: Option<String>,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: Vec<String>,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    members: Vec<(String, String)>,
    member: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

#[derive(Debug)]
enum Kind {
    Structure { members: Vec<(String, String)>, required: Vec<String> },
    List { member: String },
    Map { key: String, value: String },
    String { pattern: Option<(String, Regex)>, enum_values: Option<Vec<String>> },
    Integer { long: bool },
    Boolean,
    Timestamp,
    Blob,
}

#[derive(Debug)]
struct Shape {
    kind: Kind,
    min: Option<i64>,
    max: Option<i64>,
}

/// The loaded model: operation names and their input shapes.
pub struct Model {
    operations: HashMap<String, Option<String>>,
    shapes: HashMap<String, Shape>,
}

/// The process-wide model, parsed once.
#[allow(clippy::expect_used, reason = "the model is compiled in and a unit test parses it")]
pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::parse(MODEL_JSON).expect("the embedded model is valid"))
}

impl Model {
    fn parse(text: &str) -> Result<Model, String> {
        let raw: RawModel = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut shapes = HashMap::new();
        for (name, s) in raw.shapes {
            let kind = match s.kind.as_str() {
                "structure" => Kind::Structure { members: s.members, required: s.required },
                "list" => Kind::List { member: s.member.ok_or("list without member")? },
                "map" => Kind::Map {
                    key: s.key.ok_or("map without key")?,
                    value: s.value.ok_or("map without value")?,
                },
                "string" => {
                    let pattern = match s.pattern {
                        Some(p) => {
                            let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| e.to_string())?;
                            Some((p, re))
                        }
                        None => None,
                    };
                    Kind::String { pattern, enum_values: s.enum_values }
                }
                "integer" => Kind::Integer { long: false },
                "long" => Kind::Integer { long: true },
                "boolean" => Kind::Boolean,
                "timestamp" => Kind::Timestamp,
                "blob" => Kind::Blob,
                other => return Err(format!("shape {name}: unknown type {other}")),
            };
            shapes.insert(name, Shape { kind, min: s.min, max: s.max });
        }
        let operations = raw.operations.into_iter().map(|(k, v)| (k, v.input)).collect();
        Ok(Model { operations, shapes })
    }

    /// Whether the model knows this operation name.
    pub fn has_operation(&self, name: &str) -> bool {
        self.operations.contains_key(name)
    }

    /// Whether `op`'s input has a top-level member `member` (members it lacks are dropped by
    /// [`check_input`](Model::check_input), so nothing may act on them).
    pub fn input_has_member(&self, op: &str, member: &str) -> bool {
        let Some(Some(input)) = self.operations.get(op) else {
            return false;
        };
        match &self.shape(input).kind {
            Kind::Structure { members, .. } => members.iter().any(|(m, _)| m == member),
            _ => false,
        }
    }

    /// Checks and normalizes `body` for operation `op` (which must exist). On success the body
    /// holds only known, non-null members of the right types.
    pub fn check_input(&self, op: &str, body: &mut Value) -> Result<(), ApiError> {
        let Some(input) = self.operations.get(op) else {
            return Err(ApiError::bare(ErrorKind::UnknownOperation));
        };
        if !body.is_object() {
            return Err(ApiError::bare(ErrorKind::Serialization));
        }
        let Some(input) = input else {
            *body = Value::Object(Map::new());
            return Ok(());
        };
        self.check_types(input, body)?;
        let mut errors = Vec::new();
        self.check_structure_constraints(input, body, "", &mut errors);
        if errors.is_empty() {
            return Ok(());
        }
        let n = errors.len();
        Err(ApiError::validation(format!(
            "{n} validation error{} detected: {}",
            if n > 1 { "s" } else { "" },
            errors.join("; ")
        )))
    }

    /// Whether the top-level members `names` of `op`'s input, where `body` has them, are strings
    /// that satisfy their constraints. Cheap on any input: a value far over its length limit is
    /// refused by its byte length before any scan. The server checks the members that name the
    /// resource this way before authorizing, and leaves the rest of validation until after.
    pub fn members_valid(&self, op: &str, body: &Value, names: &[&str]) -> bool {
        let Some(Some(input)) = self.operations.get(op) else {
            return true;
        };
        let Kind::Structure { members, .. } = &self.shape(input).kind else {
            return true;
        };
        members.iter().filter(|(m, _)| names.contains(&m.as_str())).all(|(m, shape_name)| {
            match body.get(m) {
                None | Some(Value::Null) => true,
                Some(v @ Value::String(s)) => {
                    let shape = self.shape(shape_name);
                    let is_string = matches!(shape.kind, Kind::String { .. });
                    // A character is at most 4 bytes of UTF-8.
                    let far_too_long = shape.max.is_some_and(|max| s.len() as i64 > max.saturating_mul(4));
                    is_string && !far_too_long && self.scalar_ok(shape_name, v)
                }
                Some(_) => false,
            }
        })
    }

    /// Calls `f` on every timestamp member present in `body`, an input of `op`, before
    /// validation: CBOR carries epoch milliseconds where JSON carries seconds. Members whose
    /// container has the wrong type are skipped; the validator reports those.
    pub fn for_each_timestamp(&self, op: &str, body: &mut Value, f: &mut impl FnMut(&mut Value)) {
        if let Some(Some(input)) = self.operations.get(op) {
            self.walk_timestamps(input, body, f);
        }
    }

    fn walk_timestamps(&self, shape_name: &str, value: &mut Value, f: &mut impl FnMut(&mut Value)) {
        match (&self.shape(shape_name).kind, value) {
            (Kind::Structure { members, .. }, Value::Object(obj)) => {
                for (m, s) in members {
                    if let Some(v) = obj.get_mut(m) {
                        self.walk_timestamps(s, v, f);
                    }
                }
            }
            (Kind::List { member }, Value::Array(items)) => {
                for item in items {
                    self.walk_timestamps(member, item, f);
                }
            }
            (Kind::Map { value: vs, .. }, Value::Object(obj)) => {
                for v in obj.values_mut() {
                    self.walk_timestamps(vs, v, f);
                }
            }
            (Kind::Timestamp, v) => f(v),
            _ => {}
        }
    }

    fn shape(&self, name: &str) -> &Shape {
        // The generator writes every referenced shape; a missing one is a build defect.
        self.shapes.get(name).unwrap_or_else(|| panic!("model shape {name} missing"))
    }

    /// The constraints of a string shape, as AWS lists them for list members and map entries;
    /// `None` for shapes that are not constrained strings.
    fn scalar_rules(&self, shape_name: &str) -> Option<String> {
        let shape = self.shape(shape_name);
        let Kind::String { pattern, enum_values } = &shape.kind else { return None };
        let mut rules = Vec::new();
        if let Some(max) = shape.max {
            rules.push(format!("Member must have length less than or equal to {max}"));
        }
        if let Some(min) = shape.min {
            rules.push(format!("Member must have length greater than or equal to {min}"));
        }
        if let Some((src, _)) = pattern {
            rules.push(format!("Member must satisfy regular expression pattern: {src}"));
        }
        if let Some(values) = enum_values {
            rules.push(format!("Member must satisfy enum value set: [{}]", values.join(", ")));
        }
        (!rules.is_empty()).then(|| rules.join(", "))
    }

    fn scalar_ok(&self, shape_name: &str, value: &Value) -> bool {
        let mut errors = Vec::new();
        self.check_value_constraints(shape_name, value, "", &mut errors);
        errors.is_empty()
    }

    fn check_types(&self, shape_name: &str, value: &mut Value) -> Result<(), ApiError> {
        let shape = self.shape(shape_name);
        match &shape.kind {
            Kind::Structure { members, .. } => {
                let obj = match value {
                    Value::Object(o) => o,
                    Value::Array(_) => return Err(ser("Start of list found where not expected")),
                    _ => return Err(ser("Expected null")),
                };
                obj.retain(|k, v| !v.is_null() && members.iter().any(|(m, _)| m == k));
                for (m, s) in members {
                    if let Some(v) = obj.get_mut(m) {
                        self.check_types(s, v)?;
                    }
                }
                Ok(())
            }
            Kind::List { member } => match value {
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        if !item.is_null() {
                            self.check_types(member, item)?;
                        }
                    }
                    Ok(())
                }
                Value::Object(_) => Err(ser("Start of structure or map found where not expected.")),
                _ => Err(ser("Expected list or null")),
            },
            Kind::Map { value: vs, .. } => match value {
                Value::Object(obj) => {
                    obj.retain(|_, v| !v.is_null());
                    for v in obj.values_mut() {
                        self.check_types(vs, v)?;
                    }
                    Ok(())
                }
                Value::Array(_) => Err(ser("Start of list found where not expected")),
                _ => Err(ser("Expected map or null")),
            },
            Kind::String { .. } => match value {
                Value::String(_) => Ok(()),
                Value::Bool(_) => Err(ser("class java.lang.Boolean can not be converted to an String")),
                Value::Number(_) => Err(ser(format!("{NUMBER_CLASS} can not be converted to an String"))),
                other => Err(container_error(other)),
            },
            Kind::Integer { long } => match value {
                Value::Number(n) => {
                    if !n.is_i64() && !n.is_u64() {
                        let f = n.as_f64().unwrap_or(0.0).floor();
                        // Far out-of-range doubles saturate; range checks then reject them.
                        *value = Value::from(f as i64);
                    }
                    Ok(())
                }
                Value::Bool(_) => Err(ser(format!(
                    "class java.lang.Boolean can not be converted to an {}",
                    int_name(*long)
                ))),
                Value::String(_) => {
                    Err(ser(format!("class java.lang.String can not be converted to an {}", int_name(*long))))
                }
                other => Err(container_error(other)),
            },
            Kind::Boolean => match value {
                Value::Bool(_) => Ok(()),
                Value::Number(_) => Err(ser(format!("{NUMBER_CLASS} can not be converted to an Boolean"))),
                Value::String(s) => {
                    // AWS upper-cases the value; only the echoed part is worth converting.
                    let shown = match s.char_indices().nth(ECHO_CHARS_MAX) {
                        None => s.to_uppercase(),
                        Some((cut, _)) => format!("{}… ({} bytes)", s[..cut].to_uppercase(), s.len()),
                    };
                    Err(ser(format!("'{shown}' can not be converted to an Boolean")))
                }
                other => Err(container_error(other)),
            },
            Kind::Timestamp => match value {
                Value::Number(_) => Ok(()),
                Value::String(_) => {
                    Err(ser("class java.lang.String can not be converted to milliseconds since epoch"))
                }
                Value::Bool(_) => {
                    Err(ser("class java.lang.Boolean can not be converted to milliseconds since epoch"))
                }
                other => Err(container_error(other)),
            },
            Kind::Blob => match value {
                Value::String(s) => check_base64(s),
                Value::Bool(_) => Err(ser("class java.lang.Boolean can not be converted to a Blob")),
                Value::Number(_) => Err(ser(format!("{NUMBER_CLASS} can not be converted to a Blob"))),
                other => Err(container_error(other)),
            },
        }
    }

    fn check_structure_constraints(
        &self,
        shape_name: &str,
        value: &Value,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        let Kind::Structure { members, required } = &self.shape(shape_name).kind else {
            return;
        };
        for (m, s) in members {
            if errors.len() >= VALIDATION_ERRORS_MAX {
                return;
            }
            let member_path = format!("{path}{}", lower_first(m));
            match value.get(m) {
                None => {
                    if required.contains(m) {
                        errors.push(format!(
                            "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                        ));
                    }
                }
                Some(v) => self.check_value_constraints(s, v, &member_path, errors),
            }
        }
    }

    fn check_value_constraints(&self, shape_name: &str, value: &Value, path: &str, errors: &mut Vec<String>) {
        let shape = self.shape(shape_name);
        // Rendered once, at the first violation: a value breaking two rules is echoed twice.
        let mut rendered: Option<String> = None;
        let mut fail = |errors: &mut Vec<String>, what: String| {
            if errors.len() < VALIDATION_ERRORS_MAX {
                let shown = rendered.get_or_insert_with(|| render(shape, value));
                errors.push(format!("Value {shown} at '{path}' failed to satisfy constraint: {what}"));
            }
        };
        match &shape.kind {
            Kind::Structure { .. } => {
                self.check_structure_constraints(shape_name, value, &format!("{path}."), errors)
            }
            Kind::String { pattern, enum_values } => {
                let s = value.as_str().unwrap_or_default();
                let len = s.chars().count() as i64;
                if let Some((src, re)) = pattern {
                    if !re.is_match(s) {
                        fail(errors, format!("Member must satisfy regular expression pattern: {src}"));
                    }
                }
                check_length(shape, len, errors, &mut fail);
                if let Some(values) = enum_values {
                    if !values.iter().any(|v| v == s) {
                        fail(errors, format!("Member must satisfy enum value set: [{}]", values.join(", ")));
                    }
                }
            }
            Kind::Integer { .. } => {
                let n = value.as_i64().unwrap_or(if value.as_u64().is_some() { i64::MAX } else { 0 });
                if let Some(min) = shape.min {
                    if n < min {
                        fail(errors, format!("Member must have value greater than or equal to {min}"));
                    }
                }
                if let Some(max) = shape.max {
                    if n > max {
                        fail(errors, format!("Member must have value less than or equal to {max}"));
                    }
                }
            }
            Kind::Blob => {
                let len = base64_decoded_len(value.as_str().unwrap_or_default()) as i64;
                check_length(shape, len, errors, &mut fail);
            }
            Kind::List { member } => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                check_length(shape, items.len() as i64, errors, &mut fail);
                if let Some(rules) = self.scalar_rules(member) {
                    // AWS reports a scalar member's violations once, at the list.
                    if items.iter().any(|item| !self.scalar_ok(member, item)) {
                        fail(errors, format!("Member must satisfy constraint: [{rules}]"));
                    }
                    return;
                }
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    self.check_value_constraints(member, item, &format!("{path}.{}.member", i + 1), errors);
                }
            }
            Kind::Map { key, value: vs } => {
                let empty = Map::new();
                let obj = value.as_object().unwrap_or(&empty);
                check_length(shape, obj.len() as i64, errors, &mut fail);
                if let Some(rules) = self.scalar_rules(key) {
                    if obj.keys().any(|k| !self.scalar_ok(key, &Value::String(k.clone()))) {
                        fail(errors, format!("Map keys must satisfy constraint: [{rules}]"));
                    }
                }
                if let Some(rules) = self.scalar_rules(vs) {
                    if obj.values().any(|v| !self.scalar_ok(vs, v)) {
                        fail(errors, format!("Map value must satisfy constraint: [{rules}]"));
                    }
                }
            }
            Kind::Boolean | Kind::Timestamp => {}
        }
    }
}

fn check_length(
    shape: &Shape,
    len: i64,
    errors: &mut Vec<String>,
    fail: &mut impl FnMut(&mut Vec<String>, String),
) {
    if let Some(min) = shape.min {
        if len < min {
            fail(errors, format!("Member must have length greater than or equal to {min}"));
        }
    }
    if let Some(max) = shape.max {
        if len > max {
            fail(errors, format!("Member must have length less than or equal to {max}"));
        }
    }
}

/// How the AWS front end prints a value in a constraint message, capped like every echo
/// ([`Echo`]): a 501-record PutRecords or a 15 MB name is not repeated in full. A long value is
/// not even rendered in full: what is past the cap is only counted.
fn render(shape: &Shape, value: &Value) -> String {
    use std::fmt::Write as _;
    let mut e = Echo::new();
    let json = |e: &mut Echo, v: &Value| {
        let _ = serde_json::to_writer(&mut *e, v);
    };
    match (&shape.kind, value) {
        (Kind::Blob, Value::String(s)) => {
            let n = base64_decoded_len(s);
            let _ = write!(e, "java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]");
        }
        (_, Value::String(s)) => {
            let _ = e.write_str(s);
        }
        (_, Value::Array(items)) => {
            let _ = e.write_str("[");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    let _ = e.write_str(", ");
                }
                match v {
                    Value::String(s) => {
                        let _ = e.write_str(s);
                    }
                    other => json(&mut e, other),
                }
            }
            let _ = e.write_str("]");
        }
        (Kind::Map { .. }, Value::Object(obj)) => {
            let _ = e.write_str("{");
            for (i, (k, v)) in obj.iter().enumerate() {
                if i > 0 {
                    let _ = e.write_str(", ");
                }
                let _ = e.write_str(k);
                let _ = e.write_str("=");
                match v {
                    Value::String(s) => {
                        let _ = e.write_str(s);
                    }
                    other => json(&mut e, other),
                }
            }
            let _ = e.write_str("}");
        }
        (_, other) => json(&mut e, other),
    }
    format!("'{}'", e.finish())
}

/// How the AWS front end names a JSON number it cannot convert.
const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";

fn int_name(long: bool) -> &'static str {
    if long {
        "Long"
    } else {
        "Integer"
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn ser(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Serialization, message)
}

fn container_error(v: &Value) -> ApiError {
    match v {
        Value::Array(_) => ser("Start of list found where not expected"),
        _ => ser("Start of structure or map found where not expected."),
    }
}

/// Decoded length of a base64 string already checked by `check_base64`.
pub fn base64_decoded_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|&b| b == b'=').count().min(2);
    (s.len() / 4 * 3).saturating_sub(pad)
}

/// The AWS front end accepts only canonical, padded standard base64 (reference §2.2).
fn check_base64(s: &str) -> Result<(), ApiError> {
    let blob_err = |why: String| ser(format!("'{}' can not be converted to a Blob: {why}", echo(s)));
    if !s.len().is_multiple_of(4) {
        return Err(blob_err(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        )));
    }
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
        let bad_pad = b == b'=' && bytes.get(i + 1).is_some_and(|&n| n != b'=');
        if !ok || bad_pad {
            return Err(blob_err(format!("Invalid Base64 character: '{}'", b as char)));
        }
    }
    // Only the padding and the bits it leaves unused remain to check; no need to decode (the
    // typed input decodes once, later).
    let pads = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let canonical = match pads {
        0 => true,
        1 => bytes.len() >= 4 && sextet(bytes[bytes.len() - 2]) & 0b11 == 0,
        2 => bytes.len() >= 4 && sextet(bytes[bytes.len() - 3]) & 0b1111 == 0,
        _ => false,
    };
    if !canonical {
        return Err(blob_err("Invalid last non-pad Base64 character dectected".into()));
    }
    Ok(())
}

/// The 6-bit value of a standard base64 character (already checked to be one).
fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn check(op: &str, mut v: Value) -> Result<Value, ApiError> {
        model().check_input(op, &mut v).map(|_| v)
    }

    #[test]
    fn model_knows_the_operations() {
        for op in [
            "CreateStream",
            "PutRecords",
            "GetRecords",
            "ListShards",
            "SubscribeToShard",
            "UpdateMaxRecordSize",
        ] {
            assert!(model().has_operation(op), "{op}");
        }
        assert!(!model().has_operation("Nope"));
        assert!(model().input_has_member("PutRecord", "StreamARN"));
        assert!(!model().input_has_member("PutRecord", "ResourceARN"));
        assert!(!model().input_has_member("DescribeLimits", "StreamName"));
        assert!(!model().input_has_member("Nope", "StreamName"));
    }

    #[test]
    fn pattern_and_length_errors_are_worded_like_aws() {
        let e = check("CreateStream", json!({"StreamName": "a b", "ShardCount": 0})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(
            e.message.unwrap(),
            "2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
    }

    #[test]
    fn required_member_missing() {
        let e = check("CreateStream", json!({})).unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn nested_list_paths_are_one_based() {
        let e = check(
            "PutRecords",
            json!({"StreamName": "s", "Records": [{"Data": "", "PartitionKey": "a"}, {"PartitionKey": "b"}]}),
        )
        .unwrap_err();
        let m = e.message.unwrap();
        assert!(
            m.contains("at 'records.2.member.data' failed to satisfy constraint: Member must not be null"),
            "{m}"
        );
    }

    #[test]
    fn type_errors_are_serialization_exceptions() {
        let e = check("CreateStream", json!({"StreamName": 1})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Serialization);
        assert_eq!(
            e.message.unwrap(),
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
        );
        let e = check("CreateStream", json!({"StreamName": "s", "ShardCount": "1"})).unwrap_err();
        assert_eq!(e.message.unwrap(), "class java.lang.String can not be converted to an Integer");
        let e =
            check("PutRecord", json!({"StreamName": "s", "PartitionKey": "a", "Data": "abc"})).unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3"
        );
        let e =
            check("PutRecord", json!({"StreamName": "s", "PartitionKey": "a", "Data": "ab=c"})).unwrap_err();
        assert!(e.message.unwrap().contains("Invalid Base64 character: '='"));
        assert!(
            check("PutRecord", json!({"StreamName": "s", "PartitionKey": "a", "Data": "aGVsbG8="})).is_ok()
        );
        assert_eq!(check("PutRecord", json!([])).unwrap_err().kind, ErrorKind::Serialization);
        for bad in ["+/+=", "aGVsbG9=", "aGVsbB==", "a===", "===="] {
            let e =
                check("PutRecord", json!({"StreamName": "s", "PartitionKey": "a", "Data": bad})).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Serialization, "{bad}");
            assert!(e.message.unwrap().ends_with("Invalid last non-pad Base64 character dectected"), "{bad}");
        }
        for good in ["", "aGVsbA==", "aGVsbG8=", "aGVsbG8h", "+/+/", "AA=="] {
            assert!(
                check("PutRecord", json!({"StreamName": "s", "PartitionKey": "a", "Data": good})).is_ok(),
                "{good}"
            );
        }
        // Agrees with a real decoder on every 4-character quantum ending in padding.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for &c in alphabet {
            for tail in [format!("QU{}=", c as char), format!("Q{}==", c as char)] {
                let ours = check_base64(&tail).is_ok();
                let theirs = base64::engine::general_purpose::STANDARD.decode(&tail).is_ok();
                assert_eq!(ours, theirs, "{tail}");
            }
        }
    }

    #[test]
    fn nulls_and_unknown_members_are_dropped_and_doubles_truncated() {
        let v =
            check("CreateStream", json!({"StreamName": "s", "ShardCount": 2.9, "Bogus": 1, "Tags": null}))
                .unwrap();
        assert_eq!(v, json!({"StreamName": "s", "ShardCount": 2}));
    }

    #[test]
    fn enum_errors_list_the_values() {
        let e =
            check("GetShardIterator", json!({"StreamName": "s", "ShardId": "0", "ShardIteratorType": "X"}))
                .unwrap_err();
        assert!(e.message.unwrap().ends_with(
            "Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"
        ));
    }

    #[test]
    fn list_and_map_members_are_reported_at_the_container() {
        let e =
            check("RemoveTagsFromStream", json!({"StreamName": "s", "TagKeys": ["a", "", "b"]})).unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "1 validation error detected: Value '[a, , b]' at 'tagKeys' failed to satisfy constraint: \
             Member must satisfy constraint: [Member must have length less than or equal to 128, \
             Member must have length greater than or equal to 1]"
        );
        let long = "v".repeat(257);
        let e = check("AddTagsToStream", json!({"StreamName": "s", "Tags": {"k": long}})).unwrap_err();
        assert!(e.message.unwrap().ends_with(
            "at 'tags' failed to satisfy constraint: Map value must satisfy constraint: \
             [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]"
        ));
        let e = check("EnableEnhancedMonitoring", json!({"StreamName": "s", "ShardLevelMetrics": ["Bogus"]}))
            .unwrap_err();
        assert!(e.message.unwrap().contains(
            "Value '[Bogus]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: ["
        ));
    }

    #[test]
    fn timestamps_are_found_by_the_model() {
        let mut v = json!({"StreamName": "s", "ShardFilter": {"Type": "AT_TIMESTAMP", "Timestamp": 5},
                           "StreamCreationTimestamp": 7, "NextToken": 9});
        let mut seen = Vec::new();
        model().for_each_timestamp("ListShards", &mut v, &mut |t| {
            seen.push(t.clone());
            *t = json!(0);
        });
        assert_eq!(seen, vec![json!(7), json!(5)]);
        assert_eq!(v["NextToken"], json!(9));
    }

    #[test]
    fn echoed_values_are_capped() {
        let huge = "a".repeat(15 * 1024 * 1024);
        let e = check("DescribeStreamSummary", json!({"StreamName": huge})).unwrap_err();
        let m = e.message.unwrap();
        assert!(m.len() < 1024, "{} bytes", m.len());
        assert_eq!(
            m,
            format!(
                "1 validation error detected: Value '{}… (15728640 bytes)' at 'streamName' failed to satisfy \
                 constraint: Member must have length less than or equal to 128",
                "a".repeat(256)
            )
        );
        // Two rules broken, the value echoed (capped) in each.
        let e = check("DescribeStreamSummary", json!({"StreamName": format!("{} ", "b".repeat(300))}))
            .unwrap_err();
        assert_eq!(e.message.unwrap().matches("… (301 bytes)' at 'streamName'").count(), 2);
        // 501 records: the list is echoed as AWS does, but capped.
        let records: Vec<Value> =
            (0..501).map(|_| json!({"Data": "QUJD".repeat(10_000), "PartitionKey": "k"})).collect();
        let e = check("PutRecords", json!({"StreamName": "s", "Records": records})).unwrap_err();
        let m = e.message.unwrap();
        assert!(m.len() < 1024, "{} bytes", m.len());
        assert!(m.ends_with("' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"), "{m}");
        assert!(m.starts_with("1 validation error detected: Value '[{\"Data\":\"QUJDQUJD"), "{m}");
        // A 10 MB value that is not base64.
        let bad = format!("{}!", "A".repeat(10 * 1024 * 1024 - 1));
        let e = check("PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": bad})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Serialization);
        let m = e.message.unwrap();
        assert_eq!(
            m,
            format!(
                "'{}… (10485760 bytes)' can not be converted to a Blob: Invalid Base64 character: '!'",
                "A".repeat(256)
            )
        );
        let e = check(
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": "", "DryRun": "t".repeat(1000)}),
        )
        .unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            format!("'{}… (1000 bytes)' can not be converted to an Boolean", "T".repeat(256))
        );
    }

    #[test]
    fn naming_members_are_checked_alone() {
        let names = ["StreamName", "StreamARN"];
        let m = model();
        assert!(m.members_valid("DescribeStreamSummary", &json!({"StreamName": "orders"}), &names));
        assert!(m.members_valid("DescribeStreamSummary", &json!({}), &names));
        assert!(!m.members_valid("DescribeStreamSummary", &json!({"StreamName": "a".repeat(129)}), &names));
        assert!(!m.members_valid("DescribeStreamSummary", &json!({"StreamName": "a b"}), &names));
        assert!(!m.members_valid("DescribeStreamSummary", &json!({"StreamName": 5}), &names));
        // Other members are left for later.
        assert!(m.members_valid("PutRecords", &json!({"StreamName": "s", "Records": 5}), &names));
    }

    #[test]
    fn at_most_ten_errors() {
        let records: Vec<Value> = (0..20).map(|_| json!({"PartitionKey": ""})).collect();
        let e = check("PutRecords", json!({"StreamName": "s", "Records": records})).unwrap_err();
        assert!(e.message.unwrap().starts_with("10 validation errors detected"));
    }
}
