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

/// Splits the inside of an action (`.Name | printf "%s" $x`) into tokens.
fn lex(src: &str) -> Result<Vec<Tok>> {
    let mut lx = Lexer {
        chars: src.chars().collect(),
        i: 0,
    };
    let mut toks = Vec::new();
    while let Some(&c) = lx.chars.get(lx.i) {
        if c.is_whitespace() {
            lx.i += 1;
        } else if let Some((tok, len)) = punctuation(c, lx.chars.get(lx.i + 1).copied()) {
            toks.push(tok);
            lx.i += len;
        } else {
            toks.push(lx.token(c)?);
        }
    }
    Ok(toks)
}

/// The one- and two-character tokens, with their length.
fn punctuation(c: char, next: Option<char>) -> Option<(Tok, usize)> {
    Some(match c {
        '|' => (Tok::Pipe, 1),
        '(' => (Tok::Open, 1),
        ')' => (Tok::Close, 1),
        ',' => (Tok::Comma, 1),
        ':' if next == Some('=') => (Tok::Declare, 2),
        '=' => (Tok::Assign, 1),
        _ => return None,
    })
}

/// The lexer's position in an action's characters.
struct Lexer {
    chars: Vec<char>,
    i: usize,
}

impl Lexer {
    /// Reads the token starting with `c` (at `self.i`): a field chain, a variable, a string,
    /// a number or an identifier.
    fn token(&mut self, c: char) -> Result<Tok> {
        let negative_number = c == '-' && self.peek(1).is_some_and(|d| d.is_ascii_digit());
        Ok(match c {
            '.' => {
                let chain = self.chain();
                if chain.is_empty() {
                    self.i += 1;
                    Tok::Dot
                } else {
                    Tok::Field(chain)
                }
            }
            '$' => self.variable(),
            '"' => Tok::Str(self.quoted()?),
            '`' => Tok::Str(self.raw_quoted()?),
            c if c.is_ascii_digit() || negative_number => Tok::Num(self.number()?),
            c if is_ident_char(c) => {
                let start = self.i;
                self.i = self.ident_end(start);
                Tok::Ident(self.text(start, self.i))
            }
            other => bail!("template: unexpected {other:?} in command"),
        })
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.chars[start..end].iter().collect()
    }

    /// Where the identifier starting at `start` ends.
    fn ident_end(&self, start: usize) -> usize {
        let mut j = start;
        while j < self.chars.len() && is_ident_char(self.chars[j]) {
            j += 1;
        }
        j
    }

    /// `.A.B.C` from here: the names, empty when no name follows the first dot.
    fn chain(&mut self) -> Vec<String> {
        let mut chain = Vec::new();
        while self.peek(0) == Some('.') {
            let start = self.i + 1;
            let end = self.ident_end(start);
            if end == start {
                break;
            }
            chain.push(self.text(start, end));
            self.i = end;
        }
        chain
    }

    /// `$name` (or `$`) and the field chain after it.
    fn variable(&mut self) -> Tok {
        let start = self.i + 1;
        let end = self.ident_end(start);
        let name: String = std::iter::once('$')
            .chain(self.chars[start..end].iter().copied())
            .collect();
        self.i = end;
        let chain = self.chain();
        Tok::Var(name, chain)
    }

    /// A `"..."` string with Go's common escapes.
    fn quoted(&mut self) -> Result<String> {
        let mut s = String::new();
        self.i += 1;
        loop {
            let Some(c) = self.peek(0) else {
                bail!("template: unterminated quoted string")
            };
            self.i += 1;
            match c {
                '"' => return Ok(s),
                '\\' => {
                    let Some(e) = self.peek(0) else {
                        bail!("template: unterminated quoted string")
                    };
                    self.i += 1;
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
    }

    /// A `` `...` `` string, taken as is.
    fn raw_quoted(&mut self) -> Result<String> {
        let start = self.i + 1;
        let mut j = start;
        while j < self.chars.len() && self.chars[j] != '`' {
            j += 1;
        }
        if j >= self.chars.len() {
            bail!("template: unterminated raw quoted string");
        }
        self.i = j + 1;
        Ok(self.text(start, j))
    }

    /// Digits and dots, after an optional minus sign.
    fn number(&mut self) -> Result<f64> {
        let start = self.i;
        self.i += 1;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.i += 1;
        }
        let text = self.text(start, self.i);
        text.parse::<f64>()
            .map_err(|_| anyhow!("template: bad number syntax: {text:?}"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lexes_every_kind_of_token() {
        let toks =
            lex(r#"$v := .A.B | printf "%s\n" $x.Y (len .) -1.5 `raw\n`, $ = z"#).expect("lex");
        assert_eq!(
            toks,
            vec![
                Tok::Var("$v".into(), vec![]),
                Tok::Declare,
                Tok::Field(strs(&["A", "B"])),
                Tok::Pipe,
                Tok::Ident("printf".into()),
                Tok::Str("%s\n".into()),
                Tok::Var("$x".into(), strs(&["Y"])),
                Tok::Open,
                Tok::Ident("len".into()),
                Tok::Dot,
                Tok::Close,
                Tok::Num(-1.5),
                Tok::Str("raw\\n".into()),
                Tok::Comma,
                Tok::Var("$".into(), vec![]),
                Tok::Assign,
                Tok::Ident("z".into()),
            ]
        );
    }

    #[test]
    fn lex_errors_name_the_problem() {
        let err = |s: &str| lex(s).expect_err(s).to_string();
        assert_eq!(err("\"open"), "template: unterminated quoted string");
        assert_eq!(err("`open"), "template: unterminated raw quoted string");
        assert_eq!(err("1.2.3"), "template: bad number syntax: \"1.2.3\"");
        assert_eq!(err("a : b"), "template: unexpected ':' in command");
    }
}
