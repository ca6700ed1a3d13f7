//! Log drivers and their options: what `--log-driver`/`--log-opt` (and daemon.json's
//! `log-driver`/`log-opts`) may say, Docker's defaults and messages, and what the shim is told.
//!
//! ```text
//!  HostConfig.LogConfig ─► merge_and_validate (create: daemon defaults filled in, 400 if bad)
//!                             │ stored in the record, shown by inspect as is
//!                             ▼
//!                          LogSettings::from_config (start) ─► shim_args ─► berth-shim
//! ```
//! Drivers: `json-file` (the default; one JSON object per line), `local` (Docker's defaults
//! 20 MiB × 5 files, compressed; stored in the same JSON-lines format, not Docker's protobuf
//! frames) and `none` (no file at all; `logs` is refused). Rotation is the shim's job
//! (shim/src/logfile.rs): `<file>`, `<file>.1`, … `<file>.N-1`, with `.gz` when compressed.

use std::collections::BTreeMap;

use super::model::LogConfig;

/// The driver when neither the container nor the daemon names one.
pub const DEFAULT_DRIVER: &str = "json-file";
/// Drivers this engine has (what `info` lists under `Plugins.Log`, `none` aside).
pub const DRIVERS: &[&str] = &["json-file", "local"];

/// `local`'s defaults (Docker's `daemon/logger/local`): 20 MiB, 5 files, compressed.
const LOCAL_MAX_SIZE: u64 = 20 * 1024 * 1024;
const LOCAL_MAX_FILES: u32 = 5;

/// A log configuration that can't be used; the message is Docker's where Docker has one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct LogConfigError(pub String);

fn bad(msg: impl Into<String>) -> LogConfigError {
    LogConfigError(msg.into())
}

/// Which driver, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDriver {
    JsonFile,
    Local,
    None,
}

/// What the shim needs to write (and `logs` to read) a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub driver: LogDriver,
    /// Rotate when the file has reached this many bytes; `None` never rotates.
    pub max_size: Option<u64>,
    /// Files kept, the live one included (at least 1; 1 truncates instead of rotating).
    pub max_files: u32,
    /// Rotated files are gzipped (`<file>.N.gz`).
    pub compress: bool,
}

/// Fills in the daemon's defaults as dockerd does (`mergeAndVerifyLogConfig`), then checks
/// the result: a missing type takes the daemon's; options of the daemon's type are added
/// where the container set none of its own. Called at create, so a bad option is a 400 and
/// nothing is made; the merged config is what the record keeps and inspect shows.
pub fn merge_and_validate(
    cfg: &mut LogConfig,
    defaults: &LogConfig,
) -> Result<LogSettings, LogConfigError> {
    if cfg.kind.is_empty() {
        cfg.kind = if defaults.kind.is_empty() {
            DEFAULT_DRIVER.to_owned()
        } else {
            defaults.kind.clone()
        };
    }
    if cfg.kind == defaults.kind {
        for (k, v) in &defaults.config {
            cfg.config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    LogSettings::from_config(cfg)
}

impl LogSettings {
    /// Validates a (merged) config: driver known, option names known to that driver (in
    /// dockerd's order: `mode`, `max-buffer-size`, then the driver's own), values parse.
    /// An empty type is `json-file` (records made before log drivers were honoured).
    pub fn from_config(cfg: &LogConfig) -> Result<LogSettings, LogConfigError> {
        let kind = if cfg.kind.is_empty() {
            DEFAULT_DRIVER
        } else {
            cfg.kind.as_str()
        };
        if kind == "none" {
            // dockerd checks nothing else for `none`, not even the option names.
            return Ok(LogSettings {
                driver: LogDriver::None,
                max_size: None,
                max_files: 1,
                compress: false,
            });
        }
        check_builtin_opts(&cfg.config)?;
        let opts: BTreeMap<&str, &str> = cfg
            .config
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "mode" | "max-buffer-size"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match kind {
            "json-file" => json_file(&opts),
            "local" => local(&opts),
            other => Err(bad(format!(
                "logger: no log driver named '{other}' is registered"
            ))),
        }
    }

    /// The `berth-shim init` arguments for this log; `file` is where the live file goes.
    pub fn shim_args(&self, file: &std::path::Path) -> Vec<(&'static str, String)> {
        if self.driver == LogDriver::None {
            return Vec::new();
        }
        let mut a = vec![("--log", file.display().to_string())];
        if let Some(size) = self.max_size {
            a.push(("--log-max-size", size.to_string()));
            a.push(("--log-max-file", self.max_files.to_string()));
            if self.compress {
                a.push(("--log-compress", "1".to_owned()));
            }
        }
        a
    }
}

/// `mode` and `max-buffer-size`, which every driver but `none` accepts.
fn check_builtin_opts(cfg: &BTreeMap<String, String>) -> Result<(), LogConfigError> {
    let mode = cfg.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(bad(format!("logger: logging mode not supported: {mode}")));
    }
    if let Some(s) = cfg.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err(bad(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ));
        }
        ram_in_bytes(s).map_err(|e| bad(format!("error parsing option max-buffer-size: {e}")))?;
    }
    Ok(())
}

