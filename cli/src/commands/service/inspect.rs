//! `service inspect`: the daemon's JSON (re-indented, in its key order), each service through
//! `--format`, or docker's `--pretty` text.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{seg, Client};
use crate::commands::inspect::print_found;
use crate::commands::node::push_labels;
use crate::error::StatusError;
use crate::format::bytes_size;

/// `berth service inspect`
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long = "pretty")]
    pub pretty: bool,
    /// Services
    #[arg(value_name = "SERVICE", required = true)]
    pub services: Vec<String>,
}

pub async fn inspect(client: &Client, a: InspectArgs) -> Result<()> {
    let format = crate::format::inspect_format(a.pretty, a.format)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.services {
        match client
            .get(&format!("/services/{}?insertDefaults=true", seg(name)))
            .await
        {
            Ok(resp) => found.push(resp.bytes().await?.to_vec()),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if format.as_deref() == Some("pretty") {
        let texts: Vec<String> = found
            .iter()
            .map(|raw| pretty_service(&serde_json::from_slice(raw).unwrap_or(Value::Null)))
            .collect();
        if !texts.is_empty() {
            println!("{}", texts.join("\n\n"));
        }
    } else {
        print_found(&found, format.as_deref())?;
    }
    if !errors.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Nanoseconds as Go prints a `time.Duration` (`5s`, `1m30s`, `500ms`).
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        return match nanos {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1000 == 0 => format!("{}µs", n / 1000),
            n => format!("{n}ns"),
        };
    }
    let secs = nanos as f64 / 1e9;
    let (h, rest) = ((secs / 3600.0) as i64, secs % 3600.0);
    let (m, sec) = ((rest / 60.0) as i64, rest % 60.0);
    let sec = crate::format::fmt_g(sec, 9);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, m) => format!("{m}m{sec}s"),
        (h, m) => format!("{h}h{m}m{sec}s"),
    }
}

fn rollout(out: &mut String, title: &str, c: &Value) {
    if !c.is_object() {
        return;
    }
    let d = |k: &str| go_duration(c[k].as_i64().unwrap_or(0));
    out.push_str(&format!(
        "\n{title}:\n Parallelism:\t{}",
        c["Parallelism"].as_u64().unwrap_or(0)
    ));
    if c["Delay"].as_i64().unwrap_or(0) != 0 {
        out.push_str(&format!("\n Delay:\t\t{}", d("Delay")));
    }
    out.push_str(&format!("\n On failure:\t{}", s(&c["FailureAction"])));
    out.push_str(&format!("\n Monitoring Period: {}", d("Monitor")));
    out.push_str(&format!(
        "\n Max failure ratio: {}",
        c["MaxFailureRatio"].as_f64().unwrap_or(0.0)
    ));
    out.push_str(&format!(
        "\n {} Order:    {}",
        title.trim_end_matches("Config"),
        s(&c["Order"])
    ));
}

