//! "Node Exporter Full" (Grafana dashboard 1860) and the common node alert and recording rules
//! (awesome-prometheus-alerts' node rules, node_exporter's node-mixin) against a real
//! Prometheus that scrapes both pimetrics and node_exporter on this machine, each with its
//! defaults: every metric name those queries use, and every label name they use with it,
//! must return data from pimetrics wherever it returns data from node_exporter, except the
//! exceptions listed below (and, with the same reason, in the README).
//!
//! USED lists the names only (facts about the dashboard and the rules, gathered from their
//! queries); the dashboard and rule files are not part of this project. A label listed with a
//! metric is one that appears in a query using that metric (in its selector, or in a `by`,
//! `without`, `on` or `group_left` clause of that query); it is checked only where
//! node_exporter's series have it.
//!
//! Debian's node_exporter is 1.5; where 1.12 differs, pimetrics follows 1.12, which only adds
//! data here. The result per name is written to target/tmp/dashboard_queries.txt.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::Value;

/// Names node_exporter returns data for here and pimetrics does not, with why. The README's
/// "Compared with node_exporter" section lists each with the same reason.
const EXCEPTIONS: &[(&str, &str)] = &[];

/// Metric names used by the dashboard and the rules, each with the label names used with it
/// (`job`, `instance` and `node` left out: target labels every series has).
const USED: &[(&str, &[&str])] = &[
    ("node_arp_entries", &[]),
    ("node_bonding_active", &[]),
    ("node_bonding_slaves", &[]),
    ("node_boot_time_seconds", &[]),
    ("node_context_switches_total", &["cpu", "mode"]),
    ("node_cooling_device_cur_state", &[]),
    ("node_cooling_device_max_state", &[]),
    ("node_cpu_guest_seconds_total", &[]),
    ("node_cpu_scaling_frequency_hertz", &[]),
    ("node_cpu_scaling_frequency_max_hertz", &[]),
    ("node_cpu_scaling_frequency_min_hertz", &[]),
    ("node_cpu_seconds_total", &["cpu", "mode"]),
    ("node_disk_discard_time_seconds_total", &[]),
    ("node_disk_discarded_sectors_total", &[]),
    ("node_disk_discards_completed_total", &[]),
    ("node_disk_discards_merged_total", &[]),
    ("node_disk_flush_requests_time_seconds_total", &[]),
    ("node_disk_flush_requests_total", &[]),
    ("node_disk_io_now", &[]),
    ("node_disk_io_time_seconds_total", &["device"]),
    ("node_disk_io_time_weighted_seconds_total", &["device"]),
    ("node_disk_read_bytes_total", &["device"]),
    ("node_disk_read_time_seconds_total", &[]),
    ("node_disk_reads_completed_total", &["device"]),
    ("node_disk_reads_merged_total", &[]),
    ("node_disk_write_time_seconds_total", &[]),
    ("node_disk_writes_completed_total", &["device"]),
    ("node_disk_writes_merged_total", &[]),
    ("node_disk_written_bytes_total", &["device"]),
    ("node_edac_correctable_errors_total", &[]),
    ("node_edac_uncorrectable_errors_total", &[]),
    ("node_entropy_available_bits", &[]),
    ("node_entropy_pool_size_bits", &[]),
    ("node_filefd_allocated", &[]),
    ("node_filefd_maximum", &[]),
    (
        "node_filesystem_avail_bytes",
        &["device", "fstype", "mountpoint"],
    ),
    ("node_filesystem_device_error", &["device", "fstype"]),
    ("node_filesystem_files", &["device", "fstype", "mountpoint"]),
    (
        "node_filesystem_files_free",
        &["device", "fstype", "mountpoint"],
    ),
    ("node_filesystem_free_bytes", &["device"]),
    (
        "node_filesystem_readonly",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_size_bytes",
        &["device", "fstype", "mountpoint"],
    ),
    ("node_forks_total", &[]),
    ("node_hwmon_chip_names", &["chip", "chip_name"]),
    ("node_hwmon_fan_min_rpm", &["chip", "chip_name"]),
    ("node_hwmon_fan_rpm", &["chip", "chip_name"]),
    ("node_hwmon_temp_alarm", &[]),
    ("node_hwmon_temp_celsius", &["chip", "chip_name"]),
    ("node_hwmon_temp_crit_alarm_celsius", &["chip", "chip_name"]),
    ("node_hwmon_temp_crit_celsius", &["chip", "chip_name"]),
    ("node_hwmon_temp_crit_hyst_celsius", &["chip", "chip_name"]),
    ("node_hwmon_temp_max_celsius", &["chip", "chip_name"]),
    ("node_interrupts_total", &[]),
    ("node_intr_total", &[]),
    ("node_kernel_hung_tasks", &[]),
    ("node_load1", &["cpu", "mode"]),
    ("node_load15", &[]),
    ("node_load5", &[]),
    ("node_md_disks", &["device", "state"]),
    ("node_md_disks_required", &["device", "state"]),
    ("node_memory_Active_anon_bytes", &[]),
    ("node_memory_Active_bytes", &[]),
    ("node_memory_Active_file_bytes", &[]),
    ("node_memory_AnonHugePages_bytes", &[]),
    ("node_memory_AnonPages_bytes", &[]),
    ("node_memory_Buffers_bytes", &[]),
    ("node_memory_Cached_bytes", &[]),
    ("node_memory_CommitLimit_bytes", &[]),
    ("node_memory_Committed_AS_bytes", &[]),
    ("node_memory_DirectMap1G_bytes", &[]),
    ("node_memory_DirectMap2M_bytes", &[]),
    ("node_memory_DirectMap4k_bytes", &[]),
    ("node_memory_Dirty_bytes", &[]),
    ("node_memory_HardwareCorrupted_bytes", &[]),
    ("node_memory_HugePages_Free", &[]),
    ("node_memory_HugePages_Rsvd", &[]),
    ("node_memory_HugePages_Surp", &[]),
    ("node_memory_HugePages_Total", &[]),
    ("node_memory_Hugepagesize_bytes", &[]),
    ("node_memory_Inactive_anon_bytes", &[]),
    ("node_memory_Inactive_bytes", &[]),
    ("node_memory_Inactive_file_bytes", &[]),
    ("node_memory_KernelStack_bytes", &[]),
    ("node_memory_Mapped_bytes", &[]),
    ("node_memory_MemAvailable_bytes", &[]),
    ("node_memory_MemFree_bytes", &[]),
    ("node_memory_MemTotal_bytes", &[]),
    ("node_memory_Mlocked_bytes", &[]),
    ("node_memory_NFS_Unstable_bytes", &[]),
    ("node_memory_PageTables_bytes", &[]),
    ("node_memory_Percpu_bytes", &[]),
    ("node_memory_SReclaimable_bytes", &[]),
    ("node_memory_SUnreclaim_bytes", &[]),
    ("node_memory_ShmemHugePages_bytes", &[]),
    ("node_memory_ShmemPmdMapped_bytes", &[]),
    ("node_memory_Shmem_bytes", &[]),
    ("node_memory_Slab_bytes", &[]),
    ("node_memory_SwapCached_bytes", &[]),
    ("node_memory_SwapFree_bytes", &[]),
    ("node_memory_SwapTotal_bytes", &[]),
    ("node_memory_Unevictable_bytes", &[]),
    ("node_memory_VmallocChunk_bytes", &[]),
    ("node_memory_VmallocTotal_bytes", &[]),
    ("node_memory_VmallocUsed_bytes", &[]),
    ("node_memory_WritebackTmp_bytes", &[]),
    ("node_memory_Writeback_bytes", &[]),
    ("node_memory_Zswap_bytes", &[]),
    ("node_memory_Zswapped_bytes", &[]),
    ("node_netstat_Icmp_InErrors", &[]),
    ("node_netstat_Icmp_InMsgs", &[]),
    ("node_netstat_Icmp_OutMsgs", &[]),
    ("node_netstat_IpExt_InOctets", &[]),
    ("node_netstat_IpExt_OutOctets", &[]),
    ("node_netstat_TcpExt_ListenDrops", &[]),
    ("node_netstat_TcpExt_ListenOverflows", &[]),
    ("node_netstat_TcpExt_SyncookiesFailed", &[]),
    ("node_netstat_TcpExt_SyncookiesRecv", &[]),
    ("node_netstat_TcpExt_SyncookiesSent", &[]),
    ("node_netstat_TcpExt_TCPOFOQueue", &[]),
    ("node_netstat_TcpExt_TCPRcvQDrop", &[]),
    ("node_netstat_TcpExt_TCPSynRetrans", &[]),
    ("node_netstat_TcpExt_TCPTimeouts", &[]),
    ("node_netstat_Tcp_ActiveOpens", &[]),
    ("node_netstat_Tcp_CurrEstab", &[]),
    ("node_netstat_Tcp_InErrs", &[]),
    ("node_netstat_Tcp_InSegs", &[]),
    ("node_netstat_Tcp_MaxConn", &[]),
    ("node_netstat_Tcp_OutRsts", &[]),
    ("node_netstat_Tcp_OutSegs", &[]),
    ("node_netstat_Tcp_PassiveOpens", &[]),
    ("node_netstat_Tcp_RetransSegs", &[]),
    ("node_netstat_UdpLite_InErrors", &[]),
    ("node_netstat_Udp_InDatagrams", &[]),
    ("node_netstat_Udp_InErrors", &[]),
    ("node_netstat_Udp_NoPorts", &[]),
    ("node_netstat_Udp_OutDatagrams", &[]),
    ("node_netstat_Udp_RcvbufErrors", &[]),
    ("node_netstat_Udp_SndbufErrors", &[]),
    ("node_network_carrier", &[]),
    ("node_network_mtu_bytes", &[]),
    ("node_network_receive_bytes_total", &["device"]),
    ("node_network_receive_compressed_total", &[]),
    ("node_network_receive_drop_total", &["device"]),
    ("node_network_receive_errs_total", &[]),
    ("node_network_receive_fifo_total", &[]),
    ("node_network_receive_frame_total", &[]),
    ("node_network_receive_multicast_total", &[]),
    ("node_network_receive_nohandler_total", &[]),
    ("node_network_receive_packets_total", &[]),
    ("node_network_speed_bytes", &[]),
    ("node_network_transmit_bytes_total", &["device"]),
    ("node_network_transmit_carrier_total", &[]),
    ("node_network_transmit_colls_total", &[]),
    ("node_network_transmit_compressed_total", &[]),
    ("node_network_transmit_drop_total", &["device"]),
    ("node_network_transmit_errs_total", &[]),
    ("node_network_transmit_fifo_total", &[]),
    ("node_network_transmit_packets_total", &[]),
    ("node_network_up", &["operstate"]),
    ("node_nf_conntrack_entries", &[]),
    ("node_nf_conntrack_entries_limit", &[]),
    ("node_power_supply_online", &[]),
    ("node_pressure_cpu_waiting_seconds_total", &[]),
    ("node_pressure_io_stalled_seconds_total", &[]),
    ("node_pressure_io_waiting_seconds_total", &[]),
    ("node_pressure_irq_stalled_seconds_total", &[]),
    ("node_pressure_memory_stalled_seconds_total", &[]),
    ("node_pressure_memory_waiting_seconds_total", &[]),
    ("node_processes_max_processes", &[]),
    ("node_processes_max_threads", &[]),
    ("node_processes_pids", &[]),
    ("node_processes_state", &[]),
    ("node_processes_threads", &[]),
    ("node_procs_blocked", &[]),
    ("node_procs_running", &[]),
    ("node_schedstat_running_seconds_total", &[]),
    ("node_schedstat_timeslices_total", &[]),
    ("node_schedstat_waiting_seconds_total", &[]),
    ("node_scrape_collector_duration_seconds", &[]),
    ("node_scrape_collector_success", &[]),
    ("node_sockstat_FRAG_inuse", &[]),
    ("node_sockstat_FRAG_memory", &[]),
    ("node_sockstat_RAW_inuse", &[]),
    ("node_sockstat_TCP_alloc", &[]),
    ("node_sockstat_TCP_inuse", &[]),
    ("node_sockstat_TCP_mem", &[]),
    ("node_sockstat_TCP_mem_bytes", &[]),
    ("node_sockstat_TCP_orphan", &[]),
    ("node_sockstat_TCP_tw", &[]),
    ("node_sockstat_UDPLITE_inuse", &[]),
    ("node_sockstat_UDP_inuse", &[]),
    ("node_sockstat_UDP_mem", &[]),
    ("node_sockstat_UDP_mem_bytes", &[]),
    ("node_sockstat_sockets_used", &[]),
    ("node_softnet_dropped_total", &[]),
    ("node_softnet_flow_limit_count_total", &[]),
    ("node_softnet_processed_total", &[]),
    ("node_softnet_received_rps_total", &[]),
    ("node_softnet_times_squeezed_total", &[]),
    ("node_systemd_service_restart_total", &[]),
    ("node_systemd_socket_accepted_connections_total", &[]),
    ("node_systemd_socket_current_connections", &[]),
    ("node_systemd_socket_refused_connections_total", &[]),
    ("node_systemd_unit_state", &["state"]),
    ("node_systemd_units", &["state"]),
    ("node_tcp_connection_states", &["state"]),
    ("node_textfile_scrape_error", &[]),
    ("node_time_seconds", &[]),
    ("node_timex_estimated_error_seconds", &[]),
    ("node_timex_frequency_adjustment_ratio", &[]),
    ("node_timex_loop_time_constant", &[]),
    ("node_timex_maxerror_seconds", &[]),
    ("node_timex_offset_seconds", &[]),
    ("node_timex_pps_calibration_total", &[]),
    ("node_timex_pps_error_total", &[]),
    ("node_timex_pps_frequency_hertz", &[]),
    ("node_timex_pps_jitter_seconds", &[]),
    ("node_timex_pps_jitter_total", &[]),
    ("node_timex_pps_shift_seconds", &[]),
    ("node_timex_pps_stability_exceeded_total", &[]),
    ("node_timex_pps_stability_hertz", &[]),
    ("node_timex_sync_status", &[]),
    ("node_timex_tai_offset_seconds", &[]),
    ("node_timex_tick_seconds", &[]),
    ("node_udp_queues", &["ip", "queue"]),
    ("node_uname_info", &["nodename"]),
    ("node_vmstat_oom_kill", &[]),
    ("node_vmstat_pgfault", &[]),
    ("node_vmstat_pgmajfault", &[]),
    ("node_vmstat_pgpgin", &[]),
    ("node_vmstat_pgpgout", &[]),
    ("node_vmstat_pswpin", &[]),
    ("node_vmstat_pswpout", &[]),
    ("process_cpu_seconds_total", &[]),
    ("process_max_fds", &[]),
    ("process_open_fds", &[]),
    ("process_virtual_memory_bytes", &[]),
    ("process_virtual_memory_max_bytes", &[]),
];