/// `json-file`: `max-size` (no rotation without it), `max-file` (default 1), `compress`;
/// `labels`, `labels-regex`, `env`, `env-regex` and `tag` are accepted and have no effect.
fn json_file(opts: &BTreeMap<&str, &str>) -> Result<LogSettings, LogConfigError> {
    for key in opts.keys() {
        if !matches!(
            *key,
            "max-file"
                | "max-size"
                | "compress"
                | "labels"
                | "labels-regex"
                | "env"
                | "env-regex"
                | "tag"
        ) {
            return Err(bad(format!(
                "unknown log opt '{key}' for json-file log driver"
            )));
        }
    }
    let max_size = match opts.get("max-size") {
        None => None,
        Some(s) => match from_human_size(s)? {
            n if n <= 0 => return Err(bad("max-size must be a positive number")),
            n => Some(n as u64),
        },
    };
    let max_files = match opts.get("max-file") {
        None => 1,
        Some(s) => match atoi(s)? {
            n if n < 1 => return Err(bad("max-file cannot be less than 1")),
            n => u32::try_from(n).map_err(|_| bad(format!("max-file {n} is too large")))?,
        },
    };
    let compress = match opts.get("compress") {
        None => false,
        Some(s) => parse_bool(s)?,
    };
    if compress && (max_files == 1 || max_size.is_none()) {
        return Err(bad(
            "compress cannot be true when max-file is less than 2 or max-size is not set",
        ));
    }
    Ok(LogSettings {
        driver: LogDriver::JsonFile,
        max_size,
        max_files,
        compress,
    })
}

/// `local`: `max-size` (default 20 MiB), `max-file` (default 5), `compress` (default true).
fn local(opts: &BTreeMap<&str, &str>) -> Result<LogSettings, LogConfigError> {
    if let Some(key) = opts
        .keys()
        .find(|k| !matches!(**k, "max-file" | "max-size" | "compress"))
    {
        return Err(bad(format!("unknown log opt '{key}' for log driver local")));
    }
    let max_size = match opts.get("max-size") {
        None => LOCAL_MAX_SIZE,
        Some(s) => match from_human_size(s)
            .map_err(|e| bad(format!("invalid value for max-size: {s}: {e}")))?
        {
            n if n <= 0 => return Err(bad("max size should be a positive number")),
            n => n as u64,
        },
    };
    let max_files = match opts.get("max-file") {
        None => LOCAL_MAX_FILES,
        Some(s) => {
            let n = atoi(s).map_err(|e| bad(format!("invalid value for max-file: {s}: {e}")))?;
            if n < 0 {
                return Err(bad("max file count cannot be less than 0"));
            }
            // 0 behaves as 1 in Docker: the file is truncated, never rotated.
            u32::try_from(n.max(1)).map_err(|_| bad(format!("max-file {n} is too large")))?
        }
    };
    let compress = match opts.get("compress") {
        None => true,
        Some(s) => {
            parse_bool(s).map_err(|e| bad(format!("error reading compress log option: {e}")))?
        }
    };
    if compress && max_files <= 1 {
        return Err(bad(
            "compression cannot be enabled when max file count is 1",
        ));
    }
    Ok(LogSettings {
        driver: LogDriver::Local,
        max_size: Some(max_size),
        max_files,
        compress,
    })
}

/// go-units `FromHumanSize`: decimal units, `10k` = 10 000, `1m` = 1 000 000, `1.5GB`,
/// `100 kb`, `1KiB` (still decimal: only the first letter of the suffix counts).
pub fn from_human_size(s: &str) -> Result<i64, LogConfigError> {
    parse_size(s, 1000)
}

