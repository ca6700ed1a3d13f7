//! The device allow-list on cgroup v2. There is no `devices` controller there: the kernel
//! asks an eBPF program (type `CGROUP_DEVICE`) attached to the cgroup whether a process may
//! make, read or write a device node. libcontainer only does this behind a feature that
//! pulls in libbpf; this builds the few instructions the rules need and loads them with the
//! `bpf(2)` system call.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! `access_type` being `access << 16 | type`. Rules are checked last first (a later rule
//! overrides an earlier one, as with v1's `devices.allow`/`devices.deny`); the first that
//! matches decides; none matching denies.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde_json::Value;

/// One OCI `linux.resources.devices` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// `BPF_DEVCG_DEV_BLOCK` (1), `BPF_DEVCG_DEV_CHAR` (2), or `None` for both.
    pub kind: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `BPF_DEVCG_ACC_MKNOD` (1) | `READ` (2) | `WRITE` (4).
    pub access: u32,
}

const ACC_ALL: u32 = 1 | 2 | 4;

pub fn parse_rules(devices: &Value) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for d in devices.as_array().into_iter().flatten() {
        let kind = match d["type"].as_str().unwrap_or("a") {
            "a" => None,
            "b" => Some(1),
            "c" | "u" => Some(2),
            other => return Err(format!("device rule type {other:?}")),
        };
        let num = |k: &str| -> Result<Option<u32>, String> {
            match &d[k] {
                Value::Null => Ok(None),
                v => match v.as_i64() {
                    Some(-1) => Ok(None),
                    Some(n) => u32::try_from(n)
                        .map(Some)
                        .map_err(|_| format!("device rule {k} {n}")),
                    None => Err(format!("device rule {k} {v}")),
                },
            }
        };
        let mut access = 0;
        for ch in d["access"].as_str().unwrap_or("rwm").chars() {
            access |= match ch {
                'm' => 1,
                'r' => 2,
                'w' => 4,
                other => return Err(format!("device rule access {other:?}")),
            };
        }
        out.push(Rule {
            allow: d["allow"].as_bool().unwrap_or(false),
            kind,
            major: num("major")?,
            minor: num("minor")?,
            access,
        });
    }
    Ok(out)
}

/// The rules libcontainer appends to the spec's on cgroup v1 (making any node; the standard
/// /dev files, console, ptys and tun), so a container is allowed the same devices on v1
/// and v2.
pub fn with_runtime_defaults(mut rules: Vec<Rule>) -> Vec<Rule> {
    let rule = |kind, major, minor, access| Rule {
        allow: true,
        kind: Some(kind),
        major,
        minor,
        access,
    };
    let (b, c) = (1, 2);
    rules.extend([
        rule(c, Some(1), Some(3), ACC_ALL),
        rule(c, Some(1), Some(5), ACC_ALL),
        rule(c, Some(1), Some(7), ACC_ALL),
        rule(c, Some(5), Some(0), ACC_ALL),
        rule(c, Some(1), Some(9), ACC_ALL),
        rule(c, Some(1), Some(8), ACC_ALL),
        rule(c, None, None, 1),
        rule(b, None, None, 1),
        rule(c, Some(5), Some(1), ACC_ALL),
        rule(c, Some(136), None, ACC_ALL),
        rule(c, Some(5), Some(2), ACC_ALL),
        rule(c, Some(10), Some(200), ACC_ALL),
    ]);
    rules
}

