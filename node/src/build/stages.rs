//! A Dockerfile's shape: meta ARGs and stages, `FROM image [AS name]`, ARG declarations,
//! and the state a stage carries from step to step.

use berth_api::models::ContainerConfig;

use super::expand::{expand_word, expand_words, split_raw, Vars};
use super::parser::Instruction;
use super::BuildError;

/// One `FROM` and the instructions after it.
pub(super) struct Stage {
    pub(super) from: Instruction,
    pub(super) steps: Vec<Instruction>,
}

/// The evolving state of a stage.
pub(super) struct State {
    /// Image id of the last step; `None` on scratch before any step.
    pub(super) image: Option<String>,
    pub(super) config: ContainerConfig,
    /// ARG values in scope, in declaration order.
    pub(super) args: Vec<(String, String)>,
    pub(super) cmd_set: bool,
    pub(super) author: String,
    /// Whether steps may still come from the cache.
    pub(super) use_cache: bool,
}

impl State {
    pub(super) fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.args.clone();
        for e in &self.config.env {
            let (k, val) = e.split_once('=').unwrap_or((e, ""));
            v.push((k.to_owned(), val.to_owned()));
        }
        v
    }
}

/// Splits the instructions into meta ARGs and stages.
pub(super) fn stages(
    instrs: Vec<Instruction>,
) -> Result<(Vec<Instruction>, Vec<Stage>), BuildError> {
    let mut meta = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for i in instrs {
        if i.keyword == "FROM" {
            stages.push(Stage {
                from: i,
                steps: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.steps.push(i);
        } else if i.keyword == "ARG" {
            meta.push(i);
        } else {
            return Err(BuildError::Invalid(format!(
                "dockerfile parse error line {}: {} before the first FROM: only ARG may come first",
                i.line, i.keyword
            )));
        }
    }
    if stages.is_empty() {
        return Err(BuildError::Invalid(
            "the Dockerfile has no FROM instruction (is it empty?)".into(),
        ));
    }
    Ok((meta, stages))
}

/// `FROM image [AS name]`.
pub(super) fn from_parts(
    i: &Instruction,
    vars: &dyn Vars,
    esc: char,
) -> Result<(String, Option<String>), BuildError> {
    let words = expand_words(&i.args, esc, vars)?;
    match words.as_slice() {
        [image] => Ok((image.clone(), None)),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !valid {
                return Err(BuildError::Invalid(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                )));
            }
            Ok((image.clone(), Some(name.to_ascii_lowercase())))
        }
        _ => Err(BuildError::Invalid(format!(
            "FROM requires either one or three arguments: FROM {}",
            i.args
        ))),
    }
}

/// Parses the `name[=default]` words of an ARG.
pub(super) fn arg_decls(
    args: &str,
    esc: char,
    vars: &dyn Vars,
) -> Result<Vec<(String, Option<String>)>, BuildError> {
    let words = split_raw(args, esc)?;
    if words.is_empty() {
        return Err(BuildError::Invalid(
            "ARG requires exactly one argument".into(),
        ));
    }
    let mut out = Vec::new();
    for w in words {
        let (name, default) = match w.split_once('=') {
            Some((n, d)) => (n.to_owned(), Some(expand_word(d, esc, vars)?)),
            None => (w.clone(), None),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(BuildError::Invalid(format!(
                "ARG names can not be blank or contain anything but letters, digits and _: {w:?}"
            )));
        }
        out.push((name, default));
    }
    Ok(out)
}

pub(super) fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Docker's predefined proxy args never warn as unused.
pub(super) fn is_predefined_arg(k: &str) -> bool {
    matches!(
        k.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

#[cfg(test)]
mod tests {
    use super::super::parser;
    use super::*;

    fn instrs(text: &str) -> Vec<Instruction> {
        parser::parse(text).expect("parse").instructions
    }

    #[test]
    fn stages_and_meta_args() {
        let (meta, st) = stages(instrs(
            "ARG V=1\nFROM busybox:${V} AS build\nRUN x\nFROM scratch\nCOPY --from=build /a /a\n",
        ))
        .expect("stages");
        assert_eq!(meta.len(), 1);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].steps.len(), 1);
        let vars = vec![("V".to_owned(), "2".to_owned())];
        assert_eq!(
            from_parts(&st[0].from, &vars, '\\').expect("from"),
            ("busybox:2".into(), Some("build".into()))
        );
        assert!(stages(instrs("RUN x\nFROM y\n")).is_err());
        assert!(stages(instrs("ARG x\n")).is_err());
        let bad = instrs("FROM a AS 1bad\n");
        assert!(from_parts(&bad[0], &Vec::new(), '\\').is_err());
        let bad = instrs("FROM a b\n");
        assert!(from_parts(&bad[0], &Vec::new(), '\\').is_err());
    }

    #[test]
    fn arg_declarations() {
        let vars = vec![("X".to_owned(), "x".to_owned())];
        assert_eq!(
            arg_decls("A B=$X C=\"q r\"", '\\', &vars).expect("args"),
            vec![
                ("A".into(), None),
                ("B".into(), Some("x".into())),
                ("C".into(), Some("q r".into()))
            ]
        );
        assert!(arg_decls("", '\\', &vars).is_err());
        assert!(arg_decls("=x", '\\', &vars).is_err());
        assert!(arg_decls("a-b", '\\', &vars).is_err());
    }

    #[test]
    fn env_replacement() {
        let mut env = vec!["A=1".to_owned(), "PATH=/bin".to_owned()];
        set_env(&mut env, "A", "2");
        set_env(&mut env, "B", "x y");
        assert_eq!(env, vec!["A=2", "PATH=/bin", "B=x y"]);
    }
}