/// docker's `service inspect --pretty` text (the fields a user reads most).
pub fn pretty_service(v: &Value) -> String {
    let spec = &v["Spec"];
    let mut o = format!("\nID:\t\t{}\nName:\t\t{}", s(&v["ID"]), s(&spec["Name"]));
    push_labels(&mut o, "Labels", &spec["Labels"]);
    let mode = &spec["Mode"];
    if let Some(r) = mode.get("Replicated") {
        o.push_str(&format!(
            "\nService Mode:\tReplicated\n Replicas:\t{}",
            r["Replicas"].as_u64().unwrap_or(0)
        ));
    } else if let Some(j) = mode.get("ReplicatedJob") {
        o.push_str(&format!(
            "\nService Mode:\tReplicatedJob\n Max Concurrent:\t{}\n Total Completions:\t{}",
            j["MaxConcurrent"].as_u64().unwrap_or(0),
            j["TotalCompletions"].as_u64().unwrap_or(0)
        ));
    } else if mode.get("GlobalJob").is_some() {
        o.push_str("\nService Mode:\tGlobalJob");
    } else {
        o.push_str("\nService Mode:\tGlobal");
    }
    if let Some(u) = v.get("UpdateStatus") {
        o.push_str(&format!(
            "\nUpdateStatus:\n State:\t\t{}\n Started:\t{}\n Message:\t{}",
            s(&u["State"]),
            s(&u["StartedAt"]),
            s(&u["Message"])
        ));
    }
    let tt = &spec["TaskTemplate"];
    let placement = &tt["Placement"];
    if let Some(c) = placement["Constraints"]
        .as_array()
        .filter(|c| !c.is_empty())
    {
        let c: Vec<String> = c.iter().map(s).collect();
        o.push_str(&format!("\nPlacement:\n Constraints:\t[{}]", c.join(" ")));
    }
    rollout(&mut o, "UpdateConfig", &spec["UpdateConfig"]);
    rollout(&mut o, "RollbackConfig", &spec["RollbackConfig"]);
    let cs = &tt["ContainerSpec"];
    o.push_str(&format!(
        "\n\nContainerSpec:\n Image:\t\t{}",
        s(&cs["Image"])
    ));
    if let Some(a) = cs["Args"].as_array().filter(|a| !a.is_empty()) {
        o.push_str(&format!(
            "\n Args:\t\t{}",
            a.iter().map(s).collect::<Vec<_>>().join(" ")
        ));
    }
    if let Some(e) = cs["Env"].as_array().filter(|a| !a.is_empty()) {
        o.push_str(&format!(
            "\n Env:\t\t{}",
            e.iter().map(s).collect::<Vec<_>>().join(" ")
        ));
    }
    if !s(&cs["Dir"]).is_empty() {
        o.push_str(&format!("\n Dir:\t\t{}", s(&cs["Dir"])));
    }
    if !s(&cs["User"]).is_empty() {
        o.push_str(&format!("\n User:\t\t{}", s(&cs["User"])));
    }
    pretty_resources(&mut o, &tt["Resources"]);
    pretty_endpoint(&mut o, spec);
    o
}

fn pretty_resources(o: &mut String, r: &Value) {
    let part = |v: &Value| {
        let mut t = String::new();
        if let Some(c) = v["NanoCPUs"].as_i64().filter(|c| *c != 0) {
            t.push_str(&format!("\n  CPU:\t\t{}", c as f64 / 1e9));
        }
        if let Some(m) = v["MemoryBytes"].as_i64().filter(|m| *m != 0) {
            t.push_str(&format!("\n  Memory:\t{}", bytes_size(m as f64)));
        }
        if let Some(p) = v["Pids"].as_i64().filter(|p| *p != 0) {
            t.push_str(&format!("\n  PIDs:\t\t{p}"));
        }
        t
    };
    let (res, lim) = (part(&r["Reservations"]), part(&r["Limits"]));
    if res.is_empty() && lim.is_empty() {
        return;
    }
    o.push_str("\nResources:");
    if !res.is_empty() {
        o.push_str(&format!("\n Reservations:{res}"));
    }
    if !lim.is_empty() {
        o.push_str(&format!("\n Limits:{lim}"));
    }
}

fn pretty_endpoint(o: &mut String, spec: &Value) {
    let nets = spec["TaskTemplate"]["Networks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !nets.is_empty() {
        let t: Vec<String> = nets.iter().map(|n| s(&n["Target"])).collect();
        o.push_str(&format!("\nNetworks:\t{}", t.join(" ")));
    }
    let ep = &spec["EndpointSpec"];
    o.push_str(&format!("\nEndpoint Mode:\t{}", s(&ep["Mode"])));
    if let Some(ports) = ep["Ports"].as_array().filter(|p| !p.is_empty()) {
        o.push_str("\nPorts:");
        for p in ports {
            o.push_str(&format!(
                "\n PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {}",
                p["PublishedPort"].as_u64().unwrap_or(0),
                s(&p["Protocol"]),
                p["TargetPort"].as_u64().unwrap_or(0),
                s(&p["PublishMode"])
            ));
        }
    }
    o.push(' ');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(0), "0s");
    }

    #[test]
    fn pretty_text() {
        let v = json!({
            "ID": "abc", "Spec": {"Name": "svc", "Mode": {"Replicated": {"Replicas": 2}},
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1"]},
                             "Resources": {"Limits": {"MemoryBytes": 67108864}}},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}}
        });
        let t = pretty_service(&v);
        assert!(
            t.contains("\nName:\t\tsvc\nService Mode:\tReplicated\n Replicas:\t2"),
            "{t}"
        );
        assert!(t.contains("\n Args:\t\tsleep 1"), "{t}");
        assert!(t.contains("\n Limits:\n  Memory:\t64MiB"), "{t}");
        assert!(
            t.contains("\n PublishedPort = 8080\n  Protocol = tcp"),
            "{t}"
        );
    }
}
