//! Argument errors worded like the docker CLI's (cobra/pflag) instead of clap's:
//!
//! ```text
//! unknown flag: --badflag
//!
//! Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]
//!
//! Run 'berth run --help' for more information
//! ```
//! Flag errors exit 125; a wrong number of arguments (`'berth stop' requires at least 1
//! argument`) and unknown commands exit 1, as docker does.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Command, CommandFactory};

use crate::commands::Cli;

/// Docker's usage line from clap's: `<CONTAINER>...` → `CONTAINER [CONTAINER...]`.
pub fn docker_usage(clap_usage: &str) -> String {
    let mut out = Vec::new();
    for tok in split_tokens(clap_usage) {
        if let Some(inner) = tok.strip_prefix('<') {
            let (name, many) = match inner.strip_suffix(">...") {
                Some(n) => (n, true),
                None => (inner.trim_end_matches('>'), false),
            };
            if many && !name.contains(' ') {
                out.push(format!("{name} [{name}...]"));
            } else {
                out.push(name.to_string());
            }
        } else if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix("]...")) {
            out.push(format!("[{inner}...]"));
        } else {
            out.push(tok);
        }
    }
    out.join(" ")
}

/// Splits a usage line on spaces outside `<...>` and `[...]`.
fn split_tokens(s: &str) -> Vec<String> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '<' | '[' => depth += 1,
            '>' | ']' => depth -= 1,
            _ => {}
        }
        if c == ' ' && depth == 0 {
            if !cur.is_empty() {
                toks.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        toks.push(cur);
    }
    toks
}

/// The subcommand names on the command line (`["container", "ls"]`), found by walking argv
/// against the command tree and skipping flags.
fn subcommand_names(root: &Command, argv: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    let mut cmd = root.clone();
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "-H" || a == "--host" {
            i += 1;
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sub) => {
                names.push(sub.get_name().to_string());
                let next = sub.clone();
                cmd = next;
            }
            None => break,
        }
    }
    names
}

fn find<'a>(root: &'a Command, names: &[String]) -> &'a Command {
    let mut cmd = root;
    for n in names {
        match cmd.find_subcommand(n) {
            Some(s) => cmd = s,
            None => break,
        }
    }
    cmd
}

/// `berth rm [OPTIONS] CONTAINER [CONTAINER...]` for a (sub)command.
fn usage_of(cmd: &Command, path: &str) -> String {
    let positionals: Vec<String> = cmd
        .get_positionals()
        .map(|a| {
            let name = a
                .get_value_names()
                .and_then(|v| v.first())
                .map(|s| s.to_string())
                .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
            let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
            let text = if many && !name.contains(' ') {
                format!("{name} [{name}...]")
            } else {
                name
            };
            if a.is_required_set() || text.starts_with('[') {
                text
            } else {
                format!("[{text}]")
            }
        })
        .collect();
    let has_options = cmd
        .get_arguments()
        .any(|a| !a.is_positional() && a.get_id() != "help" && !a.is_hide_set());
    let mut parts = vec![path.to_string()];
    if has_options {
        parts.push("[OPTIONS]".to_string());
    }
    if cmd.has_subcommands() && positionals.is_empty() {
        parts.push("COMMAND".to_string());
    }
    parts.extend(positionals);
    parts.join(" ")
}

/// How many positional values a command takes: (min, max or None for unbounded).
fn arity(cmd: &Command) -> (usize, Option<usize>) {
    let mut min = 0;
    let mut max = Some(0usize);
    for a in cmd.get_positionals() {
        let range = a.get_num_args();
        let (lo, hi) = range
            .map(|r| (r.min_values(), r.max_values()))
            .unwrap_or((1, 1));
        if a.is_required_set() {
            min += lo.max(1);
        }
        max = match (max, hi) {
            (Some(m), h) if h < usize::MAX / 2 => Some(m + h),
            _ => None,
        };
    }
    (min, max)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    }
}

/// `-n, --last` for an argument of `cmd` named in a clap error (`--last <LAST>`).
fn flag_label(cmd: &Command, clap_arg: &str) -> String {
    let token = clap_arg.split([' ', '=']).next().unwrap_or("");
    let found = cmd.get_arguments().find(|a| {
        a.get_long().is_some_and(|l| token == format!("--{l}"))
            || a.get_short().is_some_and(|s| token == format!("-{s}"))
    });
    match found {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => token.to_string(),
        },
        None => token.to_string(),
    }
}

/// Go's wording for integer parse failures.
fn go_reason(reason: &str, value: &str) -> String {
    if reason.contains("invalid digit") || reason.contains("empty string") {
        format!("strconv.ParseInt: parsing \"{value}\": invalid syntax")
    } else if reason.contains("too large") || reason.contains("too small") {
        format!("strconv.ParseInt: parsing \"{value}\": value out of range")
    } else if reason.contains("provided string was not `true` or `false`") {
        format!("strconv.ParseBool: parsing \"{value}\": invalid syntax")
    } else {
        reason.to_string()
    }
}

