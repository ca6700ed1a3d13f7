//! A Go `text/template` subset for `--format` and `inspect -f`.
//!
//! ```text
//!  "{{.Name}}\t{{json .Config}}"  ──parse──►  [Action(.Name), Text("\t"), Action(json .Config)]
//!                                                   │
//!                               render(&Value) ─────┘──► "web\t{...}"
//! ```
//!
//! Supported: `{{.A.B}}`, `{{.}}`, `$` and `$var` (from `range $k, $v := ...` and `$x := ...`),
//! pipelines (`{{.Names | upper}}`), parentheses, string/number/bool literals, `{{- -}}` trim
//! markers, comments, `if`/`else`/`else if`/`range`/`with`/`end`, and the functions docker
//! offers: `json`, `upper`, `lower`, `title`, `join`, `split`, `truncate`, `pad`, `print`,
//! `println`, `printf`, `index`, `len`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`.
//! A field followed by arguments is a method call; `.Label "key"` looks the key up in the
//! row's `Labels` string (`k=v,k2=v2`), as docker's list formatters do.
//! Values print the way Go prints them: maps as `map[k:v]`, lists as `[a b]`, null as `<nil>`,
//! a missing key as `<no value>`.

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

use crate::format::go_json;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    Sub(Pipe),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

enum Segment {
    Text(String),
    Action(String),
}

impl Template {
    /// Parses `src`; errors name the problem like Go's parser does (`unexpected "}" in operand`).
    pub fn parse(src: &str) -> Result<Template> {
        let segments = split_segments(src)?;
        let mut items = Vec::new();
        for seg in segments {
            match seg {
                Segment::Text(t) => items.push(Item::Text(t)),
                Segment::Action(a) => {
                    let toks = lex(&a)?;
                    if toks.is_empty() {
                        bail!("template: missing value for command");
                    }
                    items.push(Item::Action(toks));
                }
            }
        }
        let mut pos = 0;
        let (nodes, end) = parse_list(&items, &mut pos)?;
        if let Some(end) = end {
            bail!("template: unexpected {{{{{end}}}}}");
        }
        Ok(Template { nodes })
    }

    /// Renders the template against `data`.
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        let mut scope = Scope { vars: vec![("$".to_string(), Some(data.clone()))] };
        exec_list(&self.nodes, &Some(data.clone()), &mut scope, &mut out)?;
        Ok(out)
    }
}

enum Item {
    Text(String),
    Action(Vec<Tok>),
}

fn split_segments(src: &str) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\n") || after.starts_with("-\t");
        if trim_left {
            text = text.trim_end().to_string();
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        let inner_start = if trim_left { 2 } else { 0 };
        let end = find_action_end(after)
            .ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut inner = &after[inner_start..end];
        let trim_right = inner.ends_with(" -") || inner.ends_with("\n-") || inner.ends_with("\t-");
        if trim_right {
            inner = &inner[..inner.len() - 1];
        }
        trim_next = trim_right;
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            segments.push(Segment::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    let mut text = rest.to_string();
    if trim_next {
        text = text.trim_start().to_string();
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

/// Finds the `}}` closing an action, skipping over quoted strings.
fn find_action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let read_chain = |i: &mut usize| -> Vec<String> {
        let mut chain = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < chars.len() && is_ident_char(chars[j]) {
                j += 1;
            }
            if j == start {
                break;
            }
            chain.push(chars[start..j].iter().collect());
            *i = j;
        }
        chain
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '.' => {
                let chain = read_chain(&mut i);
                if chain.is_empty() {
                    toks.push(Tok::Dot);
                    i += 1;
                } else {
                    toks.push(Tok::Field(chain));
                }
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && is_ident_char(chars[j]) {
                    j += 1;
                }
                let name: String = std::iter::once('$').chain(chars[start..j].iter().copied()).collect();
                i = j;
                let chain = read_chain(&mut i);
                toks.push(Tok::Var(name, chain));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else { bail!("template: unterminated quoted string") };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else { bail!("template: unterminated quoted string") };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '`' {
                    j += 1;
                }
                if j >= chars.len() {
                    bail!("template: unterminated raw quoted string");
                }
                toks.push(Tok::Str(chars[start..j].iter().collect()));
                i = j + 1;
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| anyhow!("template: bad number syntax: {text:?}"))?;
                toks.push(Tok::Num(n));
            }
            c if is_ident_char(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => bail!("template: unexpected {other:?} in command"),
        }
    }
    Ok(toks)
}

