//! `-p/--publish` and `--expose`: `[ip:][hostPort:]containerPort[/proto]` with ranges, into
//! the create body's `ExposedPorts` and `HostConfig.PortBindings`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// `ExposedPorts` and `PortBindings` of a create body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PortMap {
    pub exposed: BTreeMap<String, ()>,
    pub bindings: BTreeMap<String, Vec<(String, String)>>,
}

impl PortMap {
    pub fn exposed_json(&self) -> Value {
        Value::Object(
            self.exposed
                .keys()
                .map(|k| (k.clone(), json!({})))
                .collect(),
        )
    }

    pub fn bindings_json(&self) -> Value {
        Value::Object(
            self.bindings
                .iter()
                .map(|(k, v)| {
                    let list: Vec<Value> = v
                        .iter()
                        .map(|(ip, port)| json!({"HostIp": ip, "HostPort": port}))
                        .collect();
                    (k.clone(), Value::Array(list))
                })
                .collect(),
        )
    }
}

fn parse_port_range(s: &str) -> Result<(u64, u64), String> {
    if s.is_empty() {
        return Err("empty string specified for ports.".to_string());
    }
    match s.split_once('-') {
        None => {
            let p: u16 = s.parse().map_err(|_| format!("invalid port: {s}"))?;
            Ok((p as u64, p as u64))
        }
        Some((a, b)) => {
            let start: u16 = a.parse().map_err(|_| format!("invalid port: {s}"))?;
            let end: u16 = b.parse().map_err(|_| format!("invalid port: {s}"))?;
            if end < start {
                return Err(format!("invalid range specified for the port: {s}"));
            }
            Ok((start as u64, end as u64))
        }
    }
}

/// Adds one `-p` spec (`[ip:][hostPort:]containerPort[/proto]`, ranges allowed) to `map`.
pub fn add_port_spec(map: &mut PortMap, raw: &str) -> Result<(), String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((p, proto)) if !proto.is_empty() => (p, proto.to_ascii_lowercase()),
        Some((p, _)) => (p, "tcp".to_string()),
        None => (container, "tcp".to_string()),
    };
    if ip.starts_with('[') && ip.ends_with(']') {
        ip = ip[1..ip.len() - 1].to_string();
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let count = end - start + 1;
    for i in 0..count {
        let key = format!("{}/{}", start + i, proto);
        let mut hport = String::new();
        if !host_port.is_empty() {
            hport = (hstart + i).to_string();
            if count == 1 && hstart != hend {
                hport = format!("{hport}-{hend}");
            }
        }
        map.exposed.insert(key.clone(), ());
        map.bindings
            .entry(key)
            .or_default()
            .push((ip.clone(), hport));
    }
    Ok(())
}

/// Adds an `--expose` value (`80`, `8000-8010/udp`) to `map.exposed`.
pub fn add_expose(map: &mut PortMap, raw: &str) -> Result<(), String> {
    let (ports, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let (start, end) = parse_port_range(ports)
        .map_err(|e| format!("invalid range format for --expose: {raw}, error: {e}"))?;
    for p in start..=end {
        map.exposed.insert(format!("{p}/{proto}"), ());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let mut m = PortMap::default();
        add_port_spec(&mut m, "127.0.0.1:8081:80").expect("spec");
        add_port_spec(&mut m, "53:53/udp").expect("spec");
        add_port_spec(&mut m, "9000").expect("spec");
        add_port_spec(&mut m, "[::1]:8443:443").expect("spec");
        assert_eq!(
            m.bindings["80/tcp"],
            vec![("127.0.0.1".to_string(), "8081".to_string())]
        );
        assert_eq!(
            m.bindings["53/udp"],
            vec![(String::new(), "53".to_string())]
        );
        assert_eq!(m.bindings["9000/tcp"], vec![(String::new(), String::new())]);
        assert_eq!(
            m.bindings["443/tcp"],
            vec![("::1".to_string(), "8443".to_string())]
        );
        assert_eq!(
            m.exposed_json(),
            serde_json::json!({"443/tcp":{}, "53/udp":{}, "80/tcp":{}, "9000/tcp":{}})
        );
    }

    #[test]
    fn port_ranges() {
        let mut m = PortMap::default();
        add_port_spec(&mut m, "8000-8001:80-81").expect("spec");
        assert_eq!(
            m.bindings["80/tcp"],
            vec![(String::new(), "8000".to_string())]
        );
        assert_eq!(
            m.bindings["81/tcp"],
            vec![(String::new(), "8001".to_string())]
        );
        let mut m = PortMap::default();
        add_port_spec(&mut m, "8000-8010:80").expect("spec");
        assert_eq!(
            m.bindings["80/tcp"],
            vec![(String::new(), "8000-8010".to_string())]
        );
        let mut m = PortMap::default();
        assert_eq!(
            add_port_spec(&mut m, "8000-8002:80-81"),
            Err(
                "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
                    .to_string()
            )
        );
        assert_eq!(
            add_port_spec(&mut m, "80/xyz"),
            Err("invalid proto: xyz".to_string())
        );
        assert_eq!(
            add_port_spec(&mut m, "abc"),
            Err("invalid containerPort: abc".to_string())
        );
        assert_eq!(
            add_port_spec(&mut m, "x:80"),
            Err("invalid hostPort: x".to_string())
        );
        assert_eq!(
            add_port_spec(&mut m, "1.2.3:80:80"),
            Err("invalid IP address: 1.2.3".to_string())
        );
    }
}
