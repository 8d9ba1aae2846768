//! Fixture-tree tests of the cpu, cpufreq, stat, uname, os and time collectors: each is built
//! with `Context { roots, settings }` over a fixture tree (pi4, x86-vm, pi3b-plus: tests/fixtures/<tree>/{proc,sys,root}) (or a copy
//! of one, damaged on purpose) and scraped; the exported series are checked value by value.

use crate::harness;
use std::fs;
use std::path::Path;

use crate::harness::{parse_exposition, tree, Exposition};
use pimetrics::collector::{Context, Scraper};
use pimetrics::config::Config;
use pimetrics::roots::Roots;

fn roots_of(tree: &Path) -> Roots {
    Roots {
        procfs: tree.join("proc"),
        sysfs: tree.join("sys"),
        rootfs: tree.join("root"),
        devfs: "/dev".into(),
    }
}

/// Builds `collector` over `tree` and scrapes it `scrapes` times; returns the last scrape and
/// whether the collector was built at all.
fn scrape_n(tree: &Path, collector: &'static str, scrapes: usize) -> Option<Exposition> {
    let roots = roots_of(tree);
    let config = Config::default();
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    let mut scraper = Scraper::new(&ctx, "pi", &[collector]);
    if scraper.active_names().count() == 0 {
        return None;
    }
    let mut text = String::new();
    for _ in 0..scrapes {
        text.clear();
        scraper.scrape(&mut text);
    }
    Some(parse_exposition(&text))
}

fn scrape(tree: &Path, collector: &'static str) -> Exposition {
    scrape_n(tree, collector, 1).expect("collector is available")
}

fn success(exp: &Exposition, collector: &str) -> f64 {
    exp.value("node_scrape_collector_success", &[("collector", collector)])
        .expect("success series")
}

/// Replaces a file by a directory: reading it fails like an unreadable file would (tests run
/// as root, so permissions cannot simulate that).
fn make_unreadable(path: &Path) {
    let _ = fs::remove_file(path);
    fs::create_dir(path).unwrap();
}

// ---------------------------------------------------------------- stat

#[test]
fn stat_exports_pi4_values() {
    let exp = scrape(tree("pi4").path(), "stat");
    assert_eq!(success(&exp, "stat"), 1.0);
    assert_eq!(exp.value("node_boot_time_seconds", &[]), Some(1718193262.0));
    assert_eq!(
        exp.value("node_context_switches_total", &[]),
        Some(126433781.0)
    );
    assert_eq!(exp.value("node_forks_total", &[]), Some(181374.0));
    assert_eq!(exp.value("node_intr_total", &[]), Some(57306142.0));
    assert_eq!(exp.value("node_procs_running", &[]), Some(2.0));
    assert_eq!(exp.value("node_procs_blocked", &[]), Some(0.0));
    assert_eq!(exp.types["node_context_switches_total"], "counter");
    assert_eq!(exp.types["node_boot_time_seconds"], "gauge");
    assert_eq!(exp.family("node_forks_total")[0].labels["node"], "pi");
}

#[test]
fn stat_missing_empty_garbage_and_huge() {
    let tree = tree("pi4").copy();
    let stat = tree.path().join("proc/stat");
    for (content, ok) in [
        (&b""[..], false),
        (b"garbage\n", false),
        (b"ctxt twelve\n", false),
        (b"ctxt 18446744073709551615\nbtime 1\n", true),
    ] {
        fs::write(&stat, content).unwrap();
        let exp = scrape(tree.path(), "stat");
        assert_eq!(
            success(&exp, "stat"),
            if ok { 1.0 } else { 0.0 },
            "{content:?}"
        );
        if ok {
            assert_eq!(
                exp.value("node_context_switches_total", &[]),
                Some(18446744073709551615.0)
            );
            assert_eq!(exp.value("node_forks_total", &[]), None);
        }
    }
    fs::remove_file(&stat).unwrap();
    assert_eq!(success(&scrape(tree.path(), "stat"), "stat"), 0.0);
    make_unreadable(&stat);
    assert_eq!(success(&scrape(tree.path(), "stat"), "stat"), 0.0);
}

// ---------------------------------------------------------------- cpu

