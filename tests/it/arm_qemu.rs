//! Real Raspberry Pi binaries, run under qemu-user on the Pi fixture boards.
//!
//! Builds the ARM binaries once with `cross/build` (release profile, zig as C compiler and
//! linker: aarch64 musl, ARMv7 glibc 2.28, ARMv6 musl with a rebuilt standard library), checks
//! their architecture (cross/build does: readelf), then runs each with `--once` under
//! `qemu-aarch64`, `qemu-arm -cpu cortex-a7` and `qemu-arm -cpu arm1176` on every fixture board
//! (mailbox replay, gencmd replay, sysfs) and requires the same `rpi_` series as the host
//! binary gives, plus key values checked directly. That exercises the 32-bit ioctl request
//! number, `time_t`, atomics and TLS on ARMv6, and the codec on each target's word size.
//!
//! Costly (three release builds; the ARMv6 one rebuilds std): it runs when
//! PIMETRICS_ARM_TEST=1 (scripts/test sets it) and prints SKIPPED otherwise. The ARM target
//! directory is $PIMETRICS_ARM_TARGET_DIR when set (scripts/test keeps it under ~/.cache, so a
//! fresh clone reuses the rebuilt standard library and dependencies), else `target/`. A target whose
//! toolchain or qemu cannot be had prints SKIPPED with the reason; the others still run. The
//! binaries run, with their sizes, are listed in target/tmp/arm_qemu.txt (scripts/test prints
//! it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn host_agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pimetrics"))
}

/// How to run one built target: the qemu program and its arguments.
struct Runner {
    triple: &'static str,
    qemu: &'static str,
    args: &'static [&'static str],
}

const RUNNERS: &[Runner] = &[
    Runner {
        triple: "aarch64-unknown-linux-musl",
        qemu: "qemu-aarch64",
        args: &[],
    },
    Runner {
        triple: "armv7-unknown-linux-gnueabihf",
        qemu: "qemu-arm",
        // The Pi 2's core; glibc binaries find their loader and libc in Debian's armhf cross
        // libraries (libc6-armhf-cross).
        args: &["-cpu", "cortex-a7", "-L", "/usr/arm-linux-gnueabihf"],
    },
    Runner {
        triple: "arm-unknown-linux-musleabihf",
        qemu: "qemu-arm",
        // The Pi Zero / 1 core: an ARMv7 instruction dies here.
        args: &["-cpu", "arm1176"],
    },
];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// (board, replay option and file) for every fixture board and each firmware interface it
/// has recordings for (none: sysfs).
fn scenarios() -> Vec<(String, Option<(&'static str, &'static str)>)> {
    let mut out = Vec::new();
    for board in crate::harness::pi_boards() {
        let name = board.name;
        for option in [
            Some(("--collector.rpi.mailbox-replay", "mailbox.replay")),
            Some(("--collector.rpi.gencmd-replay", "gencmd.replay")),
            None,
        ] {
            if let Some((_, file)) = option {
                if !board.dir.join(file).exists() {
                    continue;
                }
            }
            out.push((name.clone(), option));
        }
    }
    out
}

/// `--once` on a board; returns the `rpi_` lines (sorted) and the output.
fn once(
    command: &mut Command,
    board: &str,
    option: Option<(&str, &str)>,
    state: &Path,
) -> (BTreeSet<String>, Output) {
    let dir = crate::harness::tree(board).dir;
    let path = |flag: &str, sub: &str| format!("{flag}={}", dir.join(sub).display());
    command.args([
        "--once",
        "--node=pi",
        "--collector.disable-defaults",
        "--collector.rpi",
        &path("--path.procfs", "proc"),
        &path("--path.sysfs", "sys"),
        &path("--path.devfs", "dev"),
        &format!("--collector.rpi.state-file={}", state.display()),
    ]);
    if let Some((flag, file)) = option {
        command.arg(path(flag, file));
    }
    let output = command.output().expect("run the agent");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("rpi_"))
        .map(str::to_string)
        .collect();
    (lines, output)
}

