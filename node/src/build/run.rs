//! Running a build: stages in order, one step at a time, each step a new image (from the
//! cache when its key matches), streaming Docker's messages.
//!
//! ```text
//!  Plan (plan.rs: options checked before the body is read)
//!   └─ run_build: context ─► parse ─► stages (stages.rs: meta ARGs, FROM .. AS, --target)
//!        └─ per step: Step n/M ─► dispatch ─► " ---> <id>"
//!             step_config.rs (config only) · step_files.rs (WORKDIR, COPY, ADD) · step_run.rs (RUN)
//!   └─ tag, aux ID, "Successfully built/tagged"; or errorDetail and nothing tagged
//! ```
//! This file holds what every step shares: the cache lookup, `--cache-from`, and committing
//! a step's config or staged layer as the next image.

use std::collections::HashSet;

use berth_api::backend::BodyStream;
use berth_api::models::ContainerConfig;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::cache;
use super::context::{self, Context};
use super::copy::Staging;
use super::parser::{self, Instruction};
use super::plan::{looks_like_id, registry_auth, Plan};
use super::stages::{arg_decls, from_parts, is_predefined_arg, stages, Stage, State};
use super::{BuildError, Builder};
use crate::fsroot::Root;
use crate::image::reference::Reference;
use crate::image::{ChildImage, ImageChain};
use berth_common::errors::cause_chain;

/// Where build messages go.
pub(super) struct Out {
    pub(super) tx: mpsc::Sender<Value>,
    pub(super) quiet: bool,
}

impl Out {
    pub(super) async fn stream(&self, text: impl Into<String>) {
        if !self.quiet {
            let _ = self.tx.send(json!({ "stream": text.into() })).await;
        }
    }
    pub(super) async fn always(&self, v: Value) {
        let _ = self.tx.send(v).await;
    }
}

pub(super) fn short(id: &str) -> &str {
    let b = id.strip_prefix("sha256:").unwrap_or(id);
    &b[..b.len().min(12)]
}

/// Per-build bookkeeping.
pub(super) struct Build<'a> {
    pub(super) b: &'a Builder,
    pub(super) plan: &'a Plan,
    pub(super) ctx: &'a Context,
    pub(super) out: &'a Out,
    pub(super) esc: char,
    pub(super) step: usize,
    pub(super) total: usize,
    /// Finished stages: (name, image id).
    pub(super) done: Vec<(Option<String>, Option<String>)>,
    /// Build args an ARG declared.
    pub(super) used_args: HashSet<String>,
    pub(super) meta_args: Vec<(String, String)>,
    /// `--cache-from` images found here.
    pub(super) cache_from: Vec<ImageChain>,
    /// `--cache-from` was given: the local cache counts only on the way to those images
    /// (none found: no cache hits at all, as dockerd).
    pub(super) cache_from_given: bool,
}

impl Builder {
    pub(super) async fn run_build(self, plan: Plan, body: BodyStream, tx: mpsc::Sender<Value>) {
        let out = Out {
            tx,
            quiet: plan.opts.quiet,
        };
        if let Err(e) = self.build_all(&plan, body, &out).await {
            let msg = e.message();
            tracing::info!(error = %msg, "build failed");
            let mut detail = json!({ "message": msg });
            if let Some(code) = e.code() {
                detail["code"] = json!(code);
            }
            out.always(json!({ "errorDetail": detail, "error": msg }))
                .await;
        }
    }

