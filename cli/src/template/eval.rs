//! Executing the AST against data, and the functions and value printing that make the output
//! look like Go's (`map[k:v]`, `[a b]`, `<nil>`, `<no value>`).

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::{Arg, Cmd, Node, Pipe};
use crate::data::Data;

/// Renders `nodes` with `data` as both `.` and `$`.
pub(super) fn render(nodes: &[Node], data: &Data) -> Result<String> {
    let mut out = String::new();
    let mut scope = Scope {
        vars: vec![("$".to_string(), Some(data.clone()))],
    };
    exec_list(nodes, &Some(data.clone()), &mut scope, &mut out)?;
    Ok(out)
}

type Val = Option<Data>;

struct Scope {
    vars: Vec<(String, Val)>,
}

impl Scope {
    fn get(&self, name: &str) -> Result<Val> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("template: undefined variable: {name}"))
    }
}

fn exec_list(nodes: &[Node], dot: &Val, scope: &mut Scope, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(pipe) => {
                let v = eval_pipe(pipe, dot, scope)?;
                if pipe.decl.is_empty() {
                    out.push_str(&print_val(&v));
                }
            }
            Node::If(pipe, then, els) => {
                let mark = scope.vars.len();
                let v = eval_pipe(pipe, dot, scope)?;
                if truthy(&v) {
                    exec_list(then, dot, scope, out)?;
                } else {
                    exec_list(els, dot, scope, out)?;
                }
                scope.vars.truncate(mark);
            }
            Node::With(pipe, then, els) => {
                let mark = scope.vars.len();
                let v = eval_pipe(pipe, dot, scope)?;
                if truthy(&v) {
                    exec_list(then, &v, scope, out)?;
                } else {
                    exec_list(els, dot, scope, out)?;
                }
                scope.vars.truncate(mark);
            }
            Node::Range(pipe, body, els) => exec_range(pipe, body, els, dot, scope, out)?,
        }
    }
    Ok(())
}

fn exec_range(
    pipe: &Pipe,
    body: &[Node],
    els: &[Node],
    dot: &Val,
    scope: &mut Scope,
    out: &mut String,
) -> Result<()> {
    let plain = Pipe {
        decl: Vec::new(),
        cmds: pipe.cmds.clone(),
    };
    let v = eval_pipe(&plain, dot, scope)?;
    let entries: Vec<(Data, Data)> = match &v {
        Some(Data::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| (Data::Number(i.into()), x.clone()))
            .collect(),
        Some(Data::Object(entries)) => {
            // Go ranges over maps in key order.
            let mut sorted: Vec<(Data, Data)> = entries
                .iter()
                .map(|(k, x)| (Data::String(k.clone()), x.clone()))
                .collect();
            sorted.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
            sorted
        }
        Some(Data::Number(n)) => {
            let count = n.as_u64().unwrap_or(0);
            (0..count)
                .map(|i| (Data::Number(i.into()), Data::Number(i.into())))
                .collect()
        }
        None | Some(Data::Null) => Vec::new(),
        Some(other) => bail!(
            "template: range can't iterate over {}",
            print_val(&Some(other.clone()))
        ),
    };
    if entries.is_empty() {
        return exec_list(els, dot, scope, out);
    }
    for (key, item) in entries {
        let mark = scope.vars.len();
        match pipe.decl.as_slice() {
            [v] => scope.vars.push((v.clone(), Some(item.clone()))),
            [k, v] => {
                scope.vars.push((k.clone(), Some(key)));
                scope.vars.push((v.clone(), Some(item.clone())));
            }
            _ => {}
        }
        exec_list(body, &Some(item), scope, out)?;
        scope.vars.truncate(mark);
    }
    Ok(())
}

fn eval_pipe(pipe: &Pipe, dot: &Val, scope: &mut Scope) -> Result<Val> {
    let mut prev: Option<Val> = None;
    for cmd in &pipe.cmds {
        prev = Some(eval_cmd(cmd, dot, scope, prev)?);
    }
    let v = prev.unwrap_or(None);
    if let Some(name) = pipe.decl.first() {
        scope.vars.push((name.clone(), v.clone()));
    }
    Ok(v)
}

