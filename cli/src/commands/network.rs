//! `network create|ls|rm|inspect|connect|disconnect|prune`.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::{seg, Client, Query};
use crate::commands::container::{confirm, for_each};
use crate::commands::inspect::{self, Kind, TypedInspectArgs};
use crate::error::is_not_found;
use crate::opts;
use crate::output::{row, ListFormat};

/// `berth network ...`
#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Display detailed information on one or more networks
    Inspect(TypedInspectArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
}

pub async fn dispatch(client: &Client, cmd: NetworkCmd) -> Result<()> {
    match cmd {
        NetworkCmd::Create(a) => create(client, a).await,
        NetworkCmd::Ls(a) => ls(client, a).await,
        NetworkCmd::Rm(a) => rm(client, a).await,
        NetworkCmd::Inspect(a) => inspect::typed(client, Kind::Network, a).await,
        NetworkCmd::Connect(a) => connect(client, a).await,
        NetworkCmd::Disconnect(a) => disconnect(client, a).await,
        NetworkCmd::Prune(a) => prune(client, a).await,
    }
}

/// `berth network create`
#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway")]
    pub gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long = "ingress")]
    pub ingress: bool,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long = "ipv6")]
    pub ipv6: bool,
    /// Set metadata on a network
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Control the network's scope
    #[arg(long = "scope")]
    pub scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet")]
    pub subnet: Vec<String>,
    /// Network name
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

impl NetworkCreateArgs {
    /// The `POST /networks/create` body.
    pub fn body(&self) -> Result<Value> {
        if self.subnet.len() < self.gateway.len() || self.subnet.len() < self.ip_range.len() {
            anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
        }
        let mut aux = Map::new();
        for a in &self.aux_address {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid aux-address {a:?}: expected name=ip"))?;
            aux.insert(k.to_string(), json!(v));
        }
        let config: Vec<Value> = self
            .subnet
            .iter()
            .enumerate()
            .map(|(i, subnet)| {
                let mut c = Map::new();
                c.insert("Subnet".into(), json!(subnet));
                if let Some(r) = self.ip_range.get(i) {
                    c.insert("IPRange".into(), json!(r));
                }
                if let Some(g) = self.gateway.get(i) {
                    c.insert("Gateway".into(), json!(g));
                }
                if i == 0 && !aux.is_empty() {
                    c.insert("AuxiliaryAddresses".into(), Value::Object(aux.clone()));
                }
                Value::Object(c)
            })
            .collect();
        let mut body = json!({
            "Name": self.name,
            "CheckDuplicate": true,
            "Driver": self.driver,
            "IPAM": {
                "Driver": self.ipam_driver,
                "Options": Value::Object(opts::parse_kv_map(&self.ipam_opt, "ipam-opt").map_err(anyhow::Error::msg)?),
                "Config": config,
            },
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": self.ingress,
            "Options": Value::Object(opts::parse_kv_map(&self.opt, "opt").map_err(anyhow::Error::msg)?),
            "Labels": Value::Object(opts::parse_labels(&self.label)),
        });
        if let Some(s) = &self.scope {
            body["Scope"] = json!(s);
        }
        // Only when asked for, as the docker CLI: an IPv6 --subnet turns IPv6 on by itself.
        if self.ipv6 {
            body["EnableIPv6"] = json!(true);
        }
        Ok(body)
    }
}

pub async fn create(client: &Client, args: NetworkCreateArgs) -> Result<()> {
    let resp: Value = client
        .post_json("/networks/create", Some(&args.body()?))
        .await?;
    if let Some(w) = resp["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    println!("{}", resp["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// `berth network ls`
#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// One `network ls` row.
pub fn network_row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    row(vec![
        (
            "ID",
            if trunc {
                id.chars().take(12).collect()
            } else {
                id.to_string()
            },
        ),
        ("Name", n["Name"].as_str().unwrap_or("").to_string()),
        ("Driver", n["Driver"].as_str().unwrap_or("").to_string()),
        ("Scope", n["Scope"].as_str().unwrap_or("").to_string()),
        (
            "IPv6",
            n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        ),
        (
            "Internal",
            n["Internal"].as_bool().unwrap_or(false).to_string(),
        ),
        ("Labels", labels.join(",")),
        ("CreatedAt", n["Created"].as_str().unwrap_or("").to_string()),
    ])
}

pub async fn ls(client: &Client, args: NetworkLsArgs) -> Result<()> {
    let f = opts::parse_filters(&args.filter).map_err(anyhow::Error::msg)?;
    let list: Value = client
        .get_json(&Query::new().filters(&f).to_path("/networks"))
        .await?;
    let mut nets: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    nets.sort_by(|a, b| {
        a["Name"]
            .as_str()
            .unwrap_or("")
            .cmp(b["Name"].as_str().unwrap_or(""))
    });
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| network_row(n, !args.no_trunc))
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}".to_string())
    } else {
        args.format.clone()
    };
    let lf = ListFormat {
        format: format.as_deref(),
        default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        headers: HEADERS,
    };
    print!("{}", lf.render(&rows)?);
    Ok(())
}

