//! The event bus behind `GET /events`: every part of the engine publishes here; readers get a
//! replay of the recent history (for `since`) followed by live events.
//!
//! Like dockerd, history is kept in memory (the last [`HISTORY`] events).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

#[derive(Debug, Clone)]
pub struct Event {
    /// container, image, network, volume, daemon, ...
    pub kind: &'static str,
    pub action: String,
    pub actor_id: String,
    pub attributes: BTreeMap<String, String>,
    pub time_nano: i64,
}

impl Event {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": { "ID": self.actor_id, "Attributes": self.attributes },
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        // The legacy fields appear only on container and image events.
        if self.kind == "container" || self.kind == "image" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.actor_id);
            if let Some(from) = self.attributes.get("image") {
                v["from"] = json!(from);
            }
        }
        v
    }
}

#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    history: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(HISTORY);
        Events {
            inner: Arc::new(Inner {
                history: Mutex::new(VecDeque::new()),
                tx,
            }),
        }
    }

    pub fn publish(
        &self,
        kind: &'static str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let ev = Event {
            kind,
            action: action.to_owned(),
            actor_id: actor_id.to_owned(),
            attributes,
            time_nano: now_nanos(),
        };
        let mut h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(ev.clone());
        // Sent while holding the history lock, so a subscriber that snapshots history under the
        // same lock sees every event exactly once.
        let _ = self.inner.tx.send(ev);
    }

    /// The recorded history and a receiver for everything after it, with no gap or overlap.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.inner.tx.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_carry_legacy_fields() {
        let ev = Events::new();
        let mut attrs = BTreeMap::new();
        attrs.insert("image".into(), "busybox".into());
        attrs.insert("name".into(), "web".into());
        ev.publish("container", "start", "abc", attrs);
        let (hist, _rx) = ev.subscribe();
        let v = hist[0].to_json();
        assert_eq!(v["status"], "start");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["Type"], "container");
    }
}
