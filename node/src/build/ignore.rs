//! `.dockerignore` rules and the glob matching shared with COPY/ADD sources.
//!
//! Patterns are cleaned (`./a//b/` → `a/b`, a leading `/` dropped); `*`, `?` and `[...]` match
//! within one path segment, `**` any number of segments; `!pattern` re-includes. A path is
//! excluded when the last pattern matching it, or one of its parent directories, is not a
//! `!` exception.

/// One `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<(bool, Vec<String>)>,
}

/// `a/./b//c/` → `a/b/c`; `..` pops a segment (never above the root).
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

impl IgnoreRules {
    pub fn parse(text: &str) -> IgnoreRules {
        let mut rules = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (exception, pat) = match t.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, t),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            rules.push((exception, pat.split('/').map(str::to_owned).collect()));
        }
        IgnoreRules { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the context-relative path `rel` (no leading `/`) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for (exception, pat) in &self.rules {
            let hit = (1..=segs.len()).any(|n| match_segments(pat, &segs[..n]));
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }

    /// Whether some exception rule could re-include something below the directory `rel`.
    pub fn may_include_below(&self, rel: &str) -> bool {
        let depth = rel.split('/').filter(|s| !s.is_empty()).count();
        self.rules.iter().any(|(exception, pat)| {
            *exception && (pat.len() > depth || pat.iter().any(|s| s == "**"))
        })
    }
}

/// Matches pattern segments against path segments; `**` matches zero or more segments.
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

/// Go's `filepath.Match` for one segment: `*`, `?`, `[a-z]`, `[^x]`/`[!x]`, `\` escapes.
pub fn glob(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some(&c) = t.first() else { return false };
            match class(&p[1..], c) {
                Some((ok, used)) => ok && glob_at(&p[1 + used..], &t[1..]),
                None => false,
            }
        }
        Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && glob_at(&p[2..], &t[1..]),
        Some(&pc) => t.first() == Some(&pc) && glob_at(&p[1..], &t[1..]),
    }
}

/// A `[...]` class after the `[`: whether `c` matches and how many chars the class used.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let mut lo = p[i];
        if lo == '\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        let mut hi = lo;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hi = p[i + 2];
            i += 2;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
        i += 1;
    }
    None
}

/// Whether `s` contains glob metacharacters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.bak"));
        assert!(glob("a?c", "abc"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[^a-c]x", "bx"));
        assert!(glob("[!a-c]x", "dx"));
        assert!(glob("\\*", "*"));
        assert!(!glob("[abc", "a"));
    }

    #[test]
    fn dockerignore_rules() {
        let r = IgnoreRules::parse(
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
        assert!(!IgnoreRules::parse("a\n").may_include_below("a"));
    }

    #[test]
    fn exceptions_in_order() {
        let r = IgnoreRules::parse("*\n!keep\n!src\nsrc/gen\n");
        assert!(r.excluded("other"));
        assert!(!r.excluded("keep"));
        assert!(!r.excluded("src/a.rs"));
        assert!(r.excluded("src/gen/x"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/../x"), "x");
        assert_eq!(clean("."), "");
    }
}
