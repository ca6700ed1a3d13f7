//! The default seccomp profile: the system calls Docker's default profile refuses to an
//! unprivileged container, refused with EPERM (clone3 with ENOSYS, so libcs fall back to
//! clone). Written as an allow-by-default deny list, which blocks the same calls as Docker's
//! allow list on the architectures Berth runs on.

use serde_json::{json, Value};

/// (system call, the capability that lifts the block in Docker's profile, if any).
const BLOCKED: [(&str, Option<&str>); 52] = [
    ("acct", Some("CAP_SYS_PACCT")),
    ("add_key", None),
    ("bpf", Some("CAP_BPF")),
    ("clock_adjtime", Some("CAP_SYS_TIME")),
    ("clock_settime", Some("CAP_SYS_TIME")),
    ("create_module", Some("CAP_SYS_MODULE")),
    ("delete_module", Some("CAP_SYS_MODULE")),
    ("finit_module", Some("CAP_SYS_MODULE")),
    ("fsconfig", Some("CAP_SYS_ADMIN")),
    ("fsmount", Some("CAP_SYS_ADMIN")),
    ("fsopen", Some("CAP_SYS_ADMIN")),
    ("fspick", Some("CAP_SYS_ADMIN")),
    ("get_kernel_syms", Some("CAP_SYS_MODULE")),
    ("get_mempolicy", Some("CAP_SYS_NICE")),
    ("init_module", Some("CAP_SYS_MODULE")),
    ("ioperm", Some("CAP_SYS_RAWIO")),
    ("iopl", Some("CAP_SYS_RAWIO")),
    ("kcmp", Some("CAP_SYS_PTRACE")),
    ("kexec_file_load", Some("CAP_SYS_BOOT")),
    ("kexec_load", Some("CAP_SYS_BOOT")),
    ("keyctl", None),
    ("lookup_dcookie", Some("CAP_SYS_ADMIN")),
    ("mbind", Some("CAP_SYS_NICE")),
    ("mount", Some("CAP_SYS_ADMIN")),
    ("mount_setattr", Some("CAP_SYS_ADMIN")),
    ("move_mount", Some("CAP_SYS_ADMIN")),
    ("move_pages", Some("CAP_SYS_NICE")),
    ("name_to_handle_at", Some("CAP_DAC_READ_SEARCH")),
    ("nfsservctl", None),
    ("open_by_handle_at", Some("CAP_DAC_READ_SEARCH")),
    ("open_tree", Some("CAP_SYS_ADMIN")),
    ("perf_event_open", Some("CAP_PERFMON")),
    ("pivot_root", Some("CAP_SYS_ADMIN")),
    ("process_vm_readv", Some("CAP_SYS_PTRACE")),
    ("process_vm_writev", Some("CAP_SYS_PTRACE")),
    ("ptrace", Some("CAP_SYS_PTRACE")),
    ("query_module", Some("CAP_SYS_MODULE")),
    ("quotactl", Some("CAP_SYS_ADMIN")),
    ("reboot", Some("CAP_SYS_BOOT")),
    ("request_key", None),
    ("set_mempolicy", Some("CAP_SYS_NICE")),
    ("setns", Some("CAP_SYS_ADMIN")),
    ("settimeofday", Some("CAP_SYS_TIME")),
    ("swapoff", Some("CAP_SYS_ADMIN")),
    ("swapon", Some("CAP_SYS_ADMIN")),
    ("sysfs", None),
    ("_sysctl", None),
    ("umount2", Some("CAP_SYS_ADMIN")),
    ("unshare", Some("CAP_SYS_ADMIN")),
    ("uselib", None),
    ("userfaultfd", None),
    ("ustat", None),
];

/// The profile for a container holding `caps`.
pub fn profile(caps: &[String]) -> Value {
    let names: Vec<&str> = BLOCKED
        .iter()
        .filter(|(_, lift)| !lift.is_some_and(|c| caps.iter().any(|have| have == c)))
        .map(|(n, _)| *n)
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 },
        ]
    })
}

/// The profile with Docker's default capability set.
pub fn default_profile() -> Value {
    profile(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_admin_lifts_mount_but_not_keyctl() {
        let base = default_profile();
        let names = |v: &Value| {
            v["syscalls"][0]["names"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        assert!(names(&base).contains(&json!("mount")));
        let admin = profile(&["CAP_SYS_ADMIN".to_string()]);
        assert!(!names(&admin).contains(&json!("mount")));
        assert!(names(&admin).contains(&json!("keyctl")));
    }
}
