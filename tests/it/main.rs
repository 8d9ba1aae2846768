//! The integration tests: one binary, one module per area, one harness (`harness`) with the
//! fixture trees (`harness::tree("pi4")`), the agent on a free loopback port, the HTTP client,
//! the exposition parser and Debian's Prometheus programs.
//!
//! `cargo test --test it <module>::` runs one area (e.g. `cargo test --test it pi_boards::`).
//! Tests run on parallel threads of this one process: what may not overlap (container boots,
//! ARM builds, tests that time an answer) holds `harness::heavy()`.

mod harness;

mod arm_qemu;
mod config_cli;
mod cpu_and_os_collectors;
mod dashboard_queries;
mod deb_package;
mod deploy_monitoring;
mod disk_and_net_collectors;
mod endpoint_limits;
mod endpoint_tls;
mod fixture_trees;
mod fleet_dashboard;
mod golden;
mod http_endpoint;
mod node_exporter_compat;
mod pi_alert_rules;
mod pi_boards;
mod pi_image;
mod pi_system_collectors;
mod prometheus_scrape;
mod promtool_lint;
mod push_gateway;
mod push_nat;
mod push_rules;
mod readme_reference;
mod remote_write;
mod remote_write_nat;
mod remote_write_outage;
mod remote_write_wire;
mod scrape_allocations;
mod sensor_and_textfile_collectors;
mod systemd_boot;
mod systemd_unit;
mod webconfig;
