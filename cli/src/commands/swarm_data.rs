//! `secret create|ls|inspect|rm` and `config create|ls|inspect|rm`: the cluster's named,
//! immutable data, as the docker CLI creates, lists and shows it. The two differ only in
//! their path, a secret's `--driver` and `DRIVER` column, and a config's data being shown.
//!
//! ```text
//!  create ──► file or stdin ──► base64 ──► POST /{secrets,configs}/create {Name,Labels,Data,…}
//!  ls ──────► GET /{secrets,configs}?filters=… ──► table / --format / -q (sorted by name)
//!  inspect ─► GET /{secrets,configs}/{name} ──► JSON / --format / --pretty
//!  rm ──────► DELETE /{secrets,configs}/{name} (refused by the daemon while a service uses it)
//! ```

use std::io::Read;

use anyhow::{Context, Result};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::{seg, Client, Query};
use crate::commands::inspect::print_found;
use crate::commands::node::{go_time, push_labels};
use crate::error::StatusError;
use crate::format::{ago, parse_rfc3339};
use crate::opts;
use crate::output::{row, ListFormat};

/// Which of the two kinds of cluster data a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    Secret,
    Config,
}

impl DataKind {
    /// `/secrets` or `/configs`.
    pub fn path(self) -> &'static str {
        match self {
            DataKind::Secret => "/secrets",
            DataKind::Config => "/configs",
        }
    }

    fn default_table(self) -> &'static str {
        match self {
            DataKind::Secret => {
                "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"
            }
            DataKind::Config => "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
        }
    }
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("CreatedAt", "CREATED"),
    ("UpdatedAt", "UPDATED"),
    ("Labels", "LABELS"),
];

/// `berth secret ...`
#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Create a secret from a file or STDIN as content
    Create(CreateArgs),
    /// List secrets
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more secrets
    Inspect(InspectArgs),
    /// Remove one or more secrets
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

/// `berth config ...`
#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Create a config from a file or STDIN
    Create(ConfigCreateArgs),
    /// List configs
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more configs
    Inspect(InspectArgs),
    /// Remove one or more configs
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

pub async fn dispatch_secret(client: &Client, cmd: SecretCmd) -> Result<()> {
    let k = DataKind::Secret;
    match cmd {
        SecretCmd::Create(a) => create(client, k, &a.common, a.driver.as_deref()).await,
        SecretCmd::Ls(a) => ls(client, k, a).await,
        SecretCmd::Inspect(a) => inspect(client, k, a).await,
        SecretCmd::Rm(a) => rm(client, k, a).await,
    }
}

pub async fn dispatch_config(client: &Client, cmd: ConfigCmd) -> Result<()> {
    let k = DataKind::Config;
    match cmd {
        ConfigCmd::Create(a) => create(client, k, &a.common, None).await,
        ConfigCmd::Ls(a) => ls(client, k, a).await,
        ConfigCmd::Inspect(a) => inspect(client, k, a).await,
        ConfigCmd::Rm(a) => rm(client, k, a).await,
    }
}

/// What `secret create` and `config create` share.
#[derive(Args, Debug)]
pub struct CommonCreate {
    /// Secret labels
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Template driver
    #[arg(long = "template-driver")]
    pub template_driver: Option<String>,
    /// Name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// File to read the content from, or "-" for STDIN
    #[arg(value_name = "file|-")]
    pub file: Option<String>,
}

/// `berth secret create`
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Secret driver
    #[arg(short = 'd', long = "driver")]
    pub driver: Option<String>,
    #[command(flatten)]
    pub common: CommonCreate,
}

/// `berth config create`
#[derive(Args, Debug)]
pub struct ConfigCreateArgs {
    #[command(flatten)]
    pub common: CommonCreate,
}

/// The content of `file` (`-` for stdin), with docker's wording when it cannot be read.
pub fn read_content(file: &str) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    if file == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("error reading content from STDIN")?;
    } else {
        let mut f = std::fs::File::open(file).map_err(|e| {
            anyhow::anyhow!(
                "error reading content from \"{file}\": open {file}: {}",
                opts::mount::io_reason(&e)
            )
        })?;
        f.read_to_end(&mut data)
            .with_context(|| format!("error reading content from \"{file}\""))?;
    }
    Ok(data)
}