/// Parses nodes until an `end`/`else` action; returns the terminating keyword's tokens.
fn parse_list(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(toks) => {
                let keyword = match toks.first() {
                    Some(Tok::Ident(k)) => k.as_str(),
                    _ => "",
                };
                match keyword {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => {
                        // `else if ...` is kept for the caller by re-reading the tokens.
                        *pos -= 1;
                        return Ok((nodes, Some("else".into())));
                    }
                    "if" | "range" | "with" => {
                        let pipe = parse_pipe(&toks[1..])?;
                        let node = parse_control(keyword, pipe, items, pos)?;
                        nodes.push(node);
                    }
                    "define" | "template" | "block" => {
                        bail!("template: {{{{{keyword}}}}} is not supported")
                    }
                    _ => nodes.push(Node::Action(parse_pipe(toks)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_control(keyword: &str, pipe: Pipe, items: &[Item], pos: &mut usize) -> Result<Node> {
    let (body, end) = parse_list(items, pos)?;
    let mut else_body = Vec::new();
    match end.as_deref() {
        Some("end") => {}
        Some("else") => {
            let Item::Action(toks) = &items[*pos] else { bail!("template: bad else") };
            *pos += 1;
            if toks.len() > 1 {
                // `else if cond` / `else with x`: a nested control that shares our `end`.
                let Some(Tok::Ident(k)) = toks.get(1) else { bail!("template: bad else") };
                let nested = parse_pipe(&toks[2..])?;
                else_body.push(parse_control(k, nested, items, pos)?);
            } else {
                let (list, end) = parse_list(items, pos)?;
                if end.as_deref() != Some("end") {
                    bail!("template: unexpected EOF, expected {{{{end}}}}");
                }
                else_body = list;
            }
        }
        _ => bail!("template: unexpected EOF, expected {{{{end}}}}"),
    }
    Ok(match keyword {
        "if" => Node::If(pipe, body, else_body),
        "range" => Node::Range(pipe, body, else_body),
        "with" => Node::With(pipe, body, else_body),
        other => bail!("template: unexpected {other:?}"),
    })
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe> {
    let mut decl = Vec::new();
    let mut rest = toks;
    // `$v := pipeline` or `$k, $v := pipeline`
    if let Some(idx) = toks.iter().position(|t| *t == Tok::Declare || *t == Tok::Assign) {
        let names = &toks[..idx];
        let all_vars = names.iter().all(|t| matches!(t, Tok::Var(_, c) if c.is_empty()) || *t == Tok::Comma);
        if all_vars && !names.is_empty() {
            for t in names {
                if let Tok::Var(n, _) = t {
                    decl.push(n.clone());
                }
            }
            rest = &toks[idx + 1..];
        }
    }
    let mut cmds = Vec::new();
    let mut i = 0;
    let mut args = Vec::new();
    while i < rest.len() {
        match &rest[i] {
            Tok::Pipe => {
                if args.is_empty() {
                    bail!("template: missing command before |");
                }
                cmds.push(Cmd { args: std::mem::take(&mut args) });
                i += 1;
            }
            Tok::Open => {
                let mut depth = 1;
                let start = i + 1;
                let mut j = start;
                while j < rest.len() {
                    match rest[j] {
                        Tok::Open => depth += 1,
                        Tok::Close => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    bail!("template: unclosed left paren");
                }
                args.push(Arg::Sub(parse_pipe(&rest[start..j])?));
                i = j + 1;
            }
            Tok::Close => bail!("template: unexpected right paren"),
            tok => {
                args.push(match tok {
                    Tok::Dot => Arg::Dot,
                    Tok::Field(c) => Arg::Field(c.clone()),
                    Tok::Var(n, c) => Arg::Var(n.clone(), c.clone()),
                    Tok::Str(s) => Arg::Str(s.clone()),
                    Tok::Num(n) => Arg::Num(*n),
                    Tok::Ident(id) => match id.as_str() {
                        "true" => Arg::Bool(true),
                        "false" => Arg::Bool(false),
                        "nil" => Arg::Nil,
                        name if FUNCS.contains(&name) => Arg::Func(name.to_string()),
                        name => bail!("template: function {name:?} not defined"),
                    },
                    other => bail!("template: unexpected {other:?} in operand"),
                });
                i += 1;
            }
        }
    }
    if args.is_empty() {
        bail!("template: missing value for command");
    }
    cmds.push(Cmd { args });
    Ok(Pipe { decl, cmds })
}

const FUNCS: &[&str] = &[
    "json", "upper", "lower", "title", "join", "split", "truncate", "pad", "print", "println",
    "printf", "index", "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
];

type Val = Option<Value>;

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
    let plain = Pipe { decl: Vec::new(), cmds: pipe.cmds.clone() };
    let v = eval_pipe(&plain, dot, scope)?;
    let entries: Vec<(Value, Value)> = match &v {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| (Value::from(i), x.clone()))
            .collect(),
        Some(Value::Object(map)) => map.iter().map(|(k, x)| (Value::from(k.clone()), x.clone())).collect(),
        Some(Value::Number(n)) => {
            let count = n.as_u64().unwrap_or(0);
            (0..count).map(|i| (Value::from(i), Value::from(i))).collect()
        }
        None | Some(Value::Null) => Vec::new(),
        Some(other) => bail!("template: range can't iterate over {}", print_val(&Some(other.clone()))),
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
        bail!("template: can't give argument to non-function {}", describe(first));
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
        Arg::Str(s) => Some(Value::String(s.clone())),
        Arg::Num(n) => Some(num_value(*n)),
        Arg::Bool(b) => Some(Value::Bool(*b)),
        Arg::Nil => Some(Value::Null),
        Arg::Func(name) => call(name, Vec::new())?,
        Arg::Sub(pipe) => eval_pipe(pipe, dot, scope)?,
    })
}

fn num_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null)
    }
}

/// Fields of the Engine API's objects that are Go slices or maps: a `null` there is a nil
/// slice or map, which Go templates print as `[]` / `map[]` rather than `<nil>`.
const NIL_SLICES: &[&str] = &[
    "Args", "Binds", "Links", "CapAdd", "CapDrop", "Capabilities", "Dns", "DnsOptions", "DnsSearch",
    "ExtraHosts", "GroupAdd", "SecurityOpt", "VolumesFrom", "Devices", "DeviceCgroupRules",
    "DeviceRequests", "Ulimits", "Cmd", "Entrypoint", "Env", "OnBuild", "Shell", "Aliases",
    "MaskedPaths", "ReadonlyPaths", "ExecIDs", "Mounts", "RepoTags", "RepoDigests", "Layers",
    "DNSNames", "Warnings", "Names", "Processes", "Titles",
];
const NIL_MAPS: &[&str] = &[
    "Volumes", "Labels", "ExposedPorts", "Tmpfs", "Sysctls", "StorageOpt", "Options", "Ports",
    "DriverOpts", "Networks", "Containers", "Attributes", "Config",
];

fn walk(mut v: Val, chain: &[String]) -> Val {
    for key in chain {
        v = match v {
            Some(Value::Object(map)) => match map.get(key) {
                Some(Value::Null) if NIL_SLICES.contains(&key.as_str()) => Some(Value::Array(Vec::new())),
                Some(Value::Null) if NIL_MAPS.contains(&key.as_str()) => Some(Value::Object(Map::new())),
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
                Some(Value::Object(map)) => map.get(&key).map(|v| print_val(&Some(v.clone()))),
                Some(Value::String(s)) => s.split(',').find_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k == key).then(|| v.to_string())
                }),
                _ => None,
            };
            Ok(Some(Value::String(found.unwrap_or_default())))
        }
        other => bail!("template: can't evaluate field {other}"),
    }
}

