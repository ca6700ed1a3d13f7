//! RUN: the command runs in an ordinary container made through the container executor
//! (`create_for_build`, `wait`, `start`, `logs`), and its upper directory becomes the layer.

use std::collections::HashSet;

use berth_api::models::{ContainerConfig, HostConfig, LogConfig};
use futures_util::StreamExt;

use super::cache;
use super::parser::{json_form, Instruction};
use super::run::{short, Build};
use super::stages::State;
use super::BuildError;
use crate::container::{ContainerExecutor, ContainerSpec, LogRequest, WaitUntil};

impl Build<'_> {
    pub(super) async fn run(&mut self, st: &mut State, i: &Instruction) -> Result<(), BuildError> {
        let argv = run_argv(st, i)?;
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
        let cs = self.b.inner.containers.clone();
        let created = cs
            .create_for_build(self.run_spec(st, parent, &argv, arg_env))
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

    /// The RUN container: the step's image, the command as its entrypoint, the image's env
    /// plus the ARGs in scope, and the build's host options as `docker run` would apply them.
    fn run_spec(
        &self,
        st: &State,
        parent: String,
        argv: &[String],
        arg_env: Vec<String>,
    ) -> ContainerSpec {
        let mut env = st.config.env.clone();
        env.extend(arg_env);
        let config = ContainerConfig {
            image: parent,
            entrypoint: argv.to_vec(),
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
        ContainerSpec {
            name: None,
            config: config.into(),
            host_config: host_config.into(),
            endpoints: Default::default(),
        }
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
            return Err(BuildError::RunFailed {
                message: format!(
                    "The command '{}' returned a non-zero code: {}",
                    argv.join(" "),
                    res.code
                ),
                code: res.code,
            });
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

/// The RUN command: its exec form as written, or its shell form wrapped in the stage's
/// `SHELL` (default `/bin/sh -c`).
fn run_argv(st: &State, i: &Instruction) -> Result<Vec<String>, BuildError> {
    match json_form(&i.args) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(BuildError::Invalid(
            "RUN requires at least one argument".into(),
        )),
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
            Ok(sh)
        }
    }
}
