//! End-to-end golden files, as node_exporter's end-to-end test: the whole agent (`--once`,
//! every default collector) on each fixture tree, its output compared line by line with
//! `tests/golden/<tree>.prom` (`faults/broken`: `faults-broken.prom`). Families that depend on
//! this machine rather than on the tree (clocks, the agent's own process, durations) are left
//! out.
//!
//! After an intended change: `PIMETRICS_UPDATE_GOLDEN=1 cargo test --test it golden::`, then read
//! the diff of tests/golden/ before committing it.

use std::path::Path;

use crate::harness::*;

/// Families whose values come from this machine or the moment, not from the fixture tree.
const VOLATILE_PREFIXES: &[&str] = &[
    "node_scrape_collector_duration_seconds",
    // statvfs of the tree's root/ ("/" of the board): the sizes of the disk holding the clone.
    "node_filesystem_size_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_files",
    "node_time_",
    "node_timex_",
    "process_",
    "pimetrics_build_info",
];

/// `--once` on `tree` (its roots and recorded mailbox answers, no text files, a fresh
/// since-boot state file); the exposition minus volatile families.
fn golden_output(tree: &Tree) -> String {
    let output = tree.once(&["--node=golden"]);
    assert!(
        output.status.success(),
        "{}: {}",
        tree.name,
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

#[test]
fn every_board_matches_its_golden_file() {
    let update = std::env::var_os("PIMETRICS_UPDATE_GOLDEN").is_some();
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let trees = trees();
    assert!(trees.len() >= 10, "{trees:?}");
    let mut problems = Vec::new();
    for tree in &trees {
        let name = tree.name.replace('/', "-");
        let got = golden_output(tree);
        // The same tree gives the same output twice: nothing volatile was left in.
        assert_eq!(
            got,
            golden_output(tree),
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