#[test]
fn cpu_exports_pi4_seconds_per_cpu_and_mode() {
    let exp = scrape(tree("pi4").path(), "cpu");
    assert_eq!(success(&exp, "cpu"), 1.0);
    let cpu = |cpu: &str, mode: &str| {
        exp.value("node_cpu_seconds_total", &[("cpu", cpu), ("mode", mode)])
    };
    assert_eq!(cpu("0", "user"), Some(5632.12));
    assert_eq!(cpu("0", "nice"), Some(3.1));
    assert_eq!(cpu("0", "system"), Some(3028.71));
    assert_eq!(cpu("0", "idle"), Some(270622.91));
    assert_eq!(cpu("0", "iowait"), Some(126.53));
    assert_eq!(cpu("0", "irq"), Some(0.0));
    assert_eq!(cpu("0", "softirq"), Some(178.65));
    assert_eq!(cpu("0", "steal"), Some(0.0));
    assert_eq!(cpu("3", "idle"), Some(270802.08));
    assert_eq!(cpu("4", "idle"), None);
    assert_eq!(exp.family("node_cpu_seconds_total").len(), 4 * 8);
    assert_eq!(exp.family("node_cpu_guest_seconds_total").len(), 4 * 2);
    assert_eq!(
        exp.value(
            "node_cpu_guest_seconds_total",
            &[("cpu", "2"), ("mode", "nice")]
        ),
        Some(0.0)
    );
    assert_eq!(exp.types["node_cpu_seconds_total"], "counter");
    // Empty isolated file: no node_cpu_isolated.
    assert!(exp.family("node_cpu_isolated").is_empty());
}

#[test]
fn cpu_isolated_guest_offline_and_bad_input() {
    let tree = tree("pi4").copy();
    let stat = tree.path().join("proc/stat");
    fs::write(tree.path().join("sys/devices/system/cpu/isolated"), "2-3\n").unwrap();
    // cpu1 offline (no line), cpu2 running a guest.
    fs::write(
        &stat,
        "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 100 0 0 400 0 0 0 0 0 0\ncpu2 300 7 0 900 0 0 0 0 250 5\nctxt 1\n",
    )
    .unwrap();
    let exp = scrape(tree.path(), "cpu");
    assert_eq!(success(&exp, "cpu"), 1.0);
    assert_eq!(
        exp.value("node_cpu_seconds_total", &[("cpu", "2"), ("mode", "user")]),
        Some(3.0)
    );
    assert_eq!(
        exp.value(
            "node_cpu_guest_seconds_total",
            &[("cpu", "2"), ("mode", "user")]
        ),
        Some(2.5)
    );
    assert_eq!(
        exp.value(
            "node_cpu_guest_seconds_total",
            &[("cpu", "2"), ("mode", "nice")]
        ),
        Some(0.05)
    );
    assert!(exp
        .family("node_cpu_seconds_total")
        .iter()
        .all(|s| s.labels["cpu"] != "1"));
    assert_eq!(exp.value("node_cpu_isolated", &[("cpu", "2")]), Some(1.0));
    assert_eq!(exp.value("node_cpu_isolated", &[("cpu", "3")]), Some(1.0));
    assert_eq!(exp.family("node_cpu_isolated").len(), 2);

    for bad in [&b""[..], b"cpu0 1 2\n", b"cpu0 a b c d\n", b"\x00\x01"] {
        fs::write(&stat, bad).unwrap();
        let exp = scrape(tree.path(), "cpu");
        assert_eq!(success(&exp, "cpu"), 0.0, "{bad:?}");
        assert!(exp.family("node_cpu_seconds_total").is_empty());
    }
    fs::write(&stat, "cpu0 18446744073709551615 0 0 0\n").unwrap();
    let exp = scrape(tree.path(), "cpu");
    assert_eq!(
        exp.value("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]),
        Some(18446744073709551615.0 / 100.0)
    );
    make_unreadable(&stat);
    assert_eq!(success(&scrape(tree.path(), "cpu"), "cpu"), 0.0);
}

// ---------------------------------------------------------------- cpufreq

#[test]
fn cpufreq_exports_pi4_frequencies_and_governors() {
    let exp = scrape(tree("pi4").path(), "cpufreq");
    assert_eq!(success(&exp, "cpufreq"), 1.0);
    for cpu in ["0", "1", "2", "3"] {
        let at = [("cpu", cpu)];
        assert_eq!(exp.value("node_cpu_frequency_hertz", &at), Some(600e6));
        assert_eq!(exp.value("node_cpu_frequency_min_hertz", &at), Some(600e6));
        assert_eq!(exp.value("node_cpu_frequency_max_hertz", &at), Some(1500e6));
        assert_eq!(
            exp.value("node_cpu_scaling_frequency_hertz", &at),
            Some(600e6)
        );
        assert_eq!(
            exp.value("node_cpu_scaling_frequency_min_hertz", &at),
            Some(600e6)
        );
        assert_eq!(
            exp.value("node_cpu_scaling_frequency_max_hertz", &at),
            Some(1500e6)
        );
        for (governor, value) in [
            ("conservative", 0.0),
            ("ondemand", 1.0),
            ("userspace", 0.0),
            ("powersave", 0.0),
            ("performance", 0.0),
            ("schedutil", 0.0),
        ] {
            assert_eq!(
                exp.value(
                    "node_cpu_scaling_governor",
                    &[("cpu", cpu), ("governor", governor)]
                ),
                Some(value)
            );
        }
    }
    assert_eq!(exp.family("node_cpu_scaling_governor").len(), 4 * 6);
    assert_eq!(exp.types["node_cpu_frequency_hertz"], "gauge");
}

#[test]
fn cpufreq_unavailable_without_cpufreq_directories() {
    // The vm tree has no sys/devices/system/cpu at all; an empty cpu dir is the same.
    assert!(scrape_n(tree("x86-vm").path(), "cpufreq", 1).is_none());
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("sys/devices/system/cpu/cpu0")).unwrap();
    assert!(scrape_n(dir.path(), "cpufreq", 1).is_none());
}

