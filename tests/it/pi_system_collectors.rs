//! node_exporter's network and kernel collectors (arp, conntrack, entropy, filefd, netclass,
//! netstat, nfs, nvme, powersupplyclass, schedstat, selinux, sockstat, softnet, udp_queues,
//! vmstat, watchdog) on the Pi fixture boards (tests/fixtures/<board>, see SOURCE there), through
//! the public collector table, with the values of the fixture files.

use crate::harness;
use std::path::{Path, PathBuf};

use crate::harness::*;
use pimetrics::collector::{spec, Collector, Context, Setup};
use pimetrics::config::Config;
use pimetrics::exposition::Exposition;
use pimetrics::roots::Roots;

fn board(name: &str) -> PathBuf {
    tree(name).dir
}

fn roots_of(dir: &Path) -> Roots {
    Roots {
        procfs: dir.join("proc"),
        sysfs: dir.join("sys"),
        rootfs: dir.to_path_buf(),
        devfs: dir.join("dev"),
    }
}

/// One scrape: the parsed exposition (through Deref) and its text.
#[derive(Debug)]
struct Scraped {
    exp: harness::Exposition,
    text: String,
}

impl std::ops::Deref for Scraped {
    type Target = harness::Exposition;
    fn deref(&self) -> &harness::Exposition {
        &self.exp
    }
}

impl Scraped {
    /// The HELP text of `family`.
    fn help(&self, family: &str) -> &str {
        let prefix = format!("# HELP {family} ");
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no HELP for {family}"))
    }
}

/// Builds collector `name` on board `dir` with `config` and scrapes it (twice: the second
/// scrape must give the same, families being cached after the first).
fn scrape_with(name: &str, dir: &Path, config: &Config) -> Result<Scraped, String> {
    let roots = roots_of(dir);
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    let mut exposition = Exposition::new("pi");
    let mut collector: Box<dyn Collector> =
        match (spec(name).expect("a registered collector").build)(&ctx, &mut exposition) {
            Setup::Ready(collector) => collector,
            Setup::Unavailable(reason) => return Err(format!("unavailable: {reason}")),
        };
    let mut texts = Vec::new();
    for _ in 0..2 {
        exposition.clear();
        collector.update(&mut exposition).map_err(|e| e.0)?;
        let mut text = String::new();
        exposition.render(&mut text);
        texts.push(text);
    }
    assert_eq!(
        texts[0], texts[1],
        "{name}: two scrapes of the same files differ"
    );
    let text = texts.pop().unwrap_or_default();
    Ok(Scraped {
        exp: parse_exposition(&text),
        text,
    })
}

fn scrape(name: &str, board_name: &str) -> Scraped {
    scrape_with(name, &board(board_name), &Config::default())
        .unwrap_or_else(|err| panic!("{name} on {board_name}: {err}"))
}

fn page_size() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as f64 }
}

#[test]
fn netstat_default_fields_on_pi4() {
    let exp = scrape("netstat", "pi4");
    for (name, value) in [
        ("node_netstat_Tcp_InSegs", 1834521.0),
        ("node_netstat_Tcp_CurrEstab", 7.0),
        ("node_netstat_Tcp_RetransSegs", 731.0),
        ("node_netstat_TcpExt_ListenDrops", 3.0),
        ("node_netstat_TcpExt_TCPSynRetrans", 42.0),
        ("node_netstat_TcpExt_TCPOFOQueue", 77.0),
        ("node_netstat_IpExt_InOctets", 1493020117.0),
        ("node_netstat_Udp_NoPorts", 12.0),
        ("node_netstat_Icmp_InErrors", 1.0),
        ("node_netstat_Ip_Forwarding", 2.0),
        ("node_netstat_Ip6_InOctets", 120033.0),
        ("node_netstat_Icmp6_InMsgs", 40.0),
        ("node_netstat_Udp6_InDatagrams", 211.0),
    ] {
        assert_eq!(exp.value(name, &[]), Some(value), "{name}");
        assert_eq!(exp.types[name], "untyped", "{name}");
    }
    assert_eq!(
        exp.help("node_netstat_TcpExt_ListenDrops"),
        "Statistic TcpExtListenDrops."
    );
    // Outside node_exporter's default field filter.
    for name in [
        "node_netstat_Ip_DefaultTTL",
        "node_netstat_TcpExt_TCPHPHits",
        "node_netstat_Tcp_MaxConn",
        "node_netstat_Ip6_InReceives",
    ] {
        assert!(!exp.names().contains(name), "{name}");
    }
    let mut config = Config::default();
    config.collector_settings.netstat.fields = "^Ip_DefaultTTL$".into();
    let exp = scrape_with("netstat", &board("pi4"), &config).unwrap();
    assert_eq!(
        exp.names().into_iter().collect::<Vec<_>>(),
        ["node_netstat_Ip_DefaultTTL"]
    );
}

