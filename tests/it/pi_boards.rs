//! The whole agent (`--once`) on each Raspberry Pi fixture board: with the board's recorded
//! mailbox answers (/dev/vcio), with only its gencmd answers (/dev/vcio_gencmd), and with
//! neither (sysfs fallback), asserting values, labels and `rpi_metric_source_info`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::harness::*;

fn board_dir(board: &str) -> PathBuf {
    tree(board).dir
}

/// How the fixture board's firmware is reached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Firmware {
    /// /dev/vcio answers (its recorded property-tag answers).
    Mailbox,
    /// Only /dev/vcio_gencmd opens (its recorded text answers).
    Gencmd,
    /// Neither: sysfs.
    Sysfs,
}

/// Runs `--once` with only the rpi collector on a fixture board; `mailbox`: replay its
/// recorded answers, else no /dev/vcio. Returns the exposition and the log.
fn once(board: &str, mailbox: bool, extra: &[&str]) -> (Exposition, String, String) {
    let firmware = if mailbox {
        Firmware::Mailbox
    } else {
        Firmware::Sysfs
    };
    let state = tempfile::tempdir().unwrap();
    let state_arg = format!(
        "--collector.rpi.state-file={}",
        state.path().join("since-boot").display()
    );
    let mut args = vec![state_arg.as_str()];
    args.extend_from_slice(extra);
    once_with(board, firmware, &args)
}

/// As `once`, with the firmware interface chosen; `extra` should name a state file.
fn once_with(board: &str, firmware: Firmware, extra: &[&str]) -> (Exposition, String, String) {
    let dir = board_dir(board);
    let arg = |name: &str, sub: &str| format!("--{name}={}", dir.join(sub).display());
    let mut args = vec![
        "--once".to_string(),
        "--node=pi".to_string(),
        "--collector.disable-defaults".to_string(),
        "--collector.rpi".to_string(),
        arg("path.procfs", "proc"),
        arg("path.sysfs", "sys"),
        arg("path.devfs", "dev"),
    ];
    match firmware {
        Firmware::Mailbox => args.push(arg("collector.rpi.mailbox-replay", "mailbox.replay")),
        Firmware::Gencmd => args.push(arg("collector.rpi.gencmd-replay", "gencmd.replay")),
        Firmware::Sysfs => {}
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_agent(&args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{board}: {stderr}");
    (parse_exposition(&stdout), stdout, stderr)
}

fn info(exp: &Exposition) -> Vec<(String, String)> {
    let samples = exp.family("rpi_board_info");
    assert_eq!(samples.len(), 1);
    samples[0]
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "node")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn cond(exp: &Exposition, condition: &str, when: &str) -> Option<f64> {
    exp.value(
        "rpi_throttled_condition",
        &[("condition", condition), ("when", when)],
    )
}

fn source(exp: &Exposition, metric: &str) -> Option<(String, String)> {
    exp.family("rpi_metric_source_info")
        .into_iter()
        .find(|s| s.labels.get("metric").map(String::as_str) == Some(metric))
        .map(|s| (s.labels["source"].clone(), s.labels["interface"].clone()))
}

fn src(source: &str, interface: &str) -> Option<(String, String)> {
    Some((source.to_string(), interface.to_string()))
}

#[test]
fn pi4_64bit_with_mailbox() {
    let (exp, text, log) = once("pi4", true, &[]);
    assert_eq!(
        info(&exp),
        labels(&[
            ("model", "Raspberry Pi 4 Model B Rev 1.1"),
            ("revision", "c03111"),
            ("soc", "BCM2711"),
            ("memory", "4GB"),
            ("manufacturer", "Sony UK"),
        ])
    );
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(54.768));
    assert_eq!(
        exp.value("rpi_soc_temperature_max_celsius", &[]),
        Some(85.0)
    );
    assert_eq!(
        exp.value("rpi_throttled_flags", &[]),
        Some(f64::from(0x50000))
    );
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(cond(&exp, "under_voltage", "now"), Some(0.0));
    assert_eq!(cond(&exp, "throttled", "since_boot"), Some(1.0));
    assert_eq!(cond(&exp, "arm_frequency_capped", "since_boot"), Some(0.0));
    assert_eq!(exp.family("rpi_throttled_condition").len(), 8);
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "arm")]),
        Some(1_500_398_464.0)
    );
    assert_eq!(
        exp.value("rpi_clock_set_hertz", &[("clock", "arm")]),
        Some(1_500_000_000.0)
    );
    // A gated clock reads 0 measured but exists; clocks the board lacks are not exported.
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "h264")]),
        Some(0.0)
    );
    assert_eq!(
        exp.value("rpi_clock_set_hertz", &[("clock", "pixel")]),
        None
    );
    // Clock id 15 (VEC) too.
    assert_eq!(
        exp.value("rpi_clock_set_hertz", &[("clock", "vec")]),
        Some(108_000_000.0)
    );
    assert_eq!(exp.family("rpi_clock_set_hertz").len(), 10);
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "core")]),
        Some(0.85)
    );
    assert_eq!(
        exp.value("rpi_voltage_max_volts", &[("rail", "core")]),
        Some(1.0)
    );
    assert_eq!(
        exp.value("rpi_voltage_min_volts", &[("rail", "sdram_p")]),
        Some(1.1)
    );
    // PoE HAT fan: PWM only (no tachometer); no PMIC on a Pi 4.
    assert_eq!(exp.value("rpi_fan_pwm_ratio", &[]), Some(100.0 / 255.0));
    assert_eq!(exp.value("rpi_fan_rpm", &[]), None);
    assert!(exp.family("rpi_pmic_volts").is_empty());
    assert_eq!(exp.value("rpi_mailbox_available", &[]), Some(1.0));
    assert_eq!(
        exp.value("rpi_mailbox_errors_total", &[("tag", "get_voltage")]),
        Some(0.0)
    );
    assert_eq!(
        source(&exp, "rpi_soc_temperature_celsius"),
        src("mailbox", "get_temperature")
    );
    assert_eq!(
        source(&exp, "rpi_fan_pwm_ratio"),
        src("sysfs", "hwmon_pwmfan")
    );
    assert!(!log.contains("warn"), "{log}");
    assert!(
        exp.samples.iter().all(|s| s.labels["node"] == "pi"),
        "{text}"
    );
}

