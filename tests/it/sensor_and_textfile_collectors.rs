//! thermal_zone, hwmon, pressure and textfile collectors built on fixture trees
//! (tests/fixtures: pi5, pi3b-plus, faults/, textfile/; see SOURCE there) through the public collector table.

use crate::harness;
use std::path::{Path, PathBuf};

use crate::harness::*;
use pimetrics::collector::{spec, Collector, Context, Setup};
use pimetrics::config::Config;
use pimetrics::exposition::Exposition;
use pimetrics::roots::Roots;

fn tree(name: &str) -> PathBuf {
    harness::tree(name).dir
}

fn roots_of(dir: &Path) -> Roots {
    Roots {
        procfs: dir.join("proc"),
        sysfs: dir.join("sys"),
        rootfs: dir.to_path_buf(),
        devfs: "/dev".into(),
    }
}

/// Builds collector `name` on `dir` with `config`.
fn build_with(
    name: &str,
    dir: &Path,
    config: &Config,
) -> Result<(Box<dyn Collector>, Exposition), String> {
    let roots = roots_of(dir);
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    let mut exposition = Exposition::new("pi");
    match (spec(name).expect("a registered collector").build)(&ctx, &mut exposition) {
        Setup::Ready(collector) => Ok((collector, exposition)),
        Setup::Unavailable(reason) => Err(reason),
    }
}

fn build(name: &str, dir: &Path) -> Result<(Box<dyn Collector>, Exposition), String> {
    build_with(name, dir, &Config::default())
}

/// One scrape: the parsed exposition and the collector's result.
fn scrape(
    collector: &mut Box<dyn Collector>,
    exposition: &mut Exposition,
) -> (harness::Exposition, Result<(), String>) {
    exposition.clear();
    let result = collector.update(exposition).map_err(|e| e.0);
    let mut text = String::new();
    exposition.render(&mut text);
    (parse_exposition(&text), result)
}

// ---------------------------------------------------------------- thermal_zone

