//! Glob patterns as Go's `filepath.Match` reads them, which is what Docker's `.dockerignore`
//! and `COPY` sources use, plus the `**` of `.dockerignore` (moby's patternmatcher).
//!
//! ```text
//!  *        any run of characters except `/`
//!  ?        one character except `/`
//!  [a-z0]   one character (never `/`) in the class; `[^...]` or `[!...]` negates it
//!  \c       the character c itself (also inside a class)
//!  **       (dockerignore only) any number of whole path segments; at the end, anything
//! ```
//!
//! A pattern is checked when it is compiled, with Go's rules: an unterminated or empty class,
//! a `-` or `]` where a class character is due, or a trailing `\` is a [`PatternError`].
//!
//! Where this differs from Go: `[!...]` negates, as in a shell (Go reads `!` as a member of
//! the class); and a class never matches `/` (Docker turns the pattern into a regular
//! expression, in which `[^a]` would).

use std::fmt;

/// A pattern that is not a valid `filepath.Match` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "syntax error in pattern {:?}: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`
    Star,
    /// `?`
    One,
    /// `[...]`: inclusive ranges; a single character is a range of one.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` with more pattern after it (its `/` eaten): nothing, or anything ending in `/`.
    Dirs,
    /// `**` at the end (or a leading `**` before a literal): anything, `/` included.
    Rest,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles a `filepath.Match` pattern (`**` is two `*`).
    pub fn new(pattern: &str) -> Result<Glob, PatternError> {
        compile(pattern, false)
    }

    /// Compiles a `.dockerignore` pattern, in which `**` spans path segments. Moby's rules:
    /// `**/` and a `**` in the middle match zero or more whole segments (`a/**/b` matches
    /// `a/b` and `a/x/y/b`), a trailing `**` matches anything (`a/**` everything under `a`,
    /// `a**` every path starting with `a`), and a leading `**` before plain characters only
    /// matches any path ending with them (`**.log` matches `x/ab.log`).
    pub fn dockerignore(pattern: &str) -> Result<Glob, PatternError> {
        compile(pattern, true)
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        let n = t.len();
        // `at[j]`: the tokens so far can match exactly `t[..j]`.
        let mut at = vec![false; n + 1];
        at[0] = true;
        for tok in &self.tokens {
            let mut next = vec![false; n + 1];
            for j in (0..=n).filter(|&j| at[j]) {
                step(tok, &t, j, &mut next);
            }
            if !next.iter().any(|b| *b) {
                return false;
            }
            at = next;
        }
        at[n]
    }
}

/// Marks in `next` every position one token can reach from position `j`.
fn step(tok: &Token, t: &[char], j: usize, next: &mut [bool]) {
    let n = t.len();
    match tok {
        Token::Char(c) => {
            if t.get(j) == Some(c) {
                next[j + 1] = true;
            }
        }
        Token::One => {
            if t.get(j).is_some_and(|c| *c != '/') {
                next[j + 1] = true;
            }
        }
        Token::Class { negated, ranges } => {
            if let Some(&c) = t.get(j) {
                let hit = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                if c != '/' && hit != *negated {
                    next[j + 1] = true;
                }
            }
        }
        Token::Star => {
            next[j] = true;
            let mut k = j;
            while k < n && t[k] != '/' {
                k += 1;
                next[k] = true;
            }
        }
        Token::Dirs => {
            next[j] = true;
            for k in j..n {
                if t[k] == '/' {
                    next[k + 1] = true;
                }
            }
        }
        Token::Rest => next[j..].fill(true),
    }
}

fn compile(pattern: &str, double_star: bool) -> Result<Glob, PatternError> {
    let err = |reason| PatternError {
        pattern: pattern.to_owned(),
        reason,
    };
    let p: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' if double_star && p.get(i + 1) == Some(&'*') => {
                let at_start = i == 0;
                i += 2;
                let ate_slash = p.get(i) == Some(&'/');
                if ate_slash {
                    i += 1;
                }
                let rest_literal = !p[i..].iter().any(|c| "*?[]\\".contains(*c));
                tokens.push(
                    if i == p.len() || (at_start && !ate_slash && rest_literal) {
                        Token::Rest
                    } else {
                        Token::Dirs
                    },
                );
            }
            '*' => {
                // `**` outside .dockerignore is one star: both match the same.
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '[' => {
                let (tok, next) = class(&p, i + 1).map_err(err)?;
                tokens.push(tok);
                i = next;
            }
            '\\' => {
                let c = *p.get(i + 1).ok_or_else(|| err("trailing backslash"))?;
                tokens.push(Token::Char(c));
                i += 2;
            }
            c => {
                tokens.push(Token::Char(c));
                i += 1;
            }
        }
    }
    Ok(Glob { tokens })
}

/// Parses a class whose `[` is just before `i`; returns it and the index after its `]`.
fn class(p: &[char], mut i: usize) -> Result<(Token, usize), &'static str> {
    let negated = matches!(p.get(i), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            (hi, i) = class_char(p, i + 1)?;
        }
        ranges.push((lo, hi));
    }
}

