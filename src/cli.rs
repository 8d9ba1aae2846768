//! Command line. Where node_exporter has a flag for the same thing the name is the same, so the
//! binary can be swapped under an existing unit file. Flags override the config file.

use std::path::PathBuf;

use crate::collector::Settings;
use crate::collector::COLLECTORS;
use crate::config::Config;
use crate::duration::Seconds;
use crate::flag::{
    lower_debug, optional_path, parse_bool, path_or_none, path_text, Flag, FlagInfo,
};
use crate::logging::LogLevel;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run,
    /// Collect once, print the exposition, exit.
    Once,
    CheckConfig(PathBuf),
    PrintConfig,
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub action: Action,
    pub config_file: Option<PathBuf>,
    /// Flags that set config values, applied in order over the file.
    settings: Vec<(&'static str, String)>,
    collector_switches: Vec<(String, bool)>,
    disable_defaults: bool,
}

/// A byte count as the size flags take it: `8MiB`.
fn bytes_text(bytes: u64) -> String {
    match bytes {
        b if b > 0 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b > 0 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b > 0 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => b.to_string(),
    }
}

/// Where to listen and read from: first in --help, before the collectors' own flags
/// (`CollectorSettings::FLAGS`).
const FIRST_FLAGS: &[Flag<Config>] = &[
    Flag {
        name: "--web.listen-address",
        placeholder: "ADDR",
        help: "Address to listen on for /metrics: \":PORT\" (every address) or \"HOST:PORT\". Config: listen_address.",
        default: |c| c.listen_address.clone(),
        switch: false,
        apply: |c, v| {
            c.listen_address = v.to_string();
            Ok(())
        },
    },
    Flag {
        name: "--path.procfs",
        placeholder: "DIR",
        help: "procfs mountpoint. Config: paths.procfs.",
        default: |c| path_text(&c.paths.procfs),
        switch: false,
        apply: |c, v| {
            c.paths.procfs = v.into();
            Ok(())
        },
    },
    Flag {
        name: "--path.sysfs",
        placeholder: "DIR",
        help: "sysfs mountpoint. Config: paths.sysfs.",
        default: |c| path_text(&c.paths.sysfs),
        switch: false,
        apply: |c, v| {
            c.paths.sysfs = v.into();
            Ok(())
        },
    },
    Flag {
        name: "--path.rootfs",
        placeholder: "DIR",
        help: "rootfs mountpoint: mount points and os-release are read below it. Config: paths.rootfs.",
        default: |c| path_text(&c.paths.rootfs),
        switch: false,
        apply: |c, v| {
            c.paths.rootfs = v.into();
            Ok(())
        },
    },
    Flag {
        name: "--path.devfs",
        placeholder: "DIR",
        help: "devfs mountpoint: where the Pi firmware devices (vcio, vcio_gencmd) are. Config: paths.devfs.",
        default: |c| path_text(&c.paths.devfs),
        switch: false,
        apply: |c, v| {
            c.paths.devfs = v.into();
            Ok(())
        },
    },
];

