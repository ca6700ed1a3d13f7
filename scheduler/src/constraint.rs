//! Placement constraints (`--constraint node.labels.zone==a`) and the node attributes they and
//! placement preferences name.
//!
//! Syntax and matching follow Docker's documented behaviour: `KEY==VALUE` or `KEY!=VALUE`,
//! spaces around either side ignored; keys `node.id`, `node.hostname`, `node.role`,
//! `node.platform.os`, `node.platform.arch`, `node.labels.<name>`, `engine.labels.<name>`
//! (the fixed part case-insensitive, the label name case-sensitive); values compared
//! case-insensitively. A label the node lacks has the empty value, so `!=` matches it and `==`
//! does not. As in Docker, a syntactically valid key that names no attribute is accepted
//! (the API answers 201) but matches no node; [`Constraint::is_known_key`] tells the caller.

use std::fmt;

use crate::node::{same_arch, NodeInfo};

/// A node attribute, as named by a constraint key or a preference's spread descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// `node.id`
    Id,
    /// `node.hostname`
    Hostname,
    /// `node.role`: `manager` or `worker`
    Role,
    /// `node.platform.os`
    Os,
    /// `node.platform.arch` (compared after normalisation: `amd64` == `x86_64`)
    Arch,
    /// `node.labels.<name>`
    NodeLabel(String),
    /// `engine.labels.<name>`
    EngineLabel(String),
}

const NODE_LABEL_PREFIX: &str = "node.labels.";
const ENGINE_LABEL_PREFIX: &str = "engine.labels.";

impl Attribute {
    /// The attribute a key names, or `None` for a key that names none.
    pub fn from_key(key: &str) -> Option<Attribute> {
        if let Some(name) = strip_prefix_ignore_case(key, NODE_LABEL_PREFIX) {
            return Some(Attribute::NodeLabel(name.to_owned()));
        }
        if let Some(name) = strip_prefix_ignore_case(key, ENGINE_LABEL_PREFIX) {
            return Some(Attribute::EngineLabel(name.to_owned()));
        }
        Some(match key.to_ascii_lowercase().as_str() {
            "node.id" => Attribute::Id,
            "node.hostname" => Attribute::Hostname,
            "node.role" => Attribute::Role,
            "node.platform.os" => Attribute::Os,
            "node.platform.arch" => Attribute::Arch,
            _ => return None,
        })
    }

    /// The node's value for this attribute; `None` when it is a label the node lacks.
    pub fn value_of<'n>(&self, node: &'n NodeInfo) -> Option<&'n str> {
        match self {
            Attribute::Id => Some(&node.id),
            Attribute::Hostname => Some(&node.hostname),
            Attribute::Role => Some(node.role.as_str()),
            Attribute::Os => Some(&node.os),
            Attribute::Arch => Some(&node.arch),
            Attribute::NodeLabel(name) => node.labels.get(name).map(String::as_str),
            Attribute::EngineLabel(name) => node.engine_labels.get(name).map(String::as_str),
        }
    }
}

/// `label` with its prefix removed, when it starts with `prefix` in any case and has a
/// non-empty rest.
fn strip_prefix_ignore_case<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let head = key.get(..prefix.len())?;
    let rest = &key[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equal,
    NotEqual,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
        }
    }
}

/// One parsed constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// The key as written (trimmed).
    pub key: String,
    pub operator: Operator,
    /// The value as written (trimmed).
    pub value: String,
    /// What the key names; `None` for an unknown key (matches no node).
    pub attribute: Option<Attribute>,
}

/// Why a constraint string was refused. The messages are Docker's, so the API can answer 400
/// with the text a Docker user expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintError {
    /// constraint expected one operator from ==, !=
    NoOperator { constraint: String },
    /// key '{key}' is invalid
    InvalidKey { key: String },
    /// value '{value}' is invalid
    InvalidValue { value: String },
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstraintError::NoOperator { .. } => {
                f.write_str("constraint expected one operator from ==, !=")
            }
            ConstraintError::InvalidKey { key } => write!(f, "key '{key}' is invalid"),
            ConstraintError::InvalidValue { value } => write!(f, "value '{value}' is invalid"),
        }
    }
}

impl std::error::Error for ConstraintError {}

impl Constraint {
    /// Parses one `KEY==VALUE` / `KEY!=VALUE` constraint. The key starts with a letter or `_`
    /// and continues with letters, digits, `-`, `_` and `.` (at least two characters); the
    /// value is non-empty and made of letters, digits, whitespace and `:-_.*()?+[]\^$|/`
    /// (no `=`, `<`, `>`, `~`: room for future operators). `==` is looked for first.
    pub fn parse(s: &str) -> Result<Constraint, ConstraintError> {
        let (operator, key, value) = if let Some((k, v)) = s.split_once("==") {
            (Operator::Equal, k, v)
        } else if let Some((k, v)) = s.split_once("!=") {
            (Operator::NotEqual, k, v)
        } else {
            return Err(ConstraintError::NoOperator {
                constraint: s.to_owned(),
            });
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(ConstraintError::InvalidKey {
                key: key.to_owned(),
            });
        }
        let value = value.trim();
        if !valid_value(value) {
            return Err(ConstraintError::InvalidValue {
                value: value.to_owned(),
            });
        }
        Ok(Constraint {
            key: key.to_owned(),
            operator,
            value: value.to_owned(),
            attribute: Attribute::from_key(key),
        })
    }

