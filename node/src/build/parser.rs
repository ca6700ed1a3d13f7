//! The Dockerfile parser: parser directives (`# escape=`), comments, line continuations, and
//! each instruction split into its keyword, `--flags` and raw arguments.
//!
//! ```text
//!  text ─► directives (escape) ─► logical lines (continuations joined, comments dropped)
//!       ─► Instruction { keyword, flags, args, original, line }
//! ```
//! What an instruction's arguments mean (JSON form, key=value pairs, variables) is decided
//! when it is dispatched; the parser only rejects what no instruction could accept.

use super::BuildError;

/// The instructions a Dockerfile may contain.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions whose arguments may start with `--name=value` flags.
const WITH_FLAGS: &[&str] = &["ADD", "COPY", "FROM", "RUN", "HEALTHCHECK"];

#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Upper-case keyword (`RUN`).
    pub keyword: String,
    /// `--name=value` flags in order (`--from=build`); a bare `--flag` has an empty value.
    pub flags: Vec<(String, String)>,
    /// The arguments after the keyword and flags, continuations joined, not yet expanded.
    pub args: String,
    /// The instruction as written (continuations joined), for `Step N/M : ...`.
    pub original: String,
    /// 1-based line where the instruction starts.
    pub line: usize,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

fn parse_error(line: usize, msg: impl std::fmt::Display) -> BuildError {
    BuildError::Invalid(format!("dockerfile parse error line {line}: {msg}"))
}

/// Reads the parser directives at the top of the file; returns the escape character and the
/// number of lines they took.
fn directives(lines: &[&str]) -> Result<(char, usize), BuildError> {
    let mut escape = '\\';
    let mut seen = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let t = raw.trim();
        let Some(body) = t.strip_prefix('#') else {
            return Ok((escape, i));
        };
        let Some((k, v)) = body.split_once('=') else {
            return Ok((escape, i));
        };
        let key = k.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Ok((escape, i));
        }
        if seen.contains(&key) {
            return Err(parse_error(
                i + 1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        if key == "escape" {
            escape = match v.trim() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(parse_error(
                        i + 1,
                        format!("invalid escape token '{other}' does not match ` or \\"),
                    ))
                }
            };
        }
        seen.push(key);
    }
    Ok((escape, lines.len()))
}

/// Whether `line` (right-trimmed) ends with the escape character, i.e. continues.
fn continues(line: &str, escape: char) -> Option<&str> {
    line.trim_end().strip_suffix(escape)
}

pub fn parse(text: &str) -> Result<Dockerfile, BuildError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let (escape, start) = directives(&lines)?;
    let mut out = Vec::new();
    let mut i = start;
    while i < lines.len() {
        let first = lines[i].trim_start();
        let line_no = i + 1;
        i += 1;
        if first.trim().is_empty() || first.starts_with('#') {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first;
        loop {
            match continues(cur, escape) {
                Some(head) => {
                    logical.push_str(head);
                    // Skip comment and empty lines inside a continuation.
                    while i < lines.len() {
                        let t = lines[i].trim_start();
                        if t.starts_with('#') || t.trim().is_empty() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i].trim_start();
                    i += 1;
                }
                None => {
                    logical.push_str(cur);
                    break;
                }
            }
        }
        out.push(instruction(logical.trim(), line_no)?);
    }
    Ok(Dockerfile {
        escape,
        instructions: out,
    })
}

fn instruction(text: &str, line: usize) -> Result<Instruction, BuildError> {
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(parse_error(line, format!("unknown instruction: {word}")));
    }
    let mut rest = rest.trim_start();
    let mut flags = Vec::new();
    if WITH_FLAGS.contains(&keyword.as_str()) {
        while let Some(f) = rest.strip_prefix("--") {
            let (tok, after) = f.split_once(char::is_whitespace).unwrap_or((f, ""));
            if tok.is_empty() {
                break;
            }
            let (k, v) = tok.split_once('=').unwrap_or((tok, ""));
            flags.push((k.to_owned(), v.to_owned()));
            rest = after.trim_start();
        }
    }
    Ok(Instruction {
        keyword,
        flags,
        args: rest.trim().to_owned(),
        original: text.to_owned(),
        line,
    })
}

/// The JSON (exec) form of RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD and VOLUME, if `args` is a
/// JSON array of strings.
pub fn json_form(args: &str) -> Option<Vec<String>> {
    let t = args.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(d: &Dockerfile) -> Vec<(&str, &str)> {
        d.instructions
            .iter()
            .map(|i| (i.keyword.as_str(), i.args.as_str()))
            .collect()
    }

    #[test]
    fn continuations_comments_and_case() {
        let d = parse(
            "# a comment\nFROM busybox AS base\n\nrun echo a \\\n  # inside\n\n   && echo b\nCOPY --from=base --chown=1:2 /a /b\nCMD [\"sh\"]\n",
        )
        .expect("parse");
        assert_eq!(
            kw(&d),
            vec![
                ("FROM", "busybox AS base"),
                ("RUN", "echo a && echo b"),
                ("COPY", "/a /b"),
                ("CMD", "[\"sh\"]"),
            ]
        );
        assert_eq!(d.instructions[1].line, 4);
        assert_eq!(d.instructions[1].original, "run echo a && echo b");
        assert_eq!(d.instructions[2].flag("from"), Some("base"));
        assert_eq!(d.instructions[2].flag("chown"), Some("1:2"));
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn escape_directive() {
        let d = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n").expect("parse");
        assert_eq!(d.escape, '`');
        assert_eq!(kw(&d)[1], ("RUN", "dir c:\\ && echo"));
        // A directive after an instruction is just a comment.
        let d = parse("FROM x\n# escape=`\nRUN a \\\n b").expect("parse");
        assert_eq!(kw(&d)[1], ("RUN", "a b"));
        assert!(parse("# escape=x\nFROM x").is_err());
        assert!(parse("# escape=`\n# escape=\\\nFROM x").is_err());
    }

    #[test]
    fn unknown_instruction_names_the_line() {
        let e = parse("FROM x\nFOO bar\n").expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: unknown instruction: FOO"
        );
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            json_form(r#"["a", "b c"]"#),
            Some(vec!["a".to_owned(), "b c".to_owned()])
        );
        assert_eq!(json_form("[not json"), None);
        assert_eq!(json_form("echo [x]"), None);
        assert_eq!(json_form("[1, 2]"), None);
    }

    #[test]
    fn trailing_continuation_at_eof() {
        let d = parse("FROM x\nRUN a \\").expect("parse");
        assert_eq!(kw(&d)[1], ("RUN", "a"));
    }
}