#[test]
fn vmstat_default_fields_on_pi4() {
    let exp = scrape("vmstat", "pi4");
    let names: Vec<String> = exp.names().into_iter().collect();
    assert_eq!(
        names,
        [
            "node_vmstat_oom_kill",
            "node_vmstat_pgfault",
            "node_vmstat_pgmajfault",
            "node_vmstat_pgpgin",
            "node_vmstat_pgpgout",
            "node_vmstat_pswpin",
            "node_vmstat_pswpout"
        ]
    );
    assert_eq!(exp.value("node_vmstat_pgfault", &[]), Some(48120733.0));
    assert_eq!(exp.value("node_vmstat_oom_kill", &[]), Some(1.0));
    assert_eq!(exp.value("node_vmstat_pswpout", &[]), Some(210.0));
    assert_eq!(exp.types["node_vmstat_pgfault"], "untyped");
    assert_eq!(
        exp.help("node_vmstat_pgfault"),
        "/proc/vmstat information field pgfault."
    );
    let mut config = Config::default();
    config.collector_settings.vmstat.fields = "^nr_free_pages$".into();
    let exp = scrape_with("vmstat", &board("pi4"), &config).unwrap();
    assert_eq!(exp.value("node_vmstat_nr_free_pages", &[]), Some(512003.0));
    assert_eq!(exp.names().len(), 1);
}

#[test]
fn sockstat_on_pi4() {
    let exp = scrape("sockstat", "pi4");
    for (name, value) in [
        ("node_sockstat_sockets_used", 187.0),
        ("node_sockstat_TCP_inuse", 9.0),
        ("node_sockstat_TCP_tw", 4.0),
        ("node_sockstat_TCP_alloc", 12.0),
        ("node_sockstat_TCP_mem", 3.0),
        ("node_sockstat_TCP_mem_bytes", 3.0 * page_size()),
        ("node_sockstat_UDP_mem_bytes", 2.0 * page_size()),
        ("node_sockstat_FRAG_memory", 0.0),
        ("node_sockstat_TCP6_inuse", 3.0),
        ("node_sockstat_RAW6_inuse", 1.0),
    ] {
        assert_eq!(exp.value(name, &[]), Some(value), "{name}");
        assert_eq!(exp.types[name], "gauge");
    }
    assert_eq!(
        exp.help("node_sockstat_TCP_tw"),
        "Number of TCP sockets in state tw."
    );
    assert_eq!(exp.names().len(), 20);
}

#[test]
fn netclass_on_pi4() {
    let exp = scrape("netclass", "pi4");
    let eth0 = [("device", "eth0")];
    assert_eq!(exp.value("node_network_up", &eth0), Some(1.0));
    assert_eq!(
        exp.value("node_network_speed_bytes", &eth0),
        Some(125_000_000.0)
    );
    assert_eq!(exp.value("node_network_flags", &eth0), Some(4099.0));
    assert_eq!(exp.value("node_network_mtu_bytes", &eth0), Some(1500.0));
    assert_eq!(exp.value("node_network_carrier", &eth0), Some(1.0));
    assert_eq!(
        exp.value("node_network_carrier_changes_total", &eth0),
        Some(3.0)
    );
    assert_eq!(exp.types["node_network_carrier_changes_total"], "counter");
    assert_eq!(exp.value("node_network_protocol_type", &eth0), Some(1.0));
    assert_eq!(
        exp.value(
            "node_network_info",
            &[
                ("device", "eth0"),
                ("address", "dc:a6:32:01:02:03"),
                ("broadcast", "ff:ff:ff:ff:ff:ff"),
                ("duplex", "full"),
                ("operstate", "up"),
                ("adminstate", "up"),
                ("ifalias", ""),
            ]
        ),
        Some(1.0)
    );
    // wlan0 is down: no speed, duplex or carrier files; adminstate from flags.
    let wlan0 = [("device", "wlan0")];
    assert_eq!(exp.value("node_network_up", &wlan0), Some(0.0));
    assert_eq!(exp.value("node_network_speed_bytes", &wlan0), None);
    assert_eq!(exp.value("node_network_carrier", &wlan0), None);
    assert_eq!(
        exp.value(
            "node_network_info",
            &[("device", "wlan0"), ("duplex", ""), ("adminstate", "down")]
        ),
        Some(1.0)
    );
    assert_eq!(
        exp.value("node_network_protocol_type", &[("device", "lo")]),
        Some(772.0)
    );
    // bonding_masters is a file, not a device.
    assert_eq!(exp.family("node_network_up").len(), 3);
    assert_eq!(
        exp.help("node_network_mtu_bytes"),
        "Network device property: mtu_bytes"
    );

    let mut config = Config::default();
    config.collector_settings.netclass.ignored_devices = "^(wlan|lo)".into();
    let exp = scrape_with("netclass", &board("pi4"), &config).unwrap();
    assert_eq!(exp.family("node_network_up").len(), 1);
}