fn eval_cmd(cmd: &Cmd, dot: &Val, scope: &mut Scope, piped: Option<Val>) -> Result<Val> {
    let first = &cmd.args[0];
    if let Arg::Func(name) = first {
        let mut args = Vec::new();
        for a in &cmd.args[1..] {
            args.push(eval_arg(a, dot, scope)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        return call(name, args);
    }
    // A field followed by arguments is a method call on the value before its last element.
    if let Arg::Field(chain) = first {
        if cmd.args.len() > 1 || piped.is_some() {
            let mut args = Vec::new();
            for a in &cmd.args[1..] {
                args.push(eval_arg(a, dot, scope)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            let receiver = walk(dot.clone(), &chain[..chain.len() - 1]);
            return call_method(&receiver, &chain[chain.len() - 1], &args);
        }
    }
    if cmd.args.len() > 1 || piped.is_some() {
        bail!(
            "template: can't give argument to non-function {}",
            describe(first)
        );
    }
    eval_arg(first, dot, scope)
}

fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Dot => ".".into(),
        Arg::Field(c) => format!(".{}", c.join(".")),
        Arg::Var(n, _) => n.clone(),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Num(n) => n.to_string(),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".into(),
        Arg::Func(f) => f.clone(),
        Arg::Sub(_) => "(...)".into(),
    }
}

fn eval_arg(arg: &Arg, dot: &Val, scope: &mut Scope) -> Result<Val> {
    Ok(match arg {
        Arg::Dot => dot.clone(),
        Arg::Field(chain) => walk(dot.clone(), chain),
        Arg::Var(name, chain) => walk(scope.get(name)?, chain),
        Arg::Str(s) => Some(Data::String(s.clone())),
        Arg::Num(n) => Some(num_value(*n)),
        Arg::Bool(b) => Some(Data::Bool(*b)),
        Arg::Nil => Some(Data::Null),
        Arg::Func(name) => call(name, Vec::new())?,
        Arg::Sub(pipe) => eval_pipe(pipe, dot, scope)?,
    })
}

fn num_value(n: f64) -> Data {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Data::Number((n as i64).into())
    } else {
        serde_json::Number::from_f64(n)
            .map(Data::Number)
            .unwrap_or(Data::Null)
    }
}

/// Fields of the Engine API's objects that are Go slices or maps: a `null` there is a nil
/// slice or map, which Go templates print as `[]` / `map[]` rather than `<nil>`.
const NIL_SLICES: &[&str] = &[
    "Args",
    "Binds",
    "Links",
    "CapAdd",
    "CapDrop",
    "Capabilities",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "SecurityOpt",
    "VolumesFrom",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Ulimits",
    "Cmd",
    "Entrypoint",
    "Env",
    "OnBuild",
    "Shell",
    "Aliases",
    "MaskedPaths",
    "ReadonlyPaths",
    "ExecIDs",
    "Mounts",
    "RepoTags",
    "RepoDigests",
    "Layers",
    "DNSNames",
    "Warnings",
    "Names",
    "Processes",
    "Titles",
];
const NIL_MAPS: &[&str] = &[
    "Volumes",
    "Labels",
    "ExposedPorts",
    "Tmpfs",
    "Sysctls",
    "StorageOpt",
    "Options",
    "Ports",
    "DriverOpts",
    "Networks",
    "Containers",
    "Attributes",
    "Config",
];

fn walk(mut v: Val, chain: &[String]) -> Val {
    for key in chain {
        v = match v {
            Some(obj @ Data::Object(_)) => match obj.get(key) {
                Some(Data::Null) if NIL_SLICES.contains(&key.as_str()) => {
                    Some(Data::Array(Vec::new()))
                }
                Some(Data::Null) if NIL_MAPS.contains(&key.as_str()) => {
                    Some(Data::Object(Vec::new()))
                }
                other => other.cloned(),
            },
            _ => None,
        };
    }
    v
}

fn call_method(receiver: &Val, name: &str, args: &[Val]) -> Result<Val> {
    match name {
        "Label" => {
            let key = args.first().map(print_val).unwrap_or_default();
            let labels = walk(receiver.clone(), &["Labels".to_string()]);
            let found = match labels {
                Some(obj @ Data::Object(_)) => obj.get(&key).map(|v| print_val(&Some(v.clone()))),
                Some(Data::String(s)) => s.split(',').find_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k == key).then(|| v.to_string())
                }),
                _ => None,
            };
            Ok(Some(Data::String(found.unwrap_or_default())))
        }
        other => bail!("template: can't evaluate field {other}"),
    }
}

