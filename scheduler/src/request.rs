//! What a task asks of its node: the placement part of a service's task template.

use std::fmt;

use crate::constraint::{Attribute, Constraint};
use crate::node::{same_arch, NodeInfo, Protocol};

/// How to choose among the suitable nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Swarm's: the node with the fewest tasks of this service, then the fewest tasks in all,
    /// then the lowest node id.
    #[default]
    Spread,
    /// Nomad's default: the node that is most utilised (mean of CPU and memory reserved over
    /// capacity, counted after this task) and still fits, then the one with most tasks, then
    /// the lowest node id. Without reservations it fills the busiest node first.
    Binpack,
}

/// A platform an image can run on (`TaskTemplate.Placement.Platforms`). Empty fields match
/// anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    /// Whether `node` can run this platform. A node that does not report its OS or
    /// architecture matches on that field.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        let os = self.os.is_empty() || node.os.is_empty() || self.os.eq_ignore_ascii_case(&node.os);
        let arch =
            self.arch.is_empty() || node.arch.is_empty() || same_arch(&self.arch, &node.arch);
        os && arch
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = if self.os.is_empty() { "*" } else { &self.os };
        let arch = if self.arch.is_empty() {
            "*"
        } else {
            &self.arch
        };
        write!(f, "{os}/{arch}")
    }
}

/// A placement preference (`--placement-pref spread=node.labels.zone`; API
/// `{"Spread": {"SpreadDescriptor": "node.labels.zone"}}`). Docker has only `spread`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Preference {
    /// The descriptor as written.
    pub descriptor: String,
    /// The attribute whose values tasks are evened out across.
    pub attribute: Attribute,
}

/// Why a placement preference was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceError {
    /// invalid placement preference '{preference}': expected spread=<node.labels.NAME|...>
    Syntax { preference: String },
    /// unsupported spread descriptor '{descriptor}' (expected node.labels.NAME, ...)
    Descriptor { descriptor: String },
}

impl fmt::Display for PreferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreferenceError::Syntax { preference } => write!(
                f,
                "invalid placement preference '{preference}': expected spread=<descriptor>, \
                 e.g. spread=node.labels.zone"
            ),
            PreferenceError::Descriptor { descriptor } => write!(
                f,
                "unsupported spread descriptor '{descriptor}' (expected node.labels.NAME, \
                 engine.labels.NAME, node.id, node.hostname, node.role, node.platform.os \
                 or node.platform.arch)"
            ),
        }
    }
}

impl std::error::Error for PreferenceError {}

impl Preference {
    /// A spread preference over the attribute `descriptor` names (the API's
    /// `SpreadDescriptor`): `node.labels.NAME` and `engine.labels.NAME` as in Docker, and, as
    /// an extension, every other attribute a constraint can name.
    pub fn spread(descriptor: &str) -> Result<Preference, PreferenceError> {
        let descriptor = descriptor.trim();
        let attribute =
            Attribute::from_key(descriptor).ok_or_else(|| PreferenceError::Descriptor {
                descriptor: descriptor.to_owned(),
            })?;
        Ok(Preference {
            descriptor: descriptor.to_owned(),
            attribute,
        })
    }

    /// Parses the CLI form, `spread=node.labels.zone`.
    pub fn parse(s: &str) -> Result<Preference, PreferenceError> {
        match s.split_once('=') {
            Some((kind, descriptor)) if kind.trim().eq_ignore_ascii_case("spread") => {
                Preference::spread(descriptor)
            }
            _ => Err(PreferenceError::Syntax {
                preference: s.to_owned(),
            }),
        }
    }
}

/// The placement-relevant part of one task (every task of a service asks the same).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskRequest {
    pub service_id: String,
    /// Every one must hold (parsed with [`Constraint::parse`]).
    pub constraints: Vec<Constraint>,
    /// Applied in order: tasks are evened out across the values of the first, then within
    /// each of those across the values of the second, and so on.
    pub preferences: Vec<Preference>,
    /// The node must match one of them; empty means any.
    pub platforms: Vec<Platform>,
    /// Reservations, in billionths of a CPU and in bytes; 0 reserves nothing.
    pub reserve_nano_cpus: i64,
    pub reserve_memory: i64,
    /// Host-mode published ports; a node where one is taken is unsuitable.
    pub host_ports: Vec<(Protocol, u16)>,
    /// At most this many tasks of the service per node; 0 means no limit.
    pub max_replicas_per_node: u64,
    pub strategy: Strategy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_parse_the_cli_form() {
        let p = Preference::parse("spread=node.labels.zone").expect("valid");
        assert_eq!(p.attribute, Attribute::NodeLabel("zone".into()));
        assert_eq!(p.descriptor, "node.labels.zone");
        let p = Preference::spread("engine.labels.rack").expect("valid");
        assert_eq!(p.attribute, Attribute::EngineLabel("rack".into()));
        assert!(matches!(
            Preference::parse("binpack=node.labels.zone"),
            Err(PreferenceError::Syntax { .. })
        ));
        let err = Preference::parse("spread=node.colour").expect_err("unknown descriptor");
        assert!(err.to_string().contains("'node.colour'"), "{err}");
    }

    #[test]
    fn platforms_match_with_normalised_architectures() {
        let node = NodeInfo {
            os: "linux".into(),
            arch: "aarch64".into(),
            ..NodeInfo::default()
        };
        let p = |os: &str, arch: &str| Platform {
            os: os.into(),
            arch: arch.into(),
        };
        assert!(p("linux", "arm64").matches(&node));
        assert!(p("", "arm64").matches(&node));
        assert!(p("Linux", "").matches(&node));
        assert!(!p("linux", "amd64").matches(&node));
        assert!(!p("windows", "arm64").matches(&node));
        assert_eq!(p("linux", "").to_string(), "linux/*");
    }
}