#[test]
fn pi4_64bit_without_mailbox_falls_back_to_sysfs() {
    let (exp, _, log) = once("pi4", false, &[]);
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(54.768));
    assert_eq!(
        exp.value("rpi_throttled_flags", &[]),
        Some(f64::from(0x50000))
    );
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(exp.value("rpi_soc_temperature_max_celsius", &[]), None);
    assert!(exp.family("rpi_clock_measured_hertz").is_empty());
    assert_eq!(exp.value("rpi_mailbox_available", &[]), Some(0.0));
    assert!(exp.family("rpi_mailbox_errors_total").is_empty());
    assert_eq!(
        source(&exp, "rpi_soc_temperature_celsius"),
        src("sysfs", "thermal_zone")
    );
    assert_eq!(
        source(&exp, "rpi_throttled_flags"),
        src("sysfs", "get_throttled")
    );
    // One warning line: what is missing, and both fixes.
    let warnings: Vec<_> = log.lines().filter(|l| l.contains("warn")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("--device /dev/vcio"), "{log}");
    assert!(
        warnings[0].contains("measured and set clock rates"),
        "{log}"
    );
    assert!(warnings[0].contains("deprecated"), "{log}");
}

#[test]
fn pi5_with_fan_pmic_and_rejected_tags() {
    let (exp, _, log) = once("pi5", true, &[]);
    assert_eq!(
        info(&exp),
        labels(&[
            ("model", "Raspberry Pi 5 Model B Rev 1.0"),
            ("revision", "d04170"),
            ("soc", "BCM2712"),
            ("memory", "8GB"),
            ("manufacturer", "Sony UK"),
        ])
    );
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(46.3));
    // Rejected at start: not exported, counted, logged once, asked again at the next read
    // (then with backoff); the rest is there.
    assert_eq!(exp.value("rpi_soc_temperature_max_celsius", &[]), None);
    assert_eq!(
        exp.value(
            "rpi_mailbox_errors_total",
            &[("tag", "get_max_temperature")]
        ),
        Some(2.0)
    );
    assert_eq!(
        exp.value("rpi_mailbox_errors_total", &[("tag", "get_max_voltage")]),
        Some(6.0)
    );
    // Clock id 16 (DISP), BCM2712 only.
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "disp")]),
        Some(499_999_000.0)
    );
    assert_eq!(
        exp.value("rpi_voltage_max_volts", &[("rail", "core")]),
        Some(1.0)
    );
    assert_eq!(
        exp.value("rpi_voltage_max_volts", &[("rail", "sdram_c")]),
        None
    );
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "sdram_i")]),
        Some(0.6)
    );
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "arm")]),
        Some(1_500_004_352.0)
    );
    assert_eq!(
        exp.value("rpi_clock_set_hertz", &[("clock", "arm")]),
        Some(2_400_000_000.0)
    );
    assert_eq!(exp.value("rpi_throttled_flags", &[]), Some(0.0));
    // PMIC rails paired by name; EXT5V and BATT have a voltage only.
    assert_eq!(
        exp.value("rpi_pmic_amperes", &[("rail", "VDD_CORE")]),
        Some(0.56259)
    );
    assert_eq!(
        exp.value("rpi_pmic_volts", &[("rail", "VDD_CORE")]),
        Some(0.7679846)
    );
    assert_eq!(
        exp.value("rpi_pmic_volts", &[("rail", "EXT5V")]),
        Some(5.14158)
    );
    assert_eq!(exp.value("rpi_pmic_amperes", &[("rail", "EXT5V")]), None);
    assert_eq!(exp.family("rpi_pmic_volts").len(), 14);
    assert_eq!(exp.family("rpi_pmic_amperes").len(), 12);
    assert_eq!(exp.value("rpi_fan_rpm", &[]), Some(1468.0));
    assert_eq!(exp.value("rpi_fan_pwm_ratio", &[]), Some(75.0 / 255.0));
    let rejected: Vec<_> = log.lines().filter(|l| l.contains("rejects")).collect();
    assert_eq!(rejected.len(), 1, "{log}");
    assert!(rejected[0].contains("get_max_voltage(sdram_i)"), "{log}");
    assert!(rejected[0].contains("backoff"), "{log}");
    assert_eq!(
        source(&exp, "rpi_pmic_volts"),
        src("gencmd", "pmic_read_adc")
    );
}