/// go-units `RAMInBytes`: the same syntax in binary units, `1k` = 1024.
pub fn ram_in_bytes(s: &str) -> Result<i64, LogConfigError> {
    parse_size(s, 1024)
}

fn parse_size(s: &str, base: i64) -> Result<i64, LogConfigError> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(bad(format!("invalid size: '{s}'")));
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size = parse_float(num)?;
    if size < 0.0 {
        return Err(bad(format!("invalid size: '{s}'")));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad_suffix = || bad(format!("invalid suffix: '{sfx}'"));
    if sfx.len() > 3 {
        return Err(bad_suffix());
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() == 1 {
            Ok(size as i64)
        } else {
            Err(bad_suffix())
        };
    }
    let power = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad_suffix()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &b[1..] != b"ib") {
        return Err(bad_suffix());
    }
    Ok((size * (base as f64).powi(power)) as i64)
}

/// Go's `strconv.ParseFloat` (finite values only), with its message.
fn parse_float(num: &str) -> Result<f64, LogConfigError> {
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(bad(format!(
            "strconv.ParseFloat: parsing {num:?}: invalid syntax"
        ))),
    }
}

/// Go's `strconv.Atoi`, with its message.
fn atoi(s: &str) -> Result<i64, LogConfigError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("strconv.Atoi: parsing {s:?}: invalid syntax")));
    }
    s.parse::<i64>()
        .map_err(|_| bad(format!("strconv.Atoi: parsing {s:?}: value out of range")))
}

