//! Running a build: stages in order, one step at a time, each step a new image (from the
//! cache when its key matches), streaming Docker's messages.
//!
//! ```text
//!  Plan (options checked before the body is read)
//!   └─ run_build: context ─► parse ─► stages (meta ARGs, FROM .. AS, --target)
//!        └─ per step: Step n/M ─► dispatch ─► " ---> <id>"      (config / RUN / COPY / ADD)
//!   └─ tag, aux ID, "Successfully built/tagged"; or errorDetail and nothing tagged
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use berth_api::backend::{BodyStream, BuildOptions};
use berth_api::models::{ContainerConfig, HostConfig, LogConfig};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::cache;
use super::context::{self, Context};
use super::copy::{self, Attrs, CopyPlan, Staging};
use super::expand::{expand_word, expand_words, key_values, split_raw, Vars};
use super::fetch;
use super::parser::{self, json_form, Instruction};
use super::{BuildError, Builder};
use crate::container::{ContainerExecutor, ContainerSpec, LogRequest, WaitUntil};
use crate::fsroot::Root;
use crate::image::reference::Reference;
use crate::image::{apply_changes, parse_tag, ChildImage, ImageChain};

/// A build's options, checked before the context is read.
pub struct Plan {
    opts: BuildOptions,
    tags: Vec<Reference>,
    /// `--platform` as FROM pulls ask for it (`linux/<arch>`), when given.
    platform: Option<String>,
    /// Why `--platform` cannot be built here, reported when the build starts.
    foreign_platform: Option<String>,
}

/// What a `--platform` means to this daemon.
#[derive(Debug, PartialEq)]
enum PlatformCheck {
    /// The host's own platform, as `os/arch[/variant]`.
    Host(String),
    /// Another architecture: the message the build fails with.
    Foreign(String),
}

/// `--platform`: `os[/arch[/variant]]`. This daemon runs RUN steps natively (no emulation),
/// so it builds for its own platform only; a malformed value or another OS is a bad request
/// (as Docker's platform parsing makes it), another architecture fails the build.
fn check_platform(p: &str, host_arch: &str) -> Result<PlatformCheck, BuildError> {
    let s = p.trim().to_ascii_lowercase();
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|x| x.is_empty()) {
        return Err(BuildError::Invalid(format!(
            "failed to parse platform {p}: \"{p}\": unknown operating system or architecture: invalid argument"
        )));
    }
    if parts[0] != "linux" {
        return Err(BuildError::Invalid(format!(
            "\"{}\" is not a supported operating system: this daemon builds linux images",
            parts[0]
        )));
    }
    let arch = match parts.get(1).copied().unwrap_or(host_arch) {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let variant = parts.get(2).copied();
    let same = arch == host_arch
        && matches!(
            (arch, variant),
            (_, None) | ("arm64", Some("v8")) | ("amd64", Some("v1" | "v2"))
        );
    let full = match variant {
        Some(v) => format!("linux/{arch}/{v}"),
        None => format!("linux/{arch}"),
    };
    Ok(if same {
        PlatformCheck::Host(full)
    } else {
        PlatformCheck::Foreign(format!(
            "platform {full} is not supported: this daemon builds for linux/{host_arch} only (RUN steps run natively, without emulation)"
        ))
    })
}

impl Plan {
    pub fn new(opts: BuildOptions) -> Result<Plan, BuildError> {
        let tags = opts
            .tags
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        let (platform, foreign_platform) = match opts.platform.as_deref() {
            None => (None, None),
            Some(p) => match check_platform(p, crate::image::config::host_arch())? {
                PlatformCheck::Host(p) => (Some(p), None),
                PlatformCheck::Foreign(why) => (None, Some(why)),
            },
        };
        if let Some(m) = opts.network_mode.as_deref() {
            if !matches!(m, "default" | "bridge" | "host" | "none") && !m.is_empty() {
                // Named networks are checked when the RUN container is created.
                tracing::debug!(network = m, "build with a named network");
            }
        }
        Ok(Plan {
            opts,
            tags,
            platform,
            foreign_platform,
        })
    }
}

/// Where build messages go.
struct Out {
    tx: mpsc::Sender<Value>,
    quiet: bool,
}

impl Out {
    async fn stream(&self, text: impl Into<String>) {
        if !self.quiet {
            let _ = self.tx.send(json!({ "stream": text.into() })).await;
        }
    }
    async fn always(&self, v: Value) {
        let _ = self.tx.send(v).await;
    }
}

fn short(id: &str) -> &str {
    let b = id.strip_prefix("sha256:").unwrap_or(id);
    &b[..b.len().min(12)]
}

