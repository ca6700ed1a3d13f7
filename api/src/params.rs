//! Query-string access with Docker's conventions: repeated keys, `1/true/True` booleans, and
//! the `filters` JSON in either its map or list form.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::backend::Filters;
use crate::error::ApiError;

/// All query parameters, in order, repeats kept.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str) -> Self {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// A non-empty value.
    pub fn value(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_owned)
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// `1`, `true`, `True` are true; absent, empty, `0`, `false` are false.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| !matches!(v, "" | "0" | "false" | "False" | "FALSE"))
    }
    /// Like [`flag`](Self::flag) but with a default when the key is absent.
    pub fn flag_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_none() {
            default
        } else {
            self.flag(key)
        }
    }
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::invalid(format!("invalid value for {key}: {v:?}: not an integer"))
            }),
        }
    }
    /// Unix seconds, possibly fractional (`since`/`until` of logs and events). RFC 3339 times
    /// are accepted too.
    pub fn time(&self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                ApiError::invalid(format!("invalid value for {key}: {v:?}: not a timestamp"))
            }),
        }
    }
    pub fn filters(&self) -> Result<Filters, ApiError> {
        parse_filters(self.get("filters").unwrap_or(""))
    }
}

fn parse_time(v: &str) -> Option<f64> {
    if let Ok(f) = v.parse::<f64>() {
        return Some(f);
    }
    let (secs, nanos) = v.split_once('.').unwrap_or((v, "0"));
    if let (Ok(s), Ok(_)) = (secs.parse::<i64>(), nanos.parse::<u64>()) {
        return format!("{s}.{nanos}").parse().ok();
    }
    None
}

/// Parses `{"status":{"exited":true}}` (CLI) and `{"status":["exited"]}` (SDK).
pub fn parse_filters(raw: &str) -> Result<Filters, ApiError> {
    let mut out: Filters = HashMap::new();
    if raw.trim().is_empty() {
        return Ok(out);
    }
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::invalid(format!("invalid filter {raw:?}: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid(format!("invalid filter {raw:?}: not an object")))?;
    for (k, vals) in obj {
        let list = out.entry(k.clone()).or_default();
        match vals {
            serde_json::Value::Object(m) => list.extend(
                m.iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone()),
            ),
            serde_json::Value::Array(a) => {
                list.extend(a.iter().filter_map(|s| s.as_str().map(str::to_owned)))
            }
            serde_json::Value::String(s) => list.push(s.clone()),
            _ => {
                return Err(ApiError::invalid(format!(
                    "invalid filter {raw:?}: bad value for {k}"
                )))
            }
        }
    }
    Ok(out)
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filter_forms() {
        let a =
            parse_filters(r#"{"status":{"exited":true},"label":{"a=b":true}}"#).expect("map form");
        assert_eq!(a["status"], vec!["exited"]);
        assert_eq!(a["label"], vec!["a=b"]);
        let b = parse_filters(r#"{"status":["exited","created"]}"#).expect("list form");
        assert_eq!(b["status"], vec!["exited", "created"]);
        assert!(parse_filters("{bad").is_err());
    }

    #[test]
    fn flags_and_repeats() {
        let p = Params::parse("all=1&x=False&names=a&names=b%2Fc&t=");
        assert!(p.flag("all"));
        assert!(!p.flag("x"));
        assert!(!p.flag("missing"));
        assert!(p.flag_or("missing", true));
        assert_eq!(p.all("names"), vec!["a", "b/c"]);
        assert_eq!(p.int("t").expect("empty is none"), None);
        assert!(Params::parse("t=abc").int("t").is_err());
    }
}