#[test]
fn thermal_zone_on_a_pi5() {
    let (mut collector, mut exp) = build("thermal_zone", &tree("pi5")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert_eq!(
        out.value(
            "node_thermal_zone_temp",
            &[("zone", "0"), ("type", "cpu-thermal")]
        ),
        Some(46.3)
    );
    let fan = [("name", "0"), ("type", "pwm-fan")];
    assert_eq!(out.value("node_cooling_device_cur_state", &fan), Some(1.0));
    assert_eq!(out.value("node_cooling_device_max_state", &fan), Some(4.0));
    assert_eq!(out.types["node_thermal_zone_temp"], "gauge");
    assert!(out.samples.iter().all(|s| s.labels["node"] == "pi"));
}

#[test]
fn thermal_zone_skips_broken_zones_and_reports_an_error() {
    let (mut collector, mut exp) = build("thermal_zone", &tree("faults/broken")).unwrap();
    for _ in 0..2 {
        let (out, result) = scrape(&mut collector, &mut exp);
        let err = result.unwrap_err();
        assert!(err.contains("thermal_zone0/temp: not an integer"), "{err}");
        // Good zones survive the bad ones; numbering is numeric (10 after 4).
        assert_eq!(
            out.value("node_thermal_zone_temp", &[("zone", "4")]),
            Some(-5.0)
        );
        assert_eq!(
            out.value("node_thermal_zone_temp", &[("zone", "10"), ("type", "ten")]),
            Some(10.0)
        );
        let zones: Vec<_> = out
            .family("node_thermal_zone_temp")
            .iter()
            .map(|s| s.labels["zone"].clone())
            .collect();
        assert_eq!(
            zones,
            ["4", "10"],
            "garbage, empty, huge, directory, untyped skipped"
        );
        // cur_state -1 is a real value; the missing max_state is skipped.
        assert_eq!(
            out.value("node_cooling_device_cur_state", &[("type", "Processor")]),
            Some(-1.0)
        );
        assert!(out.family("node_cooling_device_max_state").is_empty());
    }
}

#[test]
fn thermal_zone_unavailable_without_zones() {
    let reason = build("thermal_zone", &tree("faults/no-psi")).err().unwrap();
    assert!(reason.contains("no thermal zones"), "{reason}");
}

// ---------------------------------------------------------------- hwmon

#[test]
fn hwmon_on_a_pi5_names_chips_like_node_exporter() {
    // Chip names as node_exporter 1.5 gives them on this tree (rpi_volt under the Pi 5's
    // firmware device soc@107c000000: `soc_107c000000:firmware_raspberrypi_hwmon`).
    let (mut collector, mut exp) = build("hwmon", &tree("pi5")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    let chips: Vec<_> = out
        .family("node_hwmon_chip_names")
        .iter()
        .map(|s| (s.labels["chip"].clone(), s.labels["chip_name"].clone()))
        .collect();
    assert_eq!(
        chips,
        [
            (
                "thermal_thermal_zone0".to_string(),
                "cpu_thermal".to_string()
            ),
            (
                "1000120000_pcie_1f000c8000_adc".to_string(),
                "rp1_adc".to_string()
            ),
            ("platform_cooling_fan".to_string(), "pwmfan".to_string()),
            (
                "soc_107c000000:firmware_raspberrypi_hwmon".to_string(),
                "rpi_volt".to_string()
            ),
        ]
    );
    let v = |name: &str, chip: &str, sensor: &str| {
        out.value(name, &[("chip", chip), ("sensor", sensor)])
    };
    // Scaled as node_exporter scales them (value * 0.001, bit for bit: 46.300000000000004).
    let zone = "thermal_thermal_zone0";
    assert_eq!(
        v("node_hwmon_temp_celsius", zone, "temp1"),
        Some(46300.0 * 0.001)
    );
    assert_eq!(
        v("node_hwmon_temp_crit_celsius", zone, "temp1"),
        Some(110000.0 * 0.001)
    );
    // node_exporter also reads the device directory: thermal_zone0/temp becomes sensor temp0.
    assert_eq!(
        v("node_hwmon_temp_celsius", zone, "temp0"),
        Some(46300.0 * 0.001)
    );
    let adc = "1000120000_pcie_1f000c8000_adc";
    assert_eq!(
        v("node_hwmon_temp_celsius", adc, "temp1"),
        Some(53729.0 * 0.001)
    );
    assert_eq!(v("node_hwmon_in_volts", adc, "in1"), Some(1450.0 * 0.001));
    assert_eq!(v("node_hwmon_in_volts", adc, "in3"), Some(3300.0 * 0.001));
    assert_eq!(v("node_hwmon_in_volts", adc, "in4"), Some(0.0));
    let fan = "platform_cooling_fan";
    assert_eq!(v("node_hwmon_fan_rpm", fan, "fan1"), Some(1468.0));
    assert_eq!(v("node_hwmon_pwm", fan, "pwm1"), Some(75.0));
    let volt = "soc_107c000000:firmware_raspberrypi_hwmon";
    assert_eq!(v("node_hwmon_in_lcrit_alarm_volts", volt, "in0"), Some(0.0));
    // `power/` directories of devices are not sensors.
    assert!(!out
        .names()
        .iter()
        .any(|n| n.starts_with("node_hwmon_power")));
    assert_eq!(out.types["node_hwmon_fan_rpm"], "gauge");
}

#[test]
fn hwmon_skips_broken_files_and_dangling_chips() {
    let (mut collector, mut exp) = build("hwmon", &tree("faults/broken")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    // No device link: the name file names the chip; no name either: the hwmonN directory.
    assert_eq!(
        out.value("node_hwmon_chip_names", &[("chip", "my_sensor")]),
        Some(1.0)
    );
    assert_eq!(
        out.value("node_hwmon_pwm", &[("chip", "hwmon2"), ("sensor", "pwm1")]),
        Some(250.0)
    );
    let chip = [("chip", "my_sensor")];
    let temps: Vec<_> = out
        .family("node_hwmon_temp_celsius")
        .iter()
        .map(|s| (s.labels["sensor"].clone(), s.value))
        .collect();
    // temp1 garbage, temp2 empty, temp4 a directory, temp5 a dangling link: skipped.
    assert_eq!(temps, [("temp3".to_string(), 1e20 * 0.001)]);
    assert_eq!(
        out.value("node_hwmon_in_volts", &[chip[0], ("sensor", "in0")]),
        Some(1200.0 * 0.001)
    );
    assert_eq!(
        out.value(
            "node_hwmon_sensor_label",
            &[chip[0], ("sensor", "in0"), ("label", "Core Voltage")]
        ),
        Some(1.0)
    );
    assert!(
        out.family("node_hwmon_fan_rpm").is_empty(),
        "non-UTF-8 value"
    );
    assert_eq!(
        out.value(
            "node_hwmon_beep_enabled",
            &[chip[0], ("sensor", "beep_enable0")]
        ),
        Some(1.0)
    );
    assert_eq!(
        out.value(
            "node_hwmon_update_interval_seconds",
            &[chip[0], ("sensor", "update_interval0")]
        ),
        Some(1.0)
    );
}

#[test]
fn hwmon_tolerates_a_chip_that_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let chip = dir
        .path()
        .join("sys/devices/platform/usb_sensor/hwmon/hwmon7");
    std::fs::create_dir_all(&chip).unwrap();
    std::fs::write(chip.join("name"), "usb_sensor\n").unwrap();
    std::fs::write(chip.join("temp1_input"), "21500\n").unwrap();
    std::os::unix::fs::symlink("../../../usb_sensor", chip.join("device")).unwrap();
    let class = dir.path().join("sys/class/hwmon");
    std::fs::create_dir_all(&class).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/platform/usb_sensor/hwmon/hwmon7",
        class.join("hwmon7"),
    )
    .unwrap();
    let (mut collector, mut exp) = build("hwmon", dir.path()).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert_eq!(
        out.value(
            "node_hwmon_temp_celsius",
            &[("chip", "platform_usb_sensor"), ("sensor", "temp1")]
        ),
        Some(21500.0 * 0.001)
    );
    std::fs::remove_dir_all(dir.path().join("sys/devices/platform/usb_sensor")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert!(out.samples.is_empty(), "{:?}", out.samples);
}

#[test]
fn hwmon_names_a_pi4_poe_hat_fan() {
    // Pi 4 with PoE HAT (pi-facts): devices/platform/pwm-fan/hwmon/hwmonN/pwm1.
    let dir = tempfile::tempdir().unwrap();
    let chip = dir.path().join("sys/devices/platform/pwm-fan/hwmon/hwmon1");
    std::fs::create_dir_all(&chip).unwrap();
    std::fs::write(chip.join("name"), "pwmfan\n").unwrap();
    std::fs::write(chip.join("pwm1"), "150\n").unwrap();
    std::os::unix::fs::symlink("../../../pwm-fan", chip.join("device")).unwrap();
    let class = dir.path().join("sys/class/hwmon");
    std::fs::create_dir_all(&class).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/platform/pwm-fan/hwmon/hwmon1",
        class.join("hwmon1"),
    )
    .unwrap();
    let (mut collector, mut exp) = build("hwmon", dir.path()).unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert_eq!(
        out.value(
            "node_hwmon_pwm",
            &[("chip", "platform_pwm_fan"), ("sensor", "pwm1")]
        ),
        Some(150.0)
    );
}

#[test]
fn hwmon_unavailable_without_chips() {
    let reason = build("hwmon", &tree("faults/no-psi")).err().unwrap();
    assert!(reason.contains("class/hwmon"), "{reason}");
}

// ---------------------------------------------------------------- pressure

#[test]
fn pressure_on_a_pi5_with_psi() {
    let (mut collector, mut exp) = build("pressure", &tree("pi5")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    let v = |name: &str| out.value(name, &[]);
    assert_eq!(v("node_pressure_cpu_waiting_seconds_total"), Some(1.385416));
    assert_eq!(v("node_pressure_io_waiting_seconds_total"), Some(2.639992));
    assert_eq!(v("node_pressure_io_stalled_seconds_total"), Some(2.348044));
    assert_eq!(v("node_pressure_memory_waiting_seconds_total"), Some(0.125));
    assert_eq!(
        v("node_pressure_memory_stalled_seconds_total"),
        Some(0.0625)
    );
    assert_eq!(v("node_pressure_irq_stalled_seconds_total"), Some(0.03125));
    // node_exporter does not export cpu `full`.
    assert_eq!(out.names().len(), 6);
    assert_eq!(
        out.types["node_pressure_io_stalled_seconds_total"],
        "counter"
    );
}

#[test]
fn pressure_on_an_older_kernel_without_irq() {
    let (mut collector, mut exp) = build("pressure", &tree("pi3b-plus")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert_eq!(
        out.value("node_pressure_io_stalled_seconds_total", &[]),
        Some(1.25)
    );
    assert!(!out
        .names()
        .contains("node_pressure_irq_stalled_seconds_total"));
    assert_eq!(out.names().len(), 5);
}

#[test]
fn pressure_garbage_fails_that_file_only() {
    let (mut collector, mut exp) = build("pressure", &tree("faults/broken")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    let err = result.unwrap_err();
    assert!(err.contains("pressure/io"), "{err}");
    assert_eq!(
        out.value("node_pressure_cpu_waiting_seconds_total", &[]),
        Some(1.385416)
    );
    assert_eq!(out.names().len(), 1, "{:?}", out.names());
}

#[test]
fn pressure_unavailable_without_psi_names_the_kernel_parameter() {
    let reason = build("pressure", &tree("faults/no-psi")).err().unwrap();
    assert!(reason.contains("psi=1"), "{reason}");
}

#[test]
fn pressure_on_this_machine_when_it_has_psi() {
    if !Path::new("/proc/pressure/cpu").exists() {
        return;
    }
    let (mut collector, mut exp) = build("pressure", Path::new("/")).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert!(
        out.value("node_pressure_cpu_waiting_seconds_total", &[])
            .unwrap()
            >= 0.0
    );
}

// ---------------------------------------------------------------- textfile

fn textfile_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.collector_settings.textfile.directory = Some(dir.to_path_buf());
    config
}

fn textfile_dir(name: &str) -> PathBuf {
    tree("textfile").join(name)
}

/// A sample as compared: name, labels without `node` and empty values, value as text.
type Comparable = (String, Vec<(String, String)>, String);

/// Every kept sample, sorted.
fn comparable(exp: &harness::Exposition, keep: impl Fn(&str) -> bool) -> Vec<Comparable> {
    let mut samples: Vec<_> = exp
        .samples
        .iter()
        .filter(|s| keep(&s.name))
        .map(|s| {
            let labels = s
                .labels
                .iter()
                .filter(|(k, v)| *k != "node" && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (s.name.clone(), labels, format!("{:?}", s.value))
        })
        .collect();
    samples.sort();
    samples
}

#[test]
fn textfile_good_files_export_what_node_exporter_exports() {
    let dir = textfile_dir("good");
    let (mut collector, mut exp) = build_with("textfile", &dir, &textfile_config(&dir)).unwrap();
    let (ours, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert_eq!(ours.value("node_textfile_scrape_error", &[]), Some(0.0));
    assert_eq!(
        ours.value(
            "rpi_backup_last_success_timestamp_seconds",
            &[("note", "say \"hi\"\nbye")]
        ),
        Some(1.7e9)
    );
    assert_eq!(
        ours.helps["rpi_backup_last_success_timestamp_seconds"],
        // Unescaped by the parser: the file's `\\` is one backslash.
        "Last good backup, \"rsync\" \\ home."
    );
    assert_eq!(ours.types["backup_duration_seconds"], "histogram");
    assert_eq!(ours.types["ping_rtt_seconds"], "summary");
    let apt = dir.join("apt.prom");
    let mtime = std::fs::metadata(&apt)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert_eq!(
        ours.value(
            "node_textfile_mtime_seconds",
            &[("file", apt.to_str().unwrap())]
        ),
        Some(mtime)
    );
    assert_eq!(ours.family("node_textfile_mtime_seconds").len(), 5);

    // The same directory through node_exporter 1.5 itself.
    let port = free_port();
    let mut command = std::process::Command::new(require("prometheus-node-exporter"));
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!("--collector.textfile.directory={}", dir.display()));
    let _node_exporter = Proc::spawn("prometheus-node-exporter", &mut command);
    wait_for_port(port, std::time::Duration::from_secs(10));
    let theirs = parse_exposition(&http_get(port, "/metrics").text());
    let own_metric = |name: &str| {
        [
            "go_",
            "process_",
            "promhttp_",
            "node_scrape_",
            "node_exporter_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    };
    // node_textfile_dropped_files is ours only (the caps node_exporter does not have).
    let textfile_metric = |name: &str| !own_metric(name) && name != "node_textfile_dropped_files";
    assert_eq!(
        comparable(&ours, textfile_metric),
        comparable(&theirs, textfile_metric)
    );
    for (name, kind) in &theirs.types {
        if !own_metric(name) {
            assert_eq!(ours.types.get(name), Some(kind), "{name}");
            assert_eq!(ours.helps.get(name), theirs.helps.get(name), "{name}");
        }
    }
}

#[test]
fn textfile_bad_files_are_dropped_whole_and_flagged() {
    let dir = textfile_dir("mixed");
    let config = textfile_config(&dir);
    // With loadavg active, as in the agent, node_load1 belongs to loadavg.
    let roots = roots_of(&tree("faults/no-psi"));
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    let mut scraper = pimetrics::collector::Scraper::new(&ctx, "pi", &["loadavg", "textfile"]);
    for _ in 0..2 {
        let mut text = String::new();
        scraper.scrape(&mut text);
        let out = parse_exposition(&text);
        assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(1.0));
        assert_eq!(
            out.value(
                "node_scrape_collector_success",
                &[("collector", "textfile")]
            ),
            Some(1.0),
            "a bad file never fails the collector"
        );
        let read: Vec<_> = out
            .family("node_textfile_mtime_seconds")
            .iter()
            .map(|s| {
                Path::new(&s.labels["file"])
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            read,
            [
                "apt.prom",
                "empty.prom",
                "histogram.prom",
                "pi.prom",
                "special.prom"
            ]
        );
        // Rejected whole: garbage, timestamps, dangling link, directory, a duplicate of
        // apt.prom's series, loadavg's metric, a type clash with pi.prom.
        for absent in ["rpi_uptime_seconds", "unique_to_dup", "half_written"] {
            assert!(out.family(absent).is_empty(), "{absent}");
        }
        assert_eq!(out.value("apt_autoremove_pending", &[]), Some(0.0));
        assert_eq!(out.family("node_load1").len(), 1);
        assert_eq!(out.value("node_load1", &[]), Some(0.52));
        assert_eq!(out.family("rpi_temperature").len(), 1);
        assert_eq!(out.types["rpi_temperature"], "gauge");
    }
}

#[test]
fn textfile_follows_rewritten_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.prom");
    let (mut collector, mut exp) =
        build_with("textfile", dir.path(), &textfile_config(dir.path())).unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(0.0));
    assert!(out.family("node_textfile_mtime_seconds").is_empty());

    std::fs::write(&file, "# TYPE job_runs gauge\njob_runs 1\n").unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert_eq!(out.value("job_runs", &[]), Some(1.0));
    assert_eq!(out.types["job_runs"], "gauge");

    std::fs::write(&file, "job_runs{ 2\n").unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(1.0));
    assert!(out.family("job_runs").is_empty());

    // Replaced atomically (new inode), with another type and HELP.
    let tmp = dir.path().join("job.prom.tmp");
    std::fs::write(
        &tmp,
        "# HELP job_runs Runs of the job.\n# TYPE job_runs counter\njob_runs 3\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(0.0));
    assert_eq!(out.value("job_runs", &[]), Some(3.0));
    assert_eq!(out.types["job_runs"], "counter");
    assert_eq!(out.helps["job_runs"], "Runs of the job.");

    std::fs::remove_file(&file).unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert!(out.family("job_runs").is_empty());
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(0.0));
}

#[test]
fn textfile_huge_file_is_an_error_not_a_memory_hog() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.prom"), "ok_metric 1\n").unwrap();
    let line = "huge_metric{i=\"0000000000\"} 1\n";
    let count = (9 * 1024 * 1024) / line.len();
    std::fs::write(dir.path().join("huge.prom"), line.repeat(count)).unwrap();
    let (mut collector, mut exp) =
        build_with("textfile", dir.path(), &textfile_config(dir.path())).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(1.0));
    assert_eq!(out.value("ok_metric", &[]), Some(1.0));
    assert!(out.family("huge_metric").is_empty());
}

#[test]
fn textfile_without_directory_or_with_a_missing_one() {
    // node_exporter exports node_textfile_scrape_error 0 when no directory is set.
    let (mut collector, mut exp) = build("textfile", &tree("faults/no-psi")).unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(0.0));
    assert_eq!(out.samples.len(), 1);

    let missing = textfile_dir("no-such-dir");
    let (mut collector, mut exp) =
        build_with("textfile", &missing, &textfile_config(&missing)).unwrap();
    let (out, result) = scrape(&mut collector, &mut exp);
    result.unwrap();
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(1.0));
}

