//! The reconciler's pure half: the steps from what the kernel has ([`Observed`]) to what
//! committed cluster state says it should have (`&[Plane]`).
//!
//! ```text
//!  for each desired plane:  bridge missing ─► CreateBridge
//!                           VXLAN missing ─► CreateVxlan;  wrong VNI/local/master ─► DeleteLink + CreateVxlan
//!                           FDB:   missing ─► AddFdb,   stale (gone or moved node) ─► DelFdb
//!                           neigh: missing or other MAC ─► SetNeigh,  stale ─► DelNeigh
//!  every owned link no plane wants ─► DeleteLink (VXLAN devices before bridges)
//! ```
//! Steps are ordered so that each one can be carried out when its turn comes (a device is
//! made before entries go on it; removals of stale entries come before additions, so a MAC
//! that moved to another node is never reachable through two). Observing again after the
//! steps ran gives an empty plan: tests check exactly that.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::model::{owned, Fdb, Observed, Plane};

/// One change to the data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateBridge {
        name: String,
        mtu: u32,
    },
    /// A VXLAN device (learning off, ARP proxy on, UDP `VXLAN_PORT`) enslaved to `bridge`.
    CreateVxlan {
        name: String,
        vni: u32,
        local: Ipv4Addr,
        bridge: String,
        mtu: u32,
    },
    DeleteLink {
        name: String,
    },
    AddFdb {
        dev: String,
        fdb: Fdb,
    },
    DelFdb {
        dev: String,
        fdb: Fdb,
    },
    /// Adds or replaces a permanent neighbour entry.
    SetNeigh {
        dev: String,
        ip: Ipv4Addr,
        mac: [u8; 6],
    },
    DelNeigh {
        dev: String,
        ip: Ipv4Addr,
    },
}

/// The steps that make `observed` what `desired` says.
pub fn plan(desired: &[Plane], observed: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for p in desired {
        let (br, vx) = (p.bridge(), p.vxlan());
        wanted.insert(br.clone());
        wanted.insert(vx.clone());
        if !observed.links.contains_key(&br) {
            steps.push(Step::CreateBridge {
                name: br.clone(),
                mtu: p.mtu,
            });
        }
        let cur = observed.links.get(&vx);
        let fits = cur.is_some_and(|l| {
            l.vxlan == Some((p.vni, Some(p.local))) && l.master.as_deref() == Some(br.as_str())
        });
        let (have_fdb, have_neigh) = match cur {
            Some(l) if fits => (l.fdb.clone(), l.neigh.clone()),
            _ => (BTreeSet::new(), BTreeMap::new()),
        };
        if !fits {
            if cur.is_some() {
                steps.push(Step::DeleteLink { name: vx.clone() });
            }
            steps.push(Step::CreateVxlan {
                name: vx.clone(),
                vni: p.vni,
                local: p.local,
                bridge: br.clone(),
                mtu: p.mtu,
            });
        }
        // Endpoints on this node are reached through the bridge, never the tunnel.
        let remote = p.peers.iter().filter(|x| x.node != p.local);
        let want_fdb: BTreeSet<Fdb> = remote
            .clone()
            .map(|x| Fdb {
                mac: x.mac,
                dst: x.node,
            })
            .collect();
        let want_neigh: BTreeMap<Ipv4Addr, [u8; 6]> = remote.map(|x| (x.ip, x.mac)).collect();
        for f in have_fdb.difference(&want_fdb) {
            steps.push(Step::DelFdb {
                dev: vx.clone(),
                fdb: *f,
            });
        }
        for ip in have_neigh.keys().filter(|ip| !want_neigh.contains_key(*ip)) {
            steps.push(Step::DelNeigh {
                dev: vx.clone(),
                ip: *ip,
            });
        }
        for f in want_fdb.difference(&have_fdb) {
            steps.push(Step::AddFdb {
                dev: vx.clone(),
                fdb: *f,
            });
        }
        for (ip, mac) in &want_neigh {
            if have_neigh.get(ip) != Some(mac) {
                steps.push(Step::SetNeigh {
                    dev: vx.clone(),
                    ip: *ip,
                    mac: *mac,
                });
            }
        }
    }
    // What no plane wants: VXLAN devices first, then the bridges they hang off.
    let mut stale: Vec<&String> = observed
        .links
        .keys()
        .filter(|n| owned(n) && !wanted.contains(*n))
        .collect();
    stale.sort_by_key(|n| !n.starts_with(crate::model::VXLAN_PREFIX));
    for name in stale {
        steps.push(Step::DeleteLink { name: name.clone() });
    }
    steps
}

