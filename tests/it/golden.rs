//! End-to-end golden files, as node_exporter's end-to-end test: the whole agent (`--once`,
//! every default collector) on each Pi fixture board, its output compared line by line with
//! `tests/golden/<board>.prom`. Families that depend on this machine rather than on the tree
//! (clocks, the agent's own process, durations) are left out.
//!
//! After an intended change: `PIMETRICS_UPDATE_GOLDEN=1 cargo test --test it golden::`, then read
//! the diff of tests/golden/ before committing it.

use std::path::{Path, PathBuf};

use crate::harness::*;

/// Families whose values come from this machine or the moment, not from the fixture tree.
const VOLATILE_PREFIXES: &[&str] = &[
    "node_scrape_collector_duration_seconds",
    "node_time_",
    "node_timex_",
    "process_",
    "pimetrics_build_info",
];

fn boards() -> Vec<PathBuf> {
    let mut boards: Vec<PathBuf> = std::fs::read_dir(fixtures().join("pi"))
        .expect("tests/fixtures/pi")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("proc").is_dir())
        .collect();
    boards.sort();
    boards
}

/// `--once` on `board` with its recorded mailbox answers; the exposition minus volatile
/// families.
fn golden_output(board: &Path) -> String {
    let empty_root = tempdir();
    let state = tempdir();
    let arg = |name: &str, path: &Path| format!("--{name}={}", path.display());
    let root = board.join("root");
    let mut args = vec![
        "--once".to_string(),
        "--node=golden".to_string(),
        arg("path.procfs", &board.join("proc")),
        arg("path.sysfs", &board.join("sys")),
        arg("path.devfs", &board.join("dev")),
        arg(
            "path.rootfs",
            if root.is_dir() {
                &root
            } else {
                empty_root.path()
            },
        ),
    ];
    let replay = board.join("mailbox.replay");
    if replay.is_file() {
        args.push(arg("collector.rpi.mailbox-replay", &replay));
    }
    let config = state.path().join("golden.ron");
    std::fs::write(&config, golden_config(state.path())).unwrap();
    args.push(arg("config", &config));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_agent(&args);
    assert!(
        output.status.success(),
        "{}: {}",
        board.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 exposition");
    let mut kept = String::new();
    let mut skip = false;
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        let name = name.split(['{', ' ']).next().unwrap_or("");
        if line.starts_with("# HELP ") {
            skip = VOLATILE_PREFIXES.iter().any(|p| name.starts_with(p));
        }
        if !skip && !VOLATILE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// Settings that keep a run independent of this machine's state: no text files, the Pi
/// collector's since-boot flags in a fresh file (not /run).
fn golden_config(state: &Path) -> String {
    format!(
        "(textfile: (directory: None), pi: (state_file: {:?}))",
        state.join("rpi-since-boot").display().to_string()
    )
}

#[test]
fn every_board_matches_its_golden_file() {
    let update = std::env::var_os("PIMETRICS_UPDATE_GOLDEN").is_some();
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let boards = boards();
    assert!(boards.len() >= 5, "{boards:?}");
    let mut problems = Vec::new();
    for board in &boards {
        let name = board.file_name().unwrap().to_string_lossy().into_owned();
        let got = golden_output(board);
        // The same tree gives the same output twice: nothing volatile was left in.
        assert_eq!(
            got,
            golden_output(board),
            "{name}: output changes between runs"
        );
        let path = golden_dir.join(format!("{name}.prom"));
        if update {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            let got_lines: Vec<&str> = got.lines().collect();
            let want_lines: Vec<&str> = want.lines().collect();
            let missing: Vec<&&str> = want_lines
                .iter()
                .filter(|l| !got_lines.contains(l))
                .collect();
            let extra: Vec<&&str> = got_lines
                .iter()
                .filter(|l| !want_lines.contains(l))
                .collect();
            problems.push(format!(
                "{name}: differs from {}\n  missing: {missing:#?}\n  new: {extra:#?}",
                path.display()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(after an intended change: PIMETRICS_UPDATE_GOLDEN=1 cargo test --test it golden::)",
        problems.join("\n")
    );
}
