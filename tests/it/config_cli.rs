//! The command line and config files, against the built binary: every kind of bad config gives a
//! clear error (file:line:column and the key) and a non-zero exit, for `--check-config FILE` and
//! for `--config FILE`; good configs, `--print-config`, flag precedence, `--once`, unknown flags.

use std::path::{Path, PathBuf};

use crate::harness::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bad config: its text, where the error must point (line:column) and what the message must
/// contain (the key, and the kind of trouble).
struct BadConfig {
    kind: &'static str,
    text: &'static str,
    position: &'static str,
    expected: &'static [&'static str],
}

const BAD_CONFIGS: &[BadConfig] = &[
    BadConfig {
        kind: "syntax error (missing comma)",
        text: "(\n  node: \"pi\",\n  listen_address: \":9243\"\n  log_level: info,\n)\n",
        position: "4:3",
        expected: &["listen_address", "Expected comma"],
    },
    BadConfig {
        kind: "unknown key",
        text: "(\n  node: \"pi\",\n  lisen_address: \":9243\",\n)\n",
        position: "3:3",
        expected: &["unknown key `lisen_address`", "listen_address"],
    },
    BadConfig {
        kind: "unknown nested key",
        text: "(\n  filesystem: (\n    mount_timeout: \"5s\",\n    mount_point_exclude: \"x\",\n  ),\n)\n",
        position: "4:5",
        expected: &["unknown key `mount_point_exclude`", "mount_points_exclude"],
    },
    BadConfig {
        kind: "wrong type",
        text: "(\n  node: 42,\n)\n",
        position: "2:",
        expected: &["node", "Expected string"],
    },
    BadConfig {
        kind: "wrong type (bool for a map)",
        text: "(\n  collectors: true,\n)\n",
        position: "2:",
        expected: &["collectors"],
    },
    BadConfig {
        kind: "bad regex",
        text: "(\n  diskstats: (\n    device_exclude: \"^(sd\",\n  ),\n)\n",
        position: "3:5",
        expected: &["diskstats.device_exclude", "invalid regex"],
    },
    BadConfig {
        kind: "bad duration",
        text: "(\n  filesystem: (\n    mount_timeout: \"5 parsecs\",\n  ),\n)\n",
        position: "3:",
        expected: &["mount_timeout", "invalid duration \"5 parsecs\""],
    },
    BadConfig {
        kind: "zero duration",
        text: "(\n  filesystem: (\n    mount_timeout: \"0s\",\n  ),\n)\n",
        position: "3:5",
        expected: &["filesystem.mount_timeout", "more than 0"],
    },
    BadConfig {
        kind: "bad listen address",
        text: "(\n  listen_address: \"localhost\",\n)\n",
        position: "2:3",
        expected: &["listen_address", "invalid address \"localhost\""],
    },
    BadConfig {
        kind: "bad listen port",
        text: "(\n  listen_address: \":99999\",\n)\n",
        position: "2:3",
        expected: &["listen_address", "invalid port"],
    },
    BadConfig {
        kind: "unknown collector",
        text: "(\n  collectors: {\"warp_drive\": true},\n)\n",
        position: "2:3",
        expected: &["collectors", "unknown collector \"warp_drive\"", "loadavg"],
    },
    BadConfig {
        kind: "empty node",
        text: "(\n  log_level: debug,\n  node: \"  \",\n)\n",
        position: "3:3",
        expected: &["node", "must not be empty"],
    },
    BadConfig {
        kind: "duration that overflows",
        text: "(\n  push: (\n    interval: \"99999999999999999d\",\n  ),\n)\n",
        position: "3:",
        expected: &["interval", "too long"],
    },
    BadConfig {
        kind: "duration over its bound",
        text: "(\n  push: (\n    url: \"http://gw:9091\",\n    interval: \"400d\",\n  ),\n)\n",
        position: "4:5",
        expected: &["push.interval", "longer than the most allowed, 1d"],
    },
    BadConfig {
        kind: "timeout over its bound",
        text: "(\n  web: (\n    collect_timeout: \"1h\",\n  ),\n)\n",
        position: "3:5",
        expected: &["web.collect_timeout", "longer than the most allowed, 10m"],
    },
    BadConfig {
        kind: "bad log level",
        text: "(\n  log_level: loud,\n)\n",
        position: "2:",
        expected: &["log_level", "loud"],
    },
];