/// One `FROM` and the instructions after it.
struct Stage {
    from: Instruction,
    steps: Vec<Instruction>,
}

/// The evolving state of a stage.
struct State {
    /// Image id of the last step; `None` on scratch before any step.
    image: Option<String>,
    config: ContainerConfig,
    /// ARG values in scope, in declaration order.
    args: Vec<(String, String)>,
    cmd_set: bool,
    author: String,
    /// Whether steps may still come from the cache.
    use_cache: bool,
}

impl State {
    fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.args.clone();
        for e in &self.config.env {
            let (k, val) = e.split_once('=').unwrap_or((e, ""));
            v.push((k.to_owned(), val.to_owned()));
        }
        v
    }
}

/// Splits the instructions into meta ARGs and stages.
fn stages(instrs: Vec<Instruction>) -> Result<(Vec<Instruction>, Vec<Stage>), BuildError> {
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
fn from_parts(
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
fn arg_decls(
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

fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Per-build bookkeeping.
struct Build<'a> {
    b: &'a Builder,
    plan: &'a Plan,
    ctx: &'a Context,
    out: &'a Out,
    esc: char,
    step: usize,
    total: usize,
    /// Finished stages: (name, image id).
    done: Vec<(Option<String>, Option<String>)>,
    /// Build args an ARG declared.
    used_args: HashSet<String>,
    meta_args: Vec<(String, String)>,
    /// `--cache-from` images found here.
    cache_from: Vec<ImageChain>,
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
            out.always(json!({
                "errorDetail": { "message": msg },
                "error": msg,
            }))
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
        let unused: Vec<&String> = {
            let mut v: Vec<&String> = plan
                .opts
                .build_args
                .keys()
                .filter(|k| !bld.used_args.contains(*k) && !is_predefined_arg(k))
                .collect();
            v.sort();
            v
        };
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            out.stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                list.join(" ")
            ))
            .await;
        }
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