    async fn build_all(&self, plan: &Plan, body: BodyStream, out: &Out) -> Result<(), BuildError> {
        let dir = self.tmp_file("context");
        let name = plan.opts.dockerfile.clone();
        let mut reader = SyncIoBridge::new(StreamReader::new(body));
        let ctx = tokio::task::spawn_blocking(move || {
            let res = context::unpack(&mut reader, &dir, &name);
            // Read what is left, so the client gets our answer rather than a broken pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            res
        })
        .await
        .map_err(|e| BuildError::Internal(format!("context task: {e}")))??;
        if let Some(why) = &plan.foreign_platform {
            return Err(BuildError::Invalid(why.clone()));
        }
        let df = parser::parse(&ctx.dockerfile)?;
        let (meta, mut stages) = stages(df.instructions)?;
        if let Some(t) = &plan.opts.target {
            let want = t.to_ascii_lowercase();
            let pos = stages
                .iter()
                .position(|s| {
                    from_parts(&s.from, &Vec::new(), df.escape)
                        .ok()
                        .and_then(|(_, n)| n)
                        .is_some_and(|n| n == want)
                })
                .ok_or_else(|| {
                    BuildError::NotFound(format!("failed to reach build target {t} in Dockerfile"))
                })?;
            stages.truncate(pos + 1);
        }
        let labels = !plan.opts.labels.is_empty();
        let total = meta.len()
            + stages.iter().map(|s| 1 + s.steps.len()).sum::<usize>()
            + usize::from(labels);
        let mut bld = Build {
            b: self,
            plan,
            ctx: &ctx,
            out,
            esc: df.escape,
            step: 0,
            total,
            done: Vec::new(),
            used_args: HashSet::new(),
            meta_args: Vec::new(),
            cache_from: self.cache_sources(&plan.opts.cache_from),
            cache_from_given: !plan.opts.cache_from.is_empty(),
        };
        for m in &meta {
            bld.begin(m).await;
            for (name, default) in arg_decls(&m.args, df.escape, &bld.meta_args.clone())? {
                bld.used_args.insert(name.clone());
                if let Some(v) = bld.build_arg(&name).or(default) {
                    bld.meta_args.push((name, v));
                }
            }
        }
        let n = stages.len();
        let mut last = None;
        for (i, s) in stages.iter().enumerate() {
            let (name, image) = bld.stage(s, labels && i + 1 == n).await?;
            last = image.clone();
            bld.done.push((name, image));
        }
        let Some(id) = last else {
            return Err(BuildError::Invalid(
                "No image was generated. Is your Dockerfile empty?".into(),
            ));
        };
        warn_unused_args(plan, &bld.used_args, out).await;
        self.finish(plan, id, out).await
    }

    /// Tags the final image and reports it (`aux` ID, "Successfully built/tagged").
    async fn finish(&self, plan: &Plan, id: String, out: &Out) -> Result<(), BuildError> {
        let images = self.inner.images.clone();
        let (tid, tags) = (id.clone(), plan.tags.clone());
        tokio::task::spawn_blocking(move || images.tag_all(&tid, &tags))
            .await
            .map_err(|e| BuildError::Internal(format!("tag task: {e}")))??;
        out.always(json!({ "aux": { "ID": id } })).await;
        if out.quiet {
            out.always(json!({ "stream": format!("{id}\n") })).await;
        }
        out.stream(format!("Successfully built {}\n", short(&id)))
            .await;
        for t in &plan.tags {
            out.stream(format!("Successfully tagged {}\n", t.familiar()))
                .await;
        }
        Ok(())
    }
}

/// Docker's warning for `--build-arg`s no ARG declared (the predefined proxy args excepted).
async fn warn_unused_args(plan: &Plan, used: &HashSet<String>, out: &Out) {
    let mut unused: Vec<&String> = plan
        .opts
        .build_args
        .keys()
        .filter(|k| !used.contains(*k) && !is_predefined_arg(k))
        .collect();
    unused.sort();
    if !unused.is_empty() {
        let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        out.stream(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            list.join(" ")
        ))
        .await;
    }
}

impl Builder {
    /// The `--cache-from` images; one that is not here is skipped, as Docker does.
    fn cache_sources(&self, names: &[String]) -> Vec<ImageChain> {
        names
            .iter()
            .filter_map(|n| match self.inner.images.image_chain(n) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(image = %n, error = %e, "cache-from image skipped");
                    None
                }
            })
            .collect()
    }
}