#[test]
fn cpufreq_missing_unreadable_garbage_and_huge_files() {
    let tree = tree("pi4").copy();
    let policy = tree.path().join("sys/devices/system/cpu/cpufreq/policy0");
    // cpuinfo_cur_freq is root-only on a Pi: missing or not permitted means no series, not a
    // failure (a dangling symlink stands for it: tests run as root).
    fs::remove_file(policy.join("cpuinfo_cur_freq")).unwrap();
    std::os::unix::fs::symlink("nowhere", policy.join("cpuinfo_cur_freq")).unwrap();
    fs::remove_file(policy.join("scaling_available_governors")).unwrap();
    fs::write(policy.join("scaling_max_freq"), "18446744073709551615\n").unwrap();
    // cpu3 offline: listed in cpu/offline, and skipped.
    fs::write(tree.path().join("sys/devices/system/cpu/offline"), "3\n").unwrap();
    let exp = scrape(tree.path(), "cpufreq");
    assert_eq!(success(&exp, "cpufreq"), 1.0);
    assert!(exp.family("node_cpu_frequency_hertz").is_empty());
    assert!(exp.family("node_cpu_scaling_governor").is_empty());
    assert_eq!(exp.family("node_cpu_frequency_min_hertz").len(), 3);
    assert_eq!(
        exp.value("node_cpu_scaling_frequency_max_hertz", &[("cpu", "0")]),
        Some(18446744073709551615.0 * 1000.0)
    );

    // Garbage: that series is skipped, the others stay, and the collector reports failure.
    fs::write(policy.join("scaling_cur_freq"), "<unknown>\n").unwrap();
    fs::write(policy.join("cpuinfo_min_freq"), "").unwrap();
    let exp = scrape(tree.path(), "cpufreq");
    assert_eq!(success(&exp, "cpufreq"), 0.0);
    assert!(exp.family("node_cpu_scaling_frequency_hertz").is_empty());
    assert!(exp.family("node_cpu_frequency_min_hertz").is_empty());
    assert_eq!(
        exp.value("node_cpu_frequency_max_hertz", &[("cpu", "1")]),
        Some(1500e6)
    );

    // A read error other than missing/permission (here EISDIR) fails the collector too.
    fs::write(policy.join("scaling_cur_freq"), "600000\n").unwrap();
    fs::write(policy.join("cpuinfo_min_freq"), "600000\n").unwrap();
    make_unreadable(&policy.join("scaling_governor"));
    let exp = scrape(tree.path(), "cpufreq");
    assert_eq!(success(&exp, "cpufreq"), 0.0);
    assert_eq!(exp.family("node_cpu_scaling_frequency_hertz").len(), 3);

    // A CPU whose cpufreq link vanished is skipped; a garbage offline list is reported.
    fs::remove_dir(policy.join("scaling_governor")).unwrap();
    fs::write(policy.join("scaling_governor"), "ondemand\n").unwrap();
    fs::remove_file(tree.path().join("sys/devices/system/cpu/cpu2/cpufreq")).unwrap();
    let exp = scrape(tree.path(), "cpufreq");
    assert_eq!(success(&exp, "cpufreq"), 1.0);
    assert_eq!(exp.family("node_cpu_scaling_frequency_hertz").len(), 2);
    fs::write(tree.path().join("sys/devices/system/cpu/offline"), "x-y\n").unwrap();
    let exp = scrape(tree.path(), "cpufreq");
    assert_eq!(success(&exp, "cpufreq"), 0.0);
    assert_eq!(exp.family("node_cpu_scaling_frequency_hertz").len(), 3);
}

