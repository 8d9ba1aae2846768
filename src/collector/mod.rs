//! Collectors, one per file, each behind the small `Collector` trait and listed once in the
//! `collectors!` table below with its name, whether it runs by default and, if it has
//! settings, the key of its config section and its settings type (node_exporter's layout: a
//! collector owns its settings and flags, `CollectorSettings`). The table declares the module,
//! its row in `COLLECTORS` and its field of `Settings`, through which the config routes the
//! section; a collector's `build` gets only its own settings.
//!
//! A collector is built once at start-up: it resolves its paths, registers its metric families
//! and decides whether it applies to this machine at all. A scrape then only reads and writes.

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use serde::de::{DeserializeOwned, MapAccess};
use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{Flag, FlagInfo};
use crate::roots::Roots;

pub(crate) mod device_filter;
mod named_families;
#[cfg(test)]
mod parser_mutations;

/// One source of metrics.
pub trait Collector: Send {
    /// Reads the current values and writes them to `out`. An error fails this collector's
    /// part of the scrape only (`node_scrape_collector_success` 0), never the scrape.
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError>;
}

/// What building a collector gives.
pub enum Setup {
    Ready(Box<dyn Collector>),
    /// The collector does not apply to this machine (no hwmon, no PSI...): said once, then
    /// the collector is dropped and costs nothing.
    Unavailable(String),
}

/// What a collector is built from: the roots to read below, and its own settings (`()` for a
/// collector without any).
pub struct Context<'a, S = ()> {
    pub roots: &'a Roots,
    pub settings: &'a S,
}

/// A collector's own settings: one section of the config file, named by the collector's row
/// in `COLLECTORS`. Every key is optional (serde `default`); `validate` checks what serde
/// cannot (regexes, bounds), with messages that start with the key's path
/// ("diskstats.device_exclude: ...").
pub trait CollectorSettings:
    Default + Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned + 'static
{
    /// The command-line flags that set these settings, in `--help` order.
    const FLAGS: &'static [Flag<Self>] = &[];

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

fn find_flag<S: CollectorSettings>(name: &str) -> Option<&'static Flag<S>> {
    S::FLAGS.iter().find(|flag| flag.name == name)
}

pub struct CollectorSpec {
    pub name: &'static str,
    pub enabled_by_default: bool,
    /// The key of its section in the config file, if it has settings.
    pub settings_key: Option<&'static str>,
    pub build: fn(&Context<Settings>, &mut Exposition) -> Setup,
}

/// Declares the collector table, the collector modules and `Settings` (every collector's
/// section) from one row per collector: `name: enabled by default [, key: SettingsType];`.
/// The module of a collector has the collector's name and a `build(&Context<S>, out)`.
macro_rules! collectors {
    ($($name:ident: $default:literal $(, $key:ident: $settings:ty)?;)*) => {
        $(pub mod $name;)*

        /// Every collector's own settings, by the key of its section in the config file.
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct Settings {
            $($(pub $key: $settings,)?)*
        }

        impl Settings {
            /// The section keys, in table order.
            pub const KEYS: &'static [&'static str] = &[$($(stringify!($key),)?)*];

            /// Reads the value of section `key` from `map`; false: no collector has that key.
            pub fn deserialize_section<'de, A: MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match key {
                    $($(stringify!($key) => self.$key = map.next_value()?,)?)*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// Writes every section into the config's struct.
            pub fn serialize_sections<S: SerializeStruct>(&self, out: &mut S) -> Result<(), S::Error> {
                $($(out.serialize_field(stringify!($key), &self.$key)?;)?)*
                Ok(())
            }

            /// Every collector's flags, in table order.
            pub fn flags() -> impl Iterator<Item = FlagInfo> {
                std::iter::empty()
                    $($(.chain(<$settings as CollectorSettings>::FLAGS.iter().map(Flag::info)))?)*
            }

            /// The value flag `name` shows as its default, if a collector has that flag.
            pub fn flag_default(&self, name: &str) -> Option<String> {
                $($(
                    if let Some(flag) = find_flag::<$settings>(name) {
                        return Some((flag.default)(&self.$key));
                    }
                )?)*
                None
            }

            /// Sets what flag `name` sets, if a collector has that flag.
            pub fn apply_flag(&mut self, name: &str, value: &str) -> Option<Result<(), String>> {
                $($(
                    if let Some(flag) = find_flag::<$settings>(name) {
                        return Some((flag.apply)(&mut self.$key, value));
                    }
                )?)*
                None
            }

            /// Each collector's settings check themselves, in table order.
            pub fn validate(&self) -> Result<(), String> {
                $($(CollectorSettings::validate(&self.$key)?;)?)*
                Ok(())
            }
        }

        /// The collector table, sorted by name.
        pub const COLLECTORS: &[CollectorSpec] = &[$(
            CollectorSpec {
                name: stringify!($name),
                enabled_by_default: $default,
                settings_key: collectors!(@key $($key)?),
                build: collectors!(@build $name $(, $key)?),
            },
        )*];
    };
    (@key) => { None };
    (@key $key:ident) => { Some(stringify!($key)) };
    (@build $name:ident) => {
        |ctx, out| $name::build(&Context { roots: ctx.roots, settings: &() }, out)
    };
    (@build $name:ident, $key:ident) => {
        |ctx, out| $name::build(&Context { roots: ctx.roots, settings: &ctx.settings.$key }, out)
    };
}