#[test]
fn pi4_through_vcio_gencmd_only() {
    // Current Raspberry Pi OS: /dev/vcio is root's, /dev/vcio_gencmd the video group's.
    let state = tempfile::tempdir().unwrap();
    let state_arg = format!(
        "--collector.rpi.state-file={}",
        state.path().join("s").display()
    );
    let (exp, _, log) = once_with("pi4", Firmware::Gencmd, &[&state_arg]);
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(54.8));
    assert_eq!(
        exp.value("rpi_throttled_flags", &[]),
        Some(f64::from(0x50000))
    );
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(cond(&exp, "under_voltage", "now"), Some(0.0));
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "arm")]),
        Some(1_500_398_464.0)
    );
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "vec")]),
        Some(108_000_000.0)
    );
    // A clock the firmware reads 0 through gencmd (no set rate to tell gated from absent).
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "h264")]),
        None
    );
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "sdram_i")]),
        Some(1.1)
    );
    assert!(exp.family("rpi_clock_set_hertz").is_empty());
    assert!(exp.family("rpi_voltage_max_volts").is_empty());
    assert_eq!(exp.value("rpi_soc_temperature_max_celsius", &[]), None);
    assert_eq!(exp.value("rpi_mailbox_available", &[]), Some(1.0));
    assert_eq!(
        exp.value("rpi_mailbox_errors_total", &[("tag", "gencmd")]),
        Some(0.0)
    );
    for (metric, interface) in [
        ("rpi_soc_temperature_celsius", "measure_temp"),
        ("rpi_throttled_flags", "get_throttled"),
        ("rpi_throttled_condition", "get_throttled"),
        ("rpi_clock_measured_hertz", "measure_clock"),
        ("rpi_voltage_volts", "measure_volts"),
    ] {
        assert_eq!(source(&exp, metric), src("gencmd", interface), "{metric}");
    }
    assert_eq!(
        source(&exp, "rpi_fan_pwm_ratio"),
        src("sysfs", "hwmon_pwmfan")
    );
    let warnings: Vec<_> = log.lines().filter(|l| l.contains("warn")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("/dev/vcio_gencmd instead"), "{log}");
}