// ---------------------------------------------------------------- uname

#[test]
fn uname_exports_pi4_strings() {
    let exp = scrape(tree("pi4").path(), "uname");
    assert_eq!(success(&exp, "uname"), 1.0);
    let info = exp.family("node_uname_info");
    assert_eq!(info.len(), 1);
    let labels = &info[0].labels;
    assert_eq!(labels["sysname"], "Linux");
    assert_eq!(labels["release"], "6.6.31+rpt-rpi-v8");
    assert_eq!(
        labels["version"],
        "#1 SMP PREEMPT Debian 1:6.6.31-1+rpt1 (2024-05-29)"
    );
    assert_eq!(labels["machine"], "aarch64");
    assert_eq!(labels["nodename"], "raspberrypi");
    assert_eq!(labels["domainname"], "(none)");
    assert_eq!(labels.len(), 7); // with node
    assert_eq!(info[0].value, 1.0);
}

#[test]
fn uname_without_arch_file_asks_the_kernel_and_missing_files_fail() {
    let tree = tree("pi4").copy();
    let kernel = tree.path().join("proc/sys/kernel");
    fs::remove_file(kernel.join("arch")).unwrap();
    fs::write(kernel.join("hostname"), "").unwrap();
    let exp = scrape(tree.path(), "uname");
    let labels = &exp.family("node_uname_info")[0].labels;
    let mut native: libc::utsname = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::uname(&mut native) }, 0);
    let machine: String = native
        .machine
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8 as char)
        .collect();
    assert_eq!(labels["machine"], machine);
    assert_eq!(labels["nodename"], "");

    fs::remove_file(kernel.join("osrelease")).unwrap();
    let exp = scrape(tree.path(), "uname");
    assert_eq!(success(&exp, "uname"), 0.0);
    assert!(exp.family("node_uname_info").is_empty());
    make_unreadable(&kernel.join("osrelease"));
    assert_eq!(success(&scrape(tree.path(), "uname"), "uname"), 0.0);
}

// ---------------------------------------------------------------- os

fn os_info(exp: &Exposition) -> std::collections::BTreeMap<String, String> {
    let info = exp.family("node_os_info");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].value, 1.0);
    let mut labels = info[0].labels.clone();
    labels.remove("node");
    labels
}