/// Calls the template function `name`: a table from name to the group that implements it.
fn call(name: &str, args: Vec<Val>) -> Result<Val> {
    match name {
        "json" | "upper" | "lower" | "title" | "join" | "split" | "truncate" | "pad" => {
            text_fn(name, &args).map(Some)
        }
        "print" | "println" | "printf" => print_fn(name, &args).map(Some),
        "index" => index_fn(&args),
        "len" => len_fn(&args).map(Some),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare_fn(name, &args).map(Some),
        "and" | "or" | "not" => logic_fn(name, &args),
        other => bail!("template: function {other:?} not defined"),
    }
}

/// Fails unless `name` got exactly `n` arguments, with Go's message.
fn arity(name: &str, args: &[Val], n: usize) -> Result<()> {
    if args.len() != n {
        bail!(
            "template: wrong number of args for {name}: want {n} got {}",
            args.len()
        );
    }
    Ok(())
}

/// `json`, `upper`, `lower`, `title`, `join`, `split`, `truncate`, `pad`.
fn text_fn(name: &str, args: &[Val]) -> Result<Data> {
    let s = |v: &Val| print_val(v);
    Ok(match name {
        "json" => {
            arity(name, args, 1)?;
            Data::String(args[0].as_ref().unwrap_or(&Data::Null).to_go_json())
        }
        "upper" => {
            arity(name, args, 1)?;
            Data::String(s(&args[0]).to_uppercase())
        }
        "lower" => {
            arity(name, args, 1)?;
            Data::String(s(&args[0]).to_lowercase())
        }
        "title" => {
            arity(name, args, 1)?;
            Data::String(title_case(&s(&args[0])))
        }
        "join" => {
            arity(name, args, 2)?;
            let sep = s(&args[1]);
            let parts: Vec<String> = match &args[0] {
                Some(Data::Array(items)) => {
                    items.iter().map(|i| print_val(&Some(i.clone()))).collect()
                }
                other => vec![print_val(other)],
            };
            Data::String(parts.join(&sep))
        }
        "split" => {
            arity(name, args, 2)?;
            let text = s(&args[0]);
            let sep = s(&args[1]);
            Data::Array(
                text.split(sep.as_str())
                    .map(|p| Data::String(p.into()))
                    .collect(),
            )
        }
        "truncate" => {
            arity(name, args, 2)?;
            let n = as_f64(&args[1]).unwrap_or(0.0) as usize;
            Data::String(s(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            arity(name, args, 3)?;
            let left = as_f64(&args[1]).unwrap_or(0.0) as usize;
            let right = as_f64(&args[2]).unwrap_or(0.0) as usize;
            Data::String(format!(
                "{}{}{}",
                " ".repeat(left),
                s(&args[0]),
                " ".repeat(right)
            ))
        }
        other => bail!("template: function {other:?} not defined"),
    })
}

/// `print`, `println`, `printf`.
fn print_fn(name: &str, args: &[Val]) -> Result<Data> {
    Ok(match name {
        "print" => Data::String(args.iter().map(print_val).collect::<Vec<_>>().concat()),
        "println" => {
            let parts: Vec<String> = args.iter().map(print_val).collect();
            Data::String(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            if args.is_empty() {
                bail!("template: wrong number of args for printf");
            }
            Data::String(sprintf(&print_val(&args[0]), &args[1..]))
        }
        other => bail!("template: function {other:?} not defined"),
    })
}

/// `index x k1 k2 ...`: map keys and slice positions, one level per key.
fn index_fn(args: &[Val]) -> Result<Val> {
    if args.is_empty() {
        bail!("template: wrong number of args for index");
    }
    let mut v = args[0].clone();
    for key in &args[1..] {
        v = match (v, key) {
            (Some(obj @ Data::Object(_)), k) => {
                obj.get(&print_val(k)).cloned().or(Some(Data::Null))
            }
            (Some(Data::Array(items)), k) => {
                let i = as_f64(k).unwrap_or(-1.0);
                if i < 0.0 || i as usize >= items.len() {
                    bail!(
                        "template: error calling index: index out of range: {}",
                        print_val(k)
                    );
                }
                Some(items[i as usize].clone())
            }
            (None, _) | (Some(Data::Null), _) => {
                bail!("template: error calling index: index of untyped nil")
            }
            (Some(other), _) => {
                bail!("template: can't index item of type {}", type_name(&other))
            }
        };
    }
    Ok(v)
}

/// `len` of a slice, map or string (0 for nil).
fn len_fn(args: &[Val]) -> Result<Data> {
    arity("len", args, 1)?;
    let n = match &args[0] {
        Some(Data::Array(a)) => a.len(),
        Some(Data::Object(m)) => m.len(),
        Some(Data::String(s)) => s.len(),
        Some(Data::Null) | None => 0,
        Some(other) => bail!(
            "template: error calling len: len of type {}",
            type_name(other)
        ),
    };
    Ok(Data::Number(n.into()))
}

/// `eq` (true when the first argument equals any other), `ne`, `lt`, `le`, `gt`, `ge`.
fn compare_fn(name: &str, args: &[Val]) -> Result<Data> {
    use std::cmp::Ordering::*;
    if name == "eq" {
        if args.len() < 2 {
            bail!("template: missing argument for comparison");
        }
        return Ok(Data::Bool(
            args[1..]
                .iter()
                .any(|b| compare(&args[0], b) == Some(Equal)),
        ));
    }
    arity(name, args, 2)?;
    if name == "ne" {
        return Ok(Data::Bool(compare(&args[0], &args[1]) != Some(Equal)));
    }
    let ord = compare(&args[0], &args[1])
        .ok_or_else(|| anyhow!("template: incompatible types for comparison"))?;
    Ok(Data::Bool(match name {
        "lt" => ord == Less,
        "le" => ord != Greater,
        "gt" => ord == Greater,
        _ => ord != Less,
    }))
}

/// `and` and `or` return the deciding argument itself, as Go's do; `not` a bool.
fn logic_fn(name: &str, args: &[Val]) -> Result<Val> {
    match name {
        "and" => {
            let pick = args.iter().find(|a| !truthy(a)).or(args.last()).cloned();
            Ok(pick.unwrap_or(None))
        }
        "or" => {
            let pick = args.iter().find(|a| truthy(a)).or(args.last()).cloned();
            Ok(pick.unwrap_or(None))
        }
        "not" => {
            arity(name, args, 1)?;
            Ok(Some(Data::Bool(!truthy(&args[0]))))
        }
        other => bail!("template: function {other:?} not defined"),
    }
}

fn type_name(v: &Data) -> &'static str {
    match v {
        Data::Null => "nil",
        Data::Bool(_) => "bool",
        Data::Number(_) => "number",
        Data::String(_) => "string",
        Data::Array(_) => "slice",
        Data::Object(_) => "map",
    }
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn as_f64(v: &Val) -> Option<f64> {
    match v {
        Some(Data::Number(n)) => n.as_f64(),
        Some(Data::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Some(Data::Number(x)), Some(Data::Number(y))) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Some(Data::String(x)), Some(Data::String(y))) => Some(x.cmp(y)),
        (Some(Data::Bool(x)), Some(Data::Bool(y))) => Some(x.cmp(y)),
        (None | Some(Data::Null), None | Some(Data::Null)) => Some(std::cmp::Ordering::Equal),
        (x, y) => (print_val(x) == print_val(y)).then_some(std::cmp::Ordering::Equal),
    }
}

fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags and width are accepted and honoured for simple cases (`%-10s`, `%5d`).
        let mut spec = String::new();
        while let Some(&n) = chars.peek() {
            if n == '-' || n == '.' || n.is_ascii_digit() {
                spec.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push('%');
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.next().cloned().unwrap_or(None);
        let text = match verb {
            'q' => crate::format::go_quote(&print_val(&arg)),
            'd' => as_f64(&arg)
                .map(|f| (f as i64).to_string())
                .unwrap_or_else(|| print_val(&arg)),
            'f' => {
                let prec = spec
                    .split_once('.')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(6);
                format!("{:.*}", prec, as_f64(&arg).unwrap_or(0.0))
            }
            _ => print_val(&arg),
        };
        let width_spec = spec.split('.').next().unwrap_or("");
        let left = width_spec.starts_with('-');
        let width: usize = width_spec.trim_start_matches('-').parse().unwrap_or(0);
        let len = text.chars().count();
        if len < width {
            let pad = " ".repeat(width - len);
            if left {
                out.push_str(&text);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&text);
            }
        } else {
            out.push_str(&text);
        }
    }
    out
}

fn truthy(v: &Val) -> bool {
    match v {
        None | Some(Data::Null) => false,
        Some(Data::Bool(b)) => *b,
        Some(Data::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Data::String(s)) => !s.is_empty(),
        Some(Data::Array(a)) => !a.is_empty(),
        Some(Data::Object(m)) => !m.is_empty(),
    }
}

/// Prints a value the way Go's `fmt.Print` prints decoded JSON.
pub fn print_value(v: &Value) -> String {
    print_val(&Some(Data::from(v)))
}

fn print_val(v: &Val) -> String {
    match v {
        None => "<no value>".to_string(),
        Some(Data::Null) => "<nil>".to_string(),
        Some(Data::Bool(b)) => b.to_string(),
        Some(Data::Number(n)) => print_number(n),
        Some(Data::String(s)) => s.clone(),
        Some(Data::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| print_val(&Some(i.clone()))).collect();
            format!("[{}]", parts.join(" "))
        }
        Some(Data::Object(entries)) => print_map(entries),
    }
}

