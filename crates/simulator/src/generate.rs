//! Deterministic content: the request hash, the PRNG, text, base64, and JSON generated from
//! JSON Schema.
//!
//! Everything a simulated model "says" is a pure function of the request, so tests can compare
//! a streamed answer with the non-streamed one and replay a request to get the same output.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// The words generated text is made of: lowercase ASCII, so each is exactly one token.
const VOCAB: &[&str] = &[
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "stone", "bright",
    "signal", "quiet", "garden", "engine", "paper", "orange", "cloud", "simple", "answer",
    "switch", "yard", "train", "track", "route", "model", "token", "stream", "light", "north",
    "window", "silver", "market", "forest", "valley", "harbor", "copper", "planet", "winter",
    "summer", "lemon", "violet", "marble", "rocket", "island", "canvas", "meadow", "puzzle",
    "anchor", "breeze", "candle", "desert", "ember", "falcon", "glacier", "hollow", "ivory",
    "jungle", "kettle", "ladder", "mirror", "nectar", "orbit", "pepper",
];

/// How deep schema generation recurses before giving up on optional parts.
const MAX_DEPTH: usize = 24;

/// SHA-256 of `value` in a canonical form (object keys sorted, compact), skipping top-level
/// keys in `skip` — so `stream` does not change what a request generates.
pub fn request_hash(value: &Value, skip: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    match value {
        Value::Object(map) => canonical_object(map, skip, &[], &mut hasher),
        other => canonical(other, &[], &mut hasher),
    }
    hasher.finalize().into()
}

/// Feeds `value` in canonical form into `hasher`, leaving out object keys named in `skip` at
/// every depth (so a `cache_control` marker does not change a prompt prefix's identity).
pub fn hash_canonical(value: &Value, skip: &[&str], hasher: &mut Sha256) {
    canonical(value, skip, hasher);
}

/// SHA-256 of raw bytes, for seeds that are not request bodies (embedding inputs).
pub fn bytes_hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

// Sorted keys make the hash independent of serde_json's map ordering feature.
fn canonical(value: &Value, deep_skip: &[&str], hasher: &mut Sha256) {
    match value {
        Value::Object(map) => canonical_object(map, &[], deep_skip, hasher),
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, deep_skip, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

fn canonical_object(
    map: &Map<String, Value>,
    skip: &[&str],
    deep_skip: &[&str],
    hasher: &mut Sha256,
) {
    let mut keys: Vec<&String> = map
        .keys()
        .filter(|k| !skip.contains(&k.as_str()) && !deep_skip.contains(&k.as_str()))
        .collect();
    keys.sort();
    hasher.update(b"{");
    for key in keys {
        hasher.update(Value::String(key.clone()).to_string().as_bytes());
        hasher.update(b":");
        canonical(&map[key.as_str()], deep_skip, hasher);
        hasher.update(b",");
    }
    hasher.update(b"}");
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Standard base64 (RFC 4648 alphabet, with padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// splitmix64: tiny, fast, and good enough for picking words.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn from_hash(hash: &[u8; 32]) -> Self {
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hash[..8]);
        Rng(u64::from_le_bytes(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn word(&mut self) -> &'static str {
        VOCAB[self.below(VOCAB.len() as u64) as usize]
    }

    /// A fresh generator derived from this one, so sub-generations stay independent.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// `n` vocabulary words separated by single spaces (so exactly `n` tokens).
pub fn words(rng: &mut Rng, n: u64) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.word());
    }
    out
}

/// A compact JSON document valid against `schema` (the common subset of JSON Schema: `type`
/// incl. unions, `properties`/`required`, `items`/`prefixItems`, `enum`, `const`, `anyOf`/`oneOf`
/// (first branch), `allOf` (merged), local `$ref`s, numeric bounds, string lengths and formats).
pub fn json_for_schema(schema: &Value, rng: &mut Rng) -> Value {
    Generator { root: schema }.value(schema, rng, 0)
}

struct Generator<'r> {
    root: &'r Value,
}

