//! Healthchecks, the pure part: a container's `Healthcheck` (what to probe and how often),
//! its health (`State.Health` in inspect: status, failing streak, the last results), and the
//! rules dockerd applies to both. `probe.rs` runs the probes.
//!
//! ```text
//!  create: Healthcheck (body, else the image's, merged field by field) ─► HealthConfig::validate
//!          ─► stored normalised in the record's config (zero fields omitted, as dockerd shows it)
//!  start:  Health::starting ─► probe.rs every next_delay(): one exec ─► ProbeResult
//!          ─► Health::record ─► a status change is persisted and published (`health_status: …`)
//! ```
//! Durations are nanoseconds, as in Docker's API. `Test` is `["NONE"]` (no healthcheck, also
//! what `--no-healthcheck` sends), `["CMD", arg…]` (exec'd directly) or `["CMD-SHELL", cmd]`
//! (run by the container's shell, `/bin/sh -c` unless `SHELL` set one); an empty `Test`
//! inherits the image's.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ContainerError;

/// Between two probes (from the end of one to the start of the next), and before the first.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// How long one probe may run before it is killed and counted as failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Consecutive failures that make a container `unhealthy`.
pub const DEFAULT_RETRIES: i64 = 3;
/// How many results `State.Health.Log` keeps.
pub const MAX_LOG_ENTRIES: usize = 5;
/// How much of a probe's output is kept (more is cut and marked with `...`).
pub const MAX_OUTPUT: usize = 4096;

/// Docker's `HealthConfig`. Zero fields mean "the image's, else the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// dockerd's `containertypes.MinimumDuration`.
const MINIMUM_NANOS: i64 = 1_000_000;

impl HealthConfig {
    /// Parses the `Healthcheck` object of a create body or an image config.
    pub fn from_value(v: &Value) -> Result<HealthConfig, ContainerError> {
        HealthConfig::deserialize(v)
            .map_err(|e| ContainerError::Invalid(format!("invalid Healthcheck: {e}")))
    }

    /// As Docker shows it: zero fields left out.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// dockerd's checks at create, with its messages.
    pub fn validate(&self) -> Result<(), ContainerError> {
        let min = go_duration(MINIMUM_NANOS);
        let too_short = |v: i64| v != 0 && v < MINIMUM_NANOS;
        let bad = |field: &str| {
            Err(ContainerError::Invalid(format!(
                "{field} in Healthcheck cannot be less than {min}"
            )))
        };
        if too_short(self.interval) {
            return bad("Interval");
        }
        if too_short(self.timeout) {
            return bad("Timeout");
        }
        if self.retries < 0 {
            return Err(ContainerError::Invalid(
                "Retries in Healthcheck cannot be negative".into(),
            ));
        }
        if too_short(self.start_period) {
            return bad("StartPeriod");
        }
        if too_short(self.start_interval) {
            return bad("StartInterval");
        }
        Ok(())
    }

    /// Fills what the user left zero from the image's healthcheck (dockerd's `merge`).
    pub fn inherit(&mut self, image: &HealthConfig) {
        if self.test.is_empty() {
            self.test = image.test.clone();
        }
        let fill = |mine: &mut i64, theirs: i64| {
            if *mine == 0 {
                *mine = theirs;
            }
        };
        fill(&mut self.interval, image.interval);
        fill(&mut self.timeout, image.timeout);
        fill(&mut self.start_period, image.start_period);
        fill(&mut self.start_interval, image.start_interval);
        fill(&mut self.retries, image.retries);
    }