/// `sha256:<hex>` or a bare hex id prefix: an image id, not a name to pull.
fn looks_like_id(name: &str) -> bool {
    name.starts_with("sha256:")
        || (name.len() >= 12
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The credentials `X-Registry-Config` holds for the registry of `domain` (its keys are
/// registry hosts or URLs such as `https://index.docker.io/v1/`).
fn registry_auth(config: Option<&Value>, domain: &str) -> Option<Value> {
    use crate::image::registry::{login_host, Registries};
    let want = Registries::api_host(domain);
    config?
        .as_object()?
        .iter()
        .find(|(k, _)| login_host(k) == want)
        .map(|(_, v)| v.clone())
}

/// Docker's predefined proxy args never warn as unused.
fn is_predefined_arg(k: &str) -> bool {
    matches!(
        k.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

impl Build<'_> {
    fn build_arg(&self, name: &str) -> Option<String> {
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
        use berth_api::backend::ImageBackend;
        let auth = Reference::parse(name)
            .ok()
            .and_then(|r| registry_auth(self.plan.opts.registry_config.as_ref(), r.domain()));
        let mut progress = ImageBackend::pull(
            &*self.b.inner.images,
            name,
            None,
            self.plan.platform.as_deref(),
            auth,
        )
        .await
        .map_err(|e| BuildError::NotFound(e.message))?;
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
            Err(e) if e.kind == berth_api::ErrorKind::NotFound && image == name => {
                self.pull_base(name).await?;
                self.b
                    .inner
                    .images
                    .resolve(&image)
                    .map_err(|e| BuildError::NotFound(e.message))?
            }
            Err(e) if e.kind == berth_api::ErrorKind::NotFound => {
                return Err(BuildError::NotFound(e.message))
            }
            Err(e) => return Err(BuildError::Invalid(e.message)),
        };
        st.config = resolved.config;
        st.image = Some(resolved.id);
        Ok(st)
    }

    async fn dispatch(&mut self, st: &mut State, i: &Instruction) -> Result<(), BuildError> {
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

    /// Looks a step up in the cache; on a hit the state moves to the cached image.
    /// `history` is the `created_by` the step's image would have (for `--cache-from`).
    async fn cached(&self, st: &mut State, key: &str, history: &str) -> Result<bool, BuildError> {
        if !st.use_cache {
            return Ok(false);
        }
        let hit = match self.b.inner.cache.get(key)? {
            Some(id) => self.b.inner.images.resolve(&id).ok().map(|img| img.id),
            None => None,
        };
        let local = match hit {
            Some(id) if self.cache_from.is_empty() => Some(id),
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

    fn spec(&self, st: &State, created_by: String) -> ChildImage {
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
    async fn commit_config(&self, st: &mut State, created_by: String) -> Result<(), BuildError> {
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
    async fn commit_staged<F>(
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
                    .map_err(|e| BuildError::Internal(e.message))?
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

    async fn workdir(&mut self, st: &mut State, i: &Instruction) -> Result<(), BuildError> {
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

    async fn copy(&mut self, st: &mut State, i: &Instruction) -> Result<(), BuildError> {
        let esc = self.esc;
        let vars = st.vars();
        let add = i.keyword == "ADD";
        for (k, _) in &i.flags {
            let ok =
                matches!(k.as_str(), "chown" | "chmod" | "from" | "link") && (k != "from" || !add);
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
                .map(|w| expand_word(w, esc, &vars))
                .collect::<Result<Vec<_>, _>>()?,
            None => expand_words(&i.args, esc, &vars)?,
        };
        if words.len() < 2 {
            return Err(BuildError::Invalid(format!(
                "{} requires at least two arguments, but got {}",
                i.keyword,
                words.len()
            )));
        }
        let (dest_word, srcs) = words.split_last().expect("at least two words");
        let mut dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            let wd = if st.config.working_dir.is_empty() {
                "/"
            } else {
                &st.config.working_dir
            };
            format!("{}/{dest_word}", wd.trim_end_matches('/'))
        };
        if (dest_word.ends_with('/') || dest_word == "." || dest_word.ends_with("/."))
            && !dest.ends_with('/')
        {
            dest.push('/');
        }
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
        let (root, _from_stage, from_id): (PathBuf, Option<Staging>, Option<String>) = match &from {
            None => (self.ctx.dir.clone(), None, None),
            Some(f) => {
                let id = self.source_image(f)?;
                let img = self
                    .b
                    .inner
                    .images
                    .resolve(&id)
                    .map_err(|e| BuildError::Internal(e.message))?;
                let dir = self.b.tmp_file("from");
                let stage =
                    tokio::task::spawn_blocking(move || Staging::mount(dir, &img.layer_dirs))
                        .await
                        .map_err(|e| BuildError::Internal(format!("mount task: {e}")))??;
                (stage.merged(), Some(stage), Some(id))
            }
        };
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
            let bytes = fetch::get(&self.b.inner.images.inner.dist.registries, u).await?;
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
            let attrs = match &chown {
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
            };
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

    async fn run(&mut self, st: &mut State, i: &Instruction) -> Result<(), BuildError> {
        let argv = match json_form(&i.args) {
            Some(v) if !v.is_empty() => v,
            Some(_) => {
                return Err(BuildError::Invalid(
                    "RUN requires at least one argument".into(),
                ))
            }
            None => {
                if i.args.trim().is_empty() {
                    return Err(BuildError::Invalid(
                        "RUN requires at least one argument".into(),
                    ));
                }
                let mut sh = st
                    .config
                    .shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                sh.push(i.args.clone());
                sh
            }
        };
        let env_keys: HashSet<String> = st
            .config
            .env
            .iter()
            .map(|e| e.split('=').next().unwrap_or("").to_owned())
            .collect();
        let arg_env: Vec<String> = st
            .args
            .iter()
            .filter(|(k, _)| !env_keys.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let created_by = if arg_env.is_empty() {
            argv.join(" ")
        } else {
            format!(
                "|{} {} {}",
                arg_env.len(),
                arg_env.join(" "),
                argv.join(" ")
            )
        };
        let cfg = serde_json::to_string(&st.config).unwrap_or_default();
        let key = cache::key(
            st.image.as_deref(),
            &format!(
                "RUN {}\n{}\n{cfg}",
                serde_json::to_string(&argv).unwrap_or_default(),
                arg_env.join("\n")
            ),
        );
        if self.cached(st, &key, &created_by).await? {
            return Ok(());
        }
        let Some(parent) = st.image.clone() else {
            return Err(BuildError::Invalid(format!(
                "cannot RUN {:?}: the stage is FROM scratch and has no files to run",
                argv.join(" ")
            )));
        };
        let mut env = st.config.env.clone();
        env.extend(arg_env);
        let config = ContainerConfig {
            image: parent.clone(),
            entrypoint: argv.clone(),
            cmd: Vec::new(),
            env,
            user: st.config.user.clone(),
            working_dir: st.config.working_dir.clone(),
            ..Default::default()
        };
        let o = &self.plan.opts;
        // --add-host, --shm-size, limits: the RUN container gets them as `docker run` would.
        let host_config = HostConfig {
            network_mode: o.network_mode.clone().unwrap_or_default(),
            // The output is streamed from the log file, whatever the daemon's default driver.
            log_config: LogConfig {
                kind: "json-file".into(),
                config: Default::default(),
            },
            ..o.host.clone()
        };
        let cs = self.b.inner.containers.clone();
        let created = cs
            .create_for_build(ContainerSpec {
                name: None,
                config: config.into(),
                host_config: host_config.into(),
                endpoints: Default::default(),
            })
            .await?;
        let cid = created.id;
        self.out
            .stream(format!(" ---> Running in {}\n", short(&cid)))
            .await;
        let res = self.run_in(&cid, &argv, st, created_by).await;
        if let Err(e) = cs.remove(&cid, true, true).await {
            tracing::warn!(container_id = %cid, error = %e, "removing a build container");
        }
        self.out
            .stream(format!("Removing intermediate container {}\n", short(&cid)))
            .await;
        let id = res?;
        self.b.inner.cache.put(&key, &id)?;
        st.image = Some(id);
        Ok(())
    }

    /// Starts the RUN container, streams its output, and commits it when it succeeds.
    async fn run_in(
        &self,
        cid: &str,
        argv: &[String],
        st: &State,
        created_by: String,
    ) -> Result<String, BuildError> {
        let cs = &self.b.inner.containers;
        let waiter = cs.wait(cid, WaitUntil::NextExit).await?;
        cs.start(cid).await?;
        let mut logs = ContainerExecutor::logs(
            cs,
            cid,
            LogRequest {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )
        .await?;
        while let Some(record) = logs.next().await {
            self.out.stream(record.line).await;
        }
        let res = waiter.await;
        if res.code != 0 {
            return Err(BuildError::Invalid(format!(
                "The command '{}' returned a non-zero code: {}",
                argv.join(" "),
                res.code
            )));
        }
        let upper = cs.paths(cid).upper();
        let tar = self.b.tmp_file("run");
        let t2 = tar.clone();
        let packed = tokio::task::spawn_blocking(move || super::commit::pack_to_file(&upper, &t2))
            .await
            .map_err(|e| BuildError::Internal(format!("commit task: {e}")));
        if let Err(e) = packed.and_then(|r| r.map_err(BuildError::from)) {
            let _ = std::fs::remove_file(&tar);
            return Err(e);
        }
        let mut spec = self.spec(st, String::new());
        spec.created_by = created_by;
        spec.container = Some(cid.to_owned());
        self.b.child_from_file(spec, tar).await
    }
}

#[cfg(test)]
mod tests {
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
    fn platforms() {
        let host = |p: &str| check_platform(p, "amd64");
        assert_eq!(
            host("linux").expect("ok"),
            PlatformCheck::Host("linux/amd64".into())
        );
        assert_eq!(
            host("linux/amd64").expect("ok"),
            PlatformCheck::Host("linux/amd64".into())
        );
        assert_eq!(
            host("Linux/x86_64").expect("ok"),
            PlatformCheck::Host("linux/amd64".into())
        );
        assert!(
            matches!(host("linux/arm64").expect("ok"), PlatformCheck::Foreign(m) if m.contains("linux/arm64") && m.contains("linux/amd64 only"))
        );
        assert!(matches!(
            host("linux/amd64/v3").expect("ok"),
            PlatformCheck::Foreign(_)
        ));
        assert!(matches!(
            check_platform("linux/arm64/v8", "arm64").expect("ok"),
            PlatformCheck::Host(_)
        ));
        assert!(host("windows/amd64").is_err());
        assert!(host("linux//amd64").is_err());
        assert!(host("a/b/c/d").is_err());
    }

    #[test]
    fn registry_config_lookup_and_ids() {
        let cfg = serde_json::json!({
            "https://index.docker.io/v1/": { "username": "hub" },
            "127.0.0.1:5000": { "username": "local" },
        });
        assert_eq!(
            registry_auth(Some(&cfg), "docker.io").expect("hub")["username"],
            "hub"
        );
        assert_eq!(
            registry_auth(Some(&cfg), "127.0.0.1:5000").expect("local")["username"],
            "local"
        );
        assert_eq!(registry_auth(Some(&cfg), "example.com"), None);
        assert_eq!(registry_auth(None, "docker.io"), None);
        assert!(looks_like_id("sha256:abc") && looks_like_id("0123456789abcdef"));
        assert!(!looks_like_id("busybox") && !looks_like_id("deadbeef"));
    }

    #[test]
    fn env_replacement() {
        let mut env = vec!["A=1".to_owned(), "PATH=/bin".to_owned()];
        set_env(&mut env, "A", "2");
        set_env(&mut env, "B", "x y");
        assert_eq!(env, vec!["A=2", "PATH=/bin", "B=x y"]);
    }
}