#[test]
fn netclass_unknown_speed_as_node_exporter_1_12() {
    // Drivers that cannot tell the speed report SPEED_UNKNOWN, -1 (virtio_net, as this machine's
    // eth0; Ethernet without a link on some drivers).
    let dir = tempdir();
    let eth1 = dir.path().join("sys/class/net/eth1");
    std::fs::create_dir_all(&eth1).unwrap();
    for (file, value) in [("speed", "-1"), ("operstate", "up"), ("flags", "0x1003")] {
        std::fs::write(eth1.join(file), format!("{value}\n")).unwrap();
    }
    let exp = scrape_with("netclass", dir.path(), &Config::default()).unwrap();
    assert_eq!(
        exp.value("node_network_speed_bytes", &[("device", "eth1")]),
        Some(-125000.0)
    );
    let mut config = Config::default();
    config.collector_settings.netclass.ignore_invalid_speed = true;
    let exp = scrape_with("netclass", dir.path(), &config).unwrap();
    assert_eq!(
        exp.value("node_network_speed_bytes", &[("device", "eth1")]),
        None
    );
    assert_eq!(
        exp.value("node_network_up", &[("device", "eth1")]),
        Some(1.0)
    );
}

#[test]
fn arp_on_pi4_with_device_filters() {
    let exp = scrape("arp", "pi4");
    assert_eq!(
        exp.value("node_arp_entries", &[("device", "eth0")]),
        Some(3.0)
    );
    assert_eq!(
        exp.value("node_arp_entries", &[("device", "wlan0")]),
        Some(1.0)
    );
    let mut config = Config::default();
    config.collector_settings.arp.device_include = "^eth".into();
    let exp = scrape_with("arp", &board("pi4"), &config).unwrap();
    assert_eq!(exp.family("node_arp_entries").len(), 1);
    config.collector_settings.arp.device_exclude = "^wlan".into();
    let err = scrape_with("arp", &board("pi4"), &config).unwrap_err();
    assert!(err.contains("mutually exclusive"), "{err}");
}

#[test]
fn conntrack_entropy_filefd_on_pi4() {
    let exp = scrape("conntrack", "pi4");
    for (name, value) in [
        ("node_nf_conntrack_entries", 23.0),
        ("node_nf_conntrack_entries_limit", 65536.0),
        // Summed over the 4 CPU lines of net/stat/nf_conntrack.
        ("node_nf_conntrack_stat_found", 406.0),
        ("node_nf_conntrack_stat_invalid", 12.0),
        ("node_nf_conntrack_stat_insert", 64.0),
        ("node_nf_conntrack_stat_drop", 6.0),
        ("node_nf_conntrack_stat_search_restart", 6.0),
        ("node_nf_conntrack_stat_early_drop", 0.0),
    ] {
        assert_eq!(exp.value(name, &[]), Some(value), "{name}");
    }
    let exp = scrape("entropy", "pi4");
    assert_eq!(exp.value("node_entropy_available_bits", &[]), Some(256.0));
    assert_eq!(exp.value("node_entropy_pool_size_bits", &[]), Some(256.0));
    let exp = scrape("filefd", "pi4");
    assert_eq!(exp.value("node_filefd_allocated", &[]), Some(1408.0));
    assert_eq!(
        exp.value("node_filefd_maximum", &[]),
        Some(9223372036854775807.0)
    );
    // Without nf_conntrack loaded (the CM4 tree): no series, not a failure.
    let exp = scrape_with("conntrack", &board("cm4"), &Config::default()).unwrap();
    assert!(exp.names().is_empty());
}

