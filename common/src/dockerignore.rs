//! `.dockerignore`: which paths of a build context are left out. The CLI applies it when it
//! packs a context directory; the daemon applies it again when it unpacks an uploaded context
//! (as Docker's classic builder does), so both must read the file the same way.
//!
//! ```text
//!  .dockerignore ─► IgnoreRules::parse ─► [(exception?, Glob)]  (moby's ReadAll + New)
//!  "a/b/c" ─► excluded? ─► each rule against "a", "a/b", "a/b/c": the last rule that
//!                          matches wins, `!` rules re-include
//! ```
//!
//! Reading a line, as moby does: a line starting with `#` is a comment; surrounding white
//! space is dropped; `!` makes an exception; the rest is cleaned like Go's `filepath.Clean`
//! (`./a//b/` → `a/b`, `a/../b` → `b`) and loses a leading `/`. Patterns are [`Glob`]s with
//! `**`; a path is excluded when the last rule matching it or one of its parent directories
//! is not an exception. A malformed pattern, or a `!` alone, is an error, as in Docker.

use std::fmt;

use crate::pattern::{Glob, PatternError};

/// A `.dockerignore` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreError {
    /// A line whose pattern is malformed.
    Pattern { line: usize, error: PatternError },
    /// A line that is only `!`.
    EmptyException { line: usize },
}

impl fmt::Display for IgnoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreError::Pattern { line, error } => write!(f, ".dockerignore line {line}: {error}"),
            IgnoreError::EmptyException { line } => {
                write!(
                    f,
                    ".dockerignore line {line}: illegal exclusion pattern: \"!\""
                )
            }
        }
    }
}

impl std::error::Error for IgnoreError {}

#[derive(Debug, Clone)]
struct Rule {
    exception: bool,
    glob: Glob,
    /// Path segments the pattern spans, and whether a `**` lets it span more.
    segments: usize,
    any_depth: bool,
}

/// One parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<IgnoreRules, IgnoreError> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = if n == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            if pat.is_empty() {
                return Err(IgnoreError::EmptyException { line: n + 1 });
            }
            let cleaned = go_clean(pat);
            let pat = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest,
                _ => &cleaned,
            };
            let glob = Glob::dockerignore(pat)
                .map_err(|error| IgnoreError::Pattern { line: n + 1, error })?;
            rules.push(Rule {
                exception,
                glob,
                segments: pat.split('/').count(),
                any_depth: pat.contains("**"),
            });
        }
        Ok(IgnoreRules { rules })
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the context-relative path `rel` (`/`-separated, no leading `/`) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let segs: Vec<&str> = rel
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        // The path itself and each of its parent directories.
        let paths: Vec<String> = (1..=segs.len()).map(|n| segs[..n].join("/")).collect();
        let mut excluded = false;
        for r in &self.rules {
            // A rule that could not change the answer is not evaluated (moby does the same).
            if r.exception != excluded {
                continue;
            }
            if paths.iter().any(|p| r.glob.matches(p)) {
                excluded = !r.exception;
            }
        }
        excluded
    }

    /// Whether an exception could re-include something below the directory `rel`: when it
    /// cannot, an excluded directory can be skipped whole.
    pub fn may_include_below(&self, rel: &str) -> bool {
        let depth = rel.split('/').filter(|s| !s.is_empty()).count();
        self.rules
            .iter()
            .any(|r| r.exception && (r.segments > depth || r.any_depth))
    }
}