#[test]
fn every_kind_of_bad_config_names_file_line_column_and_key() {
    let dir = tempdir();
    for (index, case) in BAD_CONFIGS.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{index}.ron"), case.text);
        let file = path.display().to_string();
        for args in [
            vec!["--check-config", file.as_str()],
            vec!["--config", file.as_str(), "--once"],
            vec!["--config", file.as_str()],
        ] {
            let out = run_agent(&args);
            let err = stderr(&out);
            assert!(
                !out.status.success(),
                "{}: {args:?} exits 0; stderr: {err}",
                case.kind
            );
            let location = format!("pimetrics: {file}:{}", case.position);
            assert!(
                err.starts_with(&location),
                "{}: {args:?}: expected {location:?}..., got {err:?}",
                case.kind
            );
            assert!(
                has_line_and_column(&err, &file),
                "{}: {args:?}: no line:column in {err:?}",
                case.kind
            );
            for expected in case.expected {
                assert!(
                    err.contains(expected),
                    "{}: {args:?}: expected {expected:?} in {err:?}",
                    case.kind
                );
            }
            assert!(stdout(&out).is_empty(), "{}: nothing on stdout", case.kind);
            assert!(!err.contains("panicked"), "{}: {err}", case.kind);
        }
    }
}

/// `pimetrics: FILE:LINE:COLUMN: ...` with both numbers at least 1.
fn has_line_and_column(err: &str, file: &str) -> bool {
    let Some(rest) = err.strip_prefix(&format!("pimetrics: {file}:")) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let number = |part: Option<&str>| {
        part.and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|n| n > 0)
    };
    number(parts.next()) && number(parts.next()) && parts.next().is_some_and(|m| m.starts_with(' '))
}

