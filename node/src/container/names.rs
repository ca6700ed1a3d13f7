//! Container names: Docker's validation rule and generated `adjective_name` names.

use rand::Rng;

use super::{ContainerError, Containers};

/// `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`
pub fn validate(name: &str) -> Result<String, ContainerError> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = n.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(n.to_owned())
    } else {
        Err(ContainerError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const LEFT: [&str; 24] = [
    "brave",
    "calm",
    "clever",
    "eager",
    "fervent",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "merry",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "zealous",
];
const RIGHT: [&str; 24] = [
    "anchor", "beacon", "buoy", "cove", "dock", "ferry", "galley", "harbor", "hull", "jetty",
    "keel", "lagoon", "mast", "mooring", "pier", "quay", "reef", "rudder", "sail", "schooner",
    "skiff", "tide", "wharf", "yawl",
];

pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    for attempt in 0.. {
        let mut n = format!(
            "{}_{}",
            LEFT[rng.random_range(0..LEFT.len())],
            RIGHT[rng.random_range(0..RIGHT.len())]
        );
        if attempt > 8 {
            n.push_str(&rng.random_range(0..1000).to_string());
        }
        if !taken(&n) {
            return n;
        }
    }
    unreachable!("the loop returns")
}

impl Containers {
    pub async fn rename(&self, key: &str, new: &str) -> Result<(), ContainerError> {
        let c = self.get(key)?;
        let new = validate(new)?;
        let old = c.record().name;
        {
            let mut map = self.inner.names.lock().unwrap_or_else(|p| p.into_inner());
            if old == new {
                return Err(ContainerError::Invalid(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            if let Some(other) = map.get(&new) {
                return Err(ContainerError::Conflict(format!(
                    "Conflict. The container name \"/{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            map.remove(&old);
            map.insert(new.clone(), c.id.clone());
        }
        c.update(|r| r.name = new.clone());
        self.persist(&c)?;
        self.emit(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_name_rule() {
        assert_eq!(validate("/web").expect("ok"), "web");
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("bad name").is_err());
        assert!(validate("ok_1.2-3").is_ok());
    }

    #[test]
    fn generated_names_avoid_taken() {
        let n = generate(|n| n.starts_with('b'));
        assert!(!n.starts_with('b'));
        assert!(validate(&n).is_ok());
    }
}