const LIMIT: Duration = Duration::from_secs(60);

/// The jobs for which `selector` returns data now.
fn jobs_with_data(prometheus_port: u16, selector: &str) -> BTreeSet<String> {
    let promql = format!("count by (job) ({selector})");
    let response = http_get(
        prometheus_port,
        &format!("/api/v1/query?query={}", url_encode(&promql)),
    );
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|err| panic!("no JSON from Prometheus ({err}): {}", response.text()));
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .filter_map(|s| s["metric"]["job"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dashboard_and_alert_names_return_data_from_pimetrics() {
    let _heavy = crate::harness::heavy();
    let Some(prometheus_bin) = require_or_skip("prometheus", "dashboard queries") else {
        return;
    };
    let Some(node_exporter_bin) = require_or_skip("prometheus-node-exporter", "dashboard queries")
    else {
        return;
    };
    let (_agent, agent_port) = start_agent(&["--node=dashboard", "--log.level=warn"]);
    let node_exporter_port = free_port();
    let _node_exporter = Proc::spawn(
        "node_exporter",
        Command::new(node_exporter_bin)
            .arg(format!(
                "--web.listen-address=127.0.0.1:{node_exporter_port}"
            ))
            .arg("--log.level=warn"),
    );
    wait_for_port(node_exporter_port, Duration::from_secs(20));

    let dir = tempdir();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: pimetrics\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n\
             \x20 - job_name: node_exporter\n    static_configs:\n      - targets: ['127.0.0.1:{node_exporter_port}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut prometheus = Proc::spawn(
        "prometheus",
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn"),
    );
    wait_for_port(port, Duration::from_secs(30));
    let started = Instant::now();
    // Both targets scraped successfully at least twice.
    loop {
        let ready = http_get(port, "/-/ready").status == 200
            && jobs_with_data(port, "count_over_time(up[1m]) >= 2 and up == 1").len() == 2;
        if ready {
            break;
        }
        if let Ok(Some(status)) = prometheus.child.try_wait() {
            panic!("Prometheus exited ({status})");
        }
        assert!(
            started.elapsed() < LIMIT,
            "both targets not up within {LIMIT:?}: {}",
            http_get(port, "/api/v1/targets").text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let mut report = String::new();
    let mut problems = Vec::new();
    let (mut names_with_data, mut names_ours, mut labels_checked) = (0, 0, 0);
    for (metric, labels) in USED {
        let jobs = jobs_with_data(port, metric);
        let theirs = jobs.contains("node_exporter");
        let ours = jobs.contains("pimetrics");
        let exception = EXCEPTIONS.iter().find(|(name, _)| name == metric);
        let verdict = match (theirs, ours, exception) {
            (false, true, _) => "pimetrics only",
            (false, false, _) => "neither (collector off or no such hardware here)",
            (true, true, _) => "both",
            (true, false, Some(_)) => "node_exporter only (listed exception)",
            (true, false, None) => {
                problems.push(format!(
                    "{metric}: data from node_exporter, none from pimetrics"
                ));
                "node_exporter only"
            }
        };
        if theirs {
            names_with_data += 1;
            names_ours += usize::from(ours);
        }
        let _ = writeln!(report, "{metric:<55} {verdict}");
        if !(theirs && ours) {
            continue;
        }
        for label in *labels {
            let jobs = jobs_with_data(port, &format!("{metric}{{{label}!=\"\"}}"));
            if jobs.contains("node_exporter") {
                labels_checked += 1;
                let ok = jobs.contains("pimetrics");
                let _ = writeln!(
                    report,
                    "  {label:<53} {}",
                    if ok { "both" } else { "MISSING" }
                );
                if !ok {
                    problems.push(format!(
                        "{metric}{{{label}}}: label on node_exporter's series, not on pimetrics'"
                    ));
                }
            }
        }
    }
    let summary = format!(
        "{} names used by the dashboard and rules; node_exporter has data for {names_with_data}, \
         pimetrics for {names_ours} of those; {labels_checked} label names checked",
        USED.len()
    );
    println!("{summary}\n{report}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard_queries.txt"),
        format!("{summary}\n{report}"),
    );

    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    for (name, _) in EXCEPTIONS {
        if !readme.contains(&format!("`{name}`")) {
            problems.push(format!("README does not list the exception `{name}`"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Not vacuous: node_exporter had data for most names, and so did we.
    assert!(names_with_data > 150, "{summary}");
}
