//! List output as the docker CLI does it: a `--format` value is either empty (the command's
//! default table), `table` (same), `table <template>` (a header row plus one aligned row per
//! item), `json` (`{{json .}}` per line), or a raw template printed once per item.
//!
//! Rows are JSON objects whose keys are the template field names (`ID`, `Image`, …) and whose
//! values are already-rendered strings, so `{{json .}}` prints what docker prints.

use anyhow::Result;
use serde_json::{Map, Value};

use crate::tabwriter::TabWriter;
use crate::template::Template;

/// How one list command renders its rows.
pub struct ListFormat<'a> {
    /// The user's `--format`, if any.
    pub format: Option<&'a str>,
    /// The default `table ...` template.
    pub default_table: &'a str,
    /// Field name → column header (`ID` → `CONTAINER ID`).
    pub headers: &'a [(&'a str, &'a str)],
}

/// Turns the literal two-character sequences `\t` and `\n` into tab and newline.
pub fn unescape(format: &str) -> String {
    format.replace("\\t", "\t").replace("\\n", "\n")
}

impl ListFormat<'_> {
    /// The template the user asked for, with `table`/`json` shorthands resolved.
    fn resolved(&self) -> (bool, String) {
        let fmt = self.format.unwrap_or("").trim_start();
        if fmt.is_empty() || fmt == "table" {
            let t = self.default_table.trim_start_matches("table").trim_start();
            return (true, unescape(t));
        }
        if fmt == "json" {
            return (false, "{{json .}}".to_string());
        }
        if let Some(rest) = fmt.strip_prefix("table") {
            return (true, unescape(rest.trim_start()));
        }
        (false, unescape(fmt))
    }

    /// Whether the output is a table (header plus aligned rows).
    pub fn is_table(&self) -> bool {
        self.resolved().0
    }

    /// Renders all rows.
    pub fn render(&self, rows: &[Value]) -> Result<String> {
        let (table, text) = self.resolved();
        let tmpl = Template::parse(&text)?;
        if !table {
            let mut out = String::new();
            for row in rows {
                out.push_str(&tmpl.render(row)?);
                out.push('\n');
            }
            return Ok(out);
        }
        let mut header = Map::new();
        for (field, title) in self.headers {
            header.insert((*field).to_string(), Value::String((*title).to_string()));
        }
        let mut tw = TabWriter::docker_table();
        tw.write_str(&tmpl.render(&Value::Object(header))?);
        tw.write_str("\n");
        for row in rows {
            tw.write_str(&tmpl.render(row)?);
            tw.write_str("\n");
        }
        Ok(tw.finish())
    }
}

/// Builds a row object from `(field, value)` pairs.
pub fn row<S: Into<String>>(fields: Vec<(&str, S)>) -> Value {
    let mut map = Map::new();
    for (k, v) in fields {
        map.insert(k.to_string(), Value::String(v.into()));
    }
    Value::Object(map)
}

/// Renders each item of `items` through `-f/--format` (inspect-style: one line per item).
pub fn render_each(format: &str, items: &[Value]) -> Result<String> {
    let tmpl = Template::parse(&unescape(format))?;
    let mut out = String::new();
    for item in items {
        out.push_str(&tmpl.render(item)?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[(&str, &str)] =
        &[("ID", "NETWORK ID"), ("Name", "NAME"), ("Driver", "DRIVER")];

    fn rows() -> Vec<Value> {
        vec![
            row(vec![
                ("ID", "83ae6cb057a5"),
                ("Name", "bridge"),
                ("Driver", "bridge"),
            ]),
            row(vec![
                ("ID", "697e3d89d87d"),
                ("Name", "none"),
                ("Driver", "null"),
            ]),
        ]
    }

    #[test]
    fn default_table() {
        let f = ListFormat {
            format: None,
            default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}",
            headers: HEADERS,
        };
        assert_eq!(
            f.render(&rows()).expect("render"),
            "NETWORK ID     NAME      DRIVER\n83ae6cb057a5   bridge    bridge\n697e3d89d87d   none      null\n"
        );
    }

    #[test]
    fn custom_table_with_escaped_tab() {
        let f = ListFormat {
            format: Some("table {{.Name}}\\t{{.ID}}"),
            default_table: "",
            headers: HEADERS,
        };
        assert_eq!(
            f.render(&rows()).expect("render"),
            "NAME      NETWORK ID\nbridge    83ae6cb057a5\nnone      697e3d89d87d\n"
        );
    }

    #[test]
    fn raw_and_json() {
        let f = ListFormat {
            format: Some("{{.Name}}"),
            default_table: "",
            headers: HEADERS,
        };
        assert_eq!(f.render(&rows()).expect("render"), "bridge\nnone\n");
        let j = ListFormat {
            format: Some("json"),
            default_table: "",
            headers: HEADERS,
        };
        assert_eq!(
            j.render(&rows()[..1]).expect("render"),
            "{\"Driver\":\"bridge\",\"ID\":\"83ae6cb057a5\",\"Name\":\"bridge\"}\n"
        );
    }

    #[test]
    fn empty_table_still_has_header() {
        let f = ListFormat {
            format: None,
            default_table: "table {{.ID}}\t{{.Name}}",
            headers: HEADERS,
        };
        assert_eq!(f.render(&[]).expect("render"), "NETWORK ID   NAME\n");
    }
}