impl Build<'_> {
    pub(super) fn build_arg(&self, name: &str) -> Option<String> {
        match self.plan.opts.build_args.get(name) {
            Some(Some(v)) => Some(v.clone()),
            Some(None) => std::env::var(name).ok(),
            None => None,
        }
    }

    async fn begin(&mut self, i: &Instruction) {
        self.step += 1;
        self.out
            .stream(format!(
                "Step {}/{} : {}\n",
                self.step, self.total, i.original
            ))
            .await;
    }

    /// Runs one stage; returns its name and final image.
    async fn stage(
        &mut self,
        s: &Stage,
        with_labels: bool,
    ) -> Result<(Option<String>, Option<String>), BuildError> {
        self.begin(&s.from).await;
        let (image_name, name) = from_parts(&s.from, &self.meta_args, self.esc)?;
        let mut st = self.from(&image_name).await?;
        if let Some(id) = &st.image {
            self.out.stream(format!(" ---> {}\n", short(id))).await;
        }
        let triggers = st.config.on_build.take().unwrap_or_default();
        if !triggers.is_empty() {
            self.out
                .stream(format!(
                    "# Executing {} build trigger{}\n",
                    triggers.len(),
                    if triggers.len() == 1 { "" } else { "s" }
                ))
                .await;
            for t in &triggers {
                let parsed = parser::parse(t)?;
                for i in &parsed.instructions {
                    Box::pin(self.dispatch(&mut st, i)).await?;
                }
            }
            // The triggers are consumed: the stage's images don't carry them on.
            self.commit_config(&mut st, "#(nop) ONBUILD triggers done".into())
                .await?;
        }
        for i in &s.steps {
            self.begin(i).await;
            Box::pin(self.dispatch(&mut st, i)).await?;
            if let Some(id) = &st.image {
                self.out.stream(format!(" ---> {}\n", short(id))).await;
            }
        }
        if with_labels {
            let mut labels: Vec<(&String, &String)> = self.plan.opts.labels.iter().collect();
            labels.sort();
            let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            self.step += 1;
            self.out
                .stream(format!(
                    "Step {}/{} : LABEL {}\n",
                    self.step,
                    self.total,
                    text.join(" ")
                ))
                .await;
            for (k, v) in labels {
                st.config.labels.insert(k.clone(), v.clone());
            }
            self.commit_config(&mut st, format!("#(nop)  LABEL {}", text.join(" ")))
                .await?;
            if let Some(id) = &st.image {
                self.out.stream(format!(" ---> {}\n", short(id))).await;
            }
        }
        Ok((name, st.image))
    }

    /// Pulls a base image (not in the local store, or `--pull`), for `--platform`, with the
    /// credentials the client sent for its registry, passing the registry's progress through
    /// to the build output.
    async fn pull_base(&self, name: &str) -> Result<(), BuildError> {
        let auth = Reference::parse(name)
            .ok()
            .and_then(|r| registry_auth(self.plan.opts.registry_config.as_ref(), r.domain()));
        let mut progress = self
            .b
            .inner
            .images
            .pull(name, None, self.plan.platform.as_deref(), auth)
            .await
            .map_err(|e| BuildError::NotFound(cause_chain(&e)))?;
        while let Some(v) = progress.next().await {
            if let Some(err) = v.get("error").and_then(Value::as_str) {
                return Err(BuildError::NotFound(err.to_owned()));
            }
            if !self.out.quiet {
                self.out.always(v).await;
            }
        }
        Ok(())
    }

    /// The state a `FROM` starts from: scratch, an earlier stage, or an image.
    async fn from(&self, name: &str) -> Result<State, BuildError> {
        let mut st = State {
            image: None,
            config: ContainerConfig::default(),
            args: Vec::new(),
            cmd_set: false,
            author: String::new(),
            use_cache: !self.plan.opts.no_cache,
        };
        if name.is_empty() {
            return Err(BuildError::Invalid("FROM requires an image name".into()));
        }
        if name == "scratch" {
            return Ok(st);
        }
        let lower = name.to_ascii_lowercase();
        let image = match self
            .done
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(&lower))
        {
            Some((_, Some(id))) => id.clone(),
            Some((_, None)) => return Ok(st),
            None => name.to_owned(),
        };
        // --pull: a named image is pulled even when present; a stage, scratch or an image
        // id is not (there is nothing to pull them from).
        if self.plan.opts.pull && image == name && !looks_like_id(name) {
            self.pull_base(name).await?;
        }
        let resolved = match self.b.inner.images.resolve(&image) {
            Ok(r) => r,
            // Not here: pull it, as Docker's builder does, then look again.
            Err(e) if e.kind() == berth_api::ErrorKind::NotFound && image == name => {
                self.pull_base(name).await?;
                self.b
                    .inner
                    .images
                    .resolve(&image)
                    .map_err(|e| BuildError::NotFound(cause_chain(&e)))?
            }
            Err(e) if e.kind() == berth_api::ErrorKind::NotFound => {
                return Err(BuildError::NotFound(cause_chain(&e)))
            }
            Err(e) => return Err(BuildError::Invalid(cause_chain(&e))),
        };
        st.config = resolved.config;
        st.image = Some(resolved.id);
        Ok(st)
    }

    /// Looks a step up in the cache; on a hit the state moves to the cached image.
    /// `history` is the `created_by` the step's image would have (for `--cache-from`).
    pub(super) async fn cached(
        &self,
        st: &mut State,
        key: &str,
        history: &str,
    ) -> Result<bool, BuildError> {
        if !st.use_cache {
            return Ok(false);
        }
        let hit = match self.b.inner.cache.get(key)? {
            Some(id) => self.b.inner.images.resolve(&id).ok().map(|img| img.id),
            None => None,
        };
        let local = match hit {
            Some(id) if !self.cache_from_given => Some(id),
            // With --cache-from, only what lies on the way to one of those images counts.
            Some(id) => match self.b.inner.images.image_chain(&id) {
                Ok(c) if self.cache_from.iter().any(|s| cache::in_chain_of(&c, s)) => Some(id),
                _ => None,
            },
            None => None,
        };
        let id = match local {
            Some(id) => id,
            None => match self.step_from_cache_sources(st, history)? {
                Some(id) => {
                    self.b.inner.cache.put(key, &id)?;
                    id
                }
                None => {
                    st.use_cache = false;
                    return Ok(false);
                }
            },
        };
        self.out.stream(" ---> Using cache\n").await;
        st.image = Some(id);
        Ok(true)
    }

    /// The image of the next step taken from a `--cache-from` image whose chain the stage
    /// has followed so far and whose next step was made by the same instruction.
    fn step_from_cache_sources(
        &self,
        st: &State,
        history: &str,
    ) -> Result<Option<String>, BuildError> {
        if self.cache_from.is_empty() {
            return Ok(None);
        }
        let images = &self.b.inner.images;
        let parent = st
            .image
            .as_deref()
            .map(|id| images.image_chain(id))
            .transpose()?;
        for src in &self.cache_from {
            let Some(i) = cache::next_step(parent.as_ref(), src, history) else {
                continue;
            };
            if i + 1 == src.history.len() {
                return Ok(Some(src.id.clone()));
            }
            let mut config = st.config.clone();
            config.image = st.image.clone().unwrap_or_default();
            return Ok(Some(images.restore_step(
                parent.as_ref(),
                src,
                i,
                &config,
            )?));
        }
        Ok(None)
    }

    pub(super) fn spec(&self, st: &State, created_by: String) -> ChildImage {
        let mut config = st.config.clone();
        config.image = st.image.clone().unwrap_or_default();
        ChildImage {
            parent: st.image.clone(),
            config,
            container: None,
            author: st.author.clone(),
            comment: String::new(),
            created_by: format!("/bin/sh -c {created_by}"),
            tags: Vec::new(),
        }
    }

    /// A step that changes only the config: a new image without a layer.
    pub(super) async fn commit_config(
        &self,
        st: &mut State,
        created_by: String,
    ) -> Result<(), BuildError> {
        let cfg = serde_json::to_string(&st.config).unwrap_or_default();
        let key = cache::key(
            st.image.as_deref(),
            &format!("config\n{created_by}\n{}\n{cfg}", st.author),
        );
        if self
            .cached(st, &key, &format!("/bin/sh -c {created_by}"))
            .await?
        {
            return Ok(());
        }
        let spec = self.spec(st, created_by);
        let images = self.b.inner.images.clone();
        let id = tokio::task::spawn_blocking(move || images.create_child(&spec, None))
            .await
            .map_err(|e| BuildError::Internal(format!("image task: {e}")))??;
        self.b.inner.cache.put(&key, &id)?;
        st.image = Some(id);
        Ok(())
    }

    /// A step whose layer is made in a staging overlay on top of the current image.
    pub(super) async fn commit_staged<F>(
        &self,
        st: &mut State,
        key: String,
        created_by: String,
        work: F,
    ) -> Result<(), BuildError>
    where
        F: FnOnce(&Root) -> Result<bool, BuildError> + Send + 'static,
    {
        let lowers = match &st.image {
            Some(id) => {
                self.b
                    .inner
                    .images
                    .resolve(id)
                    .map_err(|e| BuildError::Internal(cause_chain(&e)))?
                    .layer_dirs
            }
            None => Vec::new(),
        };
        let dir = self.b.tmp_file("stage");
        let tar = self.b.tmp_file("layer");
        let tar2 = tar.clone();
        let made = tokio::task::spawn_blocking(move || -> Result<bool, BuildError> {
            let mut stage = Staging::mount(dir, &lowers)?;
            let root = Root::open(&stage.merged())?;
            let changed = work(&root)?;
            drop(root);
            stage.unmount()?;
            if changed {
                super::commit::pack_to_file(&stage.upper(), &tar2)?;
            }
            Ok(changed)
        })
        .await
        .map_err(|e| BuildError::Internal(format!("copy task: {e}")))?;
        match made {
            Ok(true) => {
                let id = self
                    .b
                    .child_from_file(self.spec(st, created_by), tar)
                    .await?;
                self.b.inner.cache.put(&key, &id)?;
                st.image = Some(id);
                Ok(())
            }
            Ok(false) => {
                let _ = std::fs::remove_file(&tar);
                self.commit_config(st, created_by).await
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tar);
                Err(e)
            }
        }
    }
}