#[test]
fn softnet_udp_queues_schedstat_on_pi4() {
    let exp = scrape("softnet", "pi4");
    assert_eq!(exp.family("node_softnet_processed_total").len(), 4);
    assert_eq!(
        exp.value("node_softnet_processed_total", &[("cpu", "2")]),
        Some(f64::from(0x1a2b5))
    );
    assert_eq!(
        exp.value("node_softnet_times_squeezed_total", &[("cpu", "3")]),
        Some(9.0)
    );
    assert_eq!(
        exp.value("node_softnet_dropped_total", &[("cpu", "1")]),
        Some(1.0)
    );
    assert_eq!(
        exp.value("node_softnet_backlog_len", &[("cpu", "0")]),
        Some(0.0)
    );
    assert_eq!(exp.types["node_softnet_backlog_len"], "gauge");

    let exp = scrape("udp_queues", "pi4");
    assert_eq!(
        exp.value("node_udp_queues", &[("queue", "rx"), ("ip", "v4")]),
        Some(832.0)
    );
    assert_eq!(
        exp.value("node_udp_queues", &[("queue", "tx"), ("ip", "v6")]),
        Some(0.0)
    );

    let exp = scrape("schedstat", "pi4");
    assert_eq!(
        exp.value("node_schedstat_running_seconds_total", &[("cpu", "0")]),
        Some(2503.614358795)
    );
    assert_eq!(
        exp.value("node_schedstat_waiting_seconds_total", &[("cpu", "0")]),
        Some(118.843207683)
    );
    assert_eq!(
        exp.value("node_schedstat_timeslices_total", &[("cpu", "3")]),
        Some(16367546.0)
    );
}

#[test]
fn watchdog_and_poe_power_supply_on_pi4() {
    let exp = scrape("watchdog", "pi4");
    let wd = [("name", "watchdog0")];
    assert_eq!(exp.value("node_watchdog_timeout_seconds", &wd), Some(15.0));
    assert_eq!(exp.value("node_watchdog_timeleft_seconds", &wd), Some(14.0));
    assert_eq!(exp.value("node_watchdog_nowayout", &wd), Some(0.0));
    assert_eq!(exp.value("node_watchdog_pretimeout_seconds", &wd), None);
    assert_eq!(
        exp.value(
            "node_watchdog_info",
            &[
                ("name", "watchdog0"),
                ("identity", "Broadcom BCM2835 Watchdog timer"),
                ("options", "0x8180"),
                ("state", "active"),
                ("status", "0x8000"),
                ("pretimeout_governor", ""),
            ]
        ),
        Some(1.0)
    );

    let exp = scrape("powersupplyclass", "pi4");
    let poe = [("power_supply", "rpi-poe")];
    assert_eq!(exp.value("node_power_supply_online", &poe), Some(1.0));
    assert_eq!(
        exp.value("node_power_supply_current_ampere", &poe),
        Some(0.6)
    );
    assert_eq!(exp.value("node_power_supply_current_max", &poe), Some(2.5));
    let info = exp.family("node_power_supply_info");
    assert_eq!(info.len(), 1);
    let labels: Vec<(&str, &str)> = info[0]
        .labels
        .iter()
        .filter(|(k, _)| *k != "node")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("health", "Good"),
            ("power_supply", "rpi-poe"),
            ("type", "Mains")
        ]
    );
    let mut config = Config::default();
    config.collector_settings.powersupplyclass.ignored_supplies = "^rpi-poe$".into();
    let exp = scrape_with("powersupplyclass", &board("pi4"), &config).unwrap();
    assert!(exp.names().is_empty());
}

#[test]
fn nvme_on_pi5_and_absent_on_pi4() {
    let exp = scrape("nvme", "pi5");
    assert_eq!(
        exp.value(
            "node_nvme_info",
            &[
                ("device", "nvme0"),
                ("firmware_revision", "SVT02B6Q"),
                ("model", "Samsung SSD 980 500GB"),
                ("serial", "S64DNX0T123456A"),
                ("state", "live"),
                ("cntlid", "5"),
            ]
        ),
        Some(1.0)
    );
    let ns = [("device", "nvme0"), ("nsid", "1")];
    assert_eq!(
        exp.value("node_nvme_namespace_size_bytes", &ns),
        Some(976773168.0 * 512.0)
    );
    assert_eq!(
        exp.value("node_nvme_namespace_capacity_bytes", &ns),
        Some(976773168.0 * 512.0)
    );
    assert_eq!(
        exp.value("node_nvme_namespace_used_bytes", &ns),
        Some(40124566.0 * 512.0)
    );
    assert_eq!(
        exp.value("node_nvme_namespace_logical_block_size_bytes", &ns),
        Some(512.0)
    );
    assert_eq!(
        exp.value(
            "node_nvme_namespace_info",
            &[("device", "nvme0"), ("nsid", "1"), ("ana_state", "unknown")]
        ),
        Some(1.0)
    );
    let err = scrape_with("nvme", &board("pi4"), &Config::default()).unwrap_err();
    assert!(err.starts_with("unavailable"), "{err}");
    let err = scrape_with("kernel_hung", &board("pi4"), &Config::default()).unwrap_err();
    assert!(err.contains("hung_task_detect_count"), "{err}");
}

