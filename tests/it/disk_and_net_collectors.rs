//! The filesystem, diskstats and netdev collectors built from the collector table against fixture
//! tree of the Pi 4 (tests/fixtures/pi4, see its SOURCE) and broken copies of them.

use std::path::{Path, PathBuf};

use crate::harness::{parse_exposition, tree, Exposition as Parsed};
use pimetrics::collector::{spec, CollectError, Context, Setup};
use pimetrics::config::Config;
use pimetrics::exposition::Exposition;
use pimetrics::roots::Roots;

fn pi4() -> PathBuf {
    tree("pi4").dir
}

fn roots(base: &Path) -> Roots {
    Roots {
        procfs: base.join("proc"),
        sysfs: base.join("sys"),
        rootfs: base.join("root"),
        devfs: "/dev".into(),
    }
}

/// Builds collector `name` and scrapes it `scrapes` times; the last scrape's result and text.
fn scrape_n(
    name: &str,
    roots: &Roots,
    config: &Config,
    scrapes: usize,
) -> (Result<(), CollectError>, Parsed) {
    let ctx = Context {
        roots,
        settings: &config.collector_settings,
    };
    let mut exp = Exposition::new("pi");
    let spec = spec(name).expect("collector in the table");
    let Setup::Ready(mut collector) = (spec.build)(&ctx, &mut exp) else {
        panic!("{name} unavailable");
    };
    let mut result = Ok(());
    for _ in 0..scrapes {
        exp.clear();
        result = collector.update(&mut exp);
    }
    let mut text = String::new();
    exp.render(&mut text);
    (result, parse_exposition(&text))
}

fn scrape(name: &str, roots: &Roots) -> (Result<(), CollectError>, Parsed) {
    scrape_n(name, roots, &Config::default(), 1)
}

/// A copy of the pi4 fixture tree in a temporary directory, to break.
fn copy_of_pi4() -> tempfile::TempDir {
    tree("pi4").copy()
}

fn replace_with_dir(path: &Path) {
    std::fs::remove_file(path).unwrap();
    std::fs::create_dir(path).unwrap();
}

// ---- diskstats ----