/// The create body docker sends: `{"Name","Labels","Data"[,"Templating"][,"Driver"]}`.
pub fn create_body(
    name: &str,
    labels: Map<String, Value>,
    data: &[u8],
    template_driver: Option<&str>,
    driver: Option<&str>,
) -> Value {
    let mut body = json!({"Name": name, "Labels": labels});
    if driver.is_none() || !data.is_empty() {
        body["Data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    if let Some(t) = template_driver.filter(|t| !t.is_empty()) {
        body["Templating"] = json!({"Name": t});
    }
    if let Some(d) = driver.filter(|d| !d.is_empty()) {
        body["Driver"] = json!({"Name": d});
    }
    body
}

async fn create(
    client: &Client,
    kind: DataKind,
    a: &CommonCreate,
    driver: Option<&str>,
) -> Result<()> {
    let data = match (&a.file, driver) {
        (Some(f), _) => read_content(f)?,
        (None, Some(_)) => Vec::new(),
        (None, None) => {
            let what = if kind == DataKind::Secret {
                "secret"
            } else {
                "config"
            };
            return Err(StatusError::new(
                125,
                format!(
                    "\"berth {what} create\" requires exactly 2 arguments.\n\
                     See 'berth {what} create --help'."
                ),
            )
            .into());
        }
    };
    let body = create_body(
        &a.name,
        opts::parse_labels(&a.label),
        &data,
        a.template_driver.as_deref(),
        driver,
    );
    let created: Value = client
        .post_json(&format!("{}/create", kind.path()), Some(&body))
        .await?;
    println!("{}", created["ID"].as_str().unwrap_or(""));
    Ok(())
}

/// `berth secret|config ls`
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only display IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `k=v,k2=v2`, keys sorted (the `Labels` field of list rows).
pub fn joined_labels(labels: &Value) -> String {
    let mut pairs: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// One `ls` row of a secret or config object.
pub fn data_row(o: &Value) -> Value {
    let time = |k: &str| {
        parse_rfc3339(o[k].as_str().unwrap_or(""))
            .map(ago)
            .unwrap_or_default()
    };
    row(vec![
        ("ID", o["ID"].as_str().unwrap_or("").to_string()),
        ("Name", o["Spec"]["Name"].as_str().unwrap_or("").to_string()),
        (
            "Driver",
            o["Spec"]["Driver"]["Name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
        ("CreatedAt", time("CreatedAt")),
        ("UpdatedAt", time("UpdatedAt")),
        ("Labels", joined_labels(&o["Spec"]["Labels"])),
    ])
}

/// Renders `ls` rows for `--format`/`-q`.
pub fn render_rows(
    kind: DataKind,
    rows: &[Value],
    format: Option<&str>,
    quiet: bool,
) -> Result<String> {
    let format = match format {
        None | Some("") | Some("table") if quiet => Some("{{.ID}}"),
        f => f,
    };
    ListFormat {
        format,
        default_table: kind.default_table(),
        headers: HEADERS,
    }
    .render(rows)
}

async fn ls(client: &Client, kind: DataKind, a: LsArgs) -> Result<()> {
    let f = opts::parse_filters(&a.filter).map_err(anyhow::Error::msg)?;
    let mut list: Vec<Value> = client
        .get_json(&Query::new().filters(&f).to_path(kind.path()))
        .await?;
    list.sort_by(|x, y| {
        crate::commands::node::natural_cmp(
            x["Spec"]["Name"].as_str().unwrap_or(""),
            y["Spec"]["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = list.iter().map(data_row).collect();
    print!(
        "{}",
        render_rows(kind, &rows, a.format.as_deref(), a.quiet)?
    );
    Ok(())
}

/// `berth secret|config inspect`
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long = "pretty")]
    pub pretty: bool,
    /// Names or IDs
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// docker's `--pretty` text of a secret or config.
pub fn pretty_data(kind: DataKind, o: &Value) -> String {
    let spec = &o["Spec"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out = String::new();
    match kind {
        DataKind::Secret => {
            out.push_str(&format!("ID:              {}", text(&o["ID"])));
            out.push_str(&format!("\nName:              {}", text(&spec["Name"])));
            push_labels(&mut out, "Labels", &spec["Labels"]);
            out.push_str(&format!(
                "\nDriver:            {}",
                text(&spec["Driver"]["Name"])
            ));
            out.push_str(&format!(
                "\nCreated at:        {}",
                go_time(&text(&o["CreatedAt"]))
            ));
            out.push_str(&format!(
                "\nUpdated at:        {}",
                go_time(&text(&o["UpdatedAt"]))
            ));
        }
        DataKind::Config => {
            out.push_str(&format!("ID:\t\t\t{}", text(&o["ID"])));
            out.push_str(&format!("\nName:\t\t\t{}", text(&spec["Name"])));
            push_labels(&mut out, "Labels", &spec["Labels"]);
            out.push_str(&format!(
                "\nCreated at:            \t{}",
                go_time(&text(&o["CreatedAt"]))
            ));
            out.push_str(&format!(
                "\nUpdated at:            \t{}",
                go_time(&text(&o["UpdatedAt"]))
            ));
            let data = base64::engine::general_purpose::STANDARD
                .decode(text(&spec["Data"]))
                .unwrap_or_default();
            if !data.is_empty() {
                out.push_str(&format!("\nData:\n{}", String::from_utf8_lossy(&data)));
            }
        }
    }
    out
}

async fn fetch_raw(client: &Client, kind: DataKind, name: &str) -> Result<Vec<u8>> {
    let resp = client
        .get(&format!("{}/{}", kind.path(), seg(name)))
        .await?;
    Ok(resp.bytes().await?.to_vec())
}

async fn inspect(client: &Client, kind: DataKind, a: InspectArgs) -> Result<()> {
    let format = crate::format::inspect_format(a.pretty, a.format)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match fetch_raw(client, kind, name).await {
            Ok(raw) => found.push(raw),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if format.as_deref() == Some("pretty") {
        let texts: Vec<String> = found
            .iter()
            .map(|raw| {
                let v: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
                pretty_data(kind, &v)
            })
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

/// `berth secret|config rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Names or IDs
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

async fn rm(client: &Client, kind: DataKind, a: RmArgs) -> Result<()> {
    client
        .delete_each(&a.names, |name| format!("{}/{}", kind.path(), seg(name)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Value {
        json!({
            "ID": "sgn19020tnsdhb099twh86i44",
            "Version": {"Index": 14},
            "CreatedAt": "2026-11-27T22:30:52.872233995Z",
            "UpdatedAt": "2026-11-27T22:30:52.872233995Z",
            "Spec": {"Name": "s1", "Labels": {"b": "2", "a": ""}}
        })
    }

    #[test]
    fn create_bodies_match_docker() {
        assert_eq!(
            create_body("s1", Map::new(), b"vm\n", None, None),
            json!({"Name":"s1","Labels":{},"Data":"dm0K"})
        );
        assert_eq!(
            create_body(
                "c1",
                opts::parse_labels(&["k=v"]),
                b"x",
                Some("golang"),
                None
            ),
            json!({"Name":"c1","Labels":{"k":"v"},"Data":"eA==","Templating":{"Name":"golang"}})
        );
        assert_eq!(
            create_body("s", Map::new(), b"", None, Some("vault")),
            json!({"Name":"s","Labels":{},"Driver":{"Name":"vault"}})
        );
    }

    #[test]
    fn ls_tables() {
        let rows = vec![data_row(&secret())];
        let out = render_rows(DataKind::Secret, &rows, None, false).expect("render");
        let mut lines = out.lines();
        assert_eq!(
            lines
                .next()
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>),
            Some(vec!["ID", "NAME", "DRIVER", "CREATED", "UPDATED"])
        );
        assert!(lines
            .next()
            .expect("row")
            .starts_with("sgn19020tnsdhb099twh86i44   s1 "));
        let out = render_rows(DataKind::Config, &rows, None, false).expect("render");
        assert!(out.starts_with("ID                          NAME      CREATED"));
        assert_eq!(
            render_rows(DataKind::Secret, &rows, None, true).expect("render"),
            "sgn19020tnsdhb099twh86i44\n"
        );
        assert_eq!(
            render_rows(
                DataKind::Secret,
                &rows,
                Some("{{.Name}} {{.Labels}}"),
                false
            )
            .expect("render"),
            "s1 a=,b=2\n"
        );
    }

    #[test]
    fn pretty_texts() {
        let s = pretty_data(DataKind::Secret, &secret());
        assert_eq!(
            s,
            "ID:              sgn19020tnsdhb099twh86i44\n\
             Name:              s1\n\
             Labels:\n - a\n - b=2\n\
             Driver:            \n\
             Created at:        2026-11-27 22:30:52.872233995 +0000 utc\n\
             Updated at:        2026-11-27 22:30:52.872233995 +0000 utc"
        );
        let mut c = secret();
        c["Spec"]["Data"] = json!("dm0K");
        c["Spec"]["Labels"] = json!({});
        let s = pretty_data(DataKind::Config, &c);
        assert!(s.starts_with("ID:\t\t\tsgn19020tnsdhb099twh86i44\nName:\t\t\ts1\nCreated at:"));
        assert!(s.ends_with("\nData:\nvm\n"), "{s}");
    }
}
