//! The last step in the container: what libcontainer's init runs once the process is fully
//! set up (namespaces, cgroup, rootfs, user, capabilities, seccomp), for `create` and `exec`
//! alike.
//!
//! libcontainer's default executor execs the process as is, so the container would inherit
//! this binary's signal state through libcontainer's clones: SIGPIPE ignored (every Rust
//! program does that at start) and whatever the caller ignored or blocked. [`CleanExec`]
//! resets every disposition and the signal mask first, then hands over to the default
//! executor, so the process starts as under dockerd, with nothing ignored or blocked.

use std::collections::HashMap;

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{
    default::get_executor, Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};

/// libcontainer's default executor, preceded by a reset of the signal state.
#[derive(Clone)]
pub struct CleanExec {
    inner: Box<dyn Executor>,
}

impl CleanExec {
    pub fn new() -> Self {
        CleanExec {
            inner: get_executor(),
        }
    }
}

impl Executor for CleanExec {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // Last thing before execve: nothing of ours may run in between and change it again.
        berth_shim::signals::reset_to_default();
        self.inner.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.inner.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        self.inner.setup_envs(envs)
    }
}