#[test]
fn diskstats_on_a_pi_fixture() {
    let (result, exp) = scrape("diskstats", &roots(&pi4()));
    result.unwrap();
    let devices: std::collections::BTreeSet<_> = exp
        .family("node_disk_reads_completed_total")
        .iter()
        .map(|s| s.labels["device"].clone())
        .collect();
    // node_exporter's default exclude keeps SD card partitions, drops sdX1, ram, zram, loop.
    assert_eq!(
        devices.into_iter().collect::<Vec<_>>(),
        ["mmcblk0", "mmcblk0p1", "mmcblk0p2", "sdb", "sdc"]
    );
    let dev = |d: &'static str| [("device", d)];
    assert_eq!(
        exp.value("node_disk_read_bytes_total", &dev("mmcblk0")),
        Some(1560.0 * 512.0)
    );
    assert_eq!(
        exp.value("node_disk_read_time_seconds_total", &dev("mmcblk0")),
        Some(0.156)
    );
    assert_eq!(
        exp.value("node_disk_io_time_weighted_seconds_total", &dev("mmcblk0")),
        Some(0.156)
    );
    assert_eq!(exp.value("node_disk_io_now", &dev("sdb")), Some(0.0));
    assert_eq!(exp.types["node_disk_io_now"], "gauge");
    assert_eq!(exp.types["node_disk_written_bytes_total"], "counter");
    // Discards only where the kernel prints them, flushes likewise.
    assert_eq!(
        exp.value("node_disk_discards_completed_total", &dev("mmcblk0")),
        None
    );
    assert_eq!(
        exp.value("node_disk_discarded_sectors_total", &dev("sdb")),
        Some(1925173784.0)
    );
    assert_eq!(
        exp.value("node_disk_discard_time_seconds_total", &dev("sdb")),
        Some(11.13)
    );
    assert_eq!(
        exp.value("node_disk_flush_requests_total", &dev("sdb")),
        None
    );
    assert_eq!(
        exp.value("node_disk_flush_requests_total", &dev("sdc")),
        Some(1555.0)
    );
    assert_eq!(
        exp.value("node_disk_flush_requests_time_seconds_total", &dev("sdc")),
        Some(1.944)
    );

    // Info labels from udev and queue/rotational.
    let info = exp.family("node_disk_info");
    let sdb = info.iter().find(|s| s.labels["device"] == "sdb").unwrap();
    let expect = [
        ("major", "8"),
        ("minor", "0"),
        (
            "path",
            "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:2:1.0-scsi-0:0:0:0",
        ),
        ("wwn", "0x5002538e00000001"),
        ("model", "PSSD_T7"),
        ("serial", "S6WBNJ0R123456A"),
        ("revision", "0"),
        ("rotational", "0"),
    ];
    for (key, value) in expect {
        assert_eq!(sdb.labels[key], value, "{key}");
    }
    let sdc = info.iter().find(|s| s.labels["device"] == "sdc").unwrap();
    assert_eq!(
        (
            sdc.labels["model"].as_str(),
            sdc.labels["rotational"].as_str()
        ),
        ("", "1")
    );
    let p1 = info
        .iter()
        .find(|s| s.labels["device"] == "mmcblk0p1")
        .unwrap();
    assert_eq!(
        (
            p1.labels["minor"].as_str(),
            p1.labels["rotational"].as_str()
        ),
        ("1", "0")
    );
    assert_eq!(
        exp.value(
            "node_disk_filesystem_info",
            &[
                ("device", "mmcblk0p2"),
                ("type", "ext4"),
                ("usage", "filesystem"),
                ("version", "1.0")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(exp.family("node_disk_filesystem_info").len(), 1);
    assert_eq!(
        exp.value("node_disk_ata_write_cache_enabled", &dev("sdb")),
        Some(1.0)
    );
    assert_eq!(
        exp.value("node_disk_ata_rotation_rate_rpm", &dev("sdb")),
        Some(0.0)
    );
}

#[test]
fn diskstats_broken_inputs() {
    let dir = copy_of_pi4();
    let roots = roots(dir.path());
    let path = dir.path().join("proc/diskstats");

    std::fs::write(&path, "").unwrap();
    let (result, exp) = scrape("diskstats", &roots);
    result.unwrap();
    assert!(exp.samples.is_empty(), "no block devices, no series");

    std::fs::write(
        &path,
        " 179 0 mmcblk0 18446744073709551615 0 0 0 0 0 0 0 0 0 0\n\
         garbage line\n\
         \u{1} 2 3\n\
         8 16 sdb 1 2 3\n",
    )
    .unwrap();
    // The udev file and rotational attribute unreadable (directories): labels stay empty.
    replace_with_dir(&dir.path().join("sys/block/mmcblk0/queue/rotational"));
    let (result, exp) = scrape("diskstats", &roots);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("garbage line"), "{err}");
    assert_eq!(
        exp.value("node_disk_reads_completed_total", &[("device", "mmcblk0")]),
        Some(u64::MAX as f64)
    );
    assert_eq!(
        exp.value("node_disk_reads_completed_total", &[("device", "sdb")]),
        None
    );
    assert_eq!(
        exp.value(
            "node_disk_info",
            &[("device", "mmcblk0"), ("rotational", "0")]
        ),
        Some(1.0)
    );

    std::fs::write(&path, b"\xff\xfe\xfd").unwrap();
    assert!(scrape("diskstats", &roots).0.is_err());
    replace_with_dir(&path);
    assert!(scrape("diskstats", &roots).0.is_err());
    std::fs::remove_dir(&path).unwrap();
    let err = scrape("diskstats", &roots).0.unwrap_err().to_string();
    assert!(err.contains("diskstats"), "{err}");
}

// ---- netdev ----

#[test]
fn netdev_on_a_fixture() {
    let (result, exp) = scrape("netdev", &roots(&pi4()));
    result.unwrap();
    let dev = |d: &'static str| [("device", d)];
    assert_eq!(
        exp.value("node_network_receive_bytes_total", &dev("wlan0")),
        Some(10437182923.0)
    );
    assert_eq!(
        exp.value("node_network_transmit_packets_total", &dev("wlan0")),
        Some(11726200.0)
    );
    assert_eq!(
        exp.value("node_network_receive_bytes_total", &dev("eth0")),
        Some(68210035552.0)
    );
    assert_eq!(
        exp.value("node_network_transmit_bytes_total", &dev("lo")),
        Some(435303245.0)
    );
    assert_eq!(
        exp.value("node_network_receive_packets_total", &dev("ibr10:30")),
        Some(0.0)
    );
    assert_eq!(
        exp.value("node_network_receive_nohandler_total", &dev("wlan0")),
        Some(7.0)
    );
    assert_eq!(
        exp.value("node_network_receive_nohandler_total", &dev("eth0")),
        None
    );
    for name in [
        "receive_bytes",
        "receive_packets",
        "receive_errs",
        "receive_drop",
        "receive_fifo",
        "receive_frame",
        "receive_compressed",
        "receive_multicast",
        "transmit_bytes",
        "transmit_packets",
        "transmit_errs",
        "transmit_drop",
        "transmit_fifo",
        "transmit_colls",
        "transmit_carrier",
        "transmit_compressed",
    ] {
        let family = format!("node_network_{name}_total");
        assert_eq!(exp.family(&family).len(), 8, "{family}");
        assert_eq!(exp.types[&family], "counter");
    }
}

#[test]
fn netdev_exclude_and_broken_inputs() {
    let dir = copy_of_pi4();
    let roots = roots(dir.path());
    let mut config = Config::default();
    config.collector_settings.netdev.device_exclude = "^(lo|veth.*|docker\\d+)$".into();
    let (result, exp) = scrape_n("netdev", &roots, &config, 2);
    result.unwrap();
    assert_eq!(exp.family("node_network_receive_bytes_total").len(), 5);
    assert_eq!(
        exp.value("node_network_receive_bytes_total", &[("device", "lo")]),
        None
    );

    let path = dir.path().join("proc/net/dev");
    std::fs::write(
        &path,
        "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n\
         wlan0: 18446744073709551615 1 0 0 0 0 0 0 2 3 0 0 0 0 0 0\n\
         eth0: 1 2 3\n",
    )
    .unwrap();
    replace_with_dir(
        &dir.path()
            .join("sys/class/net/wlan0/statistics/rx_nohandler"),
    );
    let (result, exp) = scrape("netdev", &roots);
    assert!(result.unwrap_err().to_string().contains("eth0: 1 2 3"));
    assert_eq!(
        exp.value("node_network_receive_bytes_total", &[("device", "wlan0")]),
        Some(u64::MAX as f64)
    );
    assert_eq!(
        exp.value(
            "node_network_receive_nohandler_total",
            &[("device", "wlan0")]
        ),
        None
    );
    assert_eq!(
        exp.value("node_network_receive_bytes_total", &[("device", "eth0")]),
        None
    );

    std::fs::write(&path, "").unwrap();
    assert!(scrape("netdev", &roots)
        .0
        .unwrap_err()
        .to_string()
        .contains("empty"));
    std::fs::remove_file(&path).unwrap();
    assert!(scrape("netdev", &roots).0.is_err());
}

// ---- filesystem ----

fn statvfs(path: &Path) -> libc::statvfs64 {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf: libc::statvfs64 = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs64(c_path.as_ptr(), &mut buf) }, 0);
    buf
}