// The collector table, sorted by name: `name: enabled by default[, config section: its
// settings type];`. A new collector is its file and one row here.
collectors! {
    arp: true, arp: arp::ArpConfig;
    conntrack: true;
    cpu: true;
    cpufreq: true;
    diskstats: true, diskstats: diskstats::DiskstatsConfig;
    entropy: true;
    filefd: true;
    filesystem: true, filesystem: filesystem::FilesystemConfig;
    hwmon: true;
    kernel_hung: true;
    loadavg: true;
    meminfo: true;
    netclass: true, netclass: netclass::NetclassConfig;
    netdev: true, netdev: netdev::NetdevConfig;
    netstat: true, netstat: netstat::NetstatConfig;
    nfs: true;
    nvme: true;
    os: true;
    powersupplyclass: true, powersupplyclass: powersupplyclass::PowerSupplyConfig;
    pressure: true;
    rpi: true, pi: rpi::PiConfig;
    schedstat: true;
    selinux: true;
    sockstat: true;
    softnet: true;
    stat: true;
    textfile: true, textfile: textfile::TextfileConfig;
    thermal_zone: true;
    time: true;
    timex: true;
    udp_queues: true;
    uname: true;
    vmstat: true, vmstat: vmstat::VmstatConfig;
    watchdog: true;
}

pub fn spec(name: &str) -> Option<&'static CollectorSpec> {
    COLLECTORS.iter().find(|spec| spec.name == name)
}