    /// Parses every constraint of a service; the first bad one is the error.
    pub fn parse_all<S: AsRef<str>>(list: &[S]) -> Result<Vec<Constraint>, ConstraintError> {
        list.iter().map(|s| Constraint::parse(s.as_ref())).collect()
    }

    /// Whether the key names a node attribute. Docker accepts other keys (and then never
    /// places the task); a caller may warn about them.
    pub fn is_known_key(&self) -> bool {
        self.attribute.is_some()
    }

    /// Whether `node` satisfies this constraint.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        let Some(attribute) = &self.attribute else {
            return false;
        };
        let actual = attribute.value_of(node).unwrap_or("");
        let equal = match attribute {
            Attribute::Arch => same_arch(actual, &self.value),
            _ => actual.eq_ignore_ascii_case(&self.value),
        };
        equal == (self.operator == Operator::Equal)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.key, self.operator.as_str(), self.value)
    }
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && key.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_value(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c.is_whitespace()
                || matches!(
                    c,
                    ':' | '-'
                        | '_'
                        | '.'
                        | '*'
                        | '('
                        | ')'
                        | '?'
                        | '+'
                        | '['
                        | ']'
                        | '\\'
                        | '^'
                        | '$'
                        | '|'
                        | '/'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Role;

    fn node() -> NodeInfo {
        NodeInfo {
            id: "n1abc".into(),
            hostname: "Worker-1".into(),
            role: Role::Worker,
            os: "linux".into(),
            arch: "x86_64".into(),
            labels: [("zone".to_owned(), "A".to_owned())].into(),
            engine_labels: [("storage".to_owned(), "ssd".to_owned())].into(),
            ..NodeInfo::default()
        }
    }

    fn c(s: &str) -> Constraint {
        Constraint::parse(s).expect("valid constraint")
    }

    #[test]
    fn parses_both_operators_and_trims_spaces() {
        let k = c(" node.labels.zone == a ");
        assert_eq!(k.key, "node.labels.zone");
        assert_eq!(k.operator, Operator::Equal);
        assert_eq!(k.value, "a");
        assert_eq!(k.attribute, Some(Attribute::NodeLabel("zone".into())));
        assert_eq!(k.to_string(), "node.labels.zone==a");
        let k = c("node.role!=manager");
        assert_eq!(k.operator, Operator::NotEqual);
        assert_eq!(k.attribute, Some(Attribute::Role));
    }

    #[test]
    fn rejects_bad_syntax_with_dockers_messages() {
        let err = |s: &str| Constraint::parse(s).expect_err("invalid").to_string();
        assert_eq!(
            err("node.role=manager"),
            "constraint expected one operator from ==, !="
        );
        assert_eq!(err(""), "constraint expected one operator from ==, !=");
        assert_eq!(err("==manager"), "key '' is invalid");
        assert_eq!(err("1node.role==manager"), "key '1node.role' is invalid");
        assert_eq!(err("node role==manager"), "key 'node role' is invalid");
        assert_eq!(err("node.role=="), "value '' is invalid");
        assert_eq!(err("node.labels.a==b==c"), "value 'b==c' is invalid");
        assert_eq!(err("node.labels.a==<b"), "value '<b' is invalid");
        let all = Constraint::parse_all(&["node.role==worker", "bogus"]);
        assert!(matches!(all, Err(ConstraintError::NoOperator { .. })));
    }

    #[test]
    fn unknown_keys_parse_but_match_nothing() {
        let k = c("node.colour==blue");
        assert!(!k.is_known_key());
        assert!(!k.matches(&node()));
        assert!(!c("node.colour!=blue").matches(&node()));
    }

    #[test]
    fn matches_every_attribute() {
        let n = node();
        assert!(c("node.id==n1abc").matches(&n));
        assert!(!c("node.id==n1ab").matches(&n));
        assert!(
            c("node.hostname==worker-1").matches(&n),
            "values ignore case"
        );
        assert!(c("node.role==worker").matches(&n));
        assert!(c("node.role!=manager").matches(&n));
        assert!(!c("node.role==manager").matches(&n));
        assert!(c("node.platform.os==linux").matches(&n));
        assert!(
            c("node.platform.arch==amd64").matches(&n),
            "amd64 is x86_64"
        );
        assert!(c("node.platform.arch!=arm64").matches(&n));
        assert!(
            c("NODE.LABELS.zone==a").matches(&n),
            "the fixed part ignores case"
        );
        assert!(
            !c("node.labels.ZONE==a").matches(&n),
            "label names keep their case"
        );
        assert!(c("engine.labels.storage==ssd").matches(&n));
        assert!(!c("engine.labels.storage!=ssd").matches(&n));
    }

    #[test]
    fn a_missing_label_is_empty() {
        let n = node();
        assert!(!c("node.labels.rack==r1").matches(&n));
        assert!(c("node.labels.rack!=r1").matches(&n));
        assert!(!c("engine.labels.gpu==yes").matches(&n));
    }
}