/// procfs from the pi4 fixture (or a copy), rootfs a temporary directory with the mount points.
fn filesystem_roots(proc_base: &Path, rootfs: &Path) -> Roots {
    for dir in ["boot/firmware", "run"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    Roots {
        procfs: proc_base.join("proc"),
        sysfs: proc_base.join("sys"),
        rootfs: rootfs.to_path_buf(),
        devfs: "/dev".into(),
    }
}

#[test]
fn filesystem_on_a_pi_mount_table() {
    let rootfs = tempfile::tempdir().unwrap();
    let roots = filesystem_roots(&pi4(), rootfs.path());
    let (result, exp) = scrape_n("filesystem", &roots, &Config::default(), 2);
    result.unwrap();
    let mut mount_points: Vec<_> = exp
        .family("node_filesystem_device_error")
        .iter()
        .map(|s| s.labels["mountpoint"].clone())
        .collect();
    mount_points.sort();
    assert_eq!(
        mount_points,
        ["/", "/boot/firmware", "/media/pi/PANTRY USB", "/run"]
    );

    let real = statvfs(rootfs.path());
    let block = real.f_bsize as f64;
    let boot = [
        ("device", "/dev/mmcblk0p1"),
        ("mountpoint", "/boot/firmware"),
        ("fstype", "vfat"),
        ("device_error", ""),
    ];
    assert_eq!(
        exp.value("node_filesystem_size_bytes", &boot),
        Some(real.f_blocks as f64 * block)
    );
    assert_eq!(
        exp.value("node_filesystem_files", &boot),
        Some(real.f_files as f64)
    );
    let avail = exp.value("node_filesystem_avail_bytes", &boot).unwrap();
    let free = exp.value("node_filesystem_free_bytes", &boot).unwrap();
    assert!(avail <= free && free <= real.f_blocks as f64 * block);
    assert_eq!(exp.value("node_filesystem_readonly", &boot), Some(0.0));
    assert_eq!(exp.value("node_filesystem_device_error", &boot), Some(0.0));
    // Only mountinfo has device numbers.
    assert!(exp.family("node_filesystem_mount_info").is_empty());

    // /run mounted twice: the last mount is the one reported.
    let run = exp.family("node_filesystem_size_bytes");
    let run: Vec<_> = run
        .iter()
        .filter(|s| s.labels["mountpoint"] == "/run")
        .collect();
    assert_eq!(run.len(), 1);

    // The USB stick's mount point does not exist under rootfs: an error series, no sizes.
    let usb = [
        ("device", "/dev/sda1"),
        ("mountpoint", "/media/pi/PANTRY USB"),
        ("fstype", "vfat"),
        ("device_error", "no such file or directory"),
    ];
    assert_eq!(exp.value("node_filesystem_device_error", &usb), Some(1.0));
    assert_eq!(exp.value("node_filesystem_readonly", &usb), Some(1.0));
    assert_eq!(
        exp.value(
            "node_filesystem_size_bytes",
            &[("mountpoint", "/media/pi/PANTRY USB")]
        ),
        None
    );
}

#[test]
fn filesystem_falls_back_to_self_mountinfo_and_reports_mount_info() {
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("proc/self")).unwrap();
    std::fs::write(
        base.path().join("proc/self/mountinfo"),
        "27 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw\n\
         30 27 179:1 / /boot/firmware rw,relatime shared:5 - vfat /dev/mmcblk0p1 ro,fmask=0022\n\
         31 27 0:25 / /sys rw,nosuid shared:6 - sysfs sysfs rw\n",
    )
    .unwrap();
    let rootfs = tempfile::tempdir().unwrap();
    let roots = filesystem_roots(base.path(), rootfs.path());
    let (result, exp) = scrape("filesystem", &roots);
    result.unwrap();
    assert_eq!(
        exp.value(
            "node_filesystem_mount_info",
            &[
                ("device", "/dev/mmcblk0p1"),
                ("major", "179"),
                ("minor", "1"),
                ("mountpoint", "/boot/firmware")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(exp.family("node_filesystem_mount_info").len(), 2);
    assert_eq!(
        exp.value(
            "node_filesystem_readonly",
            &[("mountpoint", "/boot/firmware")]
        ),
        Some(1.0),
        "ro in the super options"
    );
}

#[test]
fn filesystem_broken_mount_tables() {
    let base = tempfile::tempdir().unwrap();
    let rootfs = tempfile::tempdir().unwrap();
    let roots = filesystem_roots(base.path(), rootfs.path());
    let err = scrape("filesystem", &roots).0.unwrap_err().to_string();
    assert!(err.contains("no mount table"), "{err}");

    let table = base.path().join("proc/1/mountinfo");
    std::fs::create_dir_all(table.parent().unwrap()).unwrap();
    for bad in [
        "",
        "garbage\n",
        "27 1 179:2 / / rw shared:1 ext4 /dev/mmcblk0p2 rw\n",
    ] {
        std::fs::write(&table, bad).unwrap();
        let (result, exp) = scrape("filesystem", &roots);
        assert!(result.is_err(), "{bad:?}");
        assert!(exp.samples.is_empty());
    }
    // A directory where the table should be is an error, not a fallback to another table.
    std::fs::remove_file(&table).unwrap();
    std::fs::create_dir(&table).unwrap();
    std::fs::create_dir_all(base.path().join("proc/self")).unwrap();
    std::fs::write(
        base.path().join("proc/self/mounts"),
        "/dev/root / ext4 rw 0 0\n",
    )
    .unwrap();
    assert!(scrape("filesystem", &roots).0.is_err());
    std::fs::remove_dir(&table).unwrap();
    let (result, exp) = scrape("filesystem", &roots);
    result.unwrap();
    assert_eq!(
        exp.value("node_filesystem_device_error", &[("device", "/dev/root")]),
        Some(0.0)
    );
}