impl Generator<'_> {
    /// Follows `$ref`s (local JSON pointers only) and merges `allOf` into one schema.
    fn resolve<'x>(&'x self, schema: &'x Value) -> Cow<'x, Value> {
        let mut schema = schema;
        for _ in 0..MAX_DEPTH {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let target = reference.strip_prefix('#').and_then(|pointer| {
                if pointer.is_empty() {
                    Some(self.root)
                } else {
                    self.root.pointer(pointer)
                }
            });
            match target {
                Some(target) => schema = target,
                None => break,
            }
        }
        let Some(all) = schema.get("allOf").and_then(Value::as_array) else {
            return Cow::Borrowed(schema);
        };
        let mut merged = schema.as_object().cloned().unwrap_or_default();
        merged.remove("allOf");
        for part in all {
            let part = self.resolve(part);
            let Some(part) = part.as_object() else {
                continue;
            };
            for (key, value) in part {
                match (key.as_str(), merged.get_mut(key), value) {
                    ("properties", Some(Value::Object(existing)), Value::Object(props)) => {
                        existing.extend(props.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    ("required", Some(Value::Array(existing)), Value::Array(names)) => {
                        existing.extend(names.iter().cloned());
                    }
                    (_, Some(_), _) => {}
                    (_, None, _) => {
                        merged.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        Cow::Owned(Value::Object(merged))
    }

    fn value(&self, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        let resolved = self.resolve(schema);
        let schema = resolved.as_ref();
        if let Some(constant) = schema.get("const") {
            return constant.clone();
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.is_empty() {
                return options[rng.below(options.len() as u64) as usize].clone();
            }
        }
        for key in ["anyOf", "oneOf"] {
            let Some(branches) = schema.get(key).and_then(Value::as_array) else {
                continue;
            };
            // Prefer a non-null branch so optional fields still carry a value.
            let branch = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .or(branches.first());
            if let Some(branch) = branch {
                return self.value(branch, rng, depth + 1);
            }
        }
        match schema_type(schema) {
            "object" => self.object(schema, rng, depth),
            "array" => self.array(schema, rng, depth),
            "integer" => integer(schema, rng),
            "number" => number(schema, rng),
            "boolean" => Value::Bool(rng.below(2) == 1),
            "null" => Value::Null,
            _ => Value::String(string(schema, rng)),
        }
    }

    fn object(&self, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
        let mut out = Map::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                out.insert(name.clone(), self.value(prop, rng, depth + 1));
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !out.contains_key(name) {
                    out.insert(name.to_owned(), Value::String(rng.word().to_owned()));
                }
            }
        }
        Value::Object(out)
    }

    fn array(&self, schema: &Value, rng: &mut Rng, depth: usize) -> Value {
        let tuple = schema
            .get("prefixItems")
            .or_else(|| schema.get("items").filter(|i| i.is_array()))
            .and_then(Value::as_array);
        if let Some(tuple) = tuple {
            return tuple
                .iter()
                .map(|item| self.value(item, rng, depth + 1))
                .collect();
        }
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let max = schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        // Past a few levels only the minimum is generated, so recursive schemas terminate.
        let wanted = if depth > MAX_DEPTH / 2 {
            min
        } else {
            1 + rng.below(3)
        };
        let count = wanted.max(min).min(max).min(1000);
        let any = Value::Object(Map::new());
        let item = schema.get("items").unwrap_or(&any);
        let unique = schema.get("uniqueItems").and_then(Value::as_bool) == Some(true);
        let mut items: Vec<Value> = Vec::new();
        let mut attempts = 0;
        while (items.len() as u64) < count && attempts < count * 8 + 8 {
            attempts += 1;
            let value = self.value(item, rng, depth + 1);
            if unique && items.contains(&value) {
                continue;
            }
            items.push(value);
        }
        Value::Array(items)
    }
}

/// The schema's type, inferred when absent; for unions, the first non-null one.
fn schema_type(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or_else(|| types.iter().find_map(Value::as_str))
            .unwrap_or("string"),
        _ if schema.get("properties").is_some() || schema.get("required").is_some() => "object",
        _ if schema.get("items").is_some() || schema.get("prefixItems").is_some() => "array",
        _ => "string",
    }
}

/// Lower and upper bounds from `minimum`/`maximum` and both styles of exclusive bounds.
fn bounds(schema: &Value) -> (Option<f64>, bool, Option<f64>, bool) {
    let mut lo = schema.get("minimum").and_then(Value::as_f64);
    let mut hi = schema.get("maximum").and_then(Value::as_f64);
    let (mut lo_ex, mut hi_ex) = (false, false);
    match schema.get("exclusiveMinimum") {
        Some(Value::Number(n)) => {
            lo = n.as_f64();
            lo_ex = true;
        }
        Some(Value::Bool(true)) => lo_ex = true,
        _ => {}
    }
    match schema.get("exclusiveMaximum") {
        Some(Value::Number(n)) => {
            hi = n.as_f64();
            hi_ex = true;
        }
        Some(Value::Bool(true)) => hi_ex = true,
        _ => {}
    }
    (lo, lo_ex, hi, hi_ex)
}

fn integer(schema: &Value, rng: &mut Rng) -> Value {
    let (lo, lo_ex, hi, hi_ex) = bounds(schema);
    let lo = lo.map(|l| if lo_ex { l.floor() + 1.0 } else { l.ceil() });
    let hi = hi.map(|h| if hi_ex { h.ceil() - 1.0 } else { h.floor() });
    let (lo, hi) = match (lo, hi) {
        (Some(lo), Some(hi)) => (lo, hi.max(lo)),
        (Some(lo), None) => (lo, lo + 100.0),
        (None, Some(hi)) => (
            if hi >= 0.0 {
                (hi - 100.0).max(0.0)
            } else {
                hi - 100.0
            },
            hi,
        ),
        (None, None) => (0.0, 100.0),
    };
    let (lo, hi) = (lo as i64, hi as i64);
    let span = hi.saturating_sub(lo).max(0) as u64;
    let mut value = lo.saturating_add(rng.below(span.saturating_add(1)) as i64);
    if let Some(step) = schema
        .get("multipleOf")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
    {
        // Round up to the next multiple; fall back to rounding down past the upper bound.
        let up = value.div_euclid(step) * step + if value.rem_euclid(step) == 0 { 0 } else { step };
        value = if up <= hi {
            up
        } else {
            value.div_euclid(step) * step
        };
    }
    Value::Number(Number::from(value))
}

fn number(schema: &Value, rng: &mut Rng) -> Value {
    let (lo, lo_ex, hi, hi_ex) = bounds(schema);
    let value = match (lo, hi) {
        (Some(lo), Some(hi)) if hi > lo => {
            // Quarter steps inside the range keep exclusive bounds satisfied.
            lo + (hi - lo) * [0.25, 0.5, 0.75][rng.below(3) as usize]
        }
        (Some(lo), Some(_)) => lo,
        (Some(lo), None) => lo + if lo_ex { 0.5 } else { 0.0 } + rng.below(100) as f64 + 0.5,
        (None, Some(hi)) => hi - if hi_ex { 0.5 } else { 0.0 } - rng.below(100) as f64 - 0.5,
        (None, None) => rng.below(1000) as f64 / 4.0 + 0.5,
    };
    let value = match schema
        .get("multipleOf")
        .and_then(Value::as_f64)
        .filter(|s| *s > 0.0)
    {
        Some(step) => (value / step).ceil() * step,
        None => value,
    };
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn string(schema: &Value, rng: &mut Rng) -> String {
    let formatted = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => Some(format!(
            "2024-0{}-1{}T12:00:00Z",
            1 + rng.below(9),
            rng.below(10)
        )),
        Some("date") => Some(format!("2024-0{}-1{}", 1 + rng.below(9), rng.below(10))),
        Some("time") => Some(format!("1{}:30:00", rng.below(10))),
        Some("email") => Some(format!("{}@example.com", rng.word())),
        Some("uri" | "url" | "uri-reference" | "iri") => {
            Some(format!("https://example.com/{}", rng.word()))
        }
        Some("hostname") => Some(format!("{}.example.com", rng.word())),
        Some("ipv4") => Some(format!("192.0.2.{}", 1 + rng.below(254))),
        Some("ipv6") => Some(format!("2001:db8::{:x}", 1 + rng.below(0xfffe))),
        Some("uuid") => {
            let h = hex(&rng.next_u64().to_le_bytes()) + &hex(&rng.next_u64().to_le_bytes());
            Some(format!(
                "{}-{}-4{}-a{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            ))
        }
        _ => None,
    };
    let mut text = formatted.unwrap_or_else(|| {
        let n = 1 + rng.below(3);
        words(rng, n)
    });
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    while text.chars().count() < min {
        text.push(' ');
        text.push_str(rng.word());
    }
    if let Some(max) = max {
        if text.chars().count() > max {
            text = text
                .chars()
                .take(max)
                .collect::<String>()
                .trim_end()
                .to_owned();
            // Trimming may undercut minLength; pad with a letter instead.
            while text.chars().count() < min.min(max) {
                text.push('x');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gen(schema: Value) -> Value {
        json_for_schema(&schema, &mut Rng(7))
    }

    #[test]
    fn canonical_hash_ignores_key_order_and_skipped_keys() {
        let a =
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let b = json!({"messages": [{"content": "hi", "role": "user"}], "model": "m"});
        assert_eq!(request_hash(&a, &["stream"]), request_hash(&b, &["stream"]));
        assert_ne!(request_hash(&a, &[]), request_hash(&b, &[]));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn words_are_single_tokens() {
        let text = words(&mut Rng(1), 50);
        assert_eq!(crate::tokenizer::count(&text), 50);
    }

    #[test]
    fn schema_generation_honours_constraints() {
        let v = gen(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 3, "maxLength": 8},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "n": {"type": "integer", "minimum": 5, "maximum": 7},
                "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "ok": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                "opt": {"type": ["string", "null"]},
                "nested": {"$ref": "#/$defs/Inner"}
            },
            "required": ["name", "unit", "n", "extra"],
            "$defs": {"Inner": {"type": "object", "properties": {"k": {"const": 3}}}}
        }));
        let name = v["name"].as_str().unwrap();
        assert!((3..=8).contains(&name.chars().count()), "{name:?}");
        assert!(["c", "f"].contains(&v["unit"].as_str().unwrap()));
        assert!((5..=7).contains(&v["n"].as_i64().unwrap()));
        let x = v["x"].as_f64().unwrap();
        assert!(x > 0.0 && x < 1.0);
        assert!(v["ok"].is_boolean());
        assert_eq!(v["tags"].as_array().unwrap().len(), 2);
        assert!(v["opt"].is_string());
        assert_eq!(v["nested"]["k"], 3);
        assert!(v["extra"].is_string());
    }

    #[test]
    fn recursive_schemas_terminate() {
        let v = gen(json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
            }}}
        }));
        assert!(v.is_object());
    }
}