/// The agent's other flags that set a config key, in --help order.
const AGENT_FLAGS: &[Flag<Config>] = &[
    Flag {
        name: "--log.level",
        placeholder: "LEVEL",
        help: "Only log messages with the given severity or above: error, warn, info, debug. Config: log_level.",
        default: |c| lower_debug(c.log_level),
        switch: false,
        apply: |c, v| {
            c.log_level = LogLevel::parse(v)
                .ok_or_else(|| format!("invalid level {v:?} (error, warn, info, debug)"))?;
            Ok(())
        },
    },
    Flag {
        name: "--web.config.file",
        placeholder: "FILE",
        help: "Path to a web configuration file (node_exporter's: TLS and basic auth). Config: web.config_file.",
        default: |c| optional_path(&c.web.config_file),
        switch: false,
        apply: |c, v| {
            c.web.config_file = (!v.is_empty()).then(|| v.into());
            Ok(())
        },
    },
    Flag {
        name: "--web.max-requests",
        placeholder: "N",
        help: "Maximum number of parallel scrape requests (0: no limit). Config: web.max_requests.",
        default: |c| c.web.max_requests.to_string(),
        switch: false,
        apply: |c, v| {
            c.web.max_requests = v.parse().map_err(|_| format!("not a number: {v:?}"))?;
            Ok(())
        },
    },
    Flag {
        name: "--web.systemd-socket",
        placeholder: "",
        help: "Use systemd socket activation listeners instead of port listeners. Config: web.systemd_socket.",
        default: |c| c.web.systemd_socket.to_string(),
        switch: true,
        apply: |c, v| {
            c.web.systemd_socket = parse_bool(v)?;
            Ok(())
        },
    },
    Flag {
        name: "--node",
        placeholder: "NAME",
        help: "Value of the node label on every series (empty: the host name). Config: node.",
        default: |c| c.node.clone().unwrap_or_default(),
        switch: false,
        apply: |c, v| {
            c.node = Some(v.to_string());
            Ok(())
        },
    },
    Flag {
        name: "--push.url",
        placeholder: "URL",
        help: "Pushgateway base URL, http:// or https:// (empty: no push). Config: push.url.",
        default: |c| c.push.url.clone().unwrap_or_default(),
        switch: false,
        apply: |c, v| {
            c.push.url = if v.is_empty() {
                None
            } else {
                Some(v.to_string())
            };
            Ok(())
        },
    },
    Flag {
        name: "--push.job",
        placeholder: "NAME",
        help: "Job name of the pushed group. Config: push.job.",
        default: |c| c.push.job.clone(),
        switch: false,
        apply: |c, v| {
            c.push.job = v.to_string();
            Ok(())
        },
    },
    Flag {
        name: "--push.interval",
        placeholder: "DURATION",
        help: "Time between pushes. Config: push.interval.",
        default: |c| c.push.interval.to_string(),
        switch: false,
        apply: |c, v| {
            c.push.interval = Seconds::parse(v)?;
            Ok(())
        },
    },
    Flag {
        name: "--push.mode",
        placeholder: "MODE",
        help: "always: push every interval; fallback: push only while nobody scrapes /metrics. Config: push.mode.",
        default: |c| lower_debug(c.push.mode),
        switch: false,
        apply: |c, v| {
            c.push.mode = crate::push::PushMode::parse(v)
                .ok_or_else(|| format!("invalid mode {v:?} (always, fallback)"))?;
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.url",
        placeholder: "URL",
        help: "Prometheus remote write URL (http:// or https://; empty: no remote write). Config: remote_write.url.",
        default: |c| c.remote_write.url.clone().unwrap_or_default(),
        switch: false,
        apply: |c, v| {
            c.remote_write.url = if v.is_empty() {
                None
            } else {
                Some(v.to_string())
            };
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.interval",
        placeholder: "DURATION",
        help: "Time between two collections sent by remote write. Config: remote_write.interval.",
        default: |c| c.remote_write.interval.to_string(),
        switch: false,
        apply: |c, v| {
            c.remote_write.interval = Seconds::parse(v)?;
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.buffer-dir",
        placeholder: "DIR",
        help: "Directory of the on-disk buffer of unsent samples (empty: in memory). Config: remote_write.buffer_dir.",
        default: |c| optional_path(&c.remote_write.buffer_dir),
        switch: false,
        apply: |c, v| {
            c.remote_write.buffer_dir = path_or_none(v);
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.buffer-max-bytes",
        placeholder: "SIZE",
        help: "Most bytes the buffer holds; the oldest go first when full. Config: remote_write.buffer_max_bytes.",
        default: |c| bytes_text(c.remote_write.buffer_max_bytes),
        switch: false,
        apply: |c, v| {
            c.remote_write.buffer_max_bytes = crate::remote_write::config::parse_bytes(v)?;
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.buffer-max-age",
        placeholder: "DURATION",
        help: "Samples older than this are dropped unsent. Config: remote_write.buffer_max_age.",
        default: |c| c.remote_write.buffer_max_age.to_string(),
        switch: false,
        apply: |c, v| {
            c.remote_write.buffer_max_age = Seconds::parse(v)?;
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.flush-interval",
        placeholder: "DURATION",
        help: "Disk buffer: unsent collections are written at most this often (0s: every collection). Config: remote_write.flush_interval.",
        default: |c| c.remote_write.flush_interval.to_string(),
        switch: false,
        apply: |c, v| {
            c.remote_write.flush_interval = Seconds::parse(v)?;
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.bearer-token-file",
        placeholder: "FILE",
        help: "File holding a bearer token for the receiver. Config: remote_write.bearer_token_file.",
        default: |c| optional_path(&c.remote_write.bearer_token_file),
        switch: false,
        apply: |c, v| {
            c.remote_write.bearer_token_file = path_or_none(v);
            Ok(())
        },
    },
    Flag {
        name: "--remote-write.ca-file",
        placeholder: "FILE",
        help: "PEM file of the CAs trusted for the receiver (default: the built-in Mozilla roots). Config: remote_write.ca_file.",
        default: |c| optional_path(&c.remote_write.ca_file),
        switch: false,
        apply: |c, v| {
            c.remote_write.ca_file = path_or_none(v);
            Ok(())
        },
    },
];

/// What a flag that is not a setting does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plain {
    Help,
    Version,
    Once,
    PrintConfig,
    CheckConfig,
    ConfigFile,
    DisableDefaults,
}

/// Flags that are not settings: (names, value placeholder or "", help, what it does).
const PLAIN_FLAGS: &[(&[&str], &str, &str, Plain)] = &[
    (&["-h", "--help"], "", "Show this help and exit.", Plain::Help),
    (&["--version"], "", "Show the version and exit.", Plain::Version),
    (
        &["--config.file", "--config"],
        "FILE",
        "RON config file; every key optional, flags override it (default: none, built-in defaults).",
        Plain::ConfigFile,
    ),
    (
        &["--check-config"],
        "FILE",
        "Validate a config file and exit; non-zero exit status on error.",
        Plain::CheckConfig,
    ),
    (
        &["--print-config"],
        "",
        "Print the effective config (file + flags) as RON and exit.",
        Plain::PrintConfig,
    ),
    (
        &["--once"],
        "",
        "Collect once, print the exposition to stdout and exit.",
        Plain::Once,
    ),
    (
        &["--collector.disable-defaults"],
        "",
        "Set all collectors to disabled by default.",
        Plain::DisableDefaults,
    ),
];

impl Cli {
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
        let mut cli = Cli {
            action: Action::Run,
            config_file: None,
            settings: Vec::new(),
            collector_switches: Vec::new(),
            disable_defaults: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline_value) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_string(), Some(value.to_string()))
                }
                _ => (arg.clone(), None),
            };
            let value = |args: &mut I::IntoIter| -> Result<String, String> {
                match inline_value.clone() {
                    Some(v) => Ok(v),
                    None => args.next().ok_or_else(|| format!("{name} needs a value")),
                }
            };
            let plain = PLAIN_FLAGS
                .iter()
                .find(|(names, ..)| names.contains(&name.as_str()))
                .map(|(.., plain)| *plain);
            match plain {
                Some(Plain::Help) => cli.action = Action::Help,
                Some(Plain::Version) => cli.action = Action::Version,
                Some(Plain::Once) => cli.action = Action::Once,
                Some(Plain::PrintConfig) => cli.action = Action::PrintConfig,
                Some(Plain::CheckConfig) => {
                    cli.action = Action::CheckConfig(value(&mut args)?.into())
                }
                Some(Plain::ConfigFile) => cli.config_file = Some(value(&mut args)?.into()),
                Some(Plain::DisableDefaults) => cli.disable_defaults = true,
                None => {
                    if let Some(flag) = value_flags().find(|flag| flag.name == name) {
                        let value = if flag.switch {
                            // As node_exporter's switches; also takes =true / =false.
                            inline_value.clone().unwrap_or_else(|| "true".into())
                        } else {
                            value(&mut args)?
                        };
                        cli.settings.push((flag.name, value));
                    } else if let Some(flag) = negated_switch(&name) {
                        // kingpin's negation of a bool flag: --no-<flag>.
                        cli.settings.push((flag.name, "false".into()));
                    } else if let Some(collector) = collector_switch(&name, "--collector.") {
                        cli.collector_switches.push((collector, true));
                    } else if let Some(collector) = collector_switch(&name, "--no-collector.") {
                        cli.collector_switches.push((collector, false));
                    } else {
                        return Err(format!("unknown flag {arg:?} (see --help)"));
                    }
                }
            }
        }
        Ok(cli)
    }

    /// Applies the flags over `config` and validates the result.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        for (flag, value) in &self.settings {
            apply_flag(config, flag, value).map_err(|err| format!("{flag}: {err}"))?;
        }
        if self.disable_defaults {
            for spec in COLLECTORS {
                config
                    .collectors
                    .entry(spec.name.to_string())
                    .or_insert(false);
            }
        }
        for (name, on) in &self.collector_switches {
            config.collectors.insert(name.clone(), *on);
        }
        config
            .validate()
            .map_err(|err| format!("after flags: {err}"))
    }
}

