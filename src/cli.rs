//! Command line. Where node_exporter has a flag for the same thing the name is the same, so the
//! binary can be swapped under an existing unit file. Flags override the config file.

use std::path::PathBuf;

use crate::collector::COLLECTORS;
use crate::config::{Config, LogLevel, PiEnabled, Seconds};

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

type Apply = fn(&mut Config, &str) -> Result<(), String>;

/// Flags that take a value and set a config key.
const VALUE_FLAGS: &[(&str, Apply)] = &[
    ("--web.listen-address", |c, v| {
        c.listen_address = v.to_string();
        Ok(())
    }),
    ("--path.procfs", |c, v| {
        c.paths.procfs = v.into();
        Ok(())
    }),
    ("--path.sysfs", |c, v| {
        c.paths.sysfs = v.into();
        Ok(())
    }),
    ("--path.rootfs", |c, v| {
        c.paths.rootfs = v.into();
        Ok(())
    }),
    ("--path.devfs", |c, v| {
        c.paths.devfs = v.into();
        Ok(())
    }),
    ("--collector.rpi.enabled", |c, v| {
        c.pi.enabled =
            PiEnabled::parse(v).ok_or_else(|| format!("invalid value {v:?} (auto, on, off)"))?;
        Ok(())
    }),
    ("--collector.rpi.pmic-interval", |c, v| {
        c.pi.pmic_interval = Seconds::parse(v)?;
        Ok(())
    }),
    ("--collector.rpi.mailbox-replay", |c, v| {
        c.pi.mailbox_replay = if v.is_empty() { None } else { Some(v.into()) };
        Ok(())
    }),
    ("--collector.rpi.gencmd-replay", |c, v| {
        c.pi.gencmd_replay = if v.is_empty() { None } else { Some(v.into()) };
        Ok(())
    }),
    ("--collector.rpi.state-file", |c, v| {
        c.pi.state_file = if v.is_empty() { None } else { Some(v.into()) };
        Ok(())
    }),
    ("--collector.textfile.directory", |c, v| {
        c.textfile.directory = if v.is_empty() { None } else { Some(v.into()) };
        Ok(())
    }),
    ("--collector.filesystem.mount-points-exclude", |c, v| {
        c.filesystem.mount_points_exclude = v.to_string();
        Ok(())
    }),
    ("--collector.filesystem.fs-types-exclude", |c, v| {
        c.filesystem.fs_types_exclude = v.to_string();
        Ok(())
    }),
    ("--collector.filesystem.mount-timeout", |c, v| {
        c.filesystem.mount_timeout = Seconds::parse(v)?;
        Ok(())
    }),
    ("--collector.diskstats.device-exclude", |c, v| {
        c.diskstats.device_exclude = v.to_string();
        Ok(())
    }),
    ("--collector.netdev.device-exclude", |c, v| {
        c.netdev.device_exclude = v.to_string();
        Ok(())
    }),
    ("--log.level", |c, v| {
        c.log_level = LogLevel::parse(v)
            .ok_or_else(|| format!("invalid level {v:?} (error, warn, info, debug)"))?;
        Ok(())
    }),
    ("--web.config.file", |c, v| {
        c.web.config_file = (!v.is_empty()).then(|| v.into());
        Ok(())
    }),
    ("--web.max-requests", |c, v| {
        c.web.max_requests = v.parse().map_err(|_| format!("not a number: {v:?}"))?;
        Ok(())
    }),
    ("--web.systemd-socket", |c, v| {
        c.web.systemd_socket = match v {
            "true" => true,
            "false" => false,
            _ => return Err(format!("want true or false, got {v:?}")),
        };
        Ok(())
    }),
    ("--node", |c, v| {
        c.node = Some(v.to_string());
        Ok(())
    }),
    ("--push.url", |c, v| {
        c.push.url = if v.is_empty() {
            None
        } else {
            Some(v.to_string())
        };
        Ok(())
    }),
    ("--push.job", |c, v| {
        c.push.job = v.to_string();
        Ok(())
    }),
    ("--push.interval", |c, v| {
        c.push.interval = Seconds::parse(v)?;
        Ok(())
    }),
    ("--push.mode", |c, v| {
        c.push.mode = crate::push::PushMode::parse(v)
            .ok_or_else(|| format!("invalid mode {v:?} (always, fallback)"))?;
        Ok(())
    }),
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
            match name.as_str() {
                "-h" | "--help" => cli.action = Action::Help,
                "--version" => cli.action = Action::Version,
                "--once" => cli.action = Action::Once,
                "--print-config" => cli.action = Action::PrintConfig,
                "--check-config" => cli.action = Action::CheckConfig(value(&mut args)?.into()),
                "--config" | "--config.file" => cli.config_file = Some(value(&mut args)?.into()),
                "--collector.disable-defaults" => cli.disable_defaults = true,
                // A switch (as node_exporter's), also taking =true / =false.
                "--web.systemd-socket" => cli.settings.push((
                    "--web.systemd-socket",
                    inline_value.clone().unwrap_or_else(|| "true".into()),
                )),
                _ => {
                    if let Some((flag, _)) = VALUE_FLAGS.iter().find(|(flag, _)| *flag == name) {
                        cli.settings.push((flag, value(&mut args)?));
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
            if let Some((_, apply)) = VALUE_FLAGS.iter().find(|(name, _)| name == flag) {
                apply(config, value).map_err(|err| format!("{flag}: {err}"))?;
            }
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

fn collector_switch(flag: &str, prefix: &str) -> Option<String> {
    let name = flag.strip_prefix(prefix)?;
    COLLECTORS
        .iter()
        .any(|spec| spec.name == name)
        .then(|| name.to_string())
}

pub fn usage() -> String {
    let mut text = String::from(
        "pimetrics: Raspberry Pi and system metrics for Prometheus\n\n\
         Usage: pimetrics [--config FILE] [flags]\n\n\
         Actions:\n\
         \x20 --once                      collect once, print the exposition to stdout, exit\n\
         \x20 --check-config FILE         validate a config file; non-zero exit on error\n\
         \x20 --print-config              print the effective config (file + flags) as RON\n\
         \x20 --version, --help\n\n\
         Settings (override the config file):\n\
         \x20 --config FILE               RON config file (every key optional)\n",
    );
    for (flag, _) in VALUE_FLAGS {
        text.push_str(&format!("  {flag}=VALUE\n"));
    }
    text.push_str("  --collector.NAME / --no-collector.NAME   turn a collector on / off\n");
    text.push_str("  --collector.disable-defaults             start with every collector off\n\nCollectors:\n");
    for spec in COLLECTORS {
        let default = if spec.enabled_by_default { "on" } else { "off" };
        text.push_str(&format!("  {:<16} default {default}\n", spec.name));
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
            config.pi.gencmd_replay,
            Some(PathBuf::from("/tmp/gencmd.replay"))
        );
        assert_eq!(config.pi.state_file, None);
        assert_eq!(
            Config::default().pi.state_file,
            Some(PathBuf::from("/run/pimetrics/rpi-since-boot"))
        );
        assert_eq!(config.roots().dev("vcio"), PathBuf::from("/host/dev/vcio"));
        assert_eq!(config.pi.enabled, PiEnabled::On);
        assert_eq!(config.pi.pmic_interval.0.as_secs(), 60);
        assert_eq!(
            config.pi.mailbox_replay,
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
