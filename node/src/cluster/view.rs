//! Docker's JSON for the cluster objects (`GET /swarm`, `/nodes`, the `Swarm` of `/info`):
//! the only place cluster objects become Engine API shapes.

use berth_raft::objects::{Cluster, Node};
use berth_raft::types::NodeId;
use serde_json::{json, Value};

/// The cluster object; `tokens` only for `GET /swarm` (never in `/info`).
pub fn cluster(c: &Cluster, tokens: bool) -> Value {
    let mut v = json!({
        "ID": c.id,
        "Version": { "Index": c.meta.version },
        "CreatedAt": c.meta.created_at,
        "UpdatedAt": c.meta.updated_at,
        "Spec": c.spec,
        "TLSInfo": tls_info(c),
        "RootRotationInProgress": c.root_rotation.is_some(),
        "DefaultAddrPool": if c.default_addr_pool.is_empty() { Value::Null } else { json!(c.default_addr_pool) },
        "SubnetSize": c.subnet_size,
        "DataPathPort": c.data_path_port,
    });
    if tokens {
        v["JoinTokens"] = json!({ "Worker": c.worker_token, "Manager": c.manager_token });
    }
    v
}

/// The root every node certificate is issued by: its PEM, and its subject and public key
/// (SubjectPublicKeyInfo) as base64 DER, as Docker shows them.
fn tls_info(c: &Cluster) -> Value {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (subject, key) = berth_raft::ca::RootCa::from_pem(&c.ca_cert, None)
        .and_then(|r| r.issuer_info())
        .map(|(s, k)| (b64(&s), b64(&k)))
        .unwrap_or_default();
    json!({ "TrustRoot": c.ca_cert, "CertIssuerSubject": subject, "CertIssuerPublicKey": key })
}

/// What a node reports of its certificate (its trusted roots and its certificate's
/// issuer); the cluster's root for a node that has not reported yet.
fn node_tls_info(n: &Node, c: Option<&Cluster>) -> Value {
    match &n.description.tls_info {
        Some(t) => json!({
            "TrustRoot": t.trust_root,
            "CertIssuerSubject": t.cert_issuer_subject,
            "CertIssuerPublicKey": t.cert_issuer_public_key,
        }),
        None => c.map(tls_info).unwrap_or(Value::Null),
    }
}

/// One node, as `GET /nodes/{id}` shows it. `leader` is the Raft leader's id, if known.
pub fn node(n: &Node, c: Option<&Cluster>, leader: Option<NodeId>) -> Value {
    let mut spec = json!({
        "Labels": n.spec.labels,
        "Role": n.spec.role.as_str(),
        "Availability": n.spec.availability,
    });
    if !n.spec.name.is_empty() {
        spec["Name"] = json!(n.spec.name);
    }
    let d = &n.description;
    let mut engine = json!({ "EngineVersion": d.engine_version, "Plugins": plugins() });
    if !d.engine_labels.is_empty() {
        engine["Labels"] = json!(d.engine_labels);
    }
    let mut status = json!({ "State": n.state.as_str(), "Addr": n.addr });
    if !n.message.is_empty() {
        status["Message"] = json!(n.message);
    }
    let mut v = json!({
        "ID": n.id,
        "Version": { "Index": n.meta.version },
        "CreatedAt": n.meta.created_at,
        "UpdatedAt": n.meta.updated_at,
        "Spec": spec,
        "Description": {
            "Hostname": d.hostname,
            "Platform": { "Architecture": d.architecture, "OS": d.os },
            "Resources": { "NanoCPUs": d.nano_cpus, "MemoryBytes": d.memory_bytes },
            "Engine": engine,
            "TLSInfo": node_tls_info(n, c),
        },
        "Status": status,
    });
    if n.spec.role == berth_raft::ca::Role::Manager {
        let is_leader = leader.is_some_and(|l| l == n.raft_id);
        let reachable = is_leader || n.state == berth_raft::objects::NodeState::Ready;
        let mut ms = json!({
            "Reachability": if reachable { "reachable" } else { "unreachable" },
            "Addr": n.manager_addr,
        });
        if is_leader {
            ms["Leader"] = json!(true);
        }
        v["ManagerStatus"] = ms;
    }
    v
}

/// The plugins a node reports (`docker node inspect`): the engine's drivers.
fn plugins() -> Value {
    let mut out = Vec::new();
    for l in ["json-file", "local", "none"] {
        out.push(json!({ "Type": "Log", "Name": l }));
    }
    for n in ["bridge", "host", "null"] {
        out.push(json!({ "Type": "Network", "Name": n }));
    }
    out.push(json!({ "Type": "Volume", "Name": "local" }));
    Value::Array(out)
}
