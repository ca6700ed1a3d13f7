//! The resolver against what an image or a container can plant: `..`, absolute and relative
//! symlinks out of the root, loops and long chains, magic links, and directories swapped for
//! symlinks while we resolve. Each case runs with `openat2` and with the user-space walk.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// Tests that toggle the fallback must not interleave.
static MODE: Mutex<()> = Mutex::new(());

fn both(f: impl Fn()) {
    let _g = MODE.lock().unwrap_or_else(|e| e.into_inner());
    force_fallback(false);
    f();
    force_fallback(true);
    f();
    force_fallback(false);
}

/// A root `r/` with `etc/passwd`, beside an "outside" directory `host/` with a secret.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().expect("tmp");
    let root = d.path().join("r");
    let host = d.path().join("host");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(root.join("etc/passwd"), "inside").expect("write");
    std::fs::write(host.join("secret"), "outside").expect("write");
    (d, root, host)
}

fn read(r: &Root, p: &str) -> Result<String, RootError> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut r.open_file(p)?, &mut s).expect("read");
    Ok(s)
}

#[test]
fn dotdot_and_absolute_links_stay_inside() {
    both(|| {
        let (_d, root, host) = setup();
        symlink("/etc", root.join("abs")).expect("symlink");
        symlink("../../../../../etc/passwd", root.join("up")).expect("symlink");
        symlink(&host, root.join("hostlink")).expect("symlink");
        symlink("../host/secret", root.join("rel_out")).expect("symlink");
        let r = Root::open(&root).expect("root");
        assert_eq!(read(&r, "/abs/passwd").expect("abs"), "inside");
        assert_eq!(read(&r, "/up").expect("up"), "inside");
        assert_eq!(read(&r, "/../../../etc/passwd").expect("dotdot"), "inside");
        assert_eq!(read(&r, "etc/../../etc/passwd").expect("dotdot"), "inside");
        // A link to the host's directory means that path inside the root: not there.
        assert!(read(&r, "/hostlink/secret")
            .expect_err("host")
            .is_not_found());
        assert!(read(&r, "/rel_out").expect_err("rel").is_not_found());
        // Not following the last component yields the link itself.
        let st = r.stat("/abs", Last::NoFollow).expect("lstat");
        assert_eq!(tree::Kind::of(&st), tree::Kind::Symlink);
    });
}

#[test]
fn loops_and_long_chains_are_errors_not_half_resolved_paths() {
    both(|| {
        let (_d, root, host) = setup();
        symlink("loop2", root.join("loop1")).expect("symlink");
        symlink("loop1", root.join("loop2")).expect("symlink");
        symlink(".", root.join("dot")).expect("symlink");
        symlink(&host, root.join("evil")).expect("symlink");
        let r = Root::open(&root).expect("root");
        assert_eq!(
            r.stat("/loop1/x", Last::Follow).expect_err("loop").errno(),
            Some(libc::ELOOP)
        );
        // 41 hops through `dot`, then `evil`: the old resolvers gave up and handed the
        // unresolved path to the kernel, which followed `evil` to the host.
        let deep = format!("/{}evil/secret", "dot/".repeat(41));
        let e = read(&r, &deep).expect_err("deep");
        assert!(
            matches!(e.errno(), Some(libc::ELOOP) | Some(libc::ENOENT)),
            "unexpected {e}"
        );
        let _ = r.mkdir_all(&format!("/{}evil/x", "dot/".repeat(41)), 0o755, None);
        assert!(!host.join("x").exists(), "a directory was made on the host");
    });
}

#[test]
fn magic_links_are_not_followed() {
    both(|| {
        let (_d, root, _host) = setup();
        // /proc/self/root is the host's root: a link to it must not lead out.
        symlink("/proc/self/root/etc", root.join("magic")).expect("symlink");
        let r = Root::open(&root).expect("root");
        assert!(read(&r, "/magic/hostname").is_err());
        // An absolute host path to a magic link, named from inside, means the inside path.
        let e = read(&r, "/proc/self/root/etc/hostname").expect_err("magic");
        assert!(e.is_not_found(), "{e}");
    });
}

#[test]
fn mkdir_all_and_parent_create_inside() {
    both(|| {
        let (_d, root, host) = setup();
        symlink(&host, root.join("evil")).expect("symlink");
        let r = Root::open(&root).expect("root");
        let (_, made) = r
            .mkdir_all("/evil/a/b", 0o755, Some((12, 34)))
            .expect("mkdir");
        assert!(made);
        let m = std::fs::metadata(root.join("evil")).expect("follows inside");
        assert!(m.is_dir());
        assert!(!host.join("a").exists(), "host dir created");
        // `evil` → the host path, which is recreated inside the root.
        let inside = root.join(host.strip_prefix("/").expect("abs")).join("a/b");
        let st = std::fs::metadata(&inside).expect("made inside");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&st), 12);
        let (_, again) = r.mkdir_all("/evil/a/b", 0o755, None).expect("again");
        assert!(!again);
        let (dir, name) = r.parent_create("/x/y/z", 0o755, None).expect("parent");
        assert_eq!(name, "z");
        nix::sys::stat::mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o755))
            .expect("mkdirat");
        assert!(root.join("x/y/z").is_dir());
        assert!(r.parent("/").is_err());
        assert!(r.parent("/a/..").is_err());
        // A file in the way is an error, not a replacement.
        assert!(r.mkdir_all("/etc/passwd/sub", 0o755, None).is_err());
    });
}