/// `node_textfile_dropped_files{reason}` of one scrape.
fn dropped(out: &harness::Exposition, reason: &str) -> Option<f64> {
    out.value("node_textfile_dropped_files", &[("reason", reason)])
}

/// One scrape in a thread: a scrape that blocks (on a FIFO...) fails the test instead of
/// hanging it.
fn scrape_or_hang(
    collector: Box<dyn Collector>,
    exposition: Exposition,
) -> (Box<dyn Collector>, Exposition, harness::Exposition) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut collector, mut exposition) = (collector, exposition);
        let (out, result) = scrape(&mut collector, &mut exposition);
        result.unwrap();
        let _ = done.send((collector, exposition, out));
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the textfile scrape finished")
}

#[test]
fn textfile_fifo_costs_only_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.prom"), "before_fifo 1\n").unwrap();
    std::fs::write(dir.path().join("c.prom"), "after_fifo 2\n").unwrap();
    let fifo = std::ffi::CString::new(dir.path().join("b.prom").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    std::fs::create_dir(dir.path().join("d.prom")).unwrap();
    let (collector, exposition) =
        build_with("textfile", dir.path(), &textfile_config(dir.path())).unwrap();
    let (collector, exposition, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.value("before_fifo", &[]), Some(1.0));
    assert_eq!(out.value("after_fifo", &[]), Some(2.0));
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(1.0));
    assert_eq!(dropped(&out, "not_regular_file"), Some(2.0));
    assert_eq!(dropped(&out, "parse_error"), Some(0.0));
    assert_eq!(out.family("node_textfile_mtime_seconds").len(), 2);
    // And again, with the FIFO still there.
    let (_, _, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.value("after_fifo", &[]), Some(2.0));
    assert_eq!(dropped(&out, "not_regular_file"), Some(2.0));
}