#[test]
fn os_exports_raspberry_pi_os_bookworm() {
    let exp = scrape(tree("pi4").path(), "os");
    assert_eq!(success(&exp, "os"), 1.0);
    let expected: std::collections::BTreeMap<String, String> = [
        ("build_id", ""),
        ("id", "debian"),
        ("id_like", ""),
        ("image_id", ""),
        ("image_version", ""),
        ("name", "Debian GNU/Linux"),
        ("pretty_name", "Debian GNU/Linux 12 (bookworm)"),
        ("variant", ""),
        ("variant_id", ""),
        ("version", "12 (bookworm)"),
        ("version_codename", "bookworm"),
        ("version_id", "12"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(os_info(&exp), expected);
    assert_eq!(
        exp.value(
            "node_os_version",
            &[
                ("id", "debian"),
                ("id_like", ""),
                ("name", "Debian GNU/Linux")
            ]
        ),
        Some(12.0)
    );
}

#[test]
fn os_falls_back_to_usr_lib_os_release() {
    let exp = scrape(tree("pi3b-plus").path(), "os");
    assert_eq!(
        os_info(&exp)["pretty_name"],
        "Raspbian GNU/Linux 11 (bullseye)"
    );
    assert_eq!(
        exp.value(
            "node_os_version",
            &[
                ("id", "raspbian"),
                ("id_like", "debian"),
                ("name", "Raspbian GNU/Linux")
            ]
        ),
        Some(11.0)
    );
}

#[test]
fn os_absolute_symlink_is_followed_below_the_root() {
    let tree = tree("pi3b-plus").copy();
    fs::create_dir_all(tree.path().join("root/etc")).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/os-release",
        tree.path().join("root/etc/os-release"),
    )
    .unwrap();
    let exp = scrape(tree.path(), "os");
    assert_eq!(os_info(&exp)["id"], "raspbian");
}

#[test]
fn os_missing_empty_and_garbage_files() {
    let tree = tree("pi3b-plus").copy();
    let file = tree.path().join("root/usr/lib/os-release");
    fs::write(&file, "").unwrap();
    let exp = scrape(tree.path(), "os");
    assert_eq!(success(&exp, "os"), 1.0);
    assert!(os_info(&exp).values().all(String::is_empty));
    assert!(exp.family("node_os_version").is_empty());

    for garbage in [
        &b"NAME=\"unterminated\n"[..],
        b"\xff\xfe\x00",
        b"just words\n",
    ] {
        fs::write(&file, garbage).unwrap();
        let exp = scrape(tree.path(), "os");
        assert_eq!(success(&exp, "os"), 0.0, "{garbage:?}");
        assert!(exp.family("node_os_info").is_empty());
    }
    fs::write(&file, format!("VERSION_ID={}\n", "9".repeat(400))).unwrap();
    let exp = scrape(tree.path(), "os");
    assert_eq!(
        exp.family("node_os_version")[0].value,
        "9".repeat(400).parse::<f64>().unwrap()
    );

    make_unreadable(&file);
    assert_eq!(success(&scrape(tree.path(), "os"), "os"), 0.0);
    fs::remove_dir(&file).unwrap();
    assert_eq!(success(&scrape(tree.path(), "os"), "os"), 0.0);
}

#[test]
fn os_rereads_only_when_the_file_changes() {
    let tree = tree("pi3b-plus").copy();
    let file = tree.path().join("root/usr/lib/os-release");
    let roots = roots_of(tree.path());
    let config = Config::default();
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    let mut scraper = Scraper::new(&ctx, "pi", &["os"]);
    let mut scrape_id = || {
        let mut text = String::new();
        scraper.scrape(&mut text);
        os_info(&parse_exposition(&text))["id"].clone()
    };
    assert_eq!(scrape_id(), "raspbian");
    let modified = fs::metadata(&file).unwrap().modified().unwrap();
    let set_modified = |time| {
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(time)
            .unwrap()
    };
    // Same modification time: the cached values stay (node_exporter's rule).
    fs::write(&file, "ID=changed\n").unwrap();
    set_modified(modified);
    assert_eq!(scrape_id(), "raspbian");
    set_modified(modified + std::time::Duration::from_secs(10));
    assert_eq!(scrape_id(), "changed");
}

// ---------------------------------------------------------------- time

#[test]
fn time_exports_now_zone_and_pi_clocksource() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let exp = scrape(tree("pi4").path(), "time");
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(success(&exp, "time"), 1.0);
    let now = exp.value("node_time_seconds", &[]).unwrap();
    assert!(
        before - 1.0 <= now && now <= after + 1.0,
        "{before} {now} {after}"
    );
    assert_eq!(exp.family("node_time_zone_offset_seconds").len(), 1);
    assert_eq!(
        exp.value(
            "node_time_clocksource_available_info",
            &[("device", "0"), ("clocksource", "arch_sys_counter")]
        ),
        Some(1.0)
    );
    assert_eq!(exp.family("node_time_clocksource_available_info").len(), 1);
    assert_eq!(
        exp.value(
            "node_time_clocksource_current_info",
            &[("device", "0"), ("clocksource", "arch_sys_counter")]
        ),
        Some(1.0)
    );
}