/// Go's `strconv.ParseBool`, with its message.
fn parse_bool(s: &str) -> Result<bool, LogConfigError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(bad(format!(
            "strconv.ParseBool: parsing {s:?}: invalid syntax"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            kind: kind.to_owned(),
            config: opts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn err(kind: &str, opts: &[(&str, &str)]) -> String {
        LogSettings::from_config(&cfg(kind, opts))
            .expect_err("must be refused")
            .0
    }

    fn size_err(s: &str) -> String {
        from_human_size(s).expect_err("must be refused").0
    }

    #[test]
    fn sizes_parse_like_go_units() {
        let ok = |s: &str| from_human_size(s).expect(s);
        assert_eq!(ok("10k"), 10_000);
        assert_eq!(ok("10K"), 10_000);
        assert_eq!(ok("1m"), 1_000_000);
        assert_eq!(ok("1g"), 1_000_000_000);
        assert_eq!(ok("1.5MB"), 1_500_000);
        assert_eq!(ok("100 kb"), 100_000);
        assert_eq!(ok("2KiB"), 2_000);
        assert_eq!(ok("512"), 512);
        assert_eq!(ok("512b"), 512);
        assert_eq!(ok("0"), 0);
        assert_eq!(ram_in_bytes("10k").expect("ram"), 10_240);
        assert_eq!(ram_in_bytes("1g").expect("ram"), 1 << 30);
        assert_eq!(size_err("abc"), "invalid size: 'abc'");
        assert_eq!(size_err(""), "invalid size: ''");
        assert_eq!(size_err("10x"), "invalid suffix: 'x'");
        assert_eq!(size_err("10kbb"), "invalid suffix: 'kbb'");
        assert_eq!(size_err("10bb"), "invalid suffix: 'bb'");
        assert_eq!(size_err("10kx"), "invalid suffix: 'kx'");
        assert_eq!(size_err("-1k"), "invalid size: '-1k'");
        assert_eq!(
            size_err("1..2k"),
            "strconv.ParseFloat: parsing \"1..2\": invalid syntax"
        );
    }

    #[test]
    fn json_file_options() {
        let s = LogSettings::from_config(&cfg(
            "json-file",
            &[
                ("max-size", "100k"),
                ("max-file", "3"),
                ("compress", "true"),
            ],
        ))
        .expect("valid");
        assert_eq!(
            s,
            LogSettings {
                driver: LogDriver::JsonFile,
                max_size: Some(100_000),
                max_files: 3,
                compress: true
            }
        );
        // Defaults: no rotation; an empty type is json-file; labels/tag are accepted.
        let s =
            LogSettings::from_config(&cfg("", &[("tag", "x"), ("labels", "a")])).expect("valid");
        assert_eq!(
            (s.driver, s.max_size, s.max_files),
            (LogDriver::JsonFile, None, 1)
        );
        assert_eq!(
            err("json-file", &[("x", "1")]),
            "unknown log opt 'x' for json-file log driver"
        );
        assert_eq!(
            err("json-file", &[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(
            err("json-file", &[("max-size", "1q")]),
            "invalid suffix: 'q'"
        );
        assert_eq!(
            err("json-file", &[("max-file", "0")]),
            "max-file cannot be less than 1"
        );
        assert_eq!(
            err("json-file", &[("max-file", "two")]),
            "strconv.Atoi: parsing \"two\": invalid syntax"
        );
        assert_eq!(
            err("json-file", &[("compress", "yes")]),
            "strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            err("json-file", &[("max-size", "1m"), ("compress", "true")]),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
    }

    #[test]
    fn local_defaults_and_options() {
        let s = LogSettings::from_config(&cfg("local", &[])).expect("valid");
        assert_eq!(
            s,
            LogSettings {
                driver: LogDriver::Local,
                max_size: Some(20 << 20),
                max_files: 5,
                compress: true
            }
        );
        let s = LogSettings::from_config(&cfg(
            "local",
            &[
                ("max-size", "10m"),
                ("max-file", "2"),
                ("compress", "false"),
            ],
        ))
        .expect("valid");
        assert_eq!(
            (s.max_size, s.max_files, s.compress),
            (Some(10_000_000), 2, false)
        );
        assert_eq!(
            err("local", &[("tag", "x")]),
            "unknown log opt 'tag' for log driver local"
        );
        assert_eq!(
            err("local", &[("max-file", "1")]),
            "compression cannot be enabled when max file count is 1"
        );
        assert_eq!(
            err("local", &[("max-size", "big")]),
            "invalid value for max-size: big: invalid size: 'big'"
        );
    }

    #[test]
    fn drivers_and_builtin_options() {
        assert_eq!(
            err("foo", &[]),
            "logger: no log driver named 'foo' is registered"
        );
        assert_eq!(
            err("syslog", &[("max-size", "1m")]),
            "logger: no log driver named 'syslog' is registered"
        );
        // `none` takes anything, like dockerd.
        let s = LogSettings::from_config(&cfg("none", &[("x", "y")])).expect("none");
        assert_eq!(s.driver, LogDriver::None);
        assert!(s.shim_args(std::path::Path::new("/l")).is_empty());
        assert_eq!(
            err("json-file", &[("mode", "fast")]),
            "logger: logging mode not supported: fast"
        );
        assert_eq!(
            err("json-file", &[("max-buffer-size", "1m")]),
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
        );
        LogSettings::from_config(&cfg(
            "local",
            &[("mode", "non-blocking"), ("max-buffer-size", "4m")],
        ))
        .expect("mode options are everyone's");
    }

    #[test]
    fn daemon_defaults_merge_like_dockerd() {
        let defaults = cfg("json-file", &[("max-size", "10m"), ("max-file", "3")]);
        // No type: the daemon's, with its options.
        let mut c = cfg("", &[]);
        merge_and_validate(&mut c, &defaults).expect("valid");
        assert_eq!(c, defaults);
        // Same type: the container's options win, the rest are filled in.
        let mut c = cfg("json-file", &[("max-size", "1m")]);
        merge_and_validate(&mut c, &defaults).expect("valid");
        assert_eq!(
            c,
            cfg("json-file", &[("max-size", "1m"), ("max-file", "3")])
        );
        // Another type: none of the daemon's options.
        let mut c = cfg("local", &[]);
        merge_and_validate(&mut c, &defaults).expect("valid");
        assert_eq!(c, cfg("local", &[]));
        // No daemon default at all: json-file.
        let mut c = cfg("", &[]);
        merge_and_validate(&mut c, &LogConfig::default()).expect("valid");
        assert_eq!(c, cfg("json-file", &[]));
    }

    #[test]
    fn shim_is_told_the_rotation() {
        let s = LogSettings::from_config(&cfg(
            "json-file",
            &[("max-size", "1k"), ("max-file", "2"), ("compress", "1")],
        ))
        .expect("valid");
        let args = s.shim_args(std::path::Path::new("/d/x-json.log"));
        assert_eq!(
            args,
            vec![
                ("--log", "/d/x-json.log".to_owned()),
                ("--log-max-size", "1000".to_owned()),
                ("--log-max-file", "2".to_owned()),
                ("--log-compress", "1".to_owned()),
            ]
        );
    }
}