fn call(name: &str, args: Vec<Val>) -> Result<Val> {
    let arity = |n: usize| -> Result<()> {
        if args.len() != n {
            bail!("template: wrong number of args for {name}: want {n} got {}", args.len());
        }
        Ok(())
    };
    let s = |v: &Val| print_val(v);
    let out = match name {
        "json" => {
            arity(1)?;
            Value::String(go_json(args[0].as_ref().unwrap_or(&Value::Null)))
        }
        "upper" => {
            arity(1)?;
            Value::String(s(&args[0]).to_uppercase())
        }
        "lower" => {
            arity(1)?;
            Value::String(s(&args[0]).to_lowercase())
        }
        "title" => {
            arity(1)?;
            Value::String(title_case(&s(&args[0])))
        }
        "join" => {
            arity(2)?;
            let sep = s(&args[1]);
            let parts: Vec<String> = match &args[0] {
                Some(Value::Array(items)) => items.iter().map(|i| print_val(&Some(i.clone()))).collect(),
                other => vec![print_val(other)],
            };
            Value::String(parts.join(&sep))
        }
        "split" => {
            arity(2)?;
            let text = s(&args[0]);
            let sep = s(&args[1]);
            Value::Array(text.split(sep.as_str()).map(|p| Value::String(p.into())).collect())
        }
        "truncate" => {
            arity(2)?;
            let n = as_f64(&args[1]).unwrap_or(0.0) as usize;
            Value::String(s(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            arity(3)?;
            let left = as_f64(&args[1]).unwrap_or(0.0) as usize;
            let right = as_f64(&args[2]).unwrap_or(0.0) as usize;
            Value::String(format!("{}{}{}", " ".repeat(left), s(&args[0]), " ".repeat(right)))
        }
        "print" => Value::String(args.iter().map(print_val).collect::<Vec<_>>().concat()),
        "println" => {
            let parts: Vec<String> = args.iter().map(print_val).collect();
            Value::String(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            if args.is_empty() {
                bail!("template: wrong number of args for printf");
            }
            Value::String(sprintf(&s(&args[0]), &args[1..]))
        }
        "index" => {
            if args.is_empty() {
                bail!("template: wrong number of args for index");
            }
            let mut v = args[0].clone();
            for key in &args[1..] {
                v = match (v, key) {
                    (Some(Value::Object(map)), k) => map.get(&print_val(k)).cloned().or(Some(Value::Null)),
                    (Some(Value::Array(items)), k) => {
                        let i = as_f64(k).unwrap_or(-1.0);
                        if i < 0.0 || i as usize >= items.len() {
                            bail!("template: error calling index: index out of range: {}", print_val(k));
                        }
                        Some(items[i as usize].clone())
                    }
                    (None, _) | (Some(Value::Null), _) => bail!("template: error calling index: index of untyped nil"),
                    (Some(other), _) => bail!("template: can't index item of type {}", type_name(&other)),
                };
            }
            return Ok(v);
        }
        "len" => {
            arity(1)?;
            let n = match &args[0] {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(m)) => m.len(),
                Some(Value::String(s)) => s.len(),
                Some(Value::Null) | None => 0,
                Some(other) => bail!("template: error calling len: len of type {}", type_name(other)),
            };
            Value::from(n)
        }
        "eq" => {
            if args.len() < 2 {
                bail!("template: missing argument for comparison");
            }
            Value::Bool(args[1..].iter().any(|b| compare(&args[0], b) == Some(std::cmp::Ordering::Equal)))
        }
        "ne" => {
            arity(2)?;
            Value::Bool(compare(&args[0], &args[1]) != Some(std::cmp::Ordering::Equal))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(2)?;
            let ord = compare(&args[0], &args[1])
                .ok_or_else(|| anyhow!("template: incompatible types for comparison"))?;
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            })
        }
        "and" => {
            let pick = args.iter().find(|a| !truthy(a)).or(args.last()).cloned();
            return Ok(pick.unwrap_or(None));
        }
        "or" => {
            let pick = args.iter().find(|a| truthy(a)).or(args.last()).cloned();
            return Ok(pick.unwrap_or(None));
        }
        "not" => {
            arity(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        other => bail!("template: function {other:?} not defined"),
    };
    Ok(Some(out))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
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
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => Some(x.cmp(y)),
        (None | Some(Value::Null), None | Some(Value::Null)) => Some(std::cmp::Ordering::Equal),
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
            'd' => as_f64(&arg).map(|f| (f as i64).to_string()).unwrap_or_else(|| print_val(&arg)),
            'f' => {
                let prec = spec.split_once('.').and_then(|(_, p)| p.parse().ok()).unwrap_or(6);
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
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// Prints a value the way Go's `fmt.Print` prints decoded JSON.
pub fn print_value(v: &Value) -> String {
    print_val(&Some(v.clone()))
}

fn print_val(v: &Val) -> String {
    match v {
        None => "<no value>".to_string(),
        Some(Value::Null) => "<nil>".to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => print_number(n),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| print_val(&Some(i.clone()))).collect();
            format!("[{}]", parts.join(" "))
        }
        Some(Value::Object(map)) => print_map(map),
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

fn print_map(map: &Map<String, Value>) -> String {
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}:{}", print_val(&Some(v.clone()))))
        .collect();
    format!("map[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: Value) -> String {
        Template::parse(t).expect("parse").render(&v).expect("render")
    }

    #[test]
    fn fields_and_nesting() {
        let v = json!({"Name": "/web", "State": {"Status": "running", "Pid": 42}});
        assert_eq!(render("{{.Name}} {{.State.Status}} {{.State.Pid}}", v.clone()), "/web running 42");
        assert_eq!(render("{{.Nope}}", v.clone()), "<no value>");
        assert_eq!(render("x{{.State.Nope.Deeper}}y", v), "x<no value>y");
    }

    #[test]
    fn json_and_pipes() {
        let v = json!({"Config": {"Cmd": ["sh", "-c", "a && b"]}, "Names": "web"});
        assert_eq!(render("{{json .Config.Cmd}}", v.clone()), r#"["sh","-c","a \u0026\u0026 b"]"#);
        assert_eq!(render("{{.Names | upper}}", v.clone()), "WEB");
        assert_eq!(render("{{.Config.Cmd | json}}", v.clone()), r#"["sh","-c","a \u0026\u0026 b"]"#);
        assert_eq!(render("{{join .Config.Cmd \",\"}}", v), "sh,-c,a && b");
    }

    #[test]
    fn go_printing_of_composites() {
        let v = json!({"L": {"b": "2", "a": "1"}, "A": ["x", "y"], "N": null, "F": 0.5});
        assert_eq!(render("{{.L}} {{.A}} {{.N}} {{.F}}", v), "map[a:1 b:2] [x y] <nil> 0.5");
    }

    #[test]
    fn nil_slices_and_maps_print_like_go() {
        let v = json!({"HostConfig": {"Binds": null, "Init": null}, "Config": {"Labels": null}});
        assert_eq!(render("{{.HostConfig.Binds}} {{.HostConfig.Init}} {{.Config.Labels}}", v.clone()), "[] <nil> map[]");
        assert_eq!(render("{{if .HostConfig.Binds}}y{{else}}n{{end}}", v), "n");
    }

    #[test]
    fn control_flow() {
        let v = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Running": false, "Labels": {"k": "v"}});
        assert_eq!(render("{{range .Mounts}}{{.Source}};{{end}}", v.clone()), "/a;/b;");
        assert_eq!(render("{{if .Running}}up{{else}}down{{end}}", v.clone()), "down");
        assert_eq!(
            render("{{if .Running}}a{{else if .Labels}}b{{else}}c{{end}}", v.clone()),
            "b"
        );
        assert_eq!(render("{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}", v.clone()), "k=v");
        assert_eq!(render("{{with .Labels}}{{.k}}{{end}}", v.clone()), "v");
        assert_eq!(render("{{range .Nothing}}x{{else}}empty{{end}}", v), "empty");
    }

    #[test]
    fn functions() {
        let v = json!({"Labels": {"com.x": "1"}, "S": "hello world", "Ports": ["80/tcp"], "Count": 3});
        assert_eq!(render(r#"{{index .Labels "com.x"}}"#, v.clone()), "1");
        assert_eq!(render("{{index .Ports 0}}", v.clone()), "80/tcp");
        assert_eq!(render("{{len .Ports}}", v.clone()), "1");
        assert_eq!(render("{{title .S}}", v.clone()), "Hello World");
        assert_eq!(render("{{truncate .S 5}}", v.clone()), "hello");
        assert_eq!(render(r#"{{printf "%s-%d" .S .Count}}"#, v.clone()), "hello world-3");
        assert_eq!(render(r#"{{if eq .Count 3}}three{{end}}"#, v.clone()), "three");
        assert_eq!(render(r#"{{if and .S (gt .Count 2)}}yes{{end}}"#, v.clone()), "yes");
        assert_eq!(render("{{split .S \" \"}}", v), "[hello world]");
    }

    #[test]
    fn trim_markers_and_comments() {
        let v = json!({"A": "a"});
        assert_eq!(render("x  {{- .A -}}  y{{/* note */}}", v), "xay");
    }

    #[test]
    fn label_method_on_list_rows() {
        let v = json!({"Labels": "a=1,com.b=two"});
        assert_eq!(render(r#"{{.Label "com.b"}}"#, v.clone()), "two");
        assert_eq!(render(r#"{{.Label "zzz"}}"#, v), "");
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{nosuchfunc .A}}").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
    }
}
