//! `promtool check metrics` (Prometheus' own linter) on the agent's /metrics: it must parse, and
//! draw no complaint except the ones node_exporter's identical names draw too (node_exporter's
//! `node_memory_MemTotal_bytes` is camelCase; a drop-in replacement must keep it). Those are found
//! by linting node_exporter's own output in the same test, with the same collectors as ours plus
//! its defaults, and subtracted. Names of our own (pimetrics_*, rpi_*) must be lint-clean.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

/// promtool's complaints ("NAME message" lines) about an exposition; panics when promtool
/// cannot parse it at all.
fn lint(promtool: &std::path::Path, what: &str, exposition: &str) -> BTreeSet<String> {
    let (status, out, err) = run_with_input(
        "promtool check metrics",
        Command::new(promtool).args(["check", "metrics"]),
        exposition.as_bytes(),
        Duration::from_secs(60),
    );
    let text = format!("{out}{err}");
    assert!(
        !text.contains("error while linting"),
        "promtool cannot parse {what}: {text}"
    );
    // Exit status 3 means lint problems, 0 none; anything else is trouble.
    assert!(
        matches!(status.code(), Some(0) | Some(3)),
        "promtool on {what}: {status:?} {text}"
    );
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Names node_exporter 1.12 exports and the 1.5 here does not (its default netstat fields),
/// so their complaints cannot be drawn from node_exporter's output here: accepted by name.
const NODE_EXPORTER_1_12_NAMES: &[&str] = &[
    "node_netstat_TcpExt_TCPOFOQueue",
    "node_netstat_TcpExt_TCPRcvQDrop",
];

fn is_our_own(name: &str) -> bool {
    name.starts_with("pimetrics_") || name.starts_with("rpi_")
}

#[test]
fn our_metrics_draw_no_complaint_node_exporter_does_not_draw() {
    let Some(promtool) = require_or_skip("promtool", "promtool lint") else {
        return;
    };
    let Some(node_exporter) = require_or_skip("prometheus-node-exporter", "promtool lint") else {
        return;
    };

    // Our agent with every collector; node_exporter with its defaults plus the same ones.
    let collector_flags: Vec<String> = pimetrics::collector::COLLECTORS
        .iter()
        .map(|spec| format!("--collector.{}", spec.name))
        .collect();
    let args: Vec<&str> = collector_flags.iter().map(String::as_str).collect();
    let (_agent, agent_port) = start_agent(&args);
    let ours = scrape(agent_port, "/metrics");
    let our_names = parse_exposition(&ours).names();

    let (_, help, help_err) = run_bounded(
        "node_exporter --help",
        Command::new(&node_exporter).arg("--help"),
        Duration::from_secs(30),
    );
    let known: BTreeSet<String> = format!("{help}{help_err}")
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--collector."))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| !name.contains(['.', '=']))
        .map(str::to_string)
        .collect();
    let port = free_port();
    let mut command = Command::new(&node_exporter);
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error");
    for spec in pimetrics::collector::COLLECTORS {
        if known.contains(spec.name) {
            command.arg(format!("--collector.{}", spec.name));
        }
    }
    let _node_exporter = Proc::spawn("node_exporter", &mut command);
    wait_for_port(port, Duration::from_secs(20));
    let theirs = scrape(port, "/metrics");

    let our_complaints = lint(&promtool, "pimetrics /metrics", &ours);
    let their_complaints = lint(&promtool, "node_exporter /metrics", &theirs);
    let accepted: Vec<&String> = our_complaints.intersection(&their_complaints).collect();
    let new: Vec<&String> = our_complaints
        .difference(&their_complaints)
        .filter(|c| {
            !c.split_whitespace()
                .next()
                .is_some_and(|name| NODE_EXPORTER_1_12_NAMES.contains(&name))
        })
        .collect();
    println!(
        "promtool: {} complaints about pimetrics' {} names, {} of them drawn by node_exporter's \
         identical names too (accepted):",
        our_complaints.len(),
        our_names.len(),
        accepted.len()
    );
    for complaint in &accepted {
        println!("  accepted: {complaint}");
    }
    assert!(
        new.is_empty(),
        "promtool complaints node_exporter does not draw:\n{}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Our own names, checked on their own: clean, whatever node_exporter does.
    let own: Vec<&String> = our_complaints
        .iter()
        .filter(|c| c.split_whitespace().next().is_some_and(is_our_own))
        .collect();
    assert!(own.is_empty(), "our own names draw complaints: {own:?}");
    assert!(
        our_names.iter().any(|n| is_our_own(n)),
        "the agent exports names of its own (pimetrics_build_info at least)"
    );
}

#[test]
fn promtool_sees_complaints_so_the_check_is_not_vacuous() {
    let Some(promtool) = require_or_skip("promtool", "promtool lint self-check") else {
        return;
    };
    let complaints = lint(
        &promtool,
        "a bad example",
        "# HELP pimetrics_badName A camelCase name.\n# TYPE pimetrics_badName counter\npimetrics_badName 1\n",
    );
    assert!(
        complaints
            .iter()
            .any(|c| c.starts_with("pimetrics_badName ")),
        "{complaints:?}"
    );
}
