//! The steps that change files: WORKDIR (the directory made) and COPY/ADD (from the
//! context, an earlier stage or image, or a URL), each a layer made in a staging overlay.

use std::path::PathBuf;

use super::cache;
use super::copy::{self, Attrs, CopyPlan, Staging};
use super::expand::{expand_word, expand_words, Vars};
use super::fetch;
use super::parser::{json_form, Instruction};
use super::run::Build;
use super::stages::State;
use super::BuildError;
use crate::fsroot::Root;
use crate::image::apply_changes;
use berth_common::errors::cause_chain;

impl Build<'_> {
    pub(super) async fn workdir(
        &mut self,
        st: &mut State,
        i: &Instruction,
    ) -> Result<(), BuildError> {
        let w = expand_word(&i.args, self.esc, &st.vars())?;
        if w.trim().is_empty() {
            return Err(BuildError::Invalid(
                "WORKDIR requires exactly one argument".into(),
            ));
        }
        apply_changes(&mut st.config, &[format!("WORKDIR {w}")])?;
        let dir = st.config.working_dir.clone();
        let cfg = serde_json::to_string(&st.config).unwrap_or_default();
        let key = cache::key(st.image.as_deref(), &format!("WORKDIR {dir}\n{cfg}"));
        let created_by = format!("#(nop) WORKDIR {dir}");
        if self
            .cached(st, &key, &format!("/bin/sh -c {created_by}"))
            .await?
        {
            return Ok(());
        }
        self.commit_staged(st, key, created_by, move |root| {
            copy::make_dir_in_root(root, &dir)
        })
        .await
    }

    pub(super) async fn copy(&mut self, st: &mut State, i: &Instruction) -> Result<(), BuildError> {
        let esc = self.esc;
        let vars = st.vars();
        let add = i.keyword == "ADD";
        let words = copy_words(i, esc, &vars)?;
        let (dest_word, srcs) = words.split_last().expect("at least two words");
        let dest = copy_dest(dest_word, &st.config.working_dir);
        let chmod = i
            .flag("chmod")
            .filter(|s| !s.is_empty())
            .map(copy::parse_chmod)
            .transpose()?;
        let chown = i
            .flag("chown")
            .map(|s| expand_word(s, esc, &vars))
            .transpose()?;
        let (urls, locals): (Vec<String>, Vec<String>) =
            srcs.iter().cloned().partition(|s| add && fetch::is_url(s));
        // The root the sources come from: the context, or another stage/image mounted.
        let from = i
            .flag("from")
            .map(|f| expand_word(f, esc, &vars))
            .transpose()?;
        let (root, _from_stage, from_id) = self.copy_source_root(from.as_deref()).await?;
        let (l2, in_ctx) = (locals.clone(), from.is_none());
        let (src_root, sources, sum) = tokio::task::spawn_blocking(move || {
            let r = Root::open(&root)?;
            let s = copy::resolve_sources(&r, &l2, in_ctx)?;
            // By content, from another stage too: the history line it goes into is what
            // --cache-from compares, across daemons.
            let sum = copy::checksum(&r, &s)?;
            Ok::<_, BuildError>((r, s, sum))
        })
        .await
        .map_err(|e| BuildError::Internal(format!("copy task: {e}")))??;
        let mut downloads = Vec::new();
        let mut url_sums = Vec::new();
        for u in &urls {
            let bytes = fetch::get(self.b.inner.images.registries(), u).await?;
            url_sums.push(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
            downloads.push((fetch::file_name(u), bytes));
        }
        let source_key = match &from_id {
            Some(id) => format!("from {id} {}", locals.join(" ")),
            None => format!("context {sum}"),
        };
        let key = cache::key(
            st.image.as_deref(),
            &format!(
                "{} {source_key} urls {} -> {dest} chown={:?} chmod={:?}",
                i.keyword,
                url_sums.join(","),
                chown,
                chmod
            ),
        );
        let what = if from_id.is_some() { "multi" } else { "file" };
        let content = if url_sums.is_empty() {
            sum
        } else {
            let all = format!("{sum} {}", url_sums.join(" "));
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(all.as_bytes()))
        };
        let created_by = format!("#(nop) {} {what}:{content} in {dest} ", i.keyword);
        if self
            .cached(st, &key, &format!("/bin/sh -c {created_by}"))
            .await?
        {
            return Ok(());
        }
        let extract = add;
        self.commit_staged(st, key, created_by, move |rootfs| {
            let attrs = copy_attrs(rootfs, chown.as_deref(), chmod)?;
            let plan = CopyPlan {
                dest,
                sources: &sources,
                attrs,
                extract,
                downloads,
            };
            copy::copy_into(rootfs, &src_root, &plan)?;
            Ok(true)
        })
        .await
    }

    /// The root `COPY` reads from: the context, or (`--from`) an earlier stage or an image
    /// mounted read-only in a staging overlay, kept mounted while the guard lives; with the
    /// image id it came from.
    async fn copy_source_root(
        &self,
        from: Option<&str>,
    ) -> Result<(PathBuf, Option<Staging>, Option<String>), BuildError> {
        let Some(f) = from else {
            return Ok((self.ctx.dir.clone(), None, None));
        };
        let id = self.source_image(f)?;
        let img = self
            .b
            .inner
            .images
            .resolve(&id)
            .map_err(|e| BuildError::Internal(cause_chain(&e)))?;
        let dir = self.b.tmp_file("from");
        let stage = tokio::task::spawn_blocking(move || Staging::mount(dir, &img.layer_dirs))
            .await
            .map_err(|e| BuildError::Internal(format!("mount task: {e}")))??;
        Ok((stage.merged(), Some(stage), Some(id)))
    }

    /// The image id `COPY --from=` names: an earlier stage (by name or index) or an image.
    fn source_image(&self, f: &str) -> Result<String, BuildError> {
        let lower = f.to_ascii_lowercase();
        if let Some((_, img)) = self.done.iter().find(|(n, _)| n.as_deref() == Some(&lower)) {
            return img
                .clone()
                .ok_or_else(|| BuildError::Invalid(format!("stage {f} is empty (FROM scratch)")));
        }
        if let Ok(n) = f.parse::<usize>() {
            return match self.done.get(n) {
                Some((_, Some(id))) => Ok(id.clone()),
                Some((_, None)) => Err(BuildError::Invalid(format!(
                    "stage {f} is empty (FROM scratch)"
                ))),
                None => Err(BuildError::NotFound(format!(
                    "invalid from flag value {f}: refers to a stage that is not defined yet"
                ))),
            };
        }
        self.b.inner.images.resolve(f).map(|i| i.id).map_err(|_| {
            BuildError::NotFound(format!(
                "invalid from flag value {f}: no build stage or image by that name"
            ))
        })
    }
}

