//! Reading a compose file: YAML (yaml-rust2) into JSON values, with YAML merge keys
//! (`<<: *anchor`) applied and compose's variable substitution in every string
//! (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
//! `$$` for a literal `$`). `version` is optional and not checked.

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Parses `text` into the compose document as JSON, substituting from `lookup`.
pub fn load(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("yaml: {e}"))?;
    let doc = docs.into_iter().next().ok_or("empty compose file")?;
    let mut v = to_json(&doc)?;
    if !v.is_object() {
        return Err("top-level object must be a mapping".into());
    }
    interpolate_all(&mut v, lookup, "")?;
    Ok(v)
}

fn key_string(k: &Yaml) -> Result<String, String> {
    Ok(match k {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => "null".into(),
        other => return Err(format!("non-string key in mapping: {other:?}")),
    })
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null | Yaml::BadValue => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(s.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            let mut merged: Vec<Map<String, Value>> = Vec::new();
            for (k, v) in h {
                let key = key_string(k)?;
                if key == "<<" {
                    match to_json(v)? {
                        Value::Object(o) => merged.push(o),
                        Value::Array(list) => {
                            merged.extend(list.into_iter().filter_map(|x| match x {
                                Value::Object(o) => Some(o),
                                _ => None,
                            }))
                        }
                        _ => {
                            return Err(
                                "merge key '<<' needs a mapping or a list of mappings".into()
                            )
                        }
                    }
                    continue;
                }
                m.insert(key, to_json(v)?);
            }
            // Keys of the mapping itself win over merged ones; earlier merges over later.
            for o in merged {
                for (k, v) in o {
                    m.entry(k).or_insert(v);
                }
            }
            Value::Object(m)
        }
        Yaml::Alias(_) => return Err("unresolved YAML alias".into()),
    })
}

fn interpolate_all(
    v: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &str,
) -> Result<(), String> {
    match v {
        Value::String(s) => {
            *s = interpolate(s, lookup)
                .map_err(|e| format!("invalid interpolation format for {path}: {e}"))?
        }
        Value::Array(a) => {
            for x in a {
                interpolate_all(x, lookup, path)?;
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate_all(x, lookup, &p)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Substitutes variables in one string, as compose does.
pub fn interpolate(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| format!("{s:?}: unclosed '${{'"))?;
            out.push_str(&braced(&r[..end], lookup, s)?);
            rest = &r[end + 1..];
        } else {
            let n = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            if n == 0 {
                return Err(format!(
                    "{s:?}: '$' must be followed by a name or '{{' (use '$$' for a literal '$')"
                ));
            }
            out.push_str(&lookup(&after[..n]).unwrap_or_default());
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` closing a `${` is in `r` (the text after it), nested `${…}` skipped.
fn closing_brace(r: &str) -> Option<usize> {
    let mut depth = 0usize;
    let b = r.as_bytes();
    for (i, c) in b.iter().enumerate() {
        match c {
            b'{' if i > 0 && b[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn braced(
    expr: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    whole: &str,
) -> Result<String, String> {
    let n = expr.find(|c: char| !is_name_char(c)).unwrap_or(expr.len());
    let (name, op) = expr.split_at(n);
    if name.is_empty() {
        return Err(format!("{whole:?}: empty variable name"));
    }
    let val = lookup(name);
    let set_nonempty = val.as_deref().is_some_and(|v| !v.is_empty());
    let arg = |p: &str| interpolate(&op[p.len()..], lookup);
    Ok(match op {
        "" => val.unwrap_or_default(),
        o if o.starts_with(":-") => {
            if set_nonempty {
                val.unwrap_or_default()
            } else {
                arg(":-")?
            }
        }
        o if o.starts_with('-') => match val {
            Some(v) => v,
            None => arg("-")?,
        },
        o if o.starts_with(":?") => {
            if !set_nonempty {
                return Err(format!(
                    "required variable {name} is missing a value: {}",
                    arg(":?")?
                ));
            }
            val.unwrap_or_default()
        }
        o if o.starts_with('?') => match val {
            Some(v) => v,
            None => {
                return Err(format!(
                    "required variable {name} is missing a value: {}",
                    arg("?")?
                ))
            }
        },
        o if o.starts_with(":+") => {
            if set_nonempty {
                arg(":+")?
            } else {
                String::new()
            }
        }
        o if o.starts_with('+') => {
            if val.is_some() {
                arg("+")?
            } else {
                String::new()
            }
        }
        _ => return Err(format!("{whole:?}: bad substitution ${{{expr}}}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(k: &str) -> Option<String> {
        match k {
            "TAG" => Some("1.2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitution_like_compose() {
        assert_eq!(interpolate("img:${TAG}", &env), Ok("img:1.2".into()));
        assert_eq!(interpolate("img:$TAG-x", &env), Ok("img:1.2-x".into()));
        assert_eq!(interpolate("${NOPE:-def}", &env), Ok("def".into()));
        assert_eq!(interpolate("${EMPTY:-def}", &env), Ok("def".into()));
        assert_eq!(interpolate("${EMPTY-def}", &env), Ok("".into()));
        assert_eq!(interpolate("${NOPE:-${TAG}}", &env), Ok("1.2".into()));
        assert_eq!(interpolate("cost $$5", &env), Ok("cost $5".into()));
        assert!(interpolate("${NOPE:?must be set}", &env)
            .expect_err("required")
            .contains("must be set"));
        assert!(interpolate("${TAG", &env).is_err());
        assert!(interpolate("a $ b", &env).is_err());
    }

    #[test]
    fn yaml_with_anchors_and_merge_keys() {
        let text = "x-common: &common\n  image: busybox:${TAG}\n  environment:\n    A: '1'\nservices:\n  web:\n    <<: *common\n    command: sleep 1\n  db:\n    <<: *common\n    image: other\n";
        let v = load(text, &env).expect("load");
        assert_eq!(v["services"]["web"]["image"], "busybox:1.2");
        assert_eq!(v["services"]["web"]["environment"], json!({"A": "1"}));
        assert_eq!(v["services"]["db"]["image"], "other");
        assert!(load("services: [", &env).is_err());
        assert!(load("- a\n- b\n", &env).is_err());
    }
}