/// Every flag that takes a value or is a switch, in --help order: where to listen and read
/// from, the collectors' own, then the agent's others.
fn value_flags() -> impl Iterator<Item = FlagInfo> {
    FIRST_FLAGS
        .iter()
        .map(Flag::info)
        .chain(Settings::flags())
        .chain(AGENT_FLAGS.iter().map(Flag::info))
}

fn agent_flag(name: &str) -> Option<&'static Flag<Config>> {
    FIRST_FLAGS
        .iter()
        .chain(AGENT_FLAGS)
        .find(|flag| flag.name == name)
}

/// What flag `name` shows as its default in `config` (empty: none).
fn flag_default(config: &Config, name: &str) -> String {
    match agent_flag(name) {
        Some(flag) => (flag.default)(config),
        None => config
            .collector_settings
            .flag_default(name)
            .unwrap_or_default(),
    }
}

/// Sets what flag `name` sets, the agent's or a collector's.
fn apply_flag(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
    match agent_flag(name) {
        Some(flag) => (flag.apply)(config, value),
        None => config
            .collector_settings
            .apply_flag(name, value)
            .unwrap_or_else(|| Err(format!("unknown flag {name:?}"))),
    }
}

/// The switch that `--no-<switch>` turns off (collectors' own `--no-collector.NAME` aside).
fn negated_switch(name: &str) -> Option<FlagInfo> {
    let bare = name.strip_prefix("--no-")?;
    value_flags().find(|flag| flag.switch && flag.name.strip_prefix("--") == Some(bare))
}