/// What `observed` becomes once `steps` are carried out (the executor's effect, for tests
/// and for a dry run).
pub fn simulate(observed: &Observed, steps: &[Step]) -> Observed {
    use crate::model::ObservedLink;
    let mut o = observed.clone();
    for s in steps {
        match s {
            Step::CreateBridge { name, .. } => {
                o.links.insert(name.clone(), ObservedLink::default());
            }
            Step::CreateVxlan {
                name,
                vni,
                local,
                bridge,
                ..
            } => {
                o.links.insert(
                    name.clone(),
                    ObservedLink {
                        vxlan: Some((*vni, Some(*local))),
                        master: Some(bridge.clone()),
                        ..Default::default()
                    },
                );
            }
            Step::DeleteLink { name } => {
                o.links.remove(name);
            }
            Step::AddFdb { dev, fdb } => {
                if let Some(l) = o.links.get_mut(dev) {
                    l.fdb.insert(*fdb);
                }
            }
            Step::DelFdb { dev, fdb } => {
                if let Some(l) = o.links.get_mut(dev) {
                    l.fdb.remove(fdb);
                }
            }
            Step::SetNeigh { dev, ip, mac } => {
                if let Some(l) = o.links.get_mut(dev) {
                    l.neigh.insert(*ip, *mac);
                }
            }
            Step::DelNeigh { dev, ip } => {
                if let Some(l) = o.links.get_mut(dev) {
                    l.neigh.remove(ip);
                }
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{mac_for, ObservedLink, Peer};

    const NET: &str = "0123456789abcdef";

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    fn peer(addr: &str, node: &str) -> Peer {
        Peer {
            ip: ip(addr),
            mac: mac_for(ip(addr)),
            node: ip(node),
        }
    }

    fn plane(peers: &[Peer]) -> Plane {
        Plane {
            network_id: NET.into(),
            vni: 4096,
            local: ip("10.231.0.11"),
            peers: peers.iter().copied().collect(),
            mtu: crate::model::OVERLAY_MTU,
        }
    }

    /// Plans, applies, and checks that a second pass has nothing left to do.
    fn converge(desired: &[Plane], from: &Observed) -> (Vec<Step>, Observed) {
        let steps = plan(desired, from);
        let after = simulate(from, &steps);
        assert_eq!(
            plan(desired, &after),
            Vec::new(),
            "not converged: {after:?}"
        );
        (steps, after)
    }

    #[test]
    fn a_fresh_node_gets_devices_then_entries_for_remote_peers_only() {
        let p = plane(&[
            peer("10.0.0.3", "10.231.0.12"),
            peer("10.0.0.4", "10.231.0.13"),
            peer("10.0.0.5", "10.231.0.11"), // local: through the bridge
        ]);
        let (steps, after) = converge(&[p], &Observed::default());
        assert_eq!(
            steps[..2],
            [
                Step::CreateBridge {
                    name: "ovb-012345678".into(),
                    mtu: 1450
                },
                Step::CreateVxlan {
                    name: "ovx-012345678".into(),
                    vni: 4096,
                    local: ip("10.231.0.11"),
                    bridge: "ovb-012345678".into(),
                    mtu: 1450
                },
            ]
        );
        let vx = &after.links["ovx-012345678"];
        assert_eq!(vx.fdb.len(), 2);
        assert_eq!(vx.neigh.len(), 2);
        assert!(!vx.neigh.contains_key(&ip("10.0.0.5")));
        assert_eq!(vx.neigh[&ip("10.0.0.3")], mac_for(ip("10.0.0.3")));
    }

    #[test]
    fn churn_removes_stale_entries_before_adding_new_ones() {
        let before = plane(&[
            peer("10.0.0.3", "10.231.0.12"),
            peer("10.0.0.4", "10.231.0.13"),
        ]);
        let (_, observed) = converge(&[before], &Observed::default());
        // 10.0.0.3's task died and was replaced on another node with a new address;
        // 10.0.0.4 moved node (same address, e.g. a restarted node re-advertising).
        let after = plane(&[
            peer("10.0.0.6", "10.231.0.13"),
            peer("10.0.0.4", "10.231.0.12"),
        ]);
        let (steps, _) = converge(&[after], &observed);
        let first_add = steps
            .iter()
            .position(|s| matches!(s, Step::AddFdb { .. } | Step::SetNeigh { .. }))
            .expect("additions");
        assert!(steps[..first_add]
            .iter()
            .all(|s| matches!(s, Step::DelFdb { .. } | Step::DelNeigh { .. })));
        assert!(steps.contains(&Step::DelNeigh {
            dev: "ovx-012345678".into(),
            ip: ip("10.0.0.3")
        }));
        assert!(steps.contains(&Step::DelFdb {
            dev: "ovx-012345678".into(),
            fdb: Fdb {
                mac: mac_for(ip("10.0.0.4")),
                dst: ip("10.231.0.13")
            }
        }));
        assert!(!steps.iter().any(|s| matches!(s, Step::CreateVxlan { .. })));
    }

    #[test]
    fn a_wrong_device_is_remade_and_unwanted_ones_go_vxlan_first() {
        let mut observed = Observed::default();
        observed
            .links
            .insert("ovb-012345678".into(), ObservedLink::default());
        // Made by an older run with another VNI, and an entry someone added by hand.
        let mut stale = ObservedLink {
            vxlan: Some((4100, Some(ip("10.231.0.11")))),
            master: Some("ovb-012345678".into()),
            ..Default::default()
        };
        stale.neigh.insert(ip("10.0.0.9"), [2, 0, 0, 0, 0, 9]);
        observed.links.insert("ovx-012345678".into(), stale);
        observed
            .links
            .insert("ovb-999999999".into(), ObservedLink::default());
        observed.links.insert(
            "ovx-999999999".into(),
            ObservedLink {
                vxlan: Some((4097, None)),
                ..Default::default()
            },
        );
        observed
            .links
            .insert("eth0".into(), ObservedLink::default());
        let (steps, after) = converge(&[plane(&[peer("10.0.0.3", "10.231.0.12")])], &observed);
        assert_eq!(
            steps[0],
            Step::DeleteLink {
                name: "ovx-012345678".into()
            }
        );
        let tail: Vec<&Step> = steps.iter().rev().take(2).collect();
        assert_eq!(
            tail,
            [
                &Step::DeleteLink {
                    name: "ovb-999999999".into()
                },
                &Step::DeleteLink {
                    name: "ovx-999999999".into()
                },
            ]
        );
        assert!(after.links.contains_key("eth0"), "not ours: left alone");
        assert!(!after.links["ovx-012345678"]
            .neigh
            .contains_key(&ip("10.0.0.9")));
        // Nothing desired any more: every device of ours goes.
        let (_, empty) = converge(&[], &after);
        assert_eq!(empty.links.keys().collect::<Vec<_>>(), ["eth0"]);
    }
}
