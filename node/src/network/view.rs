//! What `network inspect` and `network ls` show, and their filters.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::error::{NetworkError, Result};
use super::{find_in, Net, NetworkRecord, Networks};

impl Networks {
    pub fn inspect(&self, key: &str) -> Result<Value> {
        let st = self.state();
        Ok(view(find_in(&st, key)?))
    }

    pub fn list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<Value>> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "driver" | "id" | "label" | "name" | "scope" | "type" | "dangling"
            ) {
                return Err(NetworkError::invalid(format!("invalid filter '{k}'")));
            }
        }
        let st = self.state();
        let mut out: Vec<Value> = st
            .nets
            .values()
            .filter(|n| matches_filters(n, filters))
            .map(view)
            .collect();
        out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
        Ok(out)
    }
}

fn view(n: &Net) -> Value {
    let r = &n.rec;
    let config = if n.alloc.is_some() {
        let mut c = json!({"Subnet": r.subnet, "Gateway": r.gateway});
        if !r.ip_range.is_empty() {
            c["IPRange"] = json!(r.ip_range);
        }
        if !r.aux_addresses.is_empty() {
            c["AuxiliaryAddresses"] = json!(r.aux_addresses);
        }
        let mut configs = vec![c];
        if r.enable_ipv6 {
            let mut c6 = json!({"Subnet": r.subnet6, "Gateway": r.gateway6});
            if !r.ip_range6.is_empty() {
                c6["IPRange"] = json!(r.ip_range6);
            }
            configs.push(c6);
        }
        json!(configs)
    } else {
        json!([])
    };
    let containers: serde_json::Map<String, Value> = n
        .active
        .iter()
        .map(|(id, a)| {
            (
                id.clone(),
                json!({
                    "Name": a.ctr_name, "EndpointID": a.endpoint_id, "MacAddress": a.mac,
                    "IPv4Address": format!("{}/{}", a.ip, a.prefix),
                    "IPv6Address": a.ip6.map(|(ip, p)| format!("{ip}/{p}")).unwrap_or_default(),
                }),
            )
        })
        .collect();
    json!({
        "Name": r.name, "Id": r.id, "Created": r.created,
        "Scope": if r.driver == "overlay" { "swarm" } else { "local" }, "Driver": r.driver,
        "EnableIPv4": true, "EnableIPv6": r.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": r.internal, "Attachable": r.attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": r.options, "Labels": r.labels,
    })
}

pub(super) fn label_filters(r: &NetworkRecord, f: &HashMap<String, Vec<String>>) -> bool {
    f.get("label").is_none_or(|ls| {
        ls.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
            None => r.labels.contains_key(l),
        })
    }) && f.get("label!").is_none_or(|ls| {
        !ls.iter().any(|l| match l.split_once('=') {
            Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
            None => r.labels.contains_key(l),
        })
    })
}

pub(super) fn until_filter(r: &NetworkRecord, f: &HashMap<String, Vec<String>>) -> bool {
    let Some(until) = f.get("until").and_then(|v| v.first()) else {
        return true;
    };
    let Ok(created) = chrono::DateTime::parse_from_rfc3339(&r.created) else {
        return true;
    };
    match parse_until(until) {
        Some(t) => created.timestamp() < t,
        None => true,
    }
}

/// `until=` as Docker takes it: unix seconds, RFC 3339, or a duration ago (`10m`, `24h`).
fn parse_until(v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return Some(secs as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(chrono::Utc::now().timestamp() - secs)
}

fn matches_filters(n: &Net, f: &HashMap<String, Vec<String>>) -> bool {
    let r = &n.rec;
    let any = |k: &str, p: &dyn Fn(&str) -> bool| f.get(k).is_none_or(|v| v.iter().any(|x| p(x)));
    any("driver", &|d| r.driver == d)
        && any("id", &|i| r.id.starts_with(i))
        && any("name", &|x| r.name.contains(x))
        && any("scope", &|s| {
            s == if r.driver == "overlay" {
                "swarm"
            } else {
                "local"
            }
        })
        && any("type", &|t| match t {
            "custom" => !r.predefined(),
            "builtin" => r.predefined(),
            _ => false,
        })
        && any("dangling", &|d| match d {
            "true" | "1" => n.active.is_empty() && !r.predefined(),
            "false" | "0" => !n.active.is_empty() || r.predefined(),
            _ => true,
        })
        && label_filters(r, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn net(name: &str, labels: &[(&str, &str)]) -> Net {
        Net {
            rec: NetworkRecord {
                id: format!("{name}-id"),
                name: name.into(),
                driver: "bridge".into(),
                created: "2026-01-01T00:00:00Z".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..Default::default()
            },
            alloc: None,
            alloc6: None,
            active: BTreeMap::new(),
        }
    }

    fn filters(k: &str, v: &str) -> HashMap<String, Vec<String>> {
        HashMap::from([(k.to_owned(), vec![v.to_owned()])])
    }

    #[test]
    fn filters_select_like_docker() {
        let web = net("web", &[("tier", "front")]);
        let host = net("host", &[]);
        assert!(matches_filters(&web, &filters("label", "tier=front")));
        assert!(!matches_filters(&web, &filters("label", "tier=back")));
        assert!(matches_filters(&web, &filters("type", "custom")));
        assert!(matches_filters(&host, &filters("type", "builtin")));
        assert!(matches_filters(&web, &filters("dangling", "true")));
        assert!(!matches_filters(&host, &filters("dangling", "true")));
        assert!(matches_filters(&web, &filters("name", "we")));
        assert!(!label_filters(&web.rec, &filters("label!", "tier")));
        assert!(until_filter(
            &web.rec,
            &filters("until", "2027-01-01T00:00:00Z")
        ));
        assert!(!until_filter(
            &web.rec,
            &filters("until", "2025-01-01T00:00:00Z")
        ));
    }

    #[test]
    fn until_takes_seconds_dates_and_durations() {
        assert_eq!(parse_until("1700000000"), Some(1_700_000_000));
        assert!(parse_until("10m").is_some());
        assert_eq!(parse_until("10d"), None);
    }

    #[test]
    fn view_shows_ipam_only_for_networks_with_addresses() {
        let v = view(&net("host", &[]));
        assert_eq!(v["IPAM"]["Config"], json!([]));
        assert_eq!(v["Scope"], "local");
    }
}