/// Where a COPY/ADD goes: `dest_word` made absolute against the working directory, keeping
/// a trailing `/` (or `.`) that says "into this directory".
fn copy_dest(dest_word: &str, working_dir: &str) -> String {
    let mut dest = if dest_word.starts_with('/') {
        dest_word.to_owned()
    } else {
        let wd = if working_dir.is_empty() {
            "/"
        } else {
            working_dir
        };
        format!("{}/{dest_word}", wd.trim_end_matches('/'))
    };
    if (dest_word.ends_with('/') || dest_word == "." || dest_word.ends_with("/."))
        && !dest.ends_with('/')
    {
        dest.push('/');
    }
    dest
}

/// Owner and mode of what COPY/ADD writes: `--chown` resolved against the image's own
/// passwd and group files, root otherwise.
fn copy_attrs(rootfs: &Root, chown: Option<&str>, chmod: Option<u32>) -> Result<Attrs, BuildError> {
    Ok(match chown {
        Some(spec) if !spec.is_empty() => {
            let ids = crate::container::user::resolve(rootfs, spec, &[])
                .map_err(|e| BuildError::Invalid(format!("--chown={spec}: {e}")))?;
            Attrs {
                uid: ids.uid,
                gid: ids.gid,
                chmod,
            }
        }
        _ => Attrs {
            uid: 0,
            gid: 0,
            chmod,
        },
    })
}

/// The words of a COPY/ADD (exec or shell form, expanded), after checking its flags; at
/// least a source and a destination.
fn copy_words(i: &Instruction, esc: char, vars: &dyn Vars) -> Result<Vec<String>, BuildError> {
    let add = i.keyword == "ADD";
    for (k, _) in &i.flags {
        let ok = matches!(k.as_str(), "chown" | "chmod" | "from" | "link") && (k != "from" || !add);
        if !ok {
            return Err(BuildError::Invalid(format!(
                "unknown flag: --{k} for {}",
                i.keyword
            )));
        }
    }
    let words = match json_form(&i.args) {
        Some(list) => list
            .iter()
            .map(|w| expand_word(w, esc, vars))
            .collect::<Result<Vec<_>, _>>()?,
        None => expand_words(&i.args, esc, vars)?,
    };
    if words.len() < 2 {
        return Err(BuildError::Invalid(format!(
            "{} requires at least two arguments, but got {}",
            i.keyword,
            words.len()
        )));
    }
    Ok(words)
}