    /// The command a probe runs, or `None` when nothing is probed (no test, `NONE`, or a
    /// kind dockerd does not know either). `shell`: the container's `Shell`, if it has one.
    pub fn probe_command(&self, shell: Option<&[String]>) -> Option<Vec<String>> {
        let (kind, rest) = self.test.split_first()?;
        match kind.as_str() {
            "CMD" => Some(rest.to_vec()),
            "CMD-SHELL" => {
                let mut cmd = match shell {
                    Some(s) if !s.is_empty() => s.to_vec(),
                    _ => vec!["/bin/sh".to_owned(), "-c".to_owned()],
                };
                cmd.extend(rest.iter().cloned());
                Some(cmd)
            }
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        or_default(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        or_default(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        or_default(self.start_period, Duration::ZERO)
    }

    /// Between probes during the start period while `starting`; zero inherits the interval
    /// (the API's "0 means inherit", and dockerd 20.10, which has no start interval).
    pub fn start_interval(&self) -> Duration {
        or_default(self.start_interval, self.interval())
    }

    pub fn retries(&self) -> i64 {
        if self.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }

    /// How long to wait before the next probe, `since_start` after the container started
    /// (dockerd's `getInterval`): the start interval while `starting` inside the start
    /// period, and a probe right when the start period ends.
    pub fn next_delay(&self, since_start: Duration, status: HealthStatus) -> Duration {
        let (period, interval) = (self.start_period(), self.interval());
        if since_start >= period {
            return interval;
        }
        let remaining = period - since_start;
        if remaining < interval {
            return remaining;
        }
        if status == HealthStatus::Starting {
            self.start_interval()
        } else {
            interval
        }
    }
}

fn or_default(nanos: i64, default: Duration) -> Duration {
    if nanos <= 0 {
        default
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

/// The user's `Healthcheck` merged with the image's, validated and normalised, as stored in
/// the container's config. A malformed image healthcheck is ignored (the user can't fix it).
pub fn merge_for_create(
    user: Option<&Value>,
    image: Option<&Value>,
) -> Result<Option<Value>, ContainerError> {
    let user = user.map(HealthConfig::from_value).transpose()?;
    if let Some(u) = &user {
        u.validate()?;
    }
    let image = image.and_then(|v| HealthConfig::from_value(v).ok());
    let merged = match (user, image) {
        (None, None) => return Ok(None),
        (Some(u), None) => u,
        (None, Some(i)) => i,
        (Some(mut u), Some(i)) => {
            u.inherit(&i);
            u
        }
    };
    Ok(Some(merged.to_value()))
}

/// A container's health status (`State.Health.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Not yet healthy: no probe has passed since the container started.
    Starting,
    Healthy,
    /// `Retries` probes in a row failed (outside the start period).
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    pub fn parse(s: &str) -> Option<HealthStatus> {
        match s {
            "starting" => Some(HealthStatus::Starting),
            "healthy" => Some(HealthStatus::Healthy),
            "unhealthy" => Some(HealthStatus::Unhealthy),
            _ => None,
        }
    }

    /// How `ps` shows it after `Up …`: `(healthy)`, `(unhealthy)`, `(health: starting)`.
    pub fn ps_suffix(self) -> &'static str {
        match self {
            HealthStatus::Starting => "(health: starting)",
            HealthStatus::Healthy => "(healthy)",
            HealthStatus::Unhealthy => "(unhealthy)",
        }
    }
}

/// One probe's result, as `State.Health.Log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    /// RFC 3339 with nanoseconds.
    pub start: String,
    pub end: String,
    /// The probe's exit code; -1 when it timed out or could not run.
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`: kept in the container's record (persisted when the status changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// The health of a run that just started: `starting`, no failures, the log of earlier
    /// runs kept (as dockerd does).
    pub fn starting(before: Option<Health>) -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: before.map(|h| h.log).unwrap_or_default(),
        }
    }

    /// Applies a probe's result (dockerd's `handleProbeResult`); returns the new status when
    /// it changed. `in_start_period`: the probe started within the start period, where a
    /// failure of a container never yet healthy does not count.
    pub fn record(
        &mut self,
        result: ProbeResult,
        retries: i64,
        in_start_period: bool,
    ) -> Option<HealthStatus> {
        let before = self.status;
        let passed = result.exit_code == 0;
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.drain(..=self.log.len() - MAX_LOG_ENTRIES);
        }
        self.log.push(result);
        if passed {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        (self.status != before).then_some(self.status)
    }
}

/// Go's `time.Duration.String()`: `1s`, `1.5s`, `500ms`, `1m30s`, `2h0m0s`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let body = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", decimal(n, 1_000))
    } else if n < 1_000_000_000 {
        format!("{}ms", decimal(n, 1_000_000))
    } else {
        let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
        let (m, s) = (rest / 60_000_000_000, rest % 60_000_000_000);
        let secs = decimal(s, 1_000_000_000);
        match (h, m) {
            (0, 0) => format!("{secs}s"),
            (0, m) => format!("{m}m{secs}s"),
            (h, m) => format!("{h}h{m}m{secs}s"),
        }
    };
    format!("{sign}{body}")
}

/// `v / unit` with the fraction's trailing zeros dropped.
fn decimal(v: u64, unit: u64) -> String {
    let (whole, frac) = (v / unit, v % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Keeps the first [`MAX_OUTPUT`] bytes of a probe's output; `...` marks a cut.
#[derive(Debug, Default)]
pub struct OutputBuffer {
    buf: Vec<u8>,
    truncated: bool,
}

impl OutputBuffer {
    pub fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            start: "2026-01-01T00:00:00Z".into(),
            end: "2026-01-01T00:00:01Z".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_000_000), "1ms");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_000_000_000), "1s");
        assert_eq!(go_duration(2_500_000_000), "2.5s");
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(7_200_000_000_000), "2h0m0s");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(12), "12ns");
        assert_eq!(go_duration(-1_000_000_000), "-1s");
    }

    #[test]
    fn config_shows_like_docker_and_accepts_nulls() {
        // What our CLI sends for `--health-cmd true --health-interval 1s`.
        let sent = json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000u64,
                          "Timeout": 0, "StartPeriod": null, "Retries": 0});
        let c = HealthConfig::from_value(&sent).expect("parses");
        assert_eq!(
            c.to_value(),
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000u64})
        );
        let none = HealthConfig::from_value(&json!({"Test": null})).expect("null test");
        assert!(none.test.is_empty());
        assert!(HealthConfig::from_value(&json!({"Interval": "1s"}))
            .is_err_and(|e| e.to_string().starts_with("invalid Healthcheck")));
    }

    #[test]
    fn validation_uses_dockerds_messages() {
        let msg = |c: HealthConfig| c.validate().expect_err("refused").to_string();
        let ok = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 1_000_000,
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        assert_eq!(
            msg(HealthConfig {
                interval: 999_999,
                ..Default::default()
            }),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            msg(HealthConfig {
                timeout: -5,
                ..Default::default()
            }),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            msg(HealthConfig {
                retries: -1,
                ..Default::default()
            }),
            "Retries in Healthcheck cannot be negative"
        );
        assert_eq!(
            msg(HealthConfig {
                start_period: 10,
                ..Default::default()
            }),
            "StartPeriod in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            msg(HealthConfig {
                start_interval: 10,
                ..Default::default()
            }),
            "StartInterval in Healthcheck cannot be less than 1ms"
        );
    }

    #[test]
    fn user_fields_win_and_zero_ones_come_from_the_image() {
        let image = json!({"Test": ["CMD", "check"], "Interval": 5_000_000_000u64, "Retries": 7});
        let user = json!({"Interval": 1_000_000_000u64});
        let merged = merge_for_create(Some(&user), Some(&image))
            .expect("merges")
            .expect("some");
        assert_eq!(
            merged,
            json!({"Test": ["CMD", "check"], "Interval": 1_000_000_000u64, "Retries": 7})
        );
        // --no-healthcheck keeps NONE, which probes nothing.
        let none = merge_for_create(Some(&json!({"Test": ["NONE"]})), Some(&image))
            .expect("merges")
            .expect("some");
        let none = HealthConfig::from_value(&none).expect("parses");
        assert_eq!(none.test, vec!["NONE"]);
        assert_eq!(none.probe_command(None), None);
        assert_eq!(merge_for_create(None, None).expect("ok"), None);
        // The image's alone; a malformed image healthcheck is ignored.
        assert!(merge_for_create(None, Some(&image)).expect("ok").is_some());
        assert_eq!(
            merge_for_create(None, Some(&json!({"Interval": "x"}))).expect("ok"),
            None
        );
        // The user's is checked before it is merged.
        assert!(merge_for_create(Some(&json!({"Retries": -2})), Some(&image)).is_err());
    }

    #[test]
    fn probe_commands() {
        let c = |t: &[&str]| HealthConfig {
            test: t.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            c(&["CMD", "ls", "-l"]).probe_command(None),
            Some(vec!["ls".to_owned(), "-l".to_owned()])
        );
        assert_eq!(
            c(&["CMD-SHELL", "echo hi"]).probe_command(None),
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        let shell = vec!["/bin/bash".to_owned(), "-ec".to_owned()];
        assert_eq!(
            c(&["CMD-SHELL", "x"]).probe_command(Some(&shell)),
            Some(vec!["/bin/bash".into(), "-ec".into(), "x".into()])
        );
        assert_eq!(c(&["NONE"]).probe_command(None), None);
        assert_eq!(c(&["WHAT", "x"]).probe_command(None), None);
        assert_eq!(c(&[]).probe_command(None), None);
    }

    #[test]
    fn delays_follow_dockerd() {
        let c = HealthConfig {
            interval: 30_000_000_000,
            start_period: 60_000_000_000,
            start_interval: 2_000_000_000,
            ..Default::default()
        };
        // Starting, deep inside the start period: the start interval.
        assert_eq!(c.next_delay(secs(0), HealthStatus::Starting), secs(2));
        // Healthy inside it: the interval.
        assert_eq!(c.next_delay(secs(0), HealthStatus::Healthy), secs(30));
        // Less than an interval of start period left: probe when it ends.
        assert_eq!(c.next_delay(secs(50), HealthStatus::Starting), secs(10));
        // After it: the interval.
        assert_eq!(c.next_delay(secs(61), HealthStatus::Starting), secs(30));
        // No start interval: the interval, in the start period too.
        let inherit = HealthConfig {
            interval: 100_000_000,
            start_period: 60_000_000_000,
            ..Default::default()
        };
        assert_eq!(
            inherit.next_delay(secs(0), HealthStatus::Starting),
            Duration::from_millis(100)
        );
        // Defaults: 30 s, and no start period.
        let d = HealthConfig::default();
        assert_eq!(d.next_delay(secs(0), HealthStatus::Starting), secs(30));
        assert_eq!(d.timeout(), secs(30));
        assert_eq!(d.retries(), 3);
    }

    #[test]
    fn results_move_the_status_like_dockerd() {
        let mut h = Health::starting(None);
        // Failures inside the start period don't count while starting.
        assert_eq!(h.record(result(1), 2, true), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(0), 2, true), Some(HealthStatus::Healthy));
        // Once healthy, even failures inside the start period count.
        assert_eq!(h.record(result(1), 2, true), None);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(
            h.record(result(-1), 2, false),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(h.failing_streak, 2);
        assert_eq!(h.record(result(1), 2, false), None);
        assert_eq!(h.record(result(0), 2, false), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        // The log keeps the last five, oldest first.
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(h.log.last().map(|r| r.exit_code), Some(0));
        assert_eq!(h.log[0].exit_code, 0, "the first two results were dropped");
        // A new run starts over, keeping the log.
        let again = Health::starting(Some(h.clone()));
        assert_eq!(again.status, HealthStatus::Starting);
        assert_eq!(again.log, h.log);
    }

    #[test]
    fn health_serialises_as_inspect_shows_it() {
        let mut h = Health::starting(None);
        h.record(result(0), 3, false);
        let v = serde_json::to_value(&h).expect("json");
        assert_eq!(v["Status"], "healthy");
        assert_eq!(v["FailingStreak"], 0);
        assert_eq!(v["Log"][0]["ExitCode"], 0);
        assert_eq!(v["Log"][0]["Output"], "");
        assert!(v["Log"][0]["Start"].is_string() && v["Log"][0]["End"].is_string());
        let back: Health = serde_json::from_value(v).expect("reads back");
        assert_eq!(back, h);
    }

    #[test]
    fn output_is_cut_at_4096_bytes() {
        let mut b = OutputBuffer::default();
        b.push(b"hello ");
        b.push(&[b'x'; 5000]);
        let t = b.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.starts_with("hello x") && t.ends_with("x..."));
        let mut small = OutputBuffer::default();
        small.push(b"ok\n");
        assert_eq!(small.text(), "ok\n");
    }
}