#[test]
fn arm_binaries_give_the_host_values_on_every_fixture_board() {
    let _heavy = crate::harness::heavy();
    if std::env::var("PIMETRICS_ARM_TEST").as_deref() != Ok("1") {
        println!(
            "SKIPPED arm_qemu: set PIMETRICS_ARM_TEST=1 to build the ARM binaries and run them \
             under qemu-user (scripts/test does)"
        );
        return;
    }
    let report_dir = root().join("target/tmp");
    std::fs::create_dir_all(&report_dir).unwrap();
    let mut report = Vec::new();

    // Build once; cross/build reuses target/<triple>/release between runs.
    let log_path = report_dir.join("cross-build.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut build = Command::new(root().join("cross/build"));
    // The environment cargo gives this test (CARGO_PKG_*, CARGO_BIN_EXE_*, ...) would make the
    // nested builds differ from a build run by hand, and rebuild every time.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            build.env_remove(&*key);
        }
    }
    if let Some(dir) = std::env::var_os("PIMETRICS_ARM_TARGET_DIR").filter(|d| !d.is_empty()) {
        build.env("CARGO_TARGET_DIR", dir);
    }
    let status = build
        .arg("--skip-unavailable")
        .current_dir(root())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .expect("run cross/build");
    let build_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = build_log.lines().rev().take(40).collect();
    assert!(
        status.success(),
        "cross/build failed; last lines of {}:\n{}",
        log_path.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let built = std::fs::read_to_string(root().join("target/cross/built.txt")).unwrap();

    // The host binary's series, the reference (tests/it/pi_boards.rs checks them value by value).
    let scenarios = scenarios();
    assert!(scenarios.len() >= 10, "{scenarios:?}");
    let state = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for (index, (board, option)) in scenarios.iter().enumerate() {
        let state_file = state.path().join(format!("host-{index}"));
        let (lines, output) = once(&mut Command::new(host_agent()), board, *option, &state_file);
        assert!(output.status.success(), "host {board} {option:?}");
        assert!(!lines.is_empty(), "host {board} {option:?}: no rpi_ series");
        expected.push(lines);
    }

    let mut ran = 0;
    for runner in RUNNERS {
        let Some(line) = built
            .lines()
            .find(|l| l.split_whitespace().next() == Some(runner.triple))
        else {
            let message = format!("SKIPPED {}: not built by cross/build", runner.triple);
            println!("{message}");
            report.push(message);
            continue;
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"SKIPPED") {
            let message = format!("SKIPPED {}: {}", runner.triple, fields[2..].join(" "));
            println!("{message}");
            report.push(message);
            continue;
        }
        if !on_path(runner.qemu) {
            let message = format!(
                "SKIPPED {}: {} not installed (Debian package qemu-user)",
                runner.triple, runner.qemu
            );
            println!("{message}");
            report.push(message);
            continue;
        }
        if runner.args.contains(&"-L") && !Path::new("/usr/arm-linux-gnueabihf/lib").is_dir() {
            let message = format!(
                "SKIPPED {}: no armhf glibc for qemu (Debian package libc6-armhf-cross)",
                runner.triple
            );
            println!("{message}");
            report.push(message);
            continue;
        }
        let binary = root().join(fields[1]);
        let size = std::fs::metadata(&binary).unwrap().len();
        for (index, (board, option)) in scenarios.iter().enumerate() {
            let state_file = state.path().join(format!("{}-{index}", runner.triple));
            let mut command = Command::new(runner.qemu);
            command.args(runner.args).arg(&binary);
            let (lines, output) = once(&mut command, board, *option, &state_file);
            assert!(
                output.status.success(),
                "{} on {board} {option:?}: {:?}\n{}",
                runner.triple,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            let missing: Vec<_> = expected[index].difference(&lines).collect();
            let extra: Vec<_> = lines.difference(&expected[index]).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{} on {board} {option:?} differs from the host binary:\nmissing {missing:#?}\nextra {extra:#?}",
                runner.triple
            );
            // Values checked directly too, so a shared decoding bug cannot hide.
            if board == "pi4" && option.is_some_and(|(_, f)| f == "mailbox.replay") {
                for want in [
                    "rpi_soc_temperature_celsius{node=\"pi\"} 54.768",
                    "rpi_throttled_flags{node=\"pi\"} 327680",
                    "rpi_clock_measured_hertz{node=\"pi\",clock=\"arm\"} 1500398464",
                    "rpi_board_info{node=\"pi\",model=\"Raspberry Pi 4 Model B Rev 1.1\",revision=\"c03111\",soc=\"BCM2711\",memory=\"4GB\",manufacturer=\"Sony UK\"} 1",
                ] {
                    assert!(lines.contains(want), "{}: no {want}", runner.triple);
                }
            }
            if board == "pi5" && option.is_some_and(|(_, f)| f == "gencmd.replay") {
                let want = "rpi_pmic_volts{node=\"pi\",rail=\"EXT5V\"} 5.14158";
                assert!(lines.contains(want), "{}: no {want}", runner.triple);
            }
        }
        let message = format!(
            "ran {} ({size} bytes) under {} {} on {} board scenarios: same rpi_ series as the host",
            binary.display(),
            runner.qemu,
            runner.args.join(" "),
            scenarios.len()
        );
        println!("{message}");
        report.push(message);
        ran += 1;
    }

    // The ARMv6 check has teeth: an ARMv7 binary must not run on the Pi Zero's core.
    if let Some(line) = built
        .lines()
        .find(|l| l.starts_with("armv7-unknown-linux-gnueabihf ") && !l.contains("SKIPPED"))
    {
        if let Some(path) = line.split_whitespace().nth(1) {
            let output = Command::new("qemu-arm")
                .args(["-cpu", "arm1176", "-L", "/usr/arm-linux-gnueabihf"])
                .arg(root().join(path))
                .arg("--version")
                .output();
            if let Ok(output) = output {
                assert!(
                    !output.status.success(),
                    "an ARMv7 binary ran on an ARM1176: the ARMv6 check proves nothing"
                );
                report.push(format!(
                    "the ARMv7 binary fails on -cpu arm1176 as it must ({:?})",
                    output.status
                ));
            }
        }
    }
    std::fs::write(report_dir.join("arm_qemu.txt"), report.join("\n") + "\n").unwrap();
    // As the other tests treat a missing program: a skip on a developer's machine, a failure
    // in CI (scripts/test sets CI=1), where the toolchains must be installable.
    if ran == 0 && std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("no ARM binary could be run:\n{}", report.join("\n"));
    }
}
