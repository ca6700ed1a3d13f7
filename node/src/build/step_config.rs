//! The steps that change only an image's config (ENV, LABEL, ARG, MAINTAINER, CMD,
//! ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, EXPOSE, VOLUME, USER, STOPSIGNAL), and the
//! dispatch of every instruction to its step.

use std::collections::BTreeMap;

use serde_json::json;

use super::expand::{expand_word, expand_words, key_values};
use super::parser::{json_form, Instruction};
use super::run::Build;
use super::stages::{arg_decls, set_env, State};
use super::BuildError;
use crate::image::apply_changes;

impl Build<'_> {
    pub(super) async fn dispatch(
        &mut self,
        st: &mut State,
        i: &Instruction,
    ) -> Result<(), BuildError> {
        let esc = self.esc;
        let vars = st.vars();
        match i.keyword.as_str() {
            "RUN" => return self.run(st, i).await,
            "COPY" | "ADD" => return self.copy(st, i).await,
            "FROM" => return Err(BuildError::Invalid("FROM is not allowed here".into())),
            "ENV" => {
                for (k, v) in key_values("ENV", &i.args, esc, &vars)? {
                    set_env(&mut st.config.env, &k, &v);
                }
            }
            "LABEL" => {
                for (k, v) in key_values("LABEL", &i.args, esc, &vars)? {
                    st.config.labels.insert(k, v);
                }
            }
            "ARG" => {
                for (name, default) in arg_decls(&i.args, esc, &vars)? {
                    self.used_args.insert(name.clone());
                    let meta = self
                        .meta_args
                        .iter()
                        .rev()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone());
                    let value = self.build_arg(&name).or(default).or(meta);
                    st.args.retain(|(k, _)| *k != name);
                    if let Some(v) = value {
                        st.args.push((name, v));
                    }
                }
            }
            "MAINTAINER" => st.author = expand_word(&i.args, esc, &vars)?,
            "CMD" | "ENTRYPOINT" | "SHELL" | "HEALTHCHECK" | "ONBUILD" => {
                let cmd = st.config.cmd.clone();
                let line = if i.keyword == "HEALTHCHECK" {
                    let flags: Vec<String> =
                        i.flags.iter().map(|(k, v)| format!("--{k}={v}")).collect();
                    format!("HEALTHCHECK {} {}", flags.join(" "), i.args)
                } else {
                    format!("{} {}", i.keyword, i.args)
                };
                apply_changes(&mut st.config, &[line])?;
                match i.keyword.as_str() {
                    "CMD" => st.cmd_set = true,
                    "ENTRYPOINT" if st.cmd_set => st.config.cmd = cmd,
                    _ => {}
                }
            }
            "EXPOSE" | "VOLUME" | "USER" | "STOPSIGNAL" => {
                let words = match (i.keyword.as_str(), json_form(&i.args)) {
                    ("VOLUME", Some(list)) => list
                        .iter()
                        .map(|w| expand_word(w, esc, &vars))
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => expand_words(&i.args, esc, &vars)?,
                };
                if words.is_empty() {
                    return Err(BuildError::Invalid(format!(
                        "{} requires at least one argument",
                        i.keyword
                    )));
                }
                if i.keyword == "VOLUME" {
                    let v = st.config.volumes.get_or_insert_with(BTreeMap::new);
                    for w in words {
                        if w.trim().is_empty() {
                            return Err(BuildError::Invalid(
                                "VOLUME specified can not be an empty string".into(),
                            ));
                        }
                        v.insert(w, json!({}));
                    }
                } else {
                    apply_changes(
                        &mut st.config,
                        &[format!("{} {}", i.keyword, words.join(" "))],
                    )?;
                }
            }
            "WORKDIR" => return self.workdir(st, i).await,
            other => {
                return Err(BuildError::Invalid(format!("unknown instruction: {other}")));
            }
        }
        let created_by = format!("#(nop)  {} {}", i.keyword, i.args);
        let created_by = if i.keyword == "ARG" {
            let vals: Vec<String> = st.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{created_by} [{}]", vals.join(" "))
        } else {
            created_by
        };
        self.commit_config(st, created_by).await
    }
}