fn collector_switch(flag: &str, prefix: &str) -> Option<String> {
    let name = flag.strip_prefix(prefix)?;
    COLLECTORS
        .iter()
        .any(|spec| spec.name == name)
        .then(|| name.to_string())
}

/// Every flag name the parser accepts (collector switches included), for tests.
pub fn accepted_flags() -> Vec<String> {
    let mut flags: Vec<String> = PLAIN_FLAGS
        .iter()
        .flat_map(|(names, ..)| names.iter().map(|n| n.to_string()))
        .collect();
    flags.extend(value_flags().map(|flag| flag.name.to_string()));
    flags.extend(
        value_flags()
            .filter(|flag| flag.switch)
            .map(|flag| format!("--no-{}", &flag.name[2..])),
    );
    for spec in COLLECTORS {
        flags.push(format!("--collector.{}", spec.name));
        flags.push(format!("--no-collector.{}", spec.name));
    }
    flags
}

/// Whether `flag` takes a value.
pub fn takes_value(flag: &str) -> bool {
    value_flags().any(|f| f.name == flag && !f.switch)
        || PLAIN_FLAGS
            .iter()
            .any(|(names, placeholder, ..)| names.contains(&flag) && !placeholder.is_empty())
}

/// Width of the flag column, as node_exporter (kingpin) lays it out, and of the whole text.
const FLAG_COLUMN: usize = 32;
const WIDTH: usize = 100;

