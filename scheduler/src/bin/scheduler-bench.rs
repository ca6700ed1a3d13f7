//! `scheduler-bench`: placement throughput of the pure scheduler on simulated nodes.
//!
//! Places `--tasks` tasks (default 100,000) on `--nodes` nodes (default 1,000) in batches of
//! `--batch` tasks per service (default 1,000: one `place()` call per service, as the
//! orchestrator makes one per service reconciliation), each service with two constraints
//! (`node.role==worker`, `node.labels.disk==ssd`, which 80% of the nodes meet), a spread
//! preference over `node.labels.zone` (5 zones of unequal size), and small reservations.
//! Prints one JSON object on stdout; `bench/run --scheduler` calls it.
//!
//! ```text
//! scheduler-bench [--smoke] [--tasks N] [--nodes N] [--batch N] [--strategy spread|binpack]
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use berth_scheduler::{place, Constraint, NodeInfo, Preference, Role, Strategy, TaskRequest};

struct Args {
    tasks: usize,
    nodes: usize,
    batch: usize,
    services: usize,
    strategy: Strategy,
    smoke: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        tasks: 100_000,
        nodes: 1_000,
        batch: 1_000,
        services: 100,
        strategy: Strategy::Spread,
        smoke: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name}: expected a positive number, got {v:?}"))
        };
        match arg.as_str() {
            "--tasks" => a.tasks = number("--tasks")?,
            "--nodes" => a.nodes = number("--nodes")?,
            "--batch" => a.batch = number("--batch")?,
            "--services" => a.services = number("--services")?,
            "--smoke" => {
                a.smoke = true;
                a.tasks = 10_000;
            }
            "--strategy" => {
                a.strategy = match it.next().as_deref() {
                    Some("spread") => Strategy::Spread,
                    Some("binpack") => Strategy::Binpack,
                    other => {
                        return Err(format!(
                            "--strategy: expected spread or binpack, got {other:?}"
                        ))
                    }
                }
            }
            "-h" | "--help" => {
                return Err(
                    "usage: scheduler-bench [--smoke] [--tasks N] [--nodes N] [--batch N] \
                            [--strategy spread|binpack]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(a)
}

/// `count` nodes: 3 managers, the rest workers; 5 zones of unequal size (40/25/15/12/8%);
/// `disk=ssd` on 4 of every 5; 16 CPUs and 64 GiB each; a few tasks of other services.
fn simulated_nodes(count: usize) -> Vec<NodeInfo> {
    (0..count)
        .map(|i| {
            let zone = match i * 100 / count.max(1) {
                0..=39 => "zone-a",
                40..=64 => "zone-b",
                65..=79 => "zone-c",
                80..=91 => "zone-d",
                _ => "zone-e",
            };
            let mut labels = BTreeMap::new();
            labels.insert("zone".to_owned(), zone.to_owned());
            labels.insert(
                "disk".to_owned(),
                if i % 5 == 4 { "hdd" } else { "ssd" }.to_owned(),
            );
            NodeInfo {
                id: format!("{:025x}", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15),
                hostname: format!("node-{i:04}"),
                role: if i < 3 { Role::Manager } else { Role::Worker },
                os: "linux".into(),
                arch: "x86_64".into(),
                labels,
                nano_cpus: 16_000_000_000,
                memory_bytes: 64 << 30,
                tasks_total: i % 7,
                ..NodeInfo::default()
            }
        })
        .collect()
}

fn request(service: usize, strategy: Strategy) -> Result<TaskRequest, String> {
    Ok(TaskRequest {
        service_id: format!("service-{service:05}"),
        constraints: Constraint::parse_all(&["node.role==worker", "node.labels.disk==ssd"])
            .map_err(|e| e.to_string())?,
        preferences: vec![Preference::parse("spread=node.labels.zone").map_err(|e| e.to_string())?],
        reserve_nano_cpus: 1_000_000, // 0.001 CPU
        reserve_memory: 4 << 20,      // 4 MiB
        strategy,
        ..TaskRequest::default()
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("scheduler-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let requests: Result<Vec<TaskRequest>, String> = (0..args.services)
        .map(|s| request(s, args.strategy))
        .collect();
    let requests = match requests {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scheduler-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut nodes = simulated_nodes(args.nodes);
    let mut placed = 0usize;
    let mut unplaced = 0usize;
    let mut calls = 0usize;
    let mut call_us: Vec<f64> = Vec::new();
    // Timed: the place() calls only (the requests and nodes are built above).
    let started = Instant::now();
    while placed + unplaced < args.tasks {
        let count = args.batch.min(args.tasks - placed - unplaced);
        let req = &requests[calls % requests.len()];
        let t = Instant::now();
        let p = place(&mut nodes, req, count);
        call_us.push(t.elapsed().as_secs_f64() * 1e6);
        placed += p.assigned.len();
        unplaced += p.unplaced;
        calls += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    call_us.sort_by(f64::total_cmp);
    let pct = |q: f64| call_us[((call_us.len() - 1) as f64 * q).round() as usize];
    // Tasks per eligible node (uneven on purpose: zones differ in size, tasks are evened out
    // per zone).
    let eligible: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| {
            n.role == Role::Worker && n.labels.get("disk").map(String::as_str) == Some("ssd")
        })
        .collect();
    let per_node = |n: &&NodeInfo| n.service_tasks.values().sum::<usize>();
    let most = eligible.iter().map(per_node).max().unwrap_or(0);
    let least = eligible.iter().map(per_node).min().unwrap_or(0);
    println!(
        "{{\"placements_per_s\": {:.0}, \"placed\": {placed}, \"unplaced\": {unplaced}, \
         \"nodes\": {}, \"eligible_nodes\": {}, \"batch\": {}, \"calls\": {calls}, \
         \"strategy\": \"{}\", \"constraints\": 2, \"preferences\": 1, \"elapsed_s\": {:.4}, \
         \"call_us_p50\": {:.1}, \"call_us_p99\": {:.1}, \"call_us_max\": {:.1}, \
         \"tasks_per_eligible_node_min\": {least}, \"tasks_per_eligible_node_max\": {most}, \
         \"smoke\": {}}}",
        placed as f64 / elapsed,
        args.nodes,
        eligible.len(),
        args.batch,
        match args.strategy {
            Strategy::Spread => "spread",
            Strategy::Binpack => "binpack",
        },
        elapsed,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        args.smoke,
    );
    if unplaced > 0 {
        eprintln!("scheduler-bench: {unplaced} tasks could not be placed");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
