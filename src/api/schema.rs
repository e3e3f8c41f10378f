//! Checks an installation's configuration against the JSON schema an integration publishes
//! in `configurations`: the common subset (`type` object/string/number/integer/boolean/array,
//! `properties`, `required`, `items`, `enum`, `minimum`/`maximum`, `minLength`/`maxLength`).
//! Keywords outside the subset are ignored.

use serde_json::Value;

/// The schema that installation configurations follow: `configurations.account` when the
/// integration publishes per-target schemas (as GitBook's do), else `configurations` itself.
pub fn installation_schema(configurations: &Value) -> Option<&Value> {
    let fields = configurations.as_object()?;
    match fields.get("account") {
        Some(account) if account.is_object() => Some(account),
        _ if fields.contains_key("type") || fields.contains_key("properties") => Some(configurations),
        _ => None,
    }
}

/// The schema a space's or site's installation configuration follows:
/// `configurations.space` or `configurations.site` (`target` is `space` or `site`).
pub fn place_schema<'a>(configurations: &'a Value, target: &str) -> Option<&'a Value> {
    configurations.get(target).filter(|schema| schema.is_object())
}

/// Validates `value` at `path` (e.g. `configuration.port`) against `schema`.
pub fn validate(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else { return Ok(()) };
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let fits = match kind {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => true,
        };
        if !fits {
            return Err(format!("{path} must be of type {kind}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!("{path} must be one of {}", allowed.join(", ")));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            return Err(format!("{path} must be at least {minimum}"));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            return Err(format!("{path} must be at most {maximum}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            return Err(format!("{path} must be at least {min} characters"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            return Err(format!("{path} must be at most {max} characters"));
        }
    }
    if let Some(object) = value.as_object() {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for field in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(field) {
                    return Err(format!("{path}.{field} is required"));
                }
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (field, field_schema) in properties {
                if let Some(field_value) = object.get(field) {
                    validate(field_value, field_schema, &format!("{path}.{field}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(item, items, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_failing_field_is_named() {
        let schema = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 2, "maxLength": 5},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "mode": {"enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "on": {"type": "boolean"}
            }
        });
        let check = |value: Value| validate(&value, &schema, "configuration");
        assert_eq!(check(json!({"name": "ok", "port": 80, "mode": "a", "tags": ["x"], "on": true})), Ok(()));
        assert_eq!(check(json!({})), Err("configuration.name is required".into()));
        assert_eq!(check(json!({"name": "x"})), Err("configuration.name must be at least 2 characters".into()));
        assert_eq!(check(json!({"name": "xxxxxx"})), Err("configuration.name must be at most 5 characters".into()));
        assert_eq!(check(json!({"name": "ok", "port": 0})), Err("configuration.port must be at least 1".into()));
        assert_eq!(check(json!({"name": "ok", "port": 1.5})), Err("configuration.port must be of type integer".into()));
        assert_eq!(
            check(json!({"name": "ok", "mode": "c"})),
            Err("configuration.mode must be one of \"a\", \"b\"".into())
        );
        assert_eq!(
            check(json!({"name": "ok", "tags": [1]})),
            Err("configuration.tags[0] must be of type string".into())
        );
        assert_eq!(check(json!({"name": "ok", "on": "yes"})), Err("configuration.on must be of type boolean".into()));
        assert_eq!(check(json!([])), Err("configuration must be of type object".into()));
    }

    #[test]
    fn per_target_schemas_use_the_account_one() {
        let account = json!({"type": "object"});
        assert_eq!(installation_schema(&json!({"account": account})), Some(&account));
        let plain = json!({"type": "object", "properties": {}});
        assert_eq!(installation_schema(&plain), Some(&plain));
        assert_eq!(installation_schema(&json!({"space": {}})), None);
    }
}
