//! `inspect` and the per-type `container|image|network|volume inspect`: raw JSON from the
//! daemon, re-indented in the daemon's key order inside one array, or each object rendered
//! through `-f/--format`. Without `--type`, a name is tried as a container, then an image, a
//! network and a volume.

use anyhow::{bail, Result};
use clap::Args;

use crate::client::{seg, Client, Query};
use crate::data::Data;
use crate::error::{is_not_found, StatusError};
use crate::format::indent_json;
use crate::output::unescape;
use crate::template::Template;

/// Kinds of objects `inspect` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind> {
        Ok(match s {
            "container" => Kind::Container,
            "image" => Kind::Image,
            "network" => Kind::Network,
            "volume" => Kind::Volume,
            other => bail!("\"{other}\" is not a valid value for --type"),
        })
    }

    fn path(self, name: &str, size: bool) -> String {
        match self {
            Kind::Container => Query::new()
                .flag("size", size)
                .to_path(&format!("/containers/{}/json", seg(name))),
            Kind::Image => format!("/images/{}/json", image_path(name)),
            Kind::Network => format!("/networks/{}", seg(name)),
            Kind::Volume => format!("/volumes/{}", seg(name)),
        }
    }
}

/// Image references go into paths as they are (`/images/127.0.0.1:5000/bb/json`), as docker
/// sends them; only characters that cannot appear in a path are escaped.
pub fn image_path(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' ' | '?' | '#' | '%' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// `berth inspect`
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Names or IDs
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

/// Arguments of `<type> inspect`.
#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Display total file sizes (containers)
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Names or IDs
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

/// The raw object, or the daemon's "not found" error text.
async fn fetch(
    client: &Client,
    kind: Kind,
    name: &str,
    size: bool,
) -> Result<Result<Vec<u8>, String>> {
    match client.get(&kind.path(name, size)).await {
        Ok(resp) => Ok(Ok(resp.bytes().await?.to_vec())),
        Err(e) if is_not_found(&e) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

pub async fn inspect(client: &Client, args: InspectArgs) -> Result<()> {
    let kind = args.kind.as_deref().map(Kind::parse).transpose()?;
    run(client, &args.names, kind, args.format.as_deref(), args.size).await
}

pub async fn typed(client: &Client, kind: Kind, args: TypedInspectArgs) -> Result<()> {
    run(
        client,
        &args.names,
        Some(kind),
        args.format.as_deref(),
        args.size,
    )
    .await
}

async fn run(
    client: &Client,
    names: &[String],
    kind: Option<Kind>,
    format: Option<&str>,
    size: bool,
) -> Result<()> {
    let order = [Kind::Container, Kind::Image, Kind::Network, Kind::Volume];
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in names {
        let kinds: Vec<Kind> = match kind {
            Some(k) => vec![k],
            None => order.to_vec(),
        };
        let mut hit = None;
        let mut last_error = String::new();
        for k in kinds {
            match fetch(client, k, name, size).await? {
                Ok(raw) => {
                    hit = Some(raw);
                    break;
                }
                Err(message) => last_error = message,
            }
        }
        match hit {
            Some(raw) => found.push(raw),
            // With --type the daemon's own message is shown, as docker does.
            None => errors.push(match kind {
                Some(_) => last_error,
                None => format!("Error: No such object: {name}"),
            }),
        }
    }
    print_found(&found, format)?;
    if !errors.is_empty() {
        return Err(StatusError::new(1, errors.join("\n")).into());
    }
    Ok(())
}

/// Prints raw objects from the daemon: re-indented inside one JSON array, or each rendered
/// through `-f/--format`.
pub fn print_found(found: &[Vec<u8>], format: Option<&str>) -> Result<()> {
    match format {
        Some(f) if !f.is_empty() && f != "json" => {
            let tmpl = Template::parse(&unescape(f))?;
            let mut out = String::new();
            for raw in found {
                let data = Data::parse(raw)
                    .map_err(|e| anyhow::anyhow!("decoding daemon response: {e}"))?;
                out.push_str(&tmpl.render_data(&data)?);
                out.push('\n');
            }
            print!("{out}");
        }
        _ => {
            let raws: Vec<String> = found
                .iter()
                .map(|r| String::from_utf8_lossy(r).trim().to_string())
                .collect();
            let joined = format!("[{}]", raws.join(","));
            println!("{}", indent_json(joined.as_bytes()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_per_kind() {
        assert_eq!(Kind::Container.path("web", false), "/containers/web/json");
        assert_eq!(
            Kind::Container.path("web", true),
            "/containers/web/json?size=1"
        );
        assert_eq!(
            Kind::Image.path("127.0.0.1:5000/bb:1", false),
            "/images/127.0.0.1:5000/bb:1/json"
        );
        assert_eq!(Kind::Network.path("n1", false), "/networks/n1");
        assert_eq!(Kind::Volume.path("v1", false), "/volumes/v1");
        assert!(Kind::parse("plugin").is_err());
    }
}
