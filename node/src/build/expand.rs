//! Docker's variable expansion and word splitting for Dockerfile arguments (ADD, COPY, ENV,
//! EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults).
//!
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}`, `${VAR?msg}`; single quotes are literal, double quotes expand; the escape
//! character (`\` or the one set by `# escape=`) makes the next character literal. Quotes are
//! removed from the result, as the shell would.

use super::BuildError;

/// Looks a variable up; `None` when unset.
pub trait Vars {
    fn get_var(&self, name: &str) -> Option<String>;
}

impl Vars for [(String, String)] {
    fn get_var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Vars for Vec<(String, String)> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.as_slice().get_var(name)
    }
}

fn bad(msg: impl Into<String>) -> BuildError {
    BuildError::Invalid(msg.into())
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Vars,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// Processes the whole input as words; `split` separates unquoted whitespace into words.
    fn words(&mut self, split: bool) -> Result<Vec<String>, BuildError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if split && c.is_whitespace() {
                self.pos += 1;
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            match c {
                '\'' => {
                    self.pos += 1;
                    self.single_quoted(&mut cur)?;
                }
                '"' => {
                    self.pos += 1;
                    self.double_quoted(&mut cur)?;
                }
                '$' => {
                    self.pos += 1;
                    let v = self.variable()?;
                    cur.push_str(&v);
                }
                c if c == self.escape => {
                    self.pos += 1;
                    match self.next() {
                        Some(n) => cur.push(n),
                        None => cur.push(c),
                    }
                }
                c => {
                    self.pos += 1;
                    cur.push(c);
                }
            }
        }
        if in_word {
            words.push(cur);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), BuildError> {
        loop {
            match self.next() {
                None => {
                    return Err(bad(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), BuildError> {
        loop {
            match self.next() {
                None => {
                    return Err(bad(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => return Ok(()),
                Some('$') => {
                    let v = self.variable()?;
                    out.push_str(&v);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n @ ('"' | '$')) => {
                        self.pos += 1;
                        out.push(n);
                    }
                    Some(n) if n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// After a `$`: `NAME`, `{NAME}`, `{NAME<op>word}`; a lone `$` stays.
    fn variable(&mut self) -> Result<String, BuildError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err(bad("bad substitution: missing variable name in ${}"));
                }
                let value = self.vars.get_var(&name);
                match self.next() {
                    Some('}') => Ok(value.unwrap_or_default()),
                    Some(':') => {
                        let op = self.next();
                        let word = self.braced_word()?;
                        let set = value.as_deref().is_some_and(|v| !v.is_empty());
                        apply(op, &name, value, set, word)
                    }
                    Some(op @ ('-' | '+' | '?')) => {
                        let word = self.braced_word()?;
                        let set = value.is_some();
                        apply(Some(op), &name, value, set, word)
                    }
                    Some(c) => Err(bad(format!(
                        "unsupported modifier ({c}) in substitution of {name}"
                    ))),
                    None => Err(bad(format!("missing '}}' in substitution of {name}"))),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                Ok(self.vars.get_var(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    /// The word of `${VAR:-word}` up to the matching `}`, itself expanded.
    fn braced_word(&mut self) -> Result<String, BuildError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(bad("missing '}' in variable substitution")),
                Some('}') => return Ok(out),
                Some('$') => {
                    let v = self.variable()?;
                    out.push_str(&v);
                }
                Some('\'') => self.single_quoted(&mut out)?,
                Some('"') => self.double_quoted(&mut out)?,
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }
}

fn apply(
    op: Option<char>,
    name: &str,
    value: Option<String>,
    set: bool,
    word: String,
) -> Result<String, BuildError> {
    match op {
        Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
        Some('+') => Ok(if set { word } else { String::new() }),
        Some('?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else if word.is_empty() {
                Err(bad(format!("{name}: is not allowed to be unset")))
            } else {
                Err(bad(format!("{name}: {word}")))
            }
        }
        Some(c) => Err(bad(format!(
            "unsupported modifier ({c}) in substitution of {name}"
        ))),
        None => Err(bad(format!("missing modifier in substitution of {name}"))),
    }
}

/// Expands one word (quotes removed, whitespace kept).
pub fn expand_word(s: &str, escape: char, vars: &dyn Vars) -> Result<String, BuildError> {
    let mut l = Lexer {
        chars: s.chars().collect(),
        pos: 0,
        escape,
        vars,
    };
    Ok(l.words(false)?.concat())
}

/// Expands and splits into words on unquoted whitespace.
pub fn expand_words(s: &str, escape: char, vars: &dyn Vars) -> Result<Vec<String>, BuildError> {
    let mut l = Lexer {
        chars: s.chars().collect(),
        pos: 0,
        escape,
        vars,
    };
    l.words(true)
}

/// Splits on unquoted whitespace without expanding or unquoting (for `key=value` lists).
pub fn split_raw(s: &str, escape: char) -> Result<Vec<String>, BuildError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => {
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        return Err(bad(format!("unmatched quote in {s:?}")));
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// `ENV`/`LABEL` arguments: `k=v k2="v 2"` or the legacy `k value with spaces`. Values are
/// expanded; keys are expanded too (as Docker does for LABEL and ENV).
pub fn key_values(
    keyword: &str,
    args: &str,
    escape: char,
    vars: &dyn Vars,
) -> Result<Vec<(String, String)>, BuildError> {
    let words = split_raw(args, escape)?;
    if words.is_empty() {
        return Err(bad(format!("{keyword} requires at least one argument")));
    }
    if !words[0].contains('=') {
        // Legacy form: one pair, the value is the rest of the line.
        let rest = args.trim_start()[words[0].len()..].trim();
        if rest.is_empty() {
            return Err(bad(format!("{keyword} must have two arguments")));
        }
        let k = expand_word(&words[0], escape, vars)?;
        return Ok(vec![(k, expand_word(rest, escape, vars)?)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(bad(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )));
        };
        let k = expand_word(k, escape, vars)?;
        if k.is_empty() {
            return Err(bad(format!("{keyword} names can not be blank")));
        }
        out.push((k, expand_word(v, escape, vars)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("A".into(), "alpha".into()),
            ("EMPTY".into(), String::new()),
            ("SP".into(), "x y".into()),
        ]
    }

    fn w(s: &str) -> String {
        expand_word(s, '\\', &vars()).expect(s)
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(w("$A"), "alpha");
        assert_eq!(w("${A}"), "alpha");
        assert_eq!(w("pre${A}post"), "prealphapost");
        assert_eq!(w("$A/b"), "alpha/b");
        assert_eq!(w("$NOPE-x"), "-x");
        assert_eq!(w("cost $5"), "cost $5");
        assert_eq!(w("a$"), "a$");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${NOPE:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY-dflt}"), "");
        assert_eq!(w("${NOPE-dflt}"), "dflt");
        assert_eq!(w("${A:-dflt}"), "alpha");
        assert_eq!(w("${A:+set}"), "set");
        assert_eq!(w("${EMPTY:+set}"), "");
        assert_eq!(w("${EMPTY+set}"), "set");
        assert_eq!(w("${NOPE:+set}"), "");
        assert_eq!(w("${NOPE:-${A}}"), "alpha");
        assert!(expand_word("${NOPE:?must be set}", '\\', &vars()).is_err());
        assert!(expand_word("${A", '\\', &vars()).is_err());
        assert!(expand_word("${}", '\\', &vars()).is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "alpha b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(expand_word("`$A", '`', &vars()).expect("bt"), "$A");
        assert_eq!(expand_word("c:\\dir", '`', &vars()).expect("bt"), "c:\\dir");
        assert!(expand_word("'open", '\\', &vars()).is_err());
    }

    #[test]
    fn word_splitting() {
        let v = expand_words("a  $SP \"q r\" 'x'y", '\\', &vars()).expect("words");
        assert_eq!(v, vec!["a", "x y", "q r", "xy"]);
        assert_eq!(
            split_raw("a=\"b c\" d='e f' g\\ h", '\\').expect("raw"),
            vec!["a=\"b c\"", "d='e f'", "g\\ h"]
        );
    }

    #[test]
    fn key_value_forms() {
        let kv = key_values("ENV", "X=1 Y=\"two words\" Z=$A", '\\', &vars()).expect("kv");
        assert_eq!(
            kv,
            vec![
                ("X".into(), "1".into()),
                ("Y".into(), "two words".into()),
                ("Z".into(), "alpha".into())
            ]
        );
        let legacy = key_values("ENV", "KEY some value $A", '\\', &vars()).expect("legacy");
        assert_eq!(legacy, vec![("KEY".into(), "some value alpha".into())]);
        assert!(key_values("ENV", "", '\\', &vars()).is_err());
        assert!(key_values("ENV", "ONLYKEY", '\\', &vars()).is_err());
        assert!(key_values("ENV", "=v", '\\', &vars()).is_err());
        assert!(key_values("ENV", "A=1 B", '\\', &vars()).is_err());
        assert!(key_values("LABEL", "a=\"open", '\\', &vars()).is_err());
    }
}