#[test]
fn pi5_through_vcio_gencmd_only() {
    let state = tempfile::tempdir().unwrap();
    let state_arg = format!(
        "--collector.rpi.state-file={}",
        state.path().join("s").display()
    );
    let (exp, _, _) = once_with("pi5", Firmware::Gencmd, &[&state_arg]);
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(46.3));
    assert_eq!(exp.value("rpi_throttled_flags", &[]), Some(0.0));
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "arm")]),
        Some(1_500_004_352.0)
    );
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "core")]),
        Some(0.72)
    );
    assert_eq!(
        exp.value("rpi_pmic_volts", &[("rail", "EXT5V")]),
        Some(5.14158)
    );
    assert_eq!(exp.family("rpi_pmic_amperes").len(), 12);
    assert_eq!(
        source(&exp, "rpi_soc_temperature_celsius"),
        src("gencmd", "measure_temp")
    );
    assert_eq!(
        source(&exp, "rpi_pmic_amperes"),
        src("gencmd", "pmic_read_adc")
    );
}

#[test]
fn since_boot_is_kept_by_the_agent_across_restarts_until_a_reboot() {
    // The sysfs get_throttled is the kernel's clearing 2 s poll: its sticky bits come and go.
    // The agent keeps what it has seen this boot, in its state file.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pi4");
    let status = Command::new("cp")
        .arg("-a")
        .arg(board_dir("pi4"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let state = dir.path().join("run/pimetrics/rpi-since-boot");
    let run = || {
        let output = run_agent(&[
            "--once",
            "--node=pi",
            "--collector.disable-defaults",
            "--collector.rpi",
            &format!("--path.procfs={}", root.join("proc").display()),
            &format!("--path.sysfs={}", root.join("sys").display()),
            &format!("--path.devfs={}", root.join("dev").display()),
            &format!("--collector.rpi.state-file={}", state.display()),
        ]);
        assert!(output.status.success());
        parse_exposition(&String::from_utf8_lossy(&output.stdout))
    };
    let throttled = root.join("sys/devices/platform/soc/soc:firmware/get_throttled");
    let boot_id = root.join("proc/sys/kernel/random/boot_id");
    std::fs::write(&throttled, "50000\n").unwrap();
    let exp = run();
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(cond(&exp, "throttled", "since_boot"), Some(1.0));
    let kept = std::fs::read_to_string(&state).unwrap();
    assert!(kept.contains("seen=0x5"), "{kept}");
    // The kernel's next poll cleared the bits; the agent restarts: still seen this boot.
    std::fs::write(&throttled, "0\n").unwrap();
    let exp = run();
    assert_eq!(exp.value("rpi_throttled_flags", &[]), Some(0.0));
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(cond(&exp, "under_voltage", "now"), Some(0.0));
    // Soft limit now: added to what was seen.
    std::fs::write(&throttled, "8\n").unwrap();
    let exp = run();
    assert_eq!(
        cond(&exp, "soft_temperature_limit", "since_boot"),
        Some(1.0)
    );
    assert_eq!(cond(&exp, "throttled", "since_boot"), Some(1.0));
    // A reboot (new boot id): only what this boot shows.
    std::fs::write(&throttled, "0\n").unwrap();
    std::fs::write(&boot_id, "11111111-2222-3333-4444-555555555555\n").unwrap();
    let exp = run();
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(0.0));
    assert_eq!(
        cond(&exp, "soft_temperature_limit", "since_boot"),
        Some(0.0)
    );
}

#[test]
fn debian_32bit_kernel_revision_0000_uses_the_device_tree() {
    let (exp, _, _) = once("debian-pi3-32bit", false, &[]);
    assert_eq!(
        info(&exp),
        labels(&[
            ("model", "Raspberry Pi 3 Model B Rev 1.2"),
            ("revision", "a02082"),
            ("soc", "BCM2837"),
            ("memory", "1GB"),
            ("manufacturer", "Sony UK"),
        ])
    );
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(50.464));
    // rpi_volt's alarm: under-voltage in the kernel's last poll, kept as seen since boot.
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(exp.value("rpi_throttled_flags", &[]), None);
    assert_eq!(
        source(&exp, "rpi_throttled_condition"),
        src("sysfs", "rpi_volt")
    );
}