/// Renders a clap error the docker way for the given argv; returns (stderr text, exit code).
pub fn render_clap_error(e: &clap::Error, argv: &[String]) -> (String, i32) {
    let root = Cli::command();
    let names = subcommand_names(&root, argv);
    let cmd = find(&root, &names);
    let path = std::iter::once("berth".to_string())
        .chain(names.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let usage = usage_of(cmd, &path);
    let rendered = e.render().to_string();
    let arg = context_str(e, ContextKind::InvalidArg).unwrap_or_default();
    let with_usage = |msg: String, code: i32, hint: &str| {
        (
            format!("{msg}\n\nUsage:  {usage}\n\n{hint} '{path} --help' for more information"),
            code,
        )
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let flag = arg.split('=').next().unwrap_or("").to_string();
            if flag.starts_with("--") {
                with_usage(format!("unknown flag: {flag}"), 125, "Run")
            } else if let Some(short) = flag.strip_prefix('-') {
                let c = short.chars().next().unwrap_or('?');
                with_usage(
                    format!("unknown shorthand flag: '{c}' in {flag}"),
                    125,
                    "Run",
                )
            } else {
                unknown_command(&path, &flag, names.is_empty(), &usage)
            }
        }
        ErrorKind::InvalidSubcommand => {
            let sub = context_str(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            unknown_command(&path, &sub, names.is_empty(), &usage)
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues
        | ErrorKind::TooManyValues => match arity(cmd) {
            (min, Some(max)) if min == max => with_usage(
                format!("berth: '{path}' requires {min} {}", plural(min)),
                1,
                "Run",
            ),
            (min, Some(max)) => with_usage(
                format!(
                    "berth: '{path}' requires at least {min} and at most {max} {}",
                    plural(max)
                ),
                1,
                "Run",
            ),
            (min, None) => with_usage(
                format!("berth: '{path}' requires at least {min} {}", plural(min)),
                1,
                "See",
            ),
        },
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let label = flag_label(cmd, &arg);
            let value = context_str(e, ContextKind::InvalidValue).unwrap_or_default();
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                with_usage(
                    format!(
                        "flag needs an argument: {}",
                        label.rsplit(' ').next().unwrap_or(&label)
                    ),
                    125,
                    "Run",
                )
            } else {
                let reason = std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| first_line(&rendered));
                with_usage(
                    format!(
                        "invalid argument \"{value}\" for \"{label}\" flag: {}",
                        go_reason(&reason, &value)
                    ),
                    125,
                    "Run",
                )
            }
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            (rendered.clone(), 0)
        }
        _ => with_usage(first_line(&rendered), 125, "Run"),
    }
}

fn unknown_command(path: &str, name: &str, top_level: bool, usage: &str) -> (String, i32) {
    if top_level {
        (
            format!(
                "berth: unknown command: {path} {name}\n\nRun '{path} --help' for more information"
            ),
            1,
        )
    } else {
        let group = usage
            .split(" [OPTIONS]")
            .next()
            .unwrap_or(path)
            .trim_end_matches(" COMMAND");
        (format!("berth: unknown command: {path} {name}\n\nUsage:  {group}\n\nRun '{path} --help' for more information"), 1)
    }
}

fn first_line(rendered: &str) -> String {
    rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn err(args: &[&str]) -> (String, i32) {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        render_clap_error(&Cli::try_parse_from(&argv).expect_err("should fail"), &argv)
    }

    #[test]
    fn usage_lines() {
        assert_eq!(
            docker_usage("berth stop [OPTIONS] <CONTAINER>..."),
            "berth stop [OPTIONS] CONTAINER [CONTAINER...]"
        );
        assert_eq!(
            docker_usage("berth run [OPTIONS] <IMAGE [COMMAND] [ARG...]>..."),
            "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
        );
        assert_eq!(docker_usage("berth ps [OPTIONS]"), "berth ps [OPTIONS]");
    }

    #[test]
    fn docker_wording() {
        assert_eq!(
            err(&["berth", "run", "--badflag", "busybox"]),
            (
                "unknown flag: --badflag\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information".to_string(),
                125
            )
        );
        let (text, code) = err(&["berth", "run", "-Z", "busybox"]);
        assert!(
            text.starts_with("unknown shorthand flag: 'Z' in -Z\n"),
            "{text}"
        );
        assert_eq!(code, 125);
        assert_eq!(
            err(&["berth", "stop"]),
            (
                "berth: 'berth stop' requires at least 1 argument\n\nUsage:  berth stop [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth stop --help' for more information".to_string(),
                1
            )
        );
        assert_eq!(
            err(&["berth", "rm", "-f"]).0.lines().next(),
            Some("berth: 'berth rm' requires at least 1 argument")
        );
        assert_eq!(
            err(&["berth", "rename", "a"]),
            (
                "berth: 'berth rename' requires 2 arguments\n\nUsage:  berth rename CONTAINER NEW_NAME\n\nRun 'berth rename --help' for more information".to_string(),
                1
            )
        );
        assert_eq!(
            err(&["berth", "port"]).0.lines().next(),
            Some("berth: 'berth port' requires at least 1 and at most 2 arguments")
        );
        assert_eq!(
            err(&["berth", "ps", "-n", "x"]).0.lines().next(),
            Some("invalid argument \"x\" for \"-n, --last\" flag: strconv.ParseInt: parsing \"x\": invalid syntax")
        );
        assert_eq!(
            err(&["berth", "run", "--memory"]).0.lines().next(),
            Some("flag needs an argument: --memory")
        );
        assert_eq!(
            err(&["berth", "bogus"]),
            (
                "berth: unknown command: berth bogus\n\nRun 'berth --help' for more information"
                    .to_string(),
                1
            )
        );
    }
}
