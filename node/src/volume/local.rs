//! The `local` driver's options, as Docker's: `type`, `device` and `o` describe a filesystem
//! mounted on the volume's `_data` while at least one container uses it (tmpfs, a bind of a
//! host directory, or any filesystem the kernel can mount). Without options the volume is a
//! plain directory.

use std::collections::BTreeMap;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::VolumeError;

/// Driver options of a volume that mounts something on `_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    /// Filesystem type; `none` with `o=bind` for a bind mount.
    pub fs_type: String,
    pub device: String,
    pub flags: MsFlags,
    /// What is left of `o` once flags are taken out (`size=64m,uid=1000`).
    pub data: String,
}

impl MountOpts {
    fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Checks a `local` volume's options; `None` when the volume is a plain directory.
pub fn parse(opts: &BTreeMap<String, String>) -> Result<Option<MountOpts>, VolumeError> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(VolumeError::Invalid(format!(
                "invalid option key: {k:?}: the local driver accepts type, device and o"
            )));
        }
    }
    if opts.contains_key("size") {
        return Err(VolumeError::Invalid(
            "quota size requested but no quota support: use --opt type=tmpfs --opt o=size=<size>"
                .into(),
        ));
    }
    let get = |k: &str| opts.get(k).map(String::as_str).unwrap_or("");
    let (fs_type, device, o) = (get("type"), get("device"), get("o"));
    if fs_type.is_empty() && device.is_empty() && o.is_empty() {
        return Ok(None);
    }
    if fs_type.is_empty() {
        return Err(VolumeError::Invalid(
            "missing required option: \"type\"".into(),
        ));
    }
    if device.is_empty() {
        return Err(VolumeError::Invalid(
            "missing required option: \"device\"".into(),
        ));
    }
    let (flags, data) = split_options(o)?;
    let m = MountOpts {
        fs_type: fs_type.to_owned(),
        device: device.to_owned(),
        flags,
        data,
    };
    if m.is_bind() {
        if !device.starts_with('/') {
            return Err(VolumeError::Invalid(format!(
                "invalid device {device:?} for a bind volume: the device must be an absolute host path"
            )));
        }
        if !Path::new(device).exists() {
            return Err(VolumeError::Invalid(format!(
                "invalid device {device:?} for a bind volume: no such file or directory"
            )));
        }
    } else if fs_type == "none" {
        return Err(VolumeError::Invalid(
            "type none needs o=bind (or rbind): nothing else can be mounted without a filesystem type"
                .into(),
        ));
    }
    Ok(Some(m))
}

/// Splits `o` into mount flags and the filesystem's own data string.
fn split_options(o: &str) -> Result<(MsFlags, String), VolumeError> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let f = match opt {
            "ro" => MsFlags::MS_RDONLY,
            "rw" | "defaults" => MsFlags::empty(),
            "bind" => MsFlags::MS_BIND,
            "rbind" => MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            "suid" | "dev" | "exec" | "async" | "atime" => MsFlags::empty(),
            "remount" | "move" => {
                return Err(VolumeError::Invalid(format!(
                    "invalid mount option {opt:?} in o"
                )))
            }
            other => {
                data.push(other.to_owned());
                MsFlags::empty()
            }
        };
        flags |= f;
    }
    Ok((flags, data.join(",")))
}

/// Mounts the volume's filesystem on `target`.
pub fn mount(m: &MountOpts, target: &Path) -> Result<(), VolumeError> {
    let fail = |e: nix::Error| VolumeError::Mount {
        target: target.display().to_string(),
        detail: format!("mount {} ({}): {e}", m.device, m.fs_type),
    };
    if m.is_bind() {
        let base = m.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
        nix::mount::mount(
            Some(m.device.as_str()),
            target,
            None::<&str>,
            base,
            None::<&str>,
        )
        .map_err(fail)?;
        let extra = m.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
            if let Err(e) =
                nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
            {
                let _ = nix::mount::umount2(target, MntFlags::MNT_DETACH);
                return Err(fail(e));
            }
        }
        return Ok(());
    }
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    nix::mount::mount(
        Some(m.device.as_str()),
        target,
        Some(m.fs_type.as_str()),
        m.flags,
        data,
    )
    .map_err(fail)
}

/// Unmounts whatever is mounted on `target` (lazily, so a process still inside does not
/// keep the volume busy).
pub fn unmount(target: &Path) -> Result<(), VolumeError> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(VolumeError::Mount {
            target: target.display().to_string(),
            detail: format!("unmount: {e}"),
        }),
    }
}

/// Whether something is mounted exactly on `target`, per /proc/self/mountinfo.
pub fn is_mounted(target: &Path) -> bool {
    let want = target.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|t| unescape_mountinfo(t) == want)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_options_is_a_directory() {
        assert_eq!(parse(&BTreeMap::new()).expect("parse"), None);
    }

    #[test]
    fn tmpfs_options_split_flags_from_data() {
        let m = parse(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=64m,uid=1000,noexec"),
        ]))
        .expect("parse")
        .expect("mounts");
        assert_eq!(m.fs_type, "tmpfs");
        assert_eq!(m.data, "size=64m,uid=1000");
        assert_eq!(m.flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn bind_needs_an_existing_absolute_device() {
        let m = parse(&opts(&[("type", "none"), ("o", "bind"), ("device", "/")]))
            .expect("parse")
            .expect("mounts");
        assert!(m.is_bind());
        let missing = parse(&opts(&[
            ("type", "none"),
            ("o", "bind"),
            ("device", "/nonexistent-berth-test"),
        ]));
        assert!(missing.is_err_and(|e| e.to_string().contains("/nonexistent-berth-test")));
        assert!(parse(&opts(&[("type", "none"), ("o", "bind"), ("device", "rel")])).is_err());
    }

    #[test]
    fn bad_options_are_named() {
        assert!(parse(&opts(&[("colour", "red")])).is_err_and(|e| e.to_string().contains("colour")));
        assert!(parse(&opts(&[("type", "tmpfs")])).is_err_and(|e| e.to_string().contains("device")));
        assert!(parse(&opts(&[("device", "tmpfs")])).is_err_and(|e| e.to_string().contains("type")));
        assert!(parse(&opts(&[("type", "none"), ("device", "/")])).is_err());
        assert!(parse(&opts(&[
            ("type", "tmpfs"),
            ("device", "x"),
            ("o", "remount")
        ]))
        .is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
