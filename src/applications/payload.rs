//! What a webhook's settings make of an event before it is sent: subscription `filters`
//! choose which events match, `payloadFields` trims the payload, `payloadTemplate` replaces
//! the body with a rendered template.
//!
//! - A **filter** is `{"field": "issue.status", "values": ["open", "reopened"]}`: the event's
//!   value at the dot path must equal one of `values` (strings compare with strings, other
//!   JSON values by their JSON text). A subscription matches when every filter does.
//! - **payloadFields** is a comma-separated list of dot paths (`issue.id, issue.title`): the
//!   payload keeps only those, nested as in the event.
//! - **payloadTemplate** is free text where `{{path}}` becomes the event's value at the dot
//!   path (strings as they are, numbers and booleans as text, objects and arrays as JSON,
//!   missing values and null as nothing); `\{` writes `{` and `\\` writes `\`.

use serde_json::{Map, Value};

/// Longest path, and most paths or filters, a setting may hold.
const MAX_PATHS: usize = 100;

/// The value at a dot path of `value`.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |node, key| match node {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 200
        && path.split('.').all(|key| !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || "_-$".contains(c)))
}

/// Checks `payloadFields`, returning its paths; the error names what is wrong.
pub fn parse_fields(fields: &str) -> Result<Vec<String>, String> {
    let paths: Vec<String> = fields.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect();
    if paths.is_empty() || paths.len() > MAX_PATHS {
        return Err(format!("payloadFields must list 1–{MAX_PATHS} comma-separated dot paths"));
    }
    if let Some(bad) = paths.iter().find(|p| !valid_path(p)) {
        return Err(format!("payloadFields: `{bad}` is not a dot path such as `issue.title`"));
    }
    Ok(paths)
}

/// The payload with only the listed paths kept.
pub fn trim(payload: &Value, paths: &[String]) -> Value {
    let mut kept = Value::Object(Map::new());
    for path in paths {
        let Some(found) = lookup(payload, path) else { continue };
        let keys: Vec<&str> = path.split('.').collect();
        let mut node = &mut kept;
        for key in &keys[..keys.len() - 1] {
            let Value::Object(map) = node else { break };
            node = map.entry((*key).to_owned()).or_insert_with(|| Value::Object(Map::new()));
        }
        if let Value::Object(map) = node {
            map.insert(keys[keys.len() - 1].to_owned(), found.clone());
        }
    }
    kept
}

/// One piece of a parsed template.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable(String),
}

fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('{' | '\\')) => text.push(chars.next().unwrap_or('\\')),
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') if chars.peek() == Some(&'}') => {
                            chars.next();
                            break;
                        }
                        Some(c) => name.push(c),
                        None => return Err("payloadTemplate: a `{{` is never closed with `}}`".into()),
                    }
                }
                let name = name.trim().to_owned();
                if !valid_path(&name) {
                    return Err(format!(
                        "payloadTemplate: `{{{{{name}}}}}` must name a dot path such as `issue.title`"
                    ));
                }
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Variable(name));
            }
            c => text.push(c),
        }
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

/// Checks `payloadTemplate`.
pub fn check_template(template: &str) -> Result<(), String> {
    parse_template(template).map(|_| ())
}

/// Renders a template (checked with [`check_template`]) against the event.
pub fn render(template: &str, payload: &Value) -> String {
    let Ok(pieces) = parse_template(template) else { return template.to_owned() };
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Variable(path) => match lookup(payload, &path) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
            },
        }
    }
    out
}

/// Checks a subscription's `filters`, returning them in their stored form.
pub fn check_filters(filters: &Value) -> Result<Value, String> {
    let Some(list) = filters.as_array() else { return Err("subscription.filters must be an array".into()) };
    if list.len() > MAX_PATHS {
        return Err(format!("subscription.filters must hold at most {MAX_PATHS} filters"));
    }
    for (i, filter) in list.iter().enumerate() {
        let field = filter["field"].as_str().filter(|f| valid_path(f));
        let values = filter["values"].as_array().filter(|v| !v.is_empty() && v.len() <= MAX_PATHS);
        let only_known = filter.as_object().is_some_and(|f| f.keys().all(|k| k == "field" || k == "values"));
        if field.is_none() || values.is_none() || !only_known {
            return Err(format!(
                "subscription.filters[{i}] must be {{\"field\": \"<dot path>\", \"values\": [1–{MAX_PATHS} values]}}"
            ));
        }
    }
    Ok(filters.clone())
}

/// Whether `event` passes every filter.
pub fn filters_match(filters: &Value, event: &Value) -> bool {
    filters.as_array().is_none_or(|filters| {
        filters.iter().all(|filter| {
            let Some(found) = filter["field"].as_str().and_then(|path| lookup(event, path)) else { return false };
            filter["values"].as_array().is_some_and(|values| values.iter().any(|v| same(v, found)))
        })
    })
}

fn same(wanted: &Value, found: &Value) -> bool {
    match (wanted, found) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::String(a), other) | (other, Value::String(a)) => a.as_str() == other.to_string().as_str(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_keep_only_the_listed_paths() {
        let event = json!({"type": "Issue.Created", "issue": {"id": "I-1", "title": "t", "body": "long"}});
        let paths = parse_fields("issue.id, issue.title,missing.x").unwrap();
        assert_eq!(trim(&event, &paths), json!({"issue": {"id": "I-1", "title": "t"}}));
        assert!(parse_fields(" , ").is_err());
        assert!(parse_fields("a..b").is_err());
    }

    #[test]
    fn templates_substitute_variables_and_honour_escapes() {
        let event = json!({"issue": {"title": "Broken", "n": 3, "tags": ["a"]}, "gone": null});
        let template = r#"{"text": "{{issue.title}} #{{ issue.n }} {{issue.tags}}{{gone}}{{nope}} \{{not}} \\"}"#;
        assert!(check_template(template).is_ok());
        assert_eq!(render(template, &event), r#"{"text": "Broken #3 ["a"] {{not}} \"}"#);
        assert!(check_template("{{open").is_err());
        assert!(check_template("{{bad path!}}").is_err());
    }

    #[test]
    fn filters_match_every_field_against_its_values() {
        let event = json!({"issue": {"status": "open", "priority": 2}});
        let open = json!([{"field": "issue.status", "values": ["open", "reopened"]}]);
        assert!(filters_match(&open, &event));
        assert!(filters_match(&json!([{"field": "issue.priority", "values": [2]}]), &event));
        assert!(filters_match(&json!([{"field": "issue.priority", "values": ["2"]}]), &event));
        assert!(!filters_match(&json!([{"field": "issue.status", "values": ["closed"]}]), &event));
        assert!(!filters_match(&json!([{"field": "issue.owner", "values": ["ada"]}]), &event));
        assert!(filters_match(&json!([]), &event));
        assert!(check_filters(&json!([{"field": "a", "values": []}])).is_err());
        assert!(check_filters(&json!([{"className": "ChatChannelSubscriptionFilterIn"}])).is_err());
        assert!(check_filters(&open).is_ok());
    }
}