#[test]
fn textfile_caps_files_series_labels_and_bytes_and_says_what_it_dropped() {
    use pimetrics::collector::textfile::{
        MAX_FILES, MAX_FILE_BYTES, MAX_LABELS, MAX_LABELS_PER_SERIES, MAX_SERIES, MAX_TOTAL_BYTES,
    };
    let dir = tempfile::tempdir().unwrap();
    let config = textfile_config(dir.path());

    // Labels per series: a file with one label too many is dropped; the others are kept.
    let labels: Vec<String> = (0..=MAX_LABELS_PER_SERIES)
        .map(|i| format!("l{i}=\"v\""))
        .collect();
    std::fs::write(
        dir.path().join("labels.prom"),
        format!("wide{{{}}} 1\n", labels.join(",")),
    )
    .unwrap();
    // Series per scrape: two files that fit alone, not together.
    let half = MAX_SERIES * 3 / 4;
    let series = |name: &str, count: usize| -> String {
        (0..count)
            .map(|i| format!("{name}{{i=\"{i}\"}} 1\n"))
            .collect()
    };
    std::fs::write(dir.path().join("s1.prom"), series("first", half)).unwrap();
    std::fs::write(dir.path().join("s2.prom"), series("second", half)).unwrap();
    let (collector, exposition) = build_with("textfile", dir.path(), &config).unwrap();
    let (collector, exposition, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.family("wide").len(), 0);
    assert_eq!(dropped(&out, "too_many_labels_per_series"), Some(1.0));
    assert_eq!(out.family("first").len(), half);
    assert_eq!(out.family("second").len(), 0);
    assert_eq!(dropped(&out, "too_many_series"), Some(1.0));
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(1.0));
    // The first file shrinks: the second fits again without being rewritten.
    std::fs::write(dir.path().join("s1.prom"), series("first", 10)).unwrap();
    let (collector, exposition, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.family("first").len(), 10);
    assert_eq!(out.family("second").len(), half);
    assert_eq!(dropped(&out, "too_many_series"), Some(0.0));
    drop((collector, exposition));

    // Labels per scrape: many labels on few series (found by measuring: 20,000 series of 63
    // labels held 130 MB).
    let dir = tempfile::tempdir().unwrap();
    let config = textfile_config(dir.path());
    let per_series = MAX_LABELS_PER_SERIES - 1;
    let lines = MAX_LABELS / per_series * 3 / 4;
    let wide = |name: &str| -> String {
        (0..lines)
            .map(|i| {
                let labels: Vec<String> = (1..per_series).map(|l| format!("l{l}=\"x\"")).collect();
                format!("{name}{{i=\"{i}\",{}}} 1\n", labels.join(","))
            })
            .collect()
    };
    std::fs::write(dir.path().join("w1.prom"), wide("wide_one")).unwrap();
    std::fs::write(dir.path().join("w2.prom"), wide("wide_two")).unwrap();
    let (collector, exposition) = build_with("textfile", dir.path(), &config).unwrap();
    let (_, _, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.family("wide_one").len(), lines);
    assert_eq!(out.family("wide_two").len(), 0);
    assert_eq!(dropped(&out, "too_many_labels"), Some(1.0));

    // Bytes per scrape: big files (few series, one long label value) beyond the total.
    let dir = tempfile::tempdir().unwrap();
    let config = textfile_config(dir.path());
    let value = "x".repeat(MAX_FILE_BYTES as usize - 100);
    let count = (MAX_TOTAL_BYTES / MAX_FILE_BYTES) as usize + 1;
    for i in 0..count {
        std::fs::write(
            dir.path().join(format!("big{i}.prom")),
            format!("big{i}{{v=\"{value}\"}} 1\n"),
        )
        .unwrap();
    }
    let (collector, exposition) = build_with("textfile", dir.path(), &config).unwrap();
    let (_, _, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.family(&format!("big{}", count - 1)).len(), 0);
    assert_eq!(out.family("big0").len(), 1);
    assert_eq!(dropped(&out, "too_many_bytes"), Some(1.0));

    // Files per scrape: the first MAX_FILES by name are read, quickly even with 30k files.
    let dir = tempfile::tempdir().unwrap();
    let config = textfile_config(dir.path());
    let total = 30_000;
    for i in 0..total {
        std::fs::write(dir.path().join(format!("f{i:05}.prom")), "").unwrap();
    }
    std::fs::write(dir.path().join("a.prom"), "kept 1\n").unwrap();
    std::fs::write(dir.path().join("z.prom"), "not_kept 1\n").unwrap();
    let (collector, exposition) = build_with("textfile", dir.path(), &config).unwrap();
    let (collector, exposition, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.value("kept", &[]), Some(1.0));
    assert_eq!(out.family("not_kept").len(), 0);
    assert_eq!(out.family("node_textfile_mtime_seconds").len(), MAX_FILES);
    assert_eq!(
        dropped(&out, "too_many_files"),
        Some((total + 2 - MAX_FILES) as f64)
    );
    let (_, _, out) = scrape_or_hang(collector, exposition);
    assert_eq!(out.value("kept", &[]), Some(1.0));
}

#[test]
fn textfile_names_no_file_has_any_more_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("churn.prom");
    let (mut collector, mut exp) =
        build_with("textfile", dir.path(), &textfile_config(dir.path())).unwrap();
    for round in 0..20 {
        let text: String = (0..500)
            .map(|i| format!("churn_r{round}_m{i} 1\n"))
            .collect();
        // Replaced as scripts do (a new inode), so the change is seen whatever the clock.
        let tmp = dir.path().join("churn.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let (out, _) = scrape(&mut collector, &mut exp);
        assert_eq!(out.value(&format!("churn_r{round}_m499"), &[]), Some(1.0));
        if round > 0 {
            let old = format!("churn_r{}_m0", round - 1);
            assert!(exp.lookup(&old).is_none(), "{old} is still registered");
        }
    }
    // The agent's own families stay.
    assert!(exp.lookup("node_textfile_scrape_error").is_some());
    std::fs::remove_file(&file).unwrap();
    let (out, _) = scrape(&mut collector, &mut exp);
    assert!(exp.lookup("churn_r19_m0").is_none());
    assert_eq!(out.value("node_textfile_scrape_error", &[]), Some(0.0));
}
