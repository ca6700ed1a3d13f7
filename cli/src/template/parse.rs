//! Template text → AST: splitting `{{ }}` actions (with trim markers and comments), lexing
//! an action into tokens, and building the node tree with its `if`/`range`/`with` blocks.

use anyhow::{anyhow, bail, Result};

use super::{Arg, Cmd, Node, Pipe};

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

/// Parses a whole template.
pub(super) fn parse(src: &str) -> Result<Vec<Node>> {
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
    Ok(nodes)
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
        let trim_left =
            after.starts_with("- ") || after.starts_with("-\n") || after.starts_with("-\t");
        if trim_left {
            text = text.trim_end().to_string();
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        let inner_start = if trim_left { 2 } else { 0 };
        let end = find_action_end(after).ok_or_else(|| anyhow!("template: unclosed action"))?;
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
                let name: String = std::iter::once('$')
                    .chain(chars[start..j].iter().copied())
                    .collect();
                i = j;
                let chain = read_chain(&mut i);
                toks.push(Tok::Var(name, chain));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        bail!("template: unterminated quoted string")
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                bail!("template: unterminated quoted string")
                            };
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
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
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
            let Item::Action(toks) = &items[*pos] else {
                bail!("template: bad else")
            };
            *pos += 1;
            if toks.len() > 1 {
                // `else if cond` / `else with x`: a nested control that shares our `end`.
                let Some(Tok::Ident(k)) = toks.get(1) else {
                    bail!("template: bad else")
                };
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
    if let Some(idx) = toks
        .iter()
        .position(|t| *t == Tok::Declare || *t == Tok::Assign)
    {
        let names = &toks[..idx];
        let all_vars = names
            .iter()
            .all(|t| matches!(t, Tok::Var(_, c) if c.is_empty()) || *t == Tok::Comma);
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
                cmds.push(Cmd {
                    args: std::mem::take(&mut args),
                });
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