#[test]
fn unreadable_config_files_are_clear_errors() {
    let dir = tempdir();
    let missing = dir.path().join("missing.ron");
    let directory = dir.path().join("a-directory.ron");
    std::fs::create_dir(&directory).unwrap();
    // Tests run as root, which reads any file: a dangling symlink and a directory stand in
    // for an unreadable file.
    let dangling = dir.path().join("dangling.ron");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let not_utf8 = dir.path().join("binary.ron");
    std::fs::write(&not_utf8, b"(node: \"\xff\xfe\")").unwrap();
    for path in [&missing, &directory, &dangling, &not_utf8] {
        let file = path.display().to_string();
        for args in [vec!["--check-config", &file], vec!["--config", &file]] {
            let out = run_agent(&args);
            let err = stderr(&out);
            assert!(!out.status.success(), "{args:?}: {err}");
            assert!(
                err.starts_with(&format!("pimetrics: {file}: cannot read")),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn good_configs_pass_check_config() {
    let dir = tempdir();
    for (index, text) in [
        "()",
        "",
        "// only a comment\n(\n)\n",
        "(node: \"pi-kitchen\", listen_address: \"127.0.0.1:9243\", log_level: warn)",
        "(collectors: {\"loadavg\": false}, filesystem: (mount_timeout: \"1m30s\"))",
        "(textfile: (directory: \"/var/lib/pimetrics/textfile\"), netdev: (device_exclude: \"^veth\"))",
        "(listen_address: \"[::1]:9243\", paths: (procfs: \"/host/proc\"))",
    ]
    .iter()
    .enumerate()
    {
        let path = write(dir.path(), &format!("good{index}.ron"), text);
        let out = run_agent(&["--check-config", path.to_str().unwrap()]);
        if text.is_empty() {
            // An empty file is not a RON value: an error, but a clear one.
            assert!(!out.status.success());
            assert!(stderr(&out).contains(path.to_str().unwrap()));
            continue;
        }
        assert!(out.status.success(), "{text}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{}: ok\n", path.display()));
    }
}

#[test]
fn printed_config_parses_back_and_flags_override_the_file() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "pi.ron",
        "(\n  node: \"from-file\",\n  listen_address: \"127.0.0.1:1111\",\n  log_level: warn,\n  collectors: {\"meminfo\": false},\n)\n",
    );
    let file = file.to_str().unwrap();

    // The file alone.
    let out = run_agent(&["--config", file, "--print-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("node: \"from-file\""), "{printed}");
    assert!(printed.contains("listen_address: \"127.0.0.1:1111\""));
    assert!(printed.contains("\"meminfo\": false"), "{printed}");

    // Flags win over the file, in both flag forms.
    let out = run_agent(&[
        "--config",
        file,
        "--node",
        "from-flag",
        "--web.listen-address=127.0.0.1:2222",
        "--log.level=debug",
        "--collector.meminfo",
        "--no-collector.loadavg",
        "--collector.diskstats.device-exclude=^loop",
        "--print-config",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    for expected in [
        "node: \"from-flag\"",
        "listen_address: \"127.0.0.1:2222\"",
        "log_level: debug",
        "\"meminfo\": true",
        "\"loadavg\": false",
        "device_exclude: \"^loop\"",
    ] {
        assert!(printed.contains(expected), "{expected} in {printed}");
    }

    // What --print-config prints is a valid config file that means the same.
    let reprinted = write(dir.path(), "printed.ron", &printed);
    let reprinted = reprinted.to_str().unwrap();
    let check = run_agent(&["--check-config", reprinted]);
    assert!(check.status.success(), "{printed}\n{}", stderr(&check));
    let again = run_agent(&["--config", reprinted, "--print-config"]);
    assert_eq!(stdout(&again), printed, "print-config is a fixed point");

    // The defaults print and parse back too.
    let defaults = run_agent(&["--print-config"]);
    assert!(defaults.status.success());
    let path = write(dir.path(), "defaults.ron", &stdout(&defaults));
    assert!(run_agent(&["--check-config", path.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn a_bad_flag_value_over_a_good_file_is_an_error() {
    for (args, expected) in [
        (&["--log.level=loud", "--print-config"][..], "--log.level"),
        (
            &["--collector.filesystem.mount-timeout=soon", "--once"][..],
            "invalid duration",
        ),
        (
            &["--collector.netdev.device-exclude=(", "--print-config"][..],
            "netdev.device_exclude",
        ),
        (&["--web.listen-address=nowhere"][..], "listen_address"),
        (&["--node="][..], "node: must not be empty"),
    ] {
        let out = run_agent(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn once_prints_a_valid_exposition_and_exits_0() {
    let out = run_agent(&["--once", "--node=pi-once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.ends_with('\n'));
    let exp = parse_exposition(&text);
    assert!(!exp.samples.is_empty());
    for sample in &exp.samples {
        assert_eq!(
            sample.labels.get("node").map(String::as_str),
            Some("pi-once"),
            "{sample:?}"
        );
    }
    // Every sample's family has a TYPE (histogram/summary samples share their base's).
    for name in exp.names() {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| exp.types.contains_key(*base))
            .unwrap_or(&name);
        assert!(exp.types.contains_key(base), "no TYPE for {name}");
    }
    assert_eq!(
        exp.value("node_scrape_collector_success", &[("collector", "loadavg")]),
        Some(1.0)
    );
    // With promtool present, it is also a valid exposition by Prometheus' own parser.
    if let Some(promtool) = require_or_skip("promtool", "once: promtool check metrics") {
        let mut command = std::process::Command::new(promtool);
        command.args(["check", "metrics"]);
        let (status, _, err) = pipe_through(&mut command, &text);
        // promtool exits 1 for lint warnings too; a parse error says "error while linting".
        assert!(
            !err.contains("error while linting"),
            "promtool cannot parse --once output: {err} (status {status:?})"
        );
    }
}

/// Runs `command` with `input` on stdin, bounded.
fn pipe_through(
    command: &mut std::process::Command,
    input: &str,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("wait");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_flags_and_missing_values_are_errors() {
    for (args, expected) in [
        (&["--bogus"][..], "unknown flag \"--bogus\""),
        (&["--collector.warp_drive"][..], "unknown flag"),
        (&["--no-collector.warp_drive"][..], "unknown flag"),
        (&["--web.listen-adress=:1"][..], "unknown flag"),
        (&["--config"][..], "--config needs a value"),
        (&["--check-config"][..], "--check-config needs a value"),
        (&["positional"][..], "unknown flag \"positional\""),
    ] {
        let out = run_agent(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let help = run_agent(&["--help"]);
    assert!(help.status.success());
    assert!(stdout(&help).contains("--check-config=FILE"));
    assert!(stdout(&help).contains("--web.listen-address=\":9243\""));
    let version = run_agent(&["--version"]);
    assert_eq!(
        stdout(&version),
        format!("pimetrics {}\n", env!("CARGO_PKG_VERSION"))
    );
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pimetrics.ron")
}

/// Keys set in RON text (`name:` at the start of a line, comments skipped), sorted, with
/// repeats (`device_exclude` is in two sections).
fn keys_set(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = text
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with("//"))
        .filter_map(|line| line.split_once(':'))
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

#[test]
fn the_example_config_passes_check_config() {
    let path = example_path();
    let out = run_agent(&["--check-config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_example_config_shows_every_key_with_its_default() {
    use pimetrics::config::Config;
    let text = std::fs::read_to_string(example_path()).unwrap();
    // Lines marked as not the default are left out; the rest must be exactly the defaults.
    let defaults_only: String = text
        .lines()
        .filter(|line| !line.ends_with("// not the default"))
        .map(|line| format!("{line}\n"))
        .collect();
    let parsed = Config::from_ron(&defaults_only, Some(&example_path()))
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        parsed,
        Config::default(),
        "examples/pimetrics.ron differs from the embedded defaults (each collector's settings type, src/config/): \
         update the example (or mark the line `// not the default`)"
    );
    // Every key the agent knows (as --print-config writes them) is in the example.
    let known = keys_set(&Config::default().to_ron());
    let shown = keys_set(&text);
    assert_eq!(
        shown, known,
        "examples/pimetrics.ron must set every config key (src/config/ and each collector's settings)"
    );
    // And the whole file, marked lines included, is a valid config.
    Config::from_ron(&text, Some(&example_path())).unwrap_or_else(|err| panic!("{err}"));
}