/// One flag: `      --name=VALUE   help`, the help on the next line when the flag is long,
/// wrapped at `WIDTH`.
fn push_flag(text: &mut String, flag: &str, help: &str) {
    let left = if flag.starts_with("--") {
        format!("      {flag}")
    } else {
        format!("  {flag}")
    };
    text.push_str(&left);
    if left.len() + 2 <= FLAG_COLUMN {
        text.push_str(&" ".repeat(FLAG_COLUMN - left.len()));
    } else {
        text.push('\n');
        text.push_str(&" ".repeat(FLAG_COLUMN));
    }
    let mut column = FLAG_COLUMN;
    for (index, word) in help.split(' ').enumerate() {
        if index > 0 {
            if column + 1 + word.len() > WIDTH {
                text.push('\n');
                text.push_str(&" ".repeat(FLAG_COLUMN));
                column = FLAG_COLUMN;
            } else {
                text.push(' ');
                column += 1;
            }
        }
        text.push_str(word);
        column += word.len();
    }
    text.push('\n');
}

/// `--help`, in node_exporter's style: every flag with its meaning and default.
pub fn usage() -> String {
    let defaults = Config::default();
    let mut text = String::from(
        "usage: pimetrics [<flags>]\n\n\
         Raspberry Pi and system metrics for Prometheus: node_exporter-compatible /metrics,\n\
         Pi firmware health, Pushgateway push. Flags override the config file; a value\n\
         follows '=' or comes as the next argument.\n\nFlags:\n",
    );
    for (names, placeholder, help, _) in PLAIN_FLAGS {
        let value = if placeholder.is_empty() {
            String::new()
        } else {
            format!("={placeholder}")
        };
        let flag = match names {
            [short, long] if !short.starts_with("--") => format!("{short}, {long}{value}"),
            [name, alias] => format!("{name}{value} (or {alias})"),
            _ => format!("{}{value}", names.join(", ")),
        };
        push_flag(&mut text, &flag, help);
    }
    for flag in value_flags() {
        let default = flag_default(&defaults, flag.name);
        if flag.switch {
            // kingpin's form for a bool flag: --[no-]name.
            let help = format!("{} Default: {default}.", flag.help);
            push_flag(&mut text, &format!("--[no-]{}", &flag.name[2..]), &help);
            continue;
        }
        let shown = if default.is_empty() {
            format!("{}={}", flag.name, flag.placeholder)
        } else {
            format!("{}={default:?}", flag.name)
        };
        let help = if default.is_empty() {
            format!("{} Default: none.", flag.help)
        } else {
            flag.help.to_string()
        };
        push_flag(&mut text, &shown, &help);
    }
    for spec in COLLECTORS {
        let state = if spec.enabled_by_default {
            "enabled"
        } else {
            "disabled"
        };
        push_flag(
            &mut text,
            &format!("--[no-]collector.{}", spec.name),
            &format!("Enable the {} collector (default: {state}).", spec.name),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn node_exporter_flags_in_both_forms() {
        let cli = parse(&[
            "--web.listen-address=127.0.0.1:9999",
            "--path.procfs",
            "/host/proc",
            "--no-collector.meminfo",
            "--log.level=debug",
        ])
        .unwrap();
        let mut config = Config::default();
        cli.apply(&mut config).unwrap();
        assert_eq!(config.listen_address, "127.0.0.1:9999");
        assert_eq!(config.paths.procfs, PathBuf::from("/host/proc"));
        assert_eq!(config.collectors.get("meminfo"), Some(&false));
        assert_eq!(config.log_level, LogLevel::Debug);
    }

    #[test]
    fn flags_override_the_file() {
        let mut config =
            Config::from_ron("(node: \"file\", collectors: {\"loadavg\": false})", None).unwrap();
        parse(&["--node", "flag", "--collector.loadavg"])
            .unwrap()
            .apply(&mut config)
            .unwrap();
        assert_eq!(config.node.as_deref(), Some("flag"));
        assert!(config.enabled_collectors().contains(&"loadavg"));
    }

    #[test]
    fn disable_defaults_then_enable_one() {
        let mut config = Config::default();
        parse(&["--collector.disable-defaults", "--collector.loadavg"])
            .unwrap()
            .apply(&mut config)
            .unwrap();
        assert_eq!(config.enabled_collectors(), vec!["loadavg"]);
    }

    #[test]
    fn pi_flags() {
        let mut config = Config::default();
        parse(&[
            "--path.devfs=/host/dev",
            "--collector.rpi.enabled=on",
            "--collector.rpi.pmic-interval=1m",
            "--collector.rpi.mailbox-replay=/tmp/answers.replay",
            "--collector.rpi.gencmd-replay=/tmp/gencmd.replay",
            "--collector.rpi.state-file=",
        ])
        .unwrap()
        .apply(&mut config)
        .unwrap();
        assert_eq!(
            config.collector_settings.pi.gencmd_replay,
            Some(PathBuf::from("/tmp/gencmd.replay"))
        );
        assert_eq!(config.collector_settings.pi.state_file, None);
        assert_eq!(
            Config::default().collector_settings.pi.state_file,
            Some(PathBuf::from("/run/pimetrics/rpi-since-boot"))
        );
        assert_eq!(config.roots().dev("vcio"), PathBuf::from("/host/dev/vcio"));
        assert_eq!(
            config.collector_settings.pi.enabled,
            crate::collector::rpi::PiEnabled::On
        );
        assert_eq!(config.collector_settings.pi.pmic_interval.0.as_secs(), 60);
        assert_eq!(
            config.collector_settings.pi.mailbox_replay,
            Some(PathBuf::from("/tmp/answers.replay"))
        );
        let err = parse(&["--collector.rpi.enabled=maybe"])
            .unwrap()
            .apply(&mut config)
            .unwrap_err();
        assert!(err.contains("auto, on, off"), "{err}");
    }

    #[test]
    fn push_flags() {
        let mut config = Config::default();
        parse(&[
            "--push.url=http://gw:9091",
            "--push.job",
            "pis",
            "--push.interval=30s",
            "--push.mode=fallback",
        ])
        .unwrap()
        .apply(&mut config)
        .unwrap();
        assert_eq!(config.push.url.as_deref(), Some("http://gw:9091"));
        assert_eq!(config.push.job, "pis");
        assert_eq!(
            config.push.interval,
            Seconds(std::time::Duration::from_secs(30))
        );
        assert_eq!(config.push.mode, crate::push::PushMode::Fallback);
        for (flag, expected) in [
            ("--push.mode=sometimes", "--push.mode: invalid mode"),
            ("--push.url=gw:9091", "push.url"),
            ("--push.interval=0s", "push.interval"),
            ("--push.job=", "push.job"),
        ] {
            let err = parse(&["--push.url=http://gw:9091", flag])
                .unwrap()
                .apply(&mut Config::default())
                .unwrap_err();
            assert!(err.contains(expected), "{flag}: {err}");
        }
    }

    /// Whether `help` mentions `flag` as a whole word (`--collector.cpu` is not
    /// `--collector.cpufreq`), directly or as `--[no-]collector.NAME`.
    fn mentions(help: &str, flag: &str) -> bool {
        let bare = flag.strip_prefix("--no-").or(flag.strip_prefix("--"));
        let forms = [
            flag.to_string(),
            flag.replacen("--collector.", "--[no-]collector.", 1),
            flag.replacen("--no-collector.", "--[no-]collector.", 1),
            format!("--[no-]{}", bare.unwrap_or(flag)),
        ];
        forms.iter().any(|form| {
            help.match_indices(form.as_str()).any(|(at, _)| {
                let next = help[at + form.len()..].chars().next();
                let before = help[..at].chars().next_back();
                !matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                    && !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '-')
            })
        })
    }

    #[test]
    fn help_describes_every_accepted_flag() {
        let help = usage();
        let flags = accepted_flags();
        assert!(flags.len() > 40, "{flags:?}");
        for flag in &flags {
            assert!(
                mentions(&help, flag),
                "--help does not describe {flag}:\n{help}"
            );
            // And the parser really accepts it.
            let args: Vec<&str> = if takes_value(flag) {
                vec![flag, "1s"]
            } else {
                vec![flag]
            };
            assert!(parse(&args).is_ok(), "{flag}");
        }
        // Every --flag the help names is accepted (no stale help).
        for word in help.split(|c: char| c.is_whitespace() || c == '=' || c == ',') {
            let word = word.trim_end_matches(['.', ')', ':']);
            if let Some(rest) = word.strip_prefix("--[no-]") {
                assert!(flags.contains(&format!("--{rest}")), "{word}");
            } else if word.starts_with("--") && word.len() > 2 {
                assert!(flags.contains(&word.to_string()), "help names {word:?}");
            }
        }
    }

    #[test]
    fn help_shows_defaults_in_node_exporter_style() {
        let help = usage();
        for expected in [
            "usage: pimetrics [<flags>]",
            "  -h, --help                    Show this help and exit.",
            "      --web.listen-address=\":9243\"",
            "      --path.procfs=\"/proc\"     procfs mountpoint.",
            "      --collector.filesystem.mount-timeout=\"5s\"",
            "      --collector.textfile.directory=DIR",
            "Default: none.",
            "      --log.level=\"info\"",
            "      --push.mode=\"always\"",
            "      --collector.rpi.pmic-interval=\"30s\"",
            "      --[no-]collector.cpu      Enable the cpu collector (default: enabled).",
        ] {
            assert!(help.contains(expected), "{expected:?} not in:\n{help}");
        }
        // Every line of the flag list is a flag, or help text in the help column.
        for line in help.lines().skip_while(|l| *l != "Flags:").skip(1) {
            let help_line = line.starts_with(&" ".repeat(FLAG_COLUMN))
                && line.len() > FLAG_COLUMN
                && line.len() <= WIDTH;
            let flag_line = line.starts_with("  -h") || line.starts_with("      --");
            assert!(help_line || flag_line, "{line:?}");
        }
    }

    #[test]
    fn node_exporter_filter_flags() {
        let mut config = Config::default();
        parse(&[
            "--collector.netstat.fields=^Tcp_.*",
            "--collector.vmstat.fields=^pgfault$",
            "--collector.netclass.ignored-devices=^veth",
            "--collector.netclass.ignore-invalid-speed",
            "--collector.netdev.device-include=^eth0$",
            "--collector.diskstats.device-include=^mmcblk0$",
            "--collector.arp.device-exclude=^docker",
            "--collector.powersupply.ignored-supplies=^AC$",
        ])
        .unwrap()
        .apply(&mut config)
        .unwrap();
        assert_eq!(config.collector_settings.netstat.fields, "^Tcp_.*");
        assert_eq!(config.collector_settings.vmstat.fields, "^pgfault$");
        assert_eq!(config.collector_settings.netclass.ignored_devices, "^veth");
        assert!(config.collector_settings.netclass.ignore_invalid_speed);
        assert_eq!(config.collector_settings.netdev.device_include, "^eth0$");
        assert_eq!(
            config.collector_settings.diskstats.device_include,
            "^mmcblk0$"
        );
        assert!(config
            .collector_settings
            .diskstats
            .filter()
            .unwrap()
            .ignored("sda"));
        assert!(!config
            .collector_settings
            .diskstats
            .filter()
            .unwrap()
            .ignored("mmcblk0"));
        assert_eq!(config.collector_settings.arp.device_exclude, "^docker");
        assert_eq!(
            config.collector_settings.powersupplyclass.ignored_supplies,
            "^AC$"
        );
        parse(&["--no-collector.netclass.ignore-invalid-speed"])
            .unwrap()
            .apply(&mut config)
            .unwrap();
        assert!(!config.collector_settings.netclass.ignore_invalid_speed);
        for (flags, expected) in [
            (
                &[
                    "--collector.netdev.device-include=a",
                    "--collector.netdev.device-exclude=b",
                ][..],
                "mutually exclusive",
            ),
            (
                &[
                    "--collector.diskstats.device-include=a",
                    "--collector.diskstats.device-exclude=b",
                ],
                "mutually exclusive",
            ),
            (&["--collector.netstat.fields=("], "netstat.fields"),
            (&["--collector.vmstat.fields=("], "vmstat.fields"),
            (&["--collector.arp.device-include=("], "arp.device_include"),
        ] {
            let err = parse(flags)
                .unwrap()
                .apply(&mut Config::default())
                .unwrap_err();
            assert!(err.contains(expected), "{flags:?}: {err}");
        }
    }

    #[test]
    fn remote_write_flags() {
        let mut config = Config::default();
        parse(&[
            "--remote-write.url=http://prom:9090/api/v1/write",
            "--remote-write.interval=30s",
            "--remote-write.buffer-dir",
            "/var/lib/pimetrics/rw",
            "--remote-write.buffer-max-bytes=64MiB",
            "--remote-write.buffer-max-age=2h",
            "--remote-write.flush-interval=2m",
            "--remote-write.bearer-token-file=/etc/pimetrics/token",
            "--remote-write.ca-file=/etc/pimetrics/ca.pem",
        ])
        .unwrap()
        .apply(&mut config)
        .unwrap();
        let rw = &config.remote_write;
        assert_eq!(rw.url.as_deref(), Some("http://prom:9090/api/v1/write"));
        assert_eq!(rw.interval.0.as_secs(), 30);
        assert_eq!(rw.buffer_dir, Some(PathBuf::from("/var/lib/pimetrics/rw")));
        assert_eq!(rw.buffer_max_bytes, 64 << 20);
        assert_eq!(rw.buffer_max_age.0.as_secs(), 7200);
        assert_eq!(rw.flush_interval.0.as_secs(), 120);
        assert_eq!(
            rw.bearer_token_file,
            Some(PathBuf::from("/etc/pimetrics/token"))
        );
        assert_eq!(rw.ca_file, Some(PathBuf::from("/etc/pimetrics/ca.pem")));
        for (flag, expected) in [
            ("--remote-write.url=prom:9090", "remote_write.url"),
            ("--remote-write.interval=0s", "remote_write.interval"),
            ("--remote-write.buffer-max-bytes=lots", "invalid size"),
        ] {
            let err = parse(&["--remote-write.url=http://prom:9090/api/v1/write", flag])
                .unwrap()
                .apply(&mut Config::default())
                .unwrap_err();
            assert!(err.contains(expected), "{flag}: {err}");
        }
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--collector.warp"])
            .unwrap_err()
            .contains("unknown flag"));
        assert!(parse(&["--path.procfs"])
            .unwrap_err()
            .contains("needs a value"));
        let mut config = Config::default();
        let err = parse(&["--log.level=loud"])
            .unwrap()
            .apply(&mut config)
            .unwrap_err();
        assert!(err.contains("--log.level"), "{err}");
        let err = parse(&["--collector.diskstats.device-exclude=("])
            .unwrap()
            .apply(&mut config)
            .unwrap_err();
        assert!(err.contains("diskstats.device_exclude"), "{err}");
    }
}