#[test]
fn nfs_client_on_pi4() {
    let exp = scrape("nfs", "pi4");
    assert_eq!(exp.value("node_nfs_rpcs_total", &[]), Some(181203.0));
    assert_eq!(
        exp.value("node_nfs_rpc_retransmissions_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        exp.value("node_nfs_packets_total", &[("protocol", "tcp")]),
        Some(0.0)
    );
    let request = |proto: &str, method: &str| {
        exp.value(
            "node_nfs_requests_total",
            &[("proto", proto), ("method", method)],
        )
    };
    assert_eq!(request("4", "Read"), Some(14820.0));
    assert_eq!(request("4", "Write"), Some(9312.0));
    assert_eq!(request("4", "Sequence"), Some(156021.0));
    assert_eq!(request("3", "GetAttr"), Some(2.0));
    // No proc2 line: zeros, as node_exporter (procfs) reports them.
    assert_eq!(request("2", "Null"), Some(0.0));
    assert_eq!(exp.family("node_nfs_requests_total").len(), 18 + 22 + 59);
    assert_eq!(exp.types["node_nfs_requests_total"], "counter");
    // No NFS mount since boot (pi5): no series, not a failure.
    assert!(scrape("nfs", "pi5").names().is_empty());
}

#[test]
fn selinux_is_off_on_raspberry_pi_os() {
    let exp = scrape("selinux", "pi4");
    assert_eq!(exp.value("node_selinux_enabled", &[]), Some(0.0));
    assert_eq!(exp.names().len(), 1);
}

#[test]
fn broken_files_fail_the_collector_not_the_process() {
    let dir = tempdir();
    let write = |rel: &str, text: &[u8]| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("proc/net/netstat", b"TcpExt: A B\nTcpExt: 1\n");
    write("proc/net/snmp", b"");
    write("proc/vmstat", b"pgfault\n");
    write("proc/net/sockstat", b"TCP: inuse\n");
    write("proc/net/arp", b"header\n1.2.3.4 0x1\n");
    write("proc/sys/fs/file-nr", b"\xff\xfe");
    write("proc/net/softnet_stat", b"zz 1 2\n");
    write("proc/net/udp", b"header\n 1: a b c\n");
    write("proc/schedstat", b"cpu0 1 2\n");
    write("proc/sys/kernel/random/entropy_avail", b"lots\n");
    write("proc/sys/net/netfilter/nf_conntrack_count", b"x\n");
    write("proc/sys/net/netfilter/nf_conntrack_max", b"1\n");
    for name in [
        "netstat",
        "vmstat",
        "sockstat",
        "arp",
        "filefd",
        "softnet",
        "udp_queues",
        "schedstat",
        "entropy",
        "conntrack",
    ] {
        let err = scrape_with(name, dir.path(), &Config::default()).unwrap_err();
        assert!(!err.is_empty(), "{name}");
    }
}

/// The dashboard and alert names a Pi gives that this (virtual) machine cannot: the whole agent
/// on the Pi 4 fixture board exports them.
#[test]
fn pi4_board_exports_the_dashboard_names_a_pi_has() {
    let dir = board("pi4");
    let arg = |name: &str, sub: &str| format!("--{name}={}", dir.join(sub).display());
    let output = run_agent(&[
        "--once",
        "--node=pi",
        "--no-collector.rpi",
        &arg("path.procfs", "proc"),
        &arg("path.sysfs", "sys"),
        &arg("path.rootfs", "."),
        &arg("path.devfs", "dev"),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names = parse_exposition(&text).names();
    for name in [
        "node_hwmon_temp_celsius",
        "node_hwmon_chip_names",
        "node_network_up",
        "node_network_speed_bytes",
        "node_network_carrier",
        "node_arp_entries",
        "node_nf_conntrack_entries",
        "node_netstat_TcpExt_TCPOFOQueue",
        "node_sockstat_TCP_mem_bytes",
        "node_softnet_processed_total",
        "node_schedstat_running_seconds_total",
        "node_power_supply_online",
        "node_udp_queues",
        "node_vmstat_oom_kill",
        "node_entropy_available_bits",
        "node_filefd_maximum",
        "node_nfs_requests_total",
    ] {
        assert!(
            names.contains(name),
            "{name} missing from the Pi 4 board's scrape"
        );
    }
}