/// A thread swaps a directory and a symlink to the host back and forth (as
/// `renameat2(RENAME_EXCHANGE)` in a container does) while we resolve through it.
#[test]
fn concurrent_swaps_never_reach_the_host() {
    both(|| {
        let (_d, root, host) = setup();
        std::fs::create_dir_all(root.join("race")).expect("mkdir");
        std::fs::write(root.join("race/secret"), "inside").expect("write");
        symlink(&host, root.join("swap")).expect("symlink");
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            let (a, b) = (root.join("race"), root.join("swap"));
            std::thread::spawn(move || {
                let (a, b) = (
                    std::ffi::CString::new(a.as_os_str().as_bytes()).expect("c"),
                    std::ffi::CString::new(b.as_os_str().as_bytes()).expect("c"),
                );
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: both are valid C strings; RENAME_EXCHANGE swaps the two names.
                    unsafe {
                        libc::syscall(
                            libc::SYS_renameat2,
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                }
            })
        };
        let r = Root::open(&root).expect("root");
        for _ in 0..2000 {
            if let Ok(s) = read(&r, "/race/secret") {
                assert_eq!(s, "inside", "read a host file through a swapped symlink");
            }
            if let Ok((dir, name)) = r.parent_create("/race/new", 0o755, None) {
                let _ = nix::fcntl::openat(
                    &dir,
                    name.as_os_str(),
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().expect("swapper");
        assert!(
            !host.join("new").exists(),
            "wrote a host file through a swapped symlink"
        );
    });
}

#[test]
fn extract_tar_creates_inside_and_links_only_inside() {
    both(|| {
        let (_d, root, host) = setup();
        symlink(&host, root.join("evil")).expect("symlink");
        let mut b = tar::Builder::new(Vec::new());
        let mut file = |name: &str, body: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, body).expect("append");
        };
        file("evil/planted", b"x");
        file("dir/f", b"hello");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(0o644);
        h.set_size(0);
        b.append_link(&mut h, "hostname-link", "/etc/passwd")
            .expect("link");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, "dir/f2", "/etc/passwd")
            .expect("symlink");
        let data = b.into_inner().expect("tar");
        let r = Root::open(&root).expect("root");
        write::extract_tar(
            &r,
            "/",
            &data[..],
            write::Options {
                parent_mode: 0o755,
                ..Default::default()
            },
        )
        .expect("extract");
        assert!(!host.join("planted").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("dir/f")).expect("f"),
            "hello"
        );
        // The hard link names the root's /etc/passwd, never the host's.
        assert_eq!(
            std::fs::read_to_string(root.join("hostname-link")).expect("link"),
            "inside"
        );
        // `..` in an entry name is refused.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // The tar crate refuses to write `..` itself: write the name bytes directly.
        h.as_gnu_mut().expect("gnu").name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        b.append(&h, &b"y"[..]).expect("append");
        let data = b.into_inner().expect("tar");
        let e = write::extract_tar(&r, "/dir", &data[..], write::Options::default())
            .expect_err("escape");
        assert!(e.to_string().contains("escapes"), "{e}");
        assert!(!root.join("escape").exists());
    });
}

#[test]
fn tree_walk_archives_without_following_links() {
    let (_d, root, host) = setup();
    symlink(&host, root.join("etc/hostdir")).expect("symlink");
    std::fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd2")).expect("hardlink");
    let r = Root::open(&root).expect("root");
    let top = r.dir("/etc").expect("etc");
    let mut b = tar::Builder::new(Vec::new());
    tree::append_tree(&mut b, &top, Path::new("etc")).expect("append");
    let data = b.into_inner().expect("tar");
    let mut names = Vec::new();
    for e in tar::Archive::new(&data[..]).entries().expect("entries") {
        let e = e.expect("entry");
        names.push((
            e.path().expect("p").display().to_string(),
            e.header().entry_type(),
        ));
    }
    assert!(names.contains(&("etc/hostdir".into(), tar::EntryType::Symlink)));
    assert!(names.contains(&("etc/passwd2".into(), tar::EntryType::Link)));
    assert!(!names.iter().any(|(n, _)| n.contains("secret")));
}

/// Docker's volume subpath rule: links inside are followed, anything that would leave the
/// root (`..` above it, absolute links, absolute paths) is EXDEV, not clamped.
#[test]
fn beneath_refuses_what_would_leave() {
    both(|| {
        let (_d, root, _host) = setup();
        std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
        std::fs::create_dir_all(root.join("hack")).expect("mkdir");
        symlink("../sub", root.join("hack/good")).expect("symlink");
        symlink("/", root.join("hack/root")).expect("symlink");
        symlink("root", root.join("hack/bad")).expect("symlink");
        symlink("../../..", root.join("hack/up")).expect("symlink");
        let r = Root::open(&root).expect("root");
        let is_dir_deeper = |fd: OwnedFd| {
            let st = nix::sys::stat::fstat(&fd).expect("stat");
            let want = std::fs::metadata(root.join("sub/deeper")).expect("meta");
            std::os::unix::fs::MetadataExt::ino(&want) == st.st_ino
        };
        assert!(is_dir_deeper(
            r.resolve_beneath("hack/good/deeper").expect("good")
        ));
        assert!(is_dir_deeper(
            r.resolve_beneath("sub/../sub/deeper").expect("dots")
        ));
        for bad in [
            "hack/root",
            "hack/bad",
            "hack/up",
            "../r/sub",
            "/sub",
            "sub/../../r",
        ] {
            let e = r.resolve_beneath(bad).expect_err(bad);
            assert_eq!(e.errno(), Some(libc::EXDEV), "{bad}: {e}");
        }
        assert!(r
            .resolve_beneath("nope")
            .expect_err("missing")
            .is_not_found());
    });
}