#[test]
fn pi5_without_mailbox() {
    let (exp, _, _) = once("pi5", false, &[]);
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(46.3));
    // get_throttled under soc@107c000000:firmware, the Pi 5's firmware device.
    assert_eq!(exp.value("rpi_throttled_flags", &[]), Some(0.0));
    assert_eq!(
        source(&exp, "rpi_throttled_flags"),
        src("sysfs", "get_throttled")
    );
    assert_eq!(exp.value("rpi_fan_rpm", &[]), Some(1468.0));
    assert!(exp.family("rpi_pmic_volts").is_empty());
}

#[test]
fn pi_zero_w_32bit() {
    for mailbox in [true, false] {
        let (exp, _, _) = once("pi-zero-w", mailbox, &[]);
        assert_eq!(
            info(&exp),
            labels(&[
                ("model", "Raspberry Pi Zero W Rev 1.1"),
                ("revision", "9000c1"),
                ("soc", "BCM2835"),
                ("memory", "512MB"),
                ("manufacturer", "Sony UK"),
            ])
        );
        assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(41.868));
        assert_eq!(exp.value("rpi_throttled_flags", &[]), Some(0.0));
        assert_eq!(exp.value("rpi_fan_rpm", &[]), None);
        if mailbox {
            assert_eq!(
                exp.value("rpi_clock_measured_hertz", &[("clock", "arm")]),
                Some(700_000_000.0)
            );
            assert_eq!(
                exp.value("rpi_voltage_volts", &[("rail", "sdram_p")]),
                Some(1.225)
            );
            // No PMIC: "Command not registered" is not an error.
            assert_eq!(
                exp.value("rpi_mailbox_errors_total", &[("tag", "gencmd")]),
                Some(0.0)
            );
        }
    }
}

