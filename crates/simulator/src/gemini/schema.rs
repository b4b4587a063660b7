//! Gemini's `Schema` object (the OpenAPI subset used by `responseSchema` and a function
//! declaration's `parameters`): checked field by field the way the API's JSON parser does —
//! `additionalProperties` is accepted, an unknown key is not — and translated into JSON Schema
//! for the generator (`type: "OBJECT"` becomes `"object"`, `nullable` a `null` union,
//! int64 bounds sent as strings become numbers, `defs`/`ref` become `$defs`/`$ref`).

use serde_json::{Map, Value};

use super::request::{check_keys, field_path, Invalid};

/// Keys of a `Schema`, in camelCase (snake_case spellings are accepted too).
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
    "additionalProperties",
    "defs",
    "ref",
    "$defs",
    "$ref",
];

/// Values of the `Type` enum (matched case-insensitively, as the API does).
const TYPES: &[&str] = &[
    "TYPE_UNSPECIFIED",
    "STRING",
    "NUMBER",
    "INTEGER",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "NULL",
];

/// How deep a schema may nest before it is rejected (bounds the recursion).
const MAX_DEPTH: usize = 64;

/// Checks the `Schema` at `path` and returns it as JSON Schema.
pub fn to_json_schema(value: &Value, path: &str) -> Result<Value, Invalid> {
    convert(value, path, 0)
}

fn convert(value: &Value, path: &str, depth: usize) -> Result<Value, Invalid> {
    if depth > MAX_DEPTH {
        return Err(Invalid::semantic(path, "schema is nested too deeply"));
    }
    let obj = value
        .as_object()
        .ok_or_else(|| Invalid::bad_value(path, "Schema", value))?;
    check_keys(obj, SCHEMA_KEYS, path)?;
    let mut out = Map::new();
    let mut nullable = false;
    for (key, v) in obj {
        let camel = super::request::camel(key);
        let sub = field_path(path, &camel);
        match camel.as_str() {
            "type" => {
                let name = v
                    .as_str()
                    .and_then(|t| TYPES.iter().find(|k| k.eq_ignore_ascii_case(t)))
                    .ok_or_else(|| Invalid::bad_value(&sub, "Type", v))?;
                if *name != "TYPE_UNSPECIFIED" {
                    out.insert("type".into(), Value::String(name.to_ascii_lowercase()));
                }
            }
            "nullable" => {
                nullable = v
                    .as_bool()
                    .ok_or_else(|| Invalid::type_value(&sub, "TYPE_BOOL", v))?
            }
            "properties" | "defs" | "$defs" => {
                let props = v
                    .as_object()
                    .ok_or_else(|| Invalid::bad_value(&sub, "Schema", v))?;
                let mut converted = Map::new();
                for (name, schema) in props {
                    let at = format!("{sub}[{}]", Value::String(name.clone()));
                    converted.insert(name.clone(), convert(schema, &at, depth + 1)?);
                }
                let key = if camel == "properties" {
                    "properties"
                } else {
                    "$defs"
                };
                out.insert(key.into(), Value::Object(converted));
            }
            "items" => {
                out.insert("items".into(), convert(v, &sub, depth + 1)?);
            }
            "anyOf" => {
                let branches = v
                    .as_array()
                    .ok_or_else(|| Invalid::bad_value(&sub, "Schema", v))?;
                let converted = branches
                    .iter()
                    .enumerate()
                    .map(|(i, b)| convert(b, &format!("{sub}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert("anyOf".into(), Value::Array(converted));
            }
            "additionalProperties" => {
                let converted = match v {
                    Value::Bool(_) => v.clone(),
                    _ => convert(v, &sub, depth + 1)?,
                };
                out.insert("additionalProperties".into(), converted);
            }
            "enum" | "required" | "propertyOrdering" => {
                let items = v
                    .as_array()
                    .filter(|items| items.iter().all(Value::is_string))
                    .ok_or_else(|| Invalid::type_value(&sub, "TYPE_STRING", v))?;
                if camel != "propertyOrdering" {
                    out.insert(camel.clone(), Value::Array(items.clone()));
                }
            }
            "maxItems" | "minItems" | "minProperties" | "maxProperties" | "minLength"
            | "maxLength" => {
                // int64 fields: proto JSON sends them as strings.
                let n = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| Invalid::type_value(&sub, "TYPE_INT64", v))?;
                out.insert(camel.clone(), Value::from(n));
            }
            "minimum" | "maximum" => {
                let n = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| Invalid::type_value(&sub, "TYPE_DOUBLE", v))?;
                out.insert(camel.clone(), Value::from(n));
            }
            "format" | "title" | "description" | "pattern" | "ref" | "$ref" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| Invalid::type_value(&sub, "TYPE_STRING", v))?;
                match camel.as_str() {
                    "ref" | "$ref" => {
                        let target = s.replacen("#/defs/", "#/$defs/", 1);
                        out.insert("$ref".into(), Value::String(target));
                    }
                    // Patterns are not generated for; keeping them would only mislead.
                    "pattern" => {}
                    _ => {
                        out.insert(camel.clone(), v.clone());
                    }
                }
            }
            // `example` and `default` are free-form values.
            _ => {}
        }
    }
    if nullable {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), serde_json::json!([t, "null"]));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_gemini_schema_to_json_schema() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING", "nullable": true},
                "tags": {"type": "ARRAY", "items": {"type": "string"}, "minItems": "2", "maxItems": "2"},
                "unit": {"type": "STRING", "enum": ["c", "f"], "format": "enum"}
            },
            "required": ["name"],
            "propertyOrdering": ["name", "tags", "unit"],
            "additionalProperties": false
        });
        let out = to_json_schema(&schema, "generation_config.response_schema").unwrap();
        assert_eq!(out["type"], "object");
        assert_eq!(out["properties"]["name"]["type"], json!(["string", "null"]));
        assert_eq!(out["properties"]["tags"]["minItems"], 2);
        assert_eq!(out["properties"]["tags"]["items"]["type"], "string");
        assert_eq!(out["required"], json!(["name"]));
        assert!(out.get("propertyOrdering").is_none());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_types() {
        let err = to_json_schema(&json!({"type": "OBJECT", "oneOf": []}), "p").unwrap_err();
        assert!(
            err.message.contains("Unknown name \"oneOf\" at 'p'"),
            "{err:?}"
        );
        let err = to_json_schema(&json!({"type": "MAP"}), "p").unwrap_err();
        assert!(
            err.message.starts_with("Invalid value at 'p.type'"),
            "{err:?}"
        );
        let err = to_json_schema(&json!({"properties": {"a": 3}}), "p").unwrap_err();
        assert!(err.message.contains("p.properties[\"a\"]"), "{err:?}");
    }
}