/// One eBPF instruction, as the kernel lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The program for `rules`: r2 = type, r3 = access, r4 = major, r5 = minor; then one block
/// per rule, last rule first, each jumping past itself when the device does not match,
/// until one that matches everything.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        if let Some(k) = r.kind {
            block.push((JNE_K, 2, 0, k as i32));
        }
        if r.access != ACC_ALL {
            // The access asked for must be a subset of the rule's.
            block.push((MOV_X, 1, 3, 0));
            block.push((AND_K, 1, 0, r.access as i32));
            block.push((JNE_X, 1, 3, 0));
        }
        if let Some(m) = r.major {
            block.push((JNE_K, 4, 0, m as i32));
        }
        if let Some(m) = r.minor {
            block.push((JNE_K, 5, 0, m as i32));
        }
        let unconditional = block.is_empty();
        let len = block.len() + 2;
        for (i, (code, dst, src, imm)) in block.into_iter().enumerate() {
            let is_jump = code == JNE_K || code == JNE_X;
            // Past the rest of this block: its remaining tests, the mov and the exit.
            let off = if is_jump { (len - i - 1) as i16 } else { 0 };
            let imm = if code == JNE_X { 0 } else { imm };
            p.push(insn(code, dst, src, off, imm));
        }
        p.push(insn(MOV_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if unconditional {
            // It decides every access: anything after it would be unreachable, which the
            // verifier refuses.
            return p;
        }
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly laid out bpf_attr prefix of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Loads the program for `rules` and attaches it to the cgroup directory `cgroup`.
pub fn attach(cgroup: &Path, rules: &[Rule]) -> Result<(), String> {
    // Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK; this short-lived process
    // may lift its own.
    let inf = nix::sys::resource::RLIM_INFINITY;
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, inf, inf);
    let code: Vec<u8> = program(rules).iter().flat_map(Insn::bytes).collect();
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_device");
    let mut load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (code.len() / 8) as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    let prog = bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
        let verifier = String::from_utf8_lossy(&log);
        format!(
            "load the device filter: {e}: {}",
            verifier.trim_end_matches('\0').trim()
        )
    })?;
    // SAFETY: PROG_LOAD returned a new descriptor that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let dir = std::fs::File::open(cgroup).map_err(|e| format!("open {}: {e}", cgroup.display()))?;
    let mut at = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut at)
        .map_err(|e| format!("attach the device filter to {}: {e}", cgroup.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs the program the way the kernel would, for one device access.
    fn eval(p: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let mut r = [0u64; 11];
        let ctx = [(access << 16) | kind, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            match i.code {
                LDX_W => r[d] = u64::from(ctx[i.off as usize / 4]),
                AND_K => r[d] &= i.imm as i64 as u64,
                RSH_K => r[d] >>= i.imm,
                MOV_K => r[d] = i.imm as i64 as u64,
                MOV_X => r[d] = r[s],
                JNE_K if r[d] != i.imm as i64 as u64 => pc += i.off as usize,
                JNE_X if r[d] != r[s] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn rules_decide_last_first_and_deny_by_default() {
        let rules = parse_rules(&json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        ]))
        .expect("rules");
        assert_eq!(rules[2].minor, None);
        let p = program(&rules);
        let (c, b) = (2, 1);
        let (m, r, w) = (1, 2, 4);
        assert_eq!(eval(&p, c, r, 1, 3), 1, "null readable");
        assert_eq!(eval(&p, c, w, 1, 3), 0, "a later deny overrides");
        assert_eq!(eval(&p, c, r | w, 136, 7), 1, "any pts");
        assert_eq!(eval(&p, b, r, 8, 0), 1, "read the allowed disk");
        assert_eq!(eval(&p, b, r | w, 8, 0), 0, "but not write it");
        assert_eq!(eval(&p, b, m, 8, 0), 0);
        assert_eq!(eval(&p, c, r, 1, 1), 0, "/dev/mem is not listed");
        assert_eq!(eval(&p, c, r, 10, 229), 0);
        let all = program(&parse_rules(&json!([{"allow": true, "access": "rwm"}])).expect("all"));
        assert_eq!(eval(&all, b, r | w | m, 254, 0), 1, "privileged");
        assert_eq!(eval(&program(&[]), c, r, 1, 3), 0, "no rules deny");
        // Nothing after a rule that matches everything (the verifier refuses dead code).
        let p = program(
            &parse_rules(
                &json!([{"allow": true, "access": "rwm"}, {"allow": false, "access": "rwm"}]),
            )
            .expect("rules"),
        );
        assert_eq!(p.len(), 8);
        assert_eq!(eval(&p, c, r, 1, 3), 0);
        // With libcontainer's defaults: any node may be made, not opened.
        let p = program(&with_runtime_defaults(rules));
        assert_eq!(eval(&p, c, m, 1, 1), 1);
        assert_eq!(eval(&p, b, m, 254, 0), 1);
        assert_eq!(eval(&p, c, r, 1, 1), 0);
        assert_eq!(eval(&p, b, r, 254, 0), 0);
        assert_eq!(eval(&p, c, r | w, 1, 3), 1);
        assert!(parse_rules(&json!([{"type": "x"}])).is_err());
        assert!(parse_rules(&json!([{"access": "rx"}])).is_err());
    }

    #[test]
    fn instructions_are_laid_out_for_the_kernel() {
        let i = insn(JNE_X, 1, 3, 2, 0);
        assert_eq!(i.bytes(), [0x5d, 0x31, 2, 0, 0, 0, 0, 0]);
        let i = insn(AND_K, 2, 0, 0, 0xffff);
        assert_eq!(i.bytes(), [0x57, 0x02, 0, 0, 0xff, 0xff, 0, 0]);
    }
}