/// `berth network rm`
#[derive(Args, Debug)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Networks
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

pub async fn rm(client: &Client, args: NetworkRmArgs) -> Result<()> {
    let force = args.force;
    for_each(&args.networks, |n| {
        let path = format!("/networks/{}", seg(&n));
        async move {
            match client.delete(&path).await {
                Ok(_) => Ok(None),
                Err(e) if force && is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// `berth network connect`
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt")]
    pub driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long = "ip6")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link")]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip")]
    pub link_local_ip: Vec<String>,
    /// Network
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

impl ConnectArgs {
    pub fn body(&self) -> Result<Value> {
        let mut ipam = Map::new();
        if let Some(ip) = &self.ip {
            ipam.insert("IPv4Address".into(), json!(ip));
        }
        if let Some(ip) = &self.ip6 {
            ipam.insert("IPv6Address".into(), json!(ip));
        }
        if !self.link_local_ip.is_empty() {
            ipam.insert("LinkLocalIPs".into(), json!(self.link_local_ip));
        }
        let driver_opts =
            opts::parse_kv_map(&self.driver_opt, "driver-opt").map_err(anyhow::Error::msg)?;
        Ok(json!({
            "Container": self.container,
            "EndpointConfig": {
                "IPAMConfig": if ipam.is_empty() { Value::Null } else { Value::Object(ipam) },
                "Links": if self.link.is_empty() { Value::Null } else { json!(self.link) },
                "Aliases": if self.alias.is_empty() { Value::Null } else { json!(self.alias) },
                "DriverOpts": if driver_opts.is_empty() { Value::Null } else { Value::Object(driver_opts) },
            }
        }))
    }
}

pub async fn connect(client: &Client, args: ConnectArgs) -> Result<()> {
    client
        .post(
            &format!("/networks/{}/connect", seg(&args.network)),
            Some(&args.body()?),
        )
        .await?;
    Ok(())
}

/// `berth network disconnect`
#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Network
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn disconnect(client: &Client, args: DisconnectArgs) -> Result<()> {
    let body = json!({"Container": args.container, "Force": args.force});
    client
        .post(
            &format!("/networks/{}/disconnect", seg(&args.network)),
            Some(&body),
        )
        .await?;
    Ok(())
}

/// `berth network prune`
#[derive(Args, Debug)]
pub struct NetworkPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// `POST /networks/prune`; returns the removed network names.
pub async fn prune_networks(client: &Client, filter: &[String]) -> Result<Vec<String>> {
    let f = opts::parse_filters(filter).map_err(anyhow::Error::msg)?;
    let resp: Value = client
        .post_json(&Query::new().filters(&f).to_path("/networks/prune"), None)
        .await?;
    Ok(resp["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect())
}

pub async fn prune(client: &Client, args: NetworkPruneArgs) -> Result<()> {
    if !args.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(());
    }
    let names = prune_networks(client, &args.filter).await?;
    if !names.is_empty() {
        println!("Deleted Networks:");
        for n in names {
            println!("{n}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: NetworkCreateArgs,
    }

    #[test]
    fn create_body() {
        let w = Wrap::try_parse_from(["create", "n1"]).expect("parse");
        let b = w.args.body().expect("body");
        assert_eq!(b["Name"], "n1");
        assert_eq!(b["Driver"], "bridge");
        assert_eq!(b["CheckDuplicate"], true);
        assert_eq!(
            b["IPAM"],
            json!({"Driver": "default", "Options": {}, "Config": []})
        );
        let w = Wrap::try_parse_from([
            "create",
            "--subnet",
            "10.9.0.0/24",
            "--gateway",
            "10.9.0.1",
            "--label",
            "a=b",
            "--internal",
            "n2",
        ])
        .expect("parse");
        let b = w.args.body().expect("body");
        assert_eq!(
            b["IPAM"]["Config"],
            json!([{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}])
        );
        assert_eq!(b["Labels"], json!({"a": "b"}));
        assert_eq!(b["Internal"], true);
        let w = Wrap::try_parse_from(["create", "--gateway", "10.9.0.1", "n3"]).expect("parse");
        assert!(w.args.body().is_err());
    }

    #[test]
    fn ls_rows() {
        let n = json!({"Id": "83ae6cb057a5134c96bf164150be6140bc87b1c226f49e10daabe3ce503ded54", "Name": "bridge", "Driver": "bridge", "Scope": "local"});
        let r = network_row(&n, true);
        assert_eq!(r["ID"], "83ae6cb057a5");
        let lf = ListFormat {
            format: None,
            default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
            headers: HEADERS,
        };
        assert_eq!(
            lf.render(&[r]).expect("render"),
            "NETWORK ID     NAME      DRIVER    SCOPE\n83ae6cb057a5   bridge    bridge    local\n"
        );
    }
}
