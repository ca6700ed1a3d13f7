//! [`Data`]: a JSON value whose objects keep their key order. Templates run over it so that
//! `{{json .Config}}` prints the daemon's field order (as docker's typed structs do), while
//! rows built from `serde_json::Value` (sorted keys) print like Go maps.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// An order-preserving JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Data>),
    Object(Vec<(String, Data)>),
}

impl Data {
    /// Parses JSON text, keeping object keys in document order.
    pub fn parse(raw: &[u8]) -> serde_json::Result<Data> {
        serde_json::from_slice(raw)
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Data> {
        match self {
            Data::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Data::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Data::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Data::Null)
    }

    /// Compact JSON as Go's `json.Marshal` writes it (`<`, `>`, `&` escaped).
    pub fn to_go_json(&self) -> String {
        let mut out = String::new();
        self.write_go_json(&mut out);
        out
    }

    fn write_go_json(&self, out: &mut String) {
        match self {
            Data::Null => out.push_str("null"),
            Data::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Data::Number(n) => out.push_str(&n.to_string()),
            Data::String(s) => write_go_string(s, out),
            Data::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_go_json(out);
                }
                out.push(']');
            }
            Data::Object(entries) => {
                out.push('{');
                for (i, (k, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_string(k, out);
                    out.push(':');
                    item.write_go_json(out);
                }
                out.push('}');
            }
        }
    }
}

/// Writes a JSON string literal the way Go escapes it.
pub fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&Value> for Data {
    fn from(v: &Value) -> Data {
        match v {
            Value::Null => Data::Null,
            Value::Bool(b) => Data::Bool(*b),
            Value::Number(n) => Data::Number(n.clone()),
            Value::String(s) => Data::String(s.clone()),
            Value::Array(items) => Data::Array(items.iter().map(Data::from).collect()),
            Value::Object(map) => Data::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Data::from(v)))
                    .collect(),
            ),
        }
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Data, E> {
        Ok(Data::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Data, E> {
        Ok(Data::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Data, E> {
        Ok(Data::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Data, E> {
        Ok(Number::from_f64(v).map(Data::Number).unwrap_or(Data::Null))
    }

    fn visit_str<E>(self, v: &str) -> Result<Data, E> {
        Ok(Data::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Data, E> {
        Ok(Data::String(v))
    }

    fn visit_unit<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_none<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        Data::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Data>()? {
            items.push(item);
        }
        Ok(Data::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut entries: Vec<(String, Data)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Data>()? {
            // A repeated key keeps its first position and the last value, as JSON decoders do.
            match entries.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => entries.push((k, v)),
            }
        }
        Ok(Data::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        d.deserialize_any(DataVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order() {
        let d =
            Data::parse(br#"{"status":"start","id":"x","Type":"container","n":[1,2.5,null,true]}"#)
                .expect("parse");
        assert_eq!(
            d.to_go_json(),
            r#"{"status":"start","id":"x","Type":"container","n":[1,2.5,null,true]}"#
        );
        assert_eq!(d.get("Type").and_then(Data::as_str), Some("container"));
        assert!(d.get("nope").is_none());
    }

    #[test]
    fn from_value_is_sorted_like_go_maps() {
        let v = serde_json::json!({"b": 1, "a": "<x>"});
        assert_eq!(
            Data::from(&v).to_go_json(),
            r#"{"a":"\u003cx\u003e","b":1}"#
        );
    }
}