/// Go's `filepath.Clean` on a `/`-separated path: empty and `.` segments go, `..` removes the
/// segment before it (at the root it is dropped; at the start of a relative path it stays).
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// A context-relative path made plain: `a/./b//c/` → `a/b/c`; `..` removes the segment before
/// it and never climbs above the context (`/../x` → `x`, `.` → ``).
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dockerignore_rules() {
        let r = rules(
            "# comment\n*.log\n/build\nsecret/**\n!secret/keep.txt\n**/*.tmp\n./docs//old/\n",
        );
        assert!(r.excluded("a.log"));
        assert!(!r.excluded("sub/a.log"), "* does not cross directories");
        assert!(r.excluded("build"));
        assert!(
            r.excluded("build/x/y"),
            "a parent directory's match excludes"
        );
        assert!(r.excluded("secret/k"));
        assert!(!r.excluded("secret/keep.txt"));
        assert!(r.excluded("deep/er/x.tmp"));
        assert!(r.excluded("x.tmp"));
        assert!(r.excluded("docs/old/a"));
        assert!(!r.excluded("docs/new"));
        assert!(!r.excluded("main.rs"));
        assert!(r.may_include_below("secret"));
        assert!(!rules("a\n").may_include_below("a"));
    }

    #[test]
    fn cli_rules() {
        let r = rules("# comment\n*.log\nbuild/\n!build/keep.txt\n**/tmp\n/secret?\n");
        assert!(r.excluded("a.log"));
        assert!(!r.excluded("dir/a.log"));
        assert!(r.excluded("build/out.bin"));
        assert!(!r.excluded("build/keep.txt"));
        assert!(r.excluded("x/y/tmp"));
        assert!(r.excluded("tmp/file"));
        assert!(r.excluded("secret1"));
        assert!(!r.excluded("src/main.rs"));
    }

    #[test]
    fn exceptions_in_order() {
        let r = rules("*\n!keep\n!src\nsrc/gen\n");
        assert!(r.excluded("other"));
        assert!(!r.excluded("keep"));
        assert!(!r.excluded("src/a.rs"));
        assert!(r.excluded("src/gen/x"));
        assert!(
            !r.may_include_below("other"),
            "no exception reaches below other"
        );
        let r = rules("deep\n!deep/a/b\n");
        assert!(r.may_include_below("deep/a"));
        assert!(!r.may_include_below("deep/a/b/c"));
        assert!(!rules("x\n!y/**\n").is_empty());
        assert!(rules("# only a comment\n\n").is_empty());
    }

    /// The CLI and the daemon each had a copy, and they disagreed on `[...]`: the same
    /// context then held different files depending on who packed it.
    #[test]
    fn character_classes() {
        let r = rules("[\\]]x\nlog[0-9]\n[!a-c]*.bin\nf[^o]o\n");
        assert!(r.excluded("]x"), "escaped ] inside a class");
        assert!(r.excluded("log7"));
        assert!(!r.excluded("loga"));
        assert!(r.excluded("d.bin"));
        assert!(!r.excluded("b.bin"));
        assert!(r.excluded("fxo"));
        assert!(!r.excluded("foo"));
        assert!(!r.excluded("f/o"), "a class is never /");
    }

    #[test]
    fn lines_as_moby_reads_them() {
        let r = rules("\u{feff}a\n  #not-a-comment\n\t b \r\n! c\n../d\nx/../e\n/\n");
        assert!(r.excluded("a"), "a byte order mark is dropped");
        assert!(
            r.excluded("#not-a-comment"),
            "only a # in column one comments"
        );
        assert!(r.excluded("b"));
        assert!(!r.excluded("c"));
        assert!(!r.excluded("d"), "../d names nothing inside the context");
        assert!(r.excluded("e"));
        assert!(!r.excluded("f"), "/ alone names nothing");
    }

    #[test]
    fn bad_files_are_errors() {
        let e = IgnoreRules::parse("ok\n\nbad[\n").expect_err("bad pattern");
        assert!(matches!(e, IgnoreError::Pattern { line: 3, .. }), "{e:?}");
        assert!(e
            .to_string()
            .starts_with(".dockerignore line 3: syntax error"));
        let e = IgnoreRules::parse("a\n!\n").expect_err("a lone !");
        assert_eq!(e, IgnoreError::EmptyException { line: 2 });
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/../x"), "x");
        assert_eq!(clean("."), "");
        assert_eq!(go_clean("./a//b/../c/"), "a/c");
        assert_eq!(go_clean("/../x"), "/x");
        assert_eq!(go_clean("../x/.."), "..");
        assert_eq!(go_clean("a/.."), ".");
        assert_eq!(go_clean("/"), "/");
    }
}