fn print_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// Go prints maps with sorted keys.
fn print_map(entries: &[(String, Data)]) -> String {
    let mut sorted: Vec<&(String, Data)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}:{}", print_val(&Some(v.clone()))))
        .collect();
    format!("map[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Val {
        Some(Data::String(s.into()))
    }

    #[test]
    fn function_table_errors_read_like_go() {
        let err = call("upper", vec![]).expect_err("upper needs one argument");
        assert_eq!(
            err.to_string(),
            "template: wrong number of args for upper: want 1 got 0"
        );
        let err = call("nope", vec![]).expect_err("no such function");
        assert_eq!(err.to_string(), "template: function \"nope\" not defined");
        let err = call("eq", vec![text("a")]).expect_err("eq needs two");
        assert_eq!(err.to_string(), "template: missing argument for comparison");
    }

    #[test]
    fn logic_returns_the_deciding_argument() {
        assert_eq!(
            call("or", vec![text(""), text("b")]).expect("or"),
            text("b")
        );
        assert_eq!(
            call("and", vec![text("a"), text("")]).expect("and"),
            text("")
        );
        assert_eq!(
            call("not", vec![text("")]).expect("not"),
            Some(Data::Bool(true))
        );
        assert_eq!(
            call("ne", vec![text("a"), text("b")]).expect("ne"),
            Some(Data::Bool(true))
        );
    }
}