#[test]
fn pi3b_plus_32bit_kernel_at_its_soft_limit() {
    for mailbox in [true, false] {
        let (exp, _, _) = once("pi3b-plus", mailbox, &[]);
        let info = info(&exp);
        assert!(info.contains(&("model".into(), "Raspberry Pi 3 Model B Plus Rev 1.3".into())));
        assert!(info.contains(&("soc".into(), "BCM2837".into())), "{info:?}");
        assert!(info.contains(&("revision".into(), "a020d3".into())));
        assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(61.224));
        assert_eq!(
            exp.value("rpi_throttled_flags", &[]),
            Some(f64::from(0x80008))
        );
        assert_eq!(cond(&exp, "soft_temperature_limit", "now"), Some(1.0));
        assert_eq!(
            cond(&exp, "soft_temperature_limit", "since_boot"),
            Some(1.0)
        );
        assert_eq!(cond(&exp, "under_voltage", "now"), Some(0.0));
    }
    let (exp, _, _) = once("pi3b-plus", true, &[]);
    assert_eq!(
        exp.value("rpi_clock_measured_hertz", &[("clock", "arm")]),
        Some(1_200_000_000.0)
    );
}

#[test]
fn cm4_sysfs_voltages_and_mailbox() {
    let (exp, _, _) = once("cm4", false, &[]);
    let info = info(&exp);
    assert!(info.contains(&(
        "model".into(),
        "Raspberry Pi Compute Module 4 Rev 1.1".into()
    )));
    assert!(info.contains(&("memory".into(), "4GB".into())));
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "core")]),
        Some(0.835)
    );
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "sdram_i")]),
        Some(1.1)
    );
    assert_eq!(exp.family("rpi_voltage_volts").len(), 4);
    assert_eq!(source(&exp, "rpi_voltage_volts"), src("sysfs", "rpi_volt"));
    let (exp, _, _) = once("cm4", true, &[]);
    assert_eq!(
        exp.value("rpi_voltage_volts", &[("rail", "core")]),
        Some(0.835)
    );
    assert_eq!(
        source(&exp, "rpi_voltage_volts"),
        src("mailbox", "get_voltage")
    );
    assert_eq!(
        exp.value("rpi_clock_set_hertz", &[("clock", "emmc2")]),
        Some(200_000_000.0)
    );
}

#[test]
fn debian_kernel_without_revision_line() {
    let (exp, _, log) = once("debian-pi4", false, &[]);
    assert_eq!(
        info(&exp),
        labels(&[
            ("model", "Raspberry Pi 4 Model B Rev 1.4"),
            ("revision", ""),
            ("soc", "BCM2711"),
            ("memory", ""),
            ("manufacturer", ""),
        ])
    );
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), Some(41.868));
    // No get_throttled on this kernel: only the rpi_volt under-voltage alarm.
    assert_eq!(exp.value("rpi_throttled_flags", &[]), None);
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(0.0));
    assert_eq!(exp.family("rpi_throttled_condition").len(), 1);
    assert_eq!(
        source(&exp, "rpi_throttled_condition"),
        src("sysfs", "rpi_volt")
    );
    assert!(log.contains("throttled flags"), "{log}");
}

#[test]
fn other_machines_switch_the_collector_off_with_one_line_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(
        dir.path().join("proc/cpuinfo"),
        "processor\t: 0\nvendor_id\t: GenuineIntel\n",
    )
    .unwrap();
    let proc_arg = format!("--path.procfs={}", dir.path().join("proc").display());
    let sys_arg = format!("--path.sysfs={}", dir.path().join("sys").display());
    let dev_arg = format!("--path.devfs={}", dir.path().join("dev").display());
    let base = [
        "--once",
        "--collector.disable-defaults",
        "--collector.rpi",
        &proc_arg,
        &sys_arg,
        &dev_arg,
    ];
    let output = run_agent(&base);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("rpi_"), "{stdout}");
    let lines: Vec<_> = stderr.lines().filter(|l| l.contains("rpi")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("not a Raspberry Pi"), "{stderr}");

    let mut forced = base.to_vec();
    forced.push("--collector.rpi.enabled=on");
    let output = run_agent(&forced);
    let exp = parse_exposition(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(exp.value("rpi_mailbox_available", &[]), Some(0.0));
    assert_eq!(exp.family("rpi_board_info").len(), 1);

    let mut off = base.to_vec();
    off.push("--collector.rpi.enabled=off");
    let output = run_agent(&off);
    assert!(!String::from_utf8_lossy(&output.stdout).contains("rpi_"));
}