/// One character of a class at `i` (`\` escapes); `-` and `]` are not allowed there.
fn class_char(p: &[char], i: usize) -> Result<(char, usize), &'static str> {
    match p.get(i) {
        None => Err("unterminated character class"),
        Some('-' | ']') => Err("a character class needs a character before '-' or ']'"),
        Some('\\') => match p.get(i + 1) {
            Some(&c) => Ok((c, i + 2)),
            None => Err("unterminated character class"),
        },
        Some(&c) => Ok((c, i + 1)),
    }
}

/// Go's `filepath.Match` of one path segment (COPY sources); a malformed pattern matches
/// nothing.
pub fn glob(pattern: &str, name: &str) -> bool {
    Glob::new(pattern).is_ok_and(|g| g.matches(name))
}

/// Whether `s` contains glob metacharacters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Matches pattern segments against path segments, each pair with [`glob`]; a `**` segment
/// matches zero or more segments.
pub fn match_segments(pat: &[String], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=segs.len()).any(|skip| match_segments(rest, &segs[skip..]))
        }
        Some((p, rest)) => match segs.split_first() {
            Some((s, srest)) => glob(p, s) && match_segments(rest, srest),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore_glob(p: &str, s: &str) -> bool {
        Glob::dockerignore(p)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(s)
    }

    #[test]
    fn globs() {
        assert!(glob("*.txt", "a.txt"));
        assert!(glob("*.rs", "main.rs"));
        assert!(!glob("*.txt", "a.txt.bak"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("?", ""));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[^a-c]x", "bx"));
        assert!(glob("[!a-c]x", "dx"));
        assert!(glob("\\*", "*"));
        assert!(glob("a\\*", "a*"));
        assert!(!glob("a\\*", "ab"));
        assert!(!glob("[abc", "a"));
        assert!(!glob("*", "a/b"), "* stops at /");
        assert!(!glob("a?b", "a/b"), "? is never /");
    }

    /// The two copies this replaces disagreed here: the CLI's ended a class at its first `]`
    /// and took `\` inside it literally; the daemon's took a leading `]` as a member. Go (and
    /// so Docker) escapes inside classes, and refuses what it cannot read.
    #[test]
    fn classes_as_go_reads_them() {
        assert!(glob("[\\]]", "]"), "an escaped ] is a member");
        assert!(glob("[\\]a]x", "ax"));
        assert!(
            glob("[a\\-z]", "-"),
            "an escaped - is a member, not a range"
        );
        assert!(!glob("[a\\-z]", "m"));
        assert!(glob("[a-cx-z]", "y"));
        assert!(glob("[abc]", "b"));
        assert!(!glob("[abc]", "d"));
        assert!(glob("[^abc]", "d"));
        assert!(glob("[!abc]", "d"));
        assert!(!glob("[!abc]", "a"));
        assert!(glob("[é-ë]", "ê"), "ranges are by character, not byte");
        assert!(!glob("[^a]", "/"), "a class never matches /");
        for bad in [
            "[]a]", "[]", "[^]", "[a-]", "[-a]", "[a", "[a-b-c]", "x\\", "[\\",
        ] {
            let e = Glob::new(bad).expect_err(bad);
            assert_eq!(e.pattern, bad);
            assert!(e.to_string().starts_with("syntax error in pattern"), "{e}");
            assert!(
                !glob(bad, "a"),
                "a malformed pattern matches nothing: {bad}"
            );
        }
    }

    #[test]
    fn double_star_as_moby_reads_it() {
        assert!(ignore_glob("**", "a/b/c"));
        assert!(ignore_glob("**/x", "x"));
        assert!(ignore_glob("**/x", "a/b/x"));
        assert!(!ignore_glob("**/x", "ax"));
        assert!(ignore_glob("a/**/b", "a/b"));
        assert!(ignore_glob("a/**/b", "a/x/y/b"));
        assert!(!ignore_glob("a/**/b", "a/xb"));
        assert!(ignore_glob("a/**", "a/x/y"));
        assert!(!ignore_glob("a/**", "a"), "a/** is what is under a");
        assert!(ignore_glob("a**", "abc/d"), "a trailing ** is a prefix");
        assert!(
            ignore_glob("**.log", "x/ab.log"),
            "a leading ** is a suffix"
        );
        assert!(ignore_glob("**/*.tmp", "x.tmp"));
        assert!(ignore_glob("**/*.tmp", "d/e/x.tmp"));
        assert!(!ignore_glob("**/*.tmp", "d/x.tmp/y"));
        assert!(ignore_glob("a**b", "a/x/b"));
        assert!(ignore_glob("a**b", "ab"));
        assert!(!glob("a**b", "a/b"), "outside .dockerignore ** is *");
        assert!(glob("a**b", "axxb"));
    }

    #[test]
    fn segments() {
        let pat = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        assert!(match_segments(&pat("a/*/c"), &["a", "b", "c"]));
        assert!(match_segments(&pat("**/c"), &["c"]));
        assert!(match_segments(&pat("**/c"), &["a", "b", "c"]));
        assert!(!match_segments(&pat("a/*"), &["a"]));
        assert!(has_glob("a[b]") && has_glob("*") && !has_glob("a/b"));
    }
}