/// Which collectors one scrape runs: node_exporter's `collect[]=NAME` (only these) or
/// `exclude[]=NAME` (all but these) URL parameters, checked against the collector table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CollectorSelection {
    #[default]
    All,
    Only(Vec<&'static str>),
    AllBut(Vec<&'static str>),
}

impl CollectorSelection {
    /// From the values of `collect[]` and `exclude[]`; node_exporter's rules: not both, and
    /// every name must be a known collector.
    pub fn from_params(collect: &[&str], exclude: &[&str]) -> Result<Self, String> {
        let names = |list: &[&str]| -> Result<Vec<&'static str>, String> {
            list.iter()
                .map(|name| {
                    spec(name)
                        .map(|spec| spec.name)
                        .ok_or_else(|| format!("unknown collector {name:?}"))
                })
                .collect()
        };
        match (collect.is_empty(), exclude.is_empty()) {
            (true, true) => Ok(CollectorSelection::All),
            (false, true) => Ok(CollectorSelection::Only(names(collect)?)),
            (true, false) => Ok(CollectorSelection::AllBut(names(exclude)?)),
            (false, false) => Err("collect[] and exclude[] cannot be used together".into()),
        }
    }

    pub fn includes(&self, name: &str) -> bool {
        match self {
            CollectorSelection::All => true,
            CollectorSelection::Only(names) => names.contains(&name),
            CollectorSelection::AllBut(names) => !names.contains(&name),
        }
    }

    /// The `only` argument of `Scraper::collect` for this selection, given the scraper's
    /// active collectors (`Scraper::active_names`).
    pub fn only<'a>(&self, active: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
        match self {
            CollectorSelection::All => None,
            _ => Some(
                active
                    .filter(|name| self.includes(name))
                    .map(str::to_string)
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectError(pub String);

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<io::Error> for CollectError {
    fn from(err: io::Error) -> Self {
        CollectError(err.to_string())
    }
}

impl From<String> for CollectError {
    fn from(msg: String) -> Self {
        CollectError(msg)
    }
}

/// Reads `path`, naming it in the error.
pub fn read_file(path: &std::path::Path, buf: &mut Vec<u8>) -> Result<(), CollectError> {
    crate::roots::read_into(path, buf)
        .map_err(|err| CollectError(format!("{}: {err}", path.display())))
}

/// Reads a kept-open file (see `KeptFile`), naming it in the error.
pub fn read_kept(file: &mut crate::roots::KeptFile, buf: &mut Vec<u8>) -> Result<(), CollectError> {
    file.read_into(buf)
        .map_err(|err| CollectError(format!("{}: {err}", file.path().display())))
}

struct Active {
    name: &'static str,
    collector: Box<dyn Collector>,
    /// The error last logged, so a collector that keeps failing logs once, not every scrape.
    last_error: Option<String>,
}

/// The enabled collectors and the scrape buffer they write into.
pub struct Scraper {
    active: Vec<Active>,
    exposition: Exposition,
    duration: FamilyId,
    success: FamilyId,
}

impl Scraper {
    /// Builds the collectors named in `enabled` (in table order).
    pub fn new(ctx: &Context<Settings>, node: &str, enabled: &[&'static str]) -> Scraper {
        let mut exposition = Exposition::new(node);
        let duration = exposition.family(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            Kind::Gauge,
            &["collector"],
        );
        let success = exposition.family(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            Kind::Gauge,
            &["collector"],
        );
        let mut active = Vec::new();
        for spec in COLLECTORS
            .iter()
            .filter(|spec| enabled.contains(&spec.name))
        {
            match (spec.build)(ctx, &mut exposition) {
                Setup::Ready(collector) => active.push(Active {
                    name: spec.name,
                    collector,
                    last_error: None,
                }),
                Setup::Unavailable(reason) => {
                    log::info!("collector {} disabled: {reason}", spec.name)
                }
            }
        }
        Scraper {
            active,
            exposition,
            duration,
            success,
        }
    }

    pub fn active_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.active.iter().map(|a| a.name)
    }

    /// Runs every collector (or those `only` names), timing each, into the scrape buffer,
    /// which it returns for the agent's own metrics and the outputs.
    pub fn collect(&mut self, only: Option<&[String]>) -> &mut Exposition {
        self.exposition.clear();
        for entry in &mut self.active {
            if let Some(only) = only {
                if !only.iter().any(|name| name == entry.name) {
                    continue;
                }
            }
            let started = Instant::now();
            let exposition = &mut self.exposition;
            let result = catch_unwind(AssertUnwindSafe(|| entry.collector.update(exposition)))
                .unwrap_or_else(|_| Err(CollectError("collector panicked".to_string())));
            let seconds = started.elapsed().as_secs_f64();
            let ok = match result {
                Ok(()) => {
                    if entry.last_error.take().is_some() {
                        log::info!("collector {} recovered", entry.name);
                    }
                    true
                }
                Err(err) => {
                    if entry.last_error.as_deref() != Some(err.0.as_str()) {
                        log::error!("collector {} failed: {err}", entry.name);
                        entry.last_error = Some(err.0);
                    }
                    false
                }
            };
            self.exposition
                .sample(self.duration, &[entry.name], seconds);
            self.exposition
                .sample(self.success, &[entry.name], if ok { 1.0 } else { 0.0 });
        }
        &mut self.exposition
    }

    /// Runs every collector and appends the exposition text to `out`.
    pub fn scrape(&mut self, out: &mut String) {
        self.collect(None).render(out);
    }

    /// The scrape buffer of the last scrape (for tests and family listings).
    pub fn exposition(&self) -> &Exposition {
        &self.exposition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(u32);
    impl Collector for Failing {
        fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
            self.0 += 1;
            let id = out.family("test_value", "A test value.", Kind::Gauge, &[]);
            out.sample(id, &[], 1.0);
            if self.0 == 2 {
                panic!("boom");
            }
            Err(CollectError("always".into()))
        }
    }

    #[test]
    fn a_failing_or_panicking_collector_is_reported_not_fatal() {
        let mut exposition = Exposition::new("n");
        let duration = exposition.family("d", "D.", Kind::Gauge, &["collector"]);
        let success = exposition.family("s", "S.", Kind::Gauge, &["collector"]);
        let mut scraper = Scraper {
            active: vec![Active {
                name: "bad",
                collector: Box::new(Failing(0)),
                last_error: None,
            }],
            exposition,
            duration,
            success,
        };
        for _ in 0..3 {
            let mut out = String::new();
            scraper.scrape(&mut out);
            assert!(out.contains("s{node=\"n\",collector=\"bad\"} 0\n"), "{out}");
            assert!(out.contains("d{node=\"n\",collector=\"bad\"} "), "{out}");
        }
    }

    struct Constant;
    impl Collector for Constant {
        fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
            let id = out.family("test_constant", "A constant.", Kind::Gauge, &[]);
            out.sample(id, &[], 7.0);
            Ok(())
        }
    }

    #[test]
    fn selected_collectors_only() {
        let mut exposition = Exposition::new("n");
        let duration = exposition.family("d", "D.", Kind::Gauge, &["collector"]);
        let success = exposition.family("s", "S.", Kind::Gauge, &["collector"]);
        let mut scraper = Scraper {
            active: vec![
                Active {
                    name: "loadavg",
                    collector: Box::new(Constant),
                    last_error: None,
                },
                Active {
                    name: "bad",
                    collector: Box::new(Failing(0)),
                    last_error: None,
                },
            ],
            exposition,
            duration,
            success,
        };
        let mut scrape = |selection: &CollectorSelection| {
            let only = selection.only(scraper.active_names());
            let mut out = String::new();
            scraper.collect(only.as_deref()).render(&mut out);
            out
        };
        let out = scrape(&CollectorSelection::from_params(&["loadavg"], &[]).unwrap());
        assert!(out.contains("test_constant{node=\"n\"} 7\n"), "{out}");
        assert!(
            out.contains("s{node=\"n\",collector=\"loadavg\"} 1\n"),
            "{out}"
        );
        assert!(!out.contains("\"bad\""), "{out}");
        let out = scrape(&CollectorSelection::from_params(&[], &["loadavg"]).unwrap());
        assert!(!out.contains("test_constant"), "{out}");
        assert!(out.contains("collector=\"bad\""), "{out}");
        let out = scrape(&CollectorSelection::All);
        assert!(
            out.contains("test_constant") && out.contains("collector=\"bad\""),
            "{out}"
        );
        assert!(CollectorSelection::from_params(&["warp"], &[]).is_err());
        assert!(CollectorSelection::from_params(&["cpu"], &["meminfo"]).is_err());
        assert!(CollectorSelection::All.includes("cpu"));
    }

    #[test]
    fn settings_sections_come_from_the_table() {
        let keys: Vec<_> = COLLECTORS.iter().filter_map(|s| s.settings_key).collect();
        assert_eq!(keys, Settings::KEYS);
        assert_eq!(spec("rpi").and_then(|s| s.settings_key), Some("pi"));
        assert_eq!(spec("cpu").and_then(|s| s.settings_key), None);
        let mut bad = Settings::default();
        bad.vmstat.fields = "(".into();
        assert!(bad.validate().unwrap_err().starts_with("vmstat.fields: "));
    }

    #[test]
    fn collector_flags_round_trip_their_defaults() {
        let mut settings = Settings::default();
        let names: Vec<_> = Settings::flags().map(|flag| flag.name).collect();
        assert!(
            names.contains(&"--collector.rpi.pmic-interval"),
            "{names:?}"
        );
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in &names {
            assert!(name.starts_with("--collector."), "{name}");
            let default = settings.flag_default(name).unwrap();
            settings.apply_flag(name, &default).unwrap().unwrap();
        }
        assert_eq!(settings, Settings::default());
        assert!(settings.apply_flag("--web.listen-address", ":1").is_none());
        let err = settings.apply_flag("--collector.rpi.enabled", "maybe");
        assert!(err.unwrap().is_err());
    }

    #[test]
    fn table_is_sorted_and_unique() {
        let names: Vec<_> = COLLECTORS.iter().map(|s| s.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