#[test]
fn broken_fixture_files_fail_the_collector_not_the_scrape() {
    // A copy of the Pi 4 tree whose thermal zone temp is garbage and whose fan pwm is a
    // directory (an unreadable file): the collector reports the failure, values from other
    // files are still exported.
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        let status = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy(&board_dir("pi4"), &dir.path().join("pi4"));
    let root = dir.path().join("pi4");
    std::fs::write(
        root.join("sys/class/thermal/thermal_zone0/temp"),
        "garbage\n",
    )
    .unwrap();
    let pwm = root.join("sys/devices/platform/pwm-fan/hwmon/hwmon2/pwm1");
    std::fs::remove_file(&pwm).unwrap();
    std::fs::create_dir(&pwm).unwrap();
    std::fs::write(
        root.join("sys/devices/platform/soc/soc:firmware/get_throttled"),
        "\u{0}\u{ff}zz",
    )
    .unwrap();
    let output = run_agent(&[
        "--once",
        "--collector.disable-defaults",
        "--collector.rpi",
        &format!("--path.procfs={}", root.join("proc").display()),
        &format!("--path.sysfs={}", root.join("sys").display()),
        &format!("--path.devfs={}", root.join("dev").display()),
    ]);
    assert!(output.status.success());
    let exp = parse_exposition(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        exp.value("node_scrape_collector_success", &[("collector", "rpi")]),
        Some(0.0)
    );
    assert_eq!(exp.family("rpi_board_info").len(), 1);
    assert_eq!(exp.value("rpi_soc_temperature_celsius", &[]), None);
    assert_eq!(exp.value("rpi_fan_pwm_ratio", &[]), None);
    assert_eq!(exp.value("rpi_throttled_flags", &[]), None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not an integer"), "{stderr}");
}

#[test]
fn every_board_passes_promtool_check_metrics() {
    let promtool = require("promtool");
    let state = tempfile::tempdir().unwrap();
    let state_arg = format!(
        "--collector.rpi.state-file={}",
        state.path().join("s").display()
    );
    for board in [
        "pi4",
        "pi5",
        "pi-zero-w",
        "pi3b-plus",
        "cm4",
        "debian-pi4",
        "debian-pi3-32bit",
    ] {
        for firmware in [Firmware::Mailbox, Firmware::Gencmd, Firmware::Sysfs] {
            let file = match firmware {
                Firmware::Mailbox => "mailbox.replay",
                Firmware::Gencmd => "gencmd.replay",
                Firmware::Sysfs => "proc",
            };
            if !board_dir(board).join(file).exists() {
                continue;
            }
            let (_, text, _) = once_with(board, firmware, &[&state_arg]);
            let mut child = Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let output = child.wait_with_output().unwrap();
            let complaints = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            let ours: Vec<_> = complaints
                .lines()
                .filter(|l| l.starts_with("rpi_"))
                .collect();
            assert!(ours.is_empty(), "{board} {firmware:?}: {complaints}");
        }
    }
}

#[test]
fn an_unwritable_state_file_costs_a_warning_not_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let state_arg = format!(
        "--collector.rpi.state-file={}",
        file.join("since-boot").display()
    );
    // pi4's sysfs get_throttled shows under-voltage: a new condition to write down.
    let (exp, _, log) = once_with("pi4", Firmware::Sysfs, &[&state_arg]);
    assert_eq!(cond(&exp, "under_voltage", "since_boot"), Some(1.0));
    assert_eq!(
        exp.value("node_scrape_collector_success", &[("collector", "rpi")]),
        Some(1.0)
    );
    let warnings: Vec<_> = log
        .lines()
        .filter(|l| l.contains("since-boot state"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
}
