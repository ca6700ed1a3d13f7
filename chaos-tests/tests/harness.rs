//! Self-tests of the harness, on today's berthd: hosts come up isolated and named, reach
//! each other only through the switch, partitions cut exactly what they should, a crashed
//! berthd restarts on its state, and nothing of a run survives its `Cluster`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_chaos_tests::{eventually, Cluster, Footprint};

fn addr(l: &TcpListener) -> SocketAddr {
    l.local_addr().expect("listener address")
}

fn netns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.ino())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn three_hosts_come_up_each_with_its_own_engine_name_and_netns() {
    let t = Instant::now();
    let c = Cluster::new(3);
    eprintln!("3 hosts up in {:?}", t.elapsed());
    let mut ips = Vec::new();
    for h in c.hosts() {
        let info = h.docker_ok(&["info", "--format", "{{.Name}} {{.Swarm.LocalNodeState}}"]);
        assert_eq!(info, format!("{} inactive", h.hostname()));
        assert!(h.ip().starts_with("10.231."), "{}", h.ip());
        ips.push(h.ip().to_owned());
        // berthd really runs in the host's network namespace.
        let pid = h.pid().expect("berthd pid");
        assert_eq!(
            netns_inode(&format!("/proc/{pid}/ns/net")),
            netns_inode(&format!("/var/run/netns/{}", h.netns()))
        );
    }
    ips.dedup();
    assert_eq!(ips.len(), 3, "{ips:?}");
}

#[test]
fn partition_cuts_exactly_the_traffic_between_the_two_sets_and_heal_restores_it() {
    let c = Cluster::new(3);
    let (a, b, x) = (c.host(0), c.host(1), c.host(2));
    let (la, lb, lx) = (a.listen_tcp(), b.listen_tcp(), x.listen_tcp());
    let (pa, pb, px) = (addr(&la), addr(&lb), addr(&lx));
    assert!(a.can_connect(pb) && b.can_connect(pa) && a.can_connect(px) && x.can_connect(pb));
    // The hosts are reachable only through their switch, not from the root namespace.
    assert!(TcpStream::connect_timeout(&pb, Duration::from_millis(300)).is_err());

    c.partition(&[a], &[b, x]);
    assert!(!a.can_connect(pb), "a → b crosses the partition");
    assert!(!b.can_connect(pa), "b → a crosses the partition");
    assert!(!x.can_connect(pa), "x → a crosses the partition");
    assert!(
        b.can_connect(px) && x.can_connect(pb),
        "b ↔ x are on the same side"
    );

    c.heal();
    assert!(eventually(Duration::from_secs(5), || a.can_connect(pb)));
    assert!(b.can_connect(pa) && x.can_connect(pa));
    c.heal(); // healing a healed cluster is harmless
}

#[test]
fn a_killed_or_stopped_berthd_restarts_on_its_state() {
    let c = Cluster::new(2);
    let h = c.host(0);
    h.docker_ok(&["volume", "create", "chaos-vol"]);

    h.kill9();
    assert!(!h.is_running());
    assert!(
        h.api_get("/_ping").is_none(),
        "a killed berthd still answers"
    );
    let t = Instant::now();
    h.start();
    eprintln!("berthd back after kill -9 in {:?}", t.elapsed());
    assert_eq!(h.docker_ok(&["volume", "ls", "-q"]), "chaos-vol");
    assert_eq!(h.docker_ok(&["info", "--format", "{{.Name}}"]), "h1");

    let t = Instant::now();
    h.restart();
    eprintln!("berthd restarted (SIGTERM) in {:?}", t.elapsed());
    assert_eq!(h.docker_ok(&["volume", "ls", "-q"]), "chaos-vol");
    // The other host never noticed.
    assert_eq!(c.host(1).docker_ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn dropping_the_cluster_leaves_nothing_behind() {
    let fp = {
        let c = Cluster::new(2);
        let h = c.host(0);
        h.import_busybox();
        h.docker_ok(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"]);
        // A crashed daemon leaves its container and shim running for the cleanup to find.
        h.kill9();
        c.partition(&[c.host(0)], &[c.host(1)]);
        let fp = c.footprint();
        let before = fp.leftovers();
        assert!(
            before.iter().any(|l| l.starts_with("process")),
            "{before:?}"
        );
        assert!(before.iter().any(|l| l.starts_with("mount")), "{before:?}");
        assert!(before.iter().any(|l| l.starts_with("cgroup")), "{before:?}");
        assert!(before.iter().any(|l| l.starts_with("chaos-")), "{before:?}");
        fp
    };
    assert_eq!(fp.leftovers(), Vec::<String>::new());
}

#[test]
fn a_test_that_panics_still_cleans_up() {
    let fp: Mutex<Option<Footprint>> = Mutex::new(None);
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let c = Cluster::new(1);
        *fp.lock().expect("lock") = Some(c.footprint());
        panic!("a failing cluster test (on purpose)");
    }));
    assert!(r.is_err());
    let fp = fp.lock().expect("lock").take().expect("footprint");
    assert_eq!(fp.leftovers(), Vec::<String>::new());
}