#[test]
fn time_zone_follows_tz_like_node_exporter() {
    // India has had no daylight saving time since 1945: +05:30 whatever the date.
    let output = std::process::Command::new(harness::agent_bin())
        .env("TZ", "Asia/Kolkata")
        .args([
            "--once",
            "--node",
            "pi",
            "--collector.disable-defaults",
            "--collector.time",
        ])
        .arg("--path.sysfs")
        .arg(tree("x86-vm").dir.join("sys"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let exp = parse_exposition(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(
        exp.value("node_time_zone_offset_seconds", &[("time_zone", "IST")]),
        Some(19800.0)
    );
    assert_eq!(
        exp.value(
            "node_time_clocksource_current_info",
            &[("device", "0"), ("clocksource", "tsc")]
        ),
        Some(1.0)
    );
    assert_eq!(exp.family("node_time_clocksource_available_info").len(), 2);
}

#[test]
fn time_without_clocksources_and_with_bad_ones() {
    let tree = tree("pi4").copy();
    let source = tree
        .path()
        .join("sys/devices/system/clocksource/clocksource0");
    fs::write(source.join("current_clocksource"), "").unwrap();
    let exp = scrape(tree.path(), "time");
    assert_eq!(success(&exp, "time"), 0.0);
    assert!(exp.value("node_time_seconds", &[]).is_some());
    fs::write(source.join("current_clocksource"), "a b\n").unwrap();
    assert_eq!(success(&scrape(tree.path(), "time"), "time"), 0.0);
    make_unreadable(&source.join("available_clocksource"));
    assert_eq!(success(&scrape(tree.path(), "time"), "time"), 0.0);
    // No clocksource directory at all: time and zone only, and success.
    fs::remove_dir_all(tree.path().join("sys/devices/system/clocksource")).unwrap();
    let exp = scrape(tree.path(), "time");
    assert_eq!(success(&exp, "time"), 1.0);
    assert!(exp.family("node_time_clocksource_current_info").is_empty());
}

// ---------------------------------------------------------------- against node_exporter

/// Families, HELP, TYPE and label sets equal node_exporter 1.5.0's on this machine; values
/// equal where they cannot move between the two scrapes, and counters never behind.
#[test]
fn same_series_as_node_exporter_on_this_machine() {
    let node_exporter = harness::require("prometheus-node-exporter");
    let collectors = ["cpu", "cpufreq", "os", "stat", "time", "uname"];
    let port = harness::free_port();
    let mut command = std::process::Command::new(node_exporter);
    command
        .env("TZ", "Asia/Kolkata")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults");
    for name in collectors {
        command.arg(format!("--collector.{name}"));
    }
    let _guard = harness::Proc::spawn("node_exporter", &mut command);
    harness::wait_for_port(port, std::time::Duration::from_secs(10));
    let theirs = parse_exposition(&harness::http_get(port, "/metrics").text());

    let mut args = vec![
        "--once".to_string(),
        "--node".into(),
        "pi".into(),
        "--collector.disable-defaults".into(),
    ];
    args.extend(collectors.iter().map(|c| format!("--collector.{c}")));
    let output = std::process::Command::new(harness::agent_bin())
        .env("TZ", "Asia/Kolkata")
        .args(&args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let ours = parse_exposition(&String::from_utf8(output.stdout).unwrap());

    let series = |exp: &Exposition, name: &str| {
        let mut all: Vec<(Vec<(String, String)>, f64)> = exp
            .family(name)
            .into_iter()
            .map(|s| {
                let labels = s
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "node")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (labels, s.value)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let names: Vec<String> = theirs
        .names()
        .into_iter()
        .filter(|n| {
            n.starts_with("node_")
                && !n.starts_with("node_scrape_")
                && n != "node_exporter_build_info"
        })
        .collect();
    assert!(names.contains(&"node_cpu_seconds_total".to_string()));
    let ours_names: Vec<String> = ours
        .names()
        .into_iter()
        .filter(|n| {
            n.starts_with("node_")
                && !n.starts_with("node_scrape_")
                && n != "node_exporter_build_info"
        })
        .collect();
    assert_eq!(ours_names, names);
    for name in &names {
        assert_eq!(ours.types[name], theirs.types[name], "TYPE of {name}");
        assert_eq!(ours.helps[name], theirs.helps[name], "HELP of {name}");
        let (ours, theirs) = (series(&ours, name), series(&theirs, name));
        let labels = |s: &[(Vec<(String, String)>, f64)]| {
            s.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>()
        };
        assert_eq!(labels(&ours), labels(&theirs), "label sets of {name}");
        for ((labels, ours), (_, theirs)) in ours.iter().zip(&theirs) {
            match name.as_str() {
                "node_time_seconds" => assert!((ours - theirs).abs() < 300.0),
                n if n.ends_with("_total") => {
                    assert!(ours >= theirs, "{name}{labels:?}: {ours} < {theirs}")
                }
                "node_procs_running" | "node_procs_blocked" => {}
                _ => assert_eq!(ours, theirs, "{name}{labels:?}"),
            }
        }
    }
}
