//! Raspberry Pi health: board identity, and from the VideoCore firmware the SoC temperature,
//! the throttled flags, clock rates, voltages and, on a Pi 5, the PMIC rails. The firmware is
//! reached by property tags through /dev/vcio where it opens, else by gencmd text commands
//! through /dev/vcio_gencmd (current Raspberry Pi OS grants only that one to `video`); the
//! values Linux also shows come from sysfs when neither answers. The fan always comes from
//! its hwmon. "Since boot" throttling is kept by the agent (`pi::since_boot`).
//!
//! `pi::firmware` gives typed readings, `sysfs` finds the files; this module chooses a source
//! per value, maps readings to families and says which source in `rpi_metric_source_info`.

mod sysfs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{read_file, CollectError, Collector, Context, Setup};
use crate::duration::{at_most, Seconds, MAX_INTERVAL};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{lower_debug, optional_path, path_or_none, Flag};
use crate::pi::board::Board;
use crate::pi::firmware::{Firmware, Quantity, Reading, Via};
use crate::pi::mailbox::Client;
use crate::pi::since_boot::SinceBoot;
use crate::pi::throttled;
use sysfs::{SysfsFile, SysfsFiles};


/// The Raspberry Pi collector (`rpi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiConfig {
    /// auto: only on a board recognised as a Raspberry Pi; on: also when not recognised; off.
    pub enabled: PiEnabled,
    /// Least time between two reads of the Pi 5 PMIC (`pmic_read_adc` costs the firmware
    /// about 23 ms); scrapes in between export the last reading. "0s": every scrape.
    pub pmic_interval: Seconds,
    /// Replays mailbox answers recorded in this file instead of calling /dev/vcio (to check
    /// what pimetrics makes of a Pi's answers; see docs/pi.md). Default: none.
    pub mailbox_replay: Option<PathBuf>,
    /// Replays gencmd answers recorded in this file instead of calling /dev/vcio_gencmd.
    /// Default: none.
    pub gencmd_replay: Option<PathBuf>,
    /// Where the throttling conditions seen since boot are kept across agent restarts (under
    /// /run, which a reboot empties). None: in memory only.
    pub state_file: Option<PathBuf>,
}

/// The default `pi.state_file` (systemd's `RuntimeDirectory=pimetrics` makes the directory).
pub const DEFAULT_PI_STATE_FILE: &str = "/run/pimetrics/rpi-since-boot";

impl Default for PiConfig {
    fn default() -> Self {
        PiConfig {
            enabled: PiEnabled::Auto,
            pmic_interval: Seconds(Duration::from_secs(30)),
            mailbox_replay: None,
            gencmd_replay: None,
            state_file: Some(PathBuf::from(DEFAULT_PI_STATE_FILE)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiEnabled {
    Auto,
    On,
    Off,
}

impl PiEnabled {
    pub fn parse(text: &str) -> Option<PiEnabled> {
        match text {
            "auto" => Some(PiEnabled::Auto),
            "on" => Some(PiEnabled::On),
            "off" => Some(PiEnabled::Off),
            _ => None,
        }
    }
}

impl super::CollectorSettings for PiConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        Flag {
            name: "--collector.rpi.enabled",
            placeholder: "MODE",
            help: "Pi collector: auto (only on a Raspberry Pi), on, off. Config: pi.enabled.",
            default: |s| lower_debug(s.enabled),
            switch: false,
            apply: |s, v| {
                s.enabled = PiEnabled::parse(v)
                    .ok_or_else(|| format!("invalid value {v:?} (auto, on, off)"))?;
                Ok(())
            },
        },
        Flag {
            name: "--collector.rpi.pmic-interval",
            placeholder: "DURATION",
            help: "How often the Pi 5 PMIC rails are read (slow firmware call). Config: pi.pmic_interval.",
            default: |s| s.pmic_interval.to_string(),
            switch: false,
            apply: |s, v| {
                s.pmic_interval = Seconds::parse(v)?;
                Ok(())
            },
        },
        Flag {
            name: "--collector.rpi.mailbox-replay",
            placeholder: "FILE",
            help: "Answer firmware requests from this recording instead of /dev/vcio (tests, --once on copied files). Config: pi.mailbox_replay.",
            default: |s| optional_path(&s.mailbox_replay),
            switch: false,
            apply: |s, v| {
                s.mailbox_replay = path_or_none(v);
                Ok(())
            },
        },
        Flag {
            name: "--collector.rpi.gencmd-replay",
            placeholder: "FILE",
            help: "Answer gencmd requests from this recording instead of /dev/vcio_gencmd. Config: pi.gencmd_replay.",
            default: |s| optional_path(&s.gencmd_replay),
            switch: false,
            apply: |s, v| {
                s.gencmd_replay = path_or_none(v);
                Ok(())
            },
        },
        Flag {
            name: "--collector.rpi.state-file",
            placeholder: "FILE",
            help: "Where the throttling conditions seen since boot are kept across restarts (under /run); empty: memory only. Config: pi.state_file.",
            default: |s| optional_path(&s.state_file),
            switch: false,
            apply: |s, v| {
                s.state_file = path_or_none(v);
                Ok(())
            },
        },
    ];

    fn validate(&self) -> Result<(), String> {
        at_most("pi.pmic_interval", self.pmic_interval, MAX_INTERVAL)
    }
}

pub fn build(ctx: &Context<PiConfig>, out: &mut Exposition) -> Setup {
    let settings = ctx.settings;
    if settings.enabled == PiEnabled::Off {
        return Setup::Unavailable("pi.enabled is off".into());
    }
    let board = crate::pi::read_board(ctx.roots);
    if !board.is_pi() && settings.enabled == PiEnabled::Auto {
        return Setup::Unavailable(
            "not a Raspberry Pi (no Raspberry Pi model in device-tree/model, compatible or \
             /proc/cpuinfo); set pi.enabled: on to force"
                .into(),
        );
    }
    let property = open_property(ctx);
    let text = open_text(ctx);
    let boot_id = crate::pi::read_boot_id(ctx.roots);
    let (since_boot, problem) = SinceBoot::open(settings.state_file.as_deref(), boot_id.as_deref());
    // One warning about the state file at most: here, or at the first write that fails.
    let state_warned = problem.is_some();
    if let Some(problem) = problem {
        log::warn!("rpi: since-boot state: {problem}; kept in memory if it cannot be written");
    }
    Setup::Ready(Box::new(RpiCollector::assemble(
        out,
        board,
        property,
        text,
        SysfsFiles::find(ctx.roots),
        (since_boot, state_warned),
        settings.pmic_interval.0,
    )))
}

/// /dev/vcio, or its replay: property tags (and gencmd).
fn open_property(ctx: &Context<PiConfig>) -> Result<Client, String> {
    let replay = ctx.settings.mailbox_replay.as_deref();
    match crate::pi::open_mailbox(&ctx.roots.dev("vcio"), replay) {
        Ok(mailbox) => Ok(Client::new(mailbox)),
        Err(err) => Err(err.advice()),
    }
}

/// /dev/vcio_gencmd, or its replay: gencmd text commands only. With a mailbox replay and no
/// gencmd replay, the device is not used (tests and checks see only the recorded answers).
fn open_text(ctx: &Context<PiConfig>) -> Option<Client> {
    let pi = ctx.settings;
    if let Some(replay) = pi.gencmd_replay.as_deref() {
        return match crate::pi::replay::Replay::load(replay) {
            Ok(replay) => Some(Client::new(Box::new(replay))),
            Err(err) => {
                log::warn!("rpi: cannot load the gencmd replay: {err}");
                None
            }
        };
    }
    if pi.mailbox_replay.is_some() {
        return None;
    }
    let path = ctx.roots.dev("vcio_gencmd");
    if !path.exists() {
        return None;
    }
    match crate::pi::vcio::Vcio::open(&path) {
        Ok(device) => Some(Client::new(Box::new(device))),
        Err(err) => {
            log::info!(
                "rpi: cannot open {}: {err}; add the agent's user to the `video` group",
                path.display()
            );
            None
        }
    }
}

fn fill_revision(board: &mut Board, code: u32) {
    board.revision_code = Some(code);
    if let Some(rev) = crate::pi::revision::decode(code) {
        if board.soc.is_empty() {
            board.soc = rev.soc.clone();
        }
        board.memory = rev.memory.clone();
        board.manufacturer = rev.manufacturer.clone();
        if board.model.is_empty() {
            board.model = format!("{} Rev {}", rev.model, rev.board_revision);
        }
        board.revision = Some(rev);
    }
}

/// Where the values of one metric come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Firmware(Via),
    Sysfs(SysfsFile),
}

impl Source {
    /// (`source`, `interface`) labels of `rpi_metric_source_info`.
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Source::Firmware(Via::Tag(tag)) => ("mailbox", tag.name()),
            Source::Firmware(Via::Gencmd(command)) => ("gencmd", command),
            Source::Sysfs(file) => ("sysfs", file.interface()),
        }
    }
}

struct Families {
    board_info: FamilyId,
    temperature: FamilyId,
    temperature_max: FamilyId,
    throttled_flags: FamilyId,
    throttled_condition: FamilyId,
    clock_set: FamilyId,
    clock_measured: FamilyId,
    voltage: FamilyId,
    voltage_min: FamilyId,
    voltage_max: FamilyId,
    pmic_volts: FamilyId,
    pmic_amperes: FamilyId,
    fan_rpm: FamilyId,
    fan_pwm: FamilyId,
    mailbox_available: FamilyId,
    mailbox_errors: FamilyId,
    source_info: FamilyId,
}

impl Families {
    fn register(out: &mut Exposition) -> Families {
        let gauge = Kind::Gauge;
        Families {
            board_info: out.family(
                "rpi_board_info",
                "Raspberry Pi board: model, revision code, SoC, memory size and manufacturer.",
                gauge,
                &["model", "revision", "soc", "memory", "manufacturer"],
            ),
            temperature: out.family(
                "rpi_soc_temperature_celsius",
                "SoC temperature in degrees Celsius.",
                gauge,
                &[],
            ),
            temperature_max: out.family(
                "rpi_soc_temperature_max_celsius",
                "Temperature at which the firmware throttles the SoC, in degrees Celsius.",
                gauge,
                &[],
            ),
            throttled_flags: out.family(
                "rpi_throttled_flags",
                "The firmware's raw throttled bitmask (vcgencmd get_throttled).",
                gauge,
                &[],
            ),
            throttled_condition: out.family(
                "rpi_throttled_condition",
                "1 when a throttling condition is active now, or has occurred since boot (as seen by the agent).",
                gauge,
                &["condition", "when"],
            ),
            clock_set: out.family(
                "rpi_clock_set_hertz",
                "Clock rate the firmware set, in hertz.",
                gauge,
                &["clock"],
            ),
            clock_measured: out.family(
                "rpi_clock_measured_hertz",
                "Clock rate the firmware measured, in hertz (shows throttling).",
                gauge,
                &["clock"],
            ),
            voltage: out.family(
                "rpi_voltage_volts",
                "Firmware-controlled voltage, in volts.",
                gauge,
                &["rail"],
            ),
            voltage_min: out.family(
                "rpi_voltage_min_volts",
                "Lowest voltage the firmware may set, in volts.",
                gauge,
                &["rail"],
            ),
            voltage_max: out.family(
                "rpi_voltage_max_volts",
                "Highest voltage the firmware may set, in volts.",
                gauge,
                &["rail"],
            ),
            pmic_volts: out.family(
                "rpi_pmic_volts",
                "Voltage of a PMIC rail (Pi 5 pmic_read_adc), in volts.",
                gauge,
                &["rail"],
            ),
            pmic_amperes: out.family(
                "rpi_pmic_amperes",
                "Current of a PMIC rail (Pi 5 pmic_read_adc), in amperes.",
                gauge,
                &["rail"],
            ),
            fan_rpm: out.family(
                "rpi_fan_rpm",
                "Fan speed in revolutions per minute.",
                gauge,
                &[],
            ),
            fan_pwm: out.family(
                "rpi_fan_pwm_ratio",
                "Fan PWM duty cycle, 0 to 1 (pwm1 / 255).",
                gauge,
                &[],
            ),
            mailbox_available: out.family(
                "rpi_mailbox_available",
                "1 when the firmware answers (/dev/vcio or /dev/vcio_gencmd), 0 when values come from sysfs.",
                gauge,
                &[],
            ),
            mailbox_errors: out.family(
                "rpi_mailbox_errors_total",
                "Mailbox calls that failed, by property tag.",
                Kind::Counter,
                &["tag"],
            ),
            source_info: out.family(
                "rpi_metric_source_info",
                "Where the values of each rpi_ metric come from.",
                gauge,
                &["metric", "source", "interface"],
            ),
        }
    }
}

impl RpiCollector {
    /// Asks the firmware what it answers, chooses a source per value, logs the outcome.
    fn assemble(
        out: &mut Exposition,
        mut board: Board,
        property: Result<Client, String>,
        text: Option<Client>,
        sysfs: SysfsFiles,
        (since_boot, state_warned): (SinceBoot, bool),
        pmic_interval: Duration,
    ) -> RpiCollector {
        let families = Families::register(out);
        let (mut property, open_problem) = match property {
            Ok(client) => (Some(client), None),
            Err(problem) => (None, Some(problem)),
        };
        if board.revision_code.is_none() {
            if let Some(code) = property.as_mut().and_then(|c| c.board_revision().ok()) {
                fill_revision(&mut board, code);
            }
        }
        let text_opened = text.is_some();
        let firmware = Firmware::start(property, text, pmic_interval, Instant::now());
        let mut collector = RpiCollector {
            families,
            info: [
                board.model.clone(),
                board.revision_label(),
                board.soc.clone(),
                board.memory.clone(),
                board.manufacturer.clone(),
            ],
            firmware,
            sysfs,
            since_boot,
            sources: Vec::new(),
            answered: 0,
            state_warned,
            buf: Vec::with_capacity(64),
        };
        collector.choose_sources();
        collector.log_summary(&board, open_problem.as_deref(), text_opened);
        collector
    }

    /// The source of each metric family that has one: the firmware where it answers, else
    /// sysfs. Decided at start and again when a retried value first answers.
    fn choose_sources(&mut self) {
        let f = &self.families;
        let firmware = |q: Quantity| self.firmware.source_of(q).map(Source::Firmware);
        let sysfs = &self.sysfs;
        let temperature = firmware(Quantity::Temperature).or_else(|| {
            sysfs
                .temperature
                .as_ref()
                .map(|(_, file)| Source::Sysfs(*file))
        });
        let throttled = firmware(Quantity::Throttled).or_else(|| {
            if sysfs.get_throttled.is_some() {
                Some(Source::Sysfs(SysfsFile::GetThrottled))
            } else {
                sysfs
                    .undervoltage_alarm
                    .as_ref()
                    .map(|_| Source::Sysfs(SysfsFile::RpiVolt))
            }
        });
        let voltage = firmware(Quantity::Voltage("core")).or_else(|| {
            (!sysfs.rail_inputs.is_empty()).then_some(Source::Sysfs(SysfsFile::RpiVolt))
        });
        let pmic = self
            .firmware
            .has_pmic()
            .then_some(Source::Firmware(Via::Gencmd("pmic_read_adc")));
        let fan = |file: &Option<_>| file.as_ref().map(|_| Source::Sysfs(SysfsFile::FanHwmon));
        let sources = [
            (f.temperature, "rpi_soc_temperature_celsius", temperature),
            (
                f.temperature_max,
                "rpi_soc_temperature_max_celsius",
                firmware(Quantity::TemperatureMax),
            ),
            (
                f.throttled_flags,
                "rpi_throttled_flags",
                throttled.filter(|s| *s != Source::Sysfs(SysfsFile::RpiVolt)),
            ),
            (f.throttled_condition, "rpi_throttled_condition", throttled),
            (
                f.clock_set,
                "rpi_clock_set_hertz",
                firmware(Quantity::ClockSet("arm")),
            ),
            (
                f.clock_measured,
                "rpi_clock_measured_hertz",
                firmware(Quantity::ClockMeasured("arm")),
            ),
            (f.voltage, "rpi_voltage_volts", voltage),
            (
                f.voltage_min,
                "rpi_voltage_min_volts",
                firmware(Quantity::VoltageMin("core")),
            ),
            (
                f.voltage_max,
                "rpi_voltage_max_volts",
                firmware(Quantity::VoltageMax("core")),
            ),
            (f.pmic_volts, "rpi_pmic_volts", pmic),
            (f.pmic_amperes, "rpi_pmic_amperes", pmic),
            (f.fan_rpm, "rpi_fan_rpm", fan(&sysfs.fan_rpm)),
            (f.fan_pwm, "rpi_fan_pwm_ratio", fan(&sysfs.fan_pwm)),
        ];
        self.sources = sources
            .into_iter()
            .filter_map(|(family, name, source)| Some((family, name, source?)))
            .collect();
        self.answered = self.firmware.answered();
    }

    fn source(&self, family: FamilyId) -> Option<Source> {
        source_of(&self.sources, family)
    }

    fn log_summary(&self, board: &Board, open_problem: Option<&str>, text_opened: bool) {
        log::info!(
            "rpi: {} (revision {}, {}, {}); {}",
            if board.model.is_empty() {
                "unnamed board"
            } else {
                &board.model
            },
            if board.revision_code.is_some() {
                board.revision_label()
            } else {
                "unknown".into()
            },
            if board.soc.is_empty() {
                "SoC unknown"
            } else {
                &board.soc
            },
            if board.memory.is_empty() {
                "memory unknown"
            } else {
                &board.memory
            },
            board
                .evidence
                .as_deref()
                .map(|e| format!("recognised by {e}"))
                .unwrap_or_else(|| "not recognised as a Pi, forced on by pi.enabled".into()),
        );
        let used: Vec<String> = self
            .sources
            .iter()
            .map(|(_, name, source)| {
                let (kind, interface) = source.labels();
                let note = match source {
                    Source::Sysfs(SysfsFile::GetThrottled) => {
                        " (deprecated; \"since boot\" kept by the agent)"
                    }
                    _ => "",
                };
                format!("{name} from {kind} {interface}{note}")
            })
            .collect();
        let throttled_missing = !matches!(
            self.source(self.families.throttled_flags),
            Some(Source::Firmware(_)) | Some(Source::Sysfs(SysfsFile::GetThrottled))
        );
        if self.firmware.uses_property_tags() {
            if !self.firmware.rejected.is_empty() {
                log::info!(
                    "rpi: the firmware rejects {}: asked again with backoff, hourly after {} failures",
                    self.firmware.rejected.join(", "),
                    crate::pi::firmware::UNSUPPORTED_AFTER
                );
            }
            return;
        }
        let problem = open_problem.unwrap_or("the mailbox answered no request");
        if self.firmware.available() {
            log::warn!(
                "rpi: /dev/vcio unavailable ({problem}); reading the firmware through \
                 /dev/vcio_gencmd instead. Missing: set clock rates, maximum temperature, \
                 voltage limits. Sources: {}",
                used.join(", ")
            );
        } else {
            log::warn!(
                "rpi: firmware unavailable: {problem}{}. Missing: measured and set clock rates, \
                 maximum temperature, voltage limits, PMIC rails{}. Using sysfs: {}",
                if text_opened {
                    "; /dev/vcio_gencmd answered nothing"
                } else {
                    ""
                },
                if throttled_missing {
                    ", throttled flags"
                } else {
                    ""
                },
                if used.is_empty() {
                    "nothing found".to_string()
                } else {
                    used.join(", ")
                },
            );
        }
    }
}

struct RpiCollector {
    families: Families,
    /// model, revision, soc, memory, manufacturer
    info: [String; 5],
    firmware: Firmware,
    sysfs: SysfsFiles,
    since_boot: SinceBoot,
    /// (family, metric name, source) of each family that has values.
    sources: Vec<(FamilyId, &'static str, Source)>,
    /// Firmware values answered when the sources were chosen.
    answered: usize,
    /// The state file could not be written and that was logged.
    state_warned: bool,
    buf: Vec<u8>,
}

fn read_number(path: &Path, buf: &mut Vec<u8>) -> Result<f64, CollectError> {
    read_file(path, buf)?;
    crate::roots::parse_i64(buf)
        .map(|v| v as f64)
        .map_err(|err| CollectError(format!("{}: {err}", path.display())))
}

impl Collector for RpiCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let [model, revision, soc, memory, manufacturer] = &self.info;
        out.sample(
            self.families.board_info,
            &[model, revision, soc, memory, manufacturer],
            1.0,
        );
        let mut problems: Vec<String> = Vec::new();
        let firmware_mask = self.write_firmware(out);
        let (sysfs_mask, alarm) = self.write_sysfs(out, &mut problems);
        // A mask from get_throttled is read only when it is the chosen source.
        self.write_throttling(out, sysfs_mask.or(firmware_mask), alarm);
        self.write_fan(out, &mut problems);
        self.write_status(out);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CollectError(problems.join("; ")))
        }
    }
}

impl RpiCollector {
    /// The firmware's readings and the PMIC rails; gives the throttled mask if it answered.
    fn write_firmware(&mut self, out: &mut Exposition) -> Option<u32> {
        let f = &self.families;
        let mut throttled_mask = None;
        for &Reading { quantity, value } in self.firmware.read(Instant::now()) {
            let (family, label) = match quantity {
                Quantity::Temperature => (f.temperature, None),
                Quantity::TemperatureMax => (f.temperature_max, None),
                Quantity::Throttled => {
                    throttled_mask = Some(value as u32);
                    continue;
                }
                Quantity::ClockSet(name) => (f.clock_set, Some(name)),
                Quantity::ClockMeasured(name) => (f.clock_measured, Some(name)),
                Quantity::Voltage(rail) => (f.voltage, Some(rail)),
                Quantity::VoltageMin(rail) => (f.voltage_min, Some(rail)),
                Quantity::VoltageMax(rail) => (f.voltage_max, Some(rail)),
            };
            match label {
                Some(label) => out.sample(family, &[label], value),
                None => out.sample(family, &[], value),
            }
        }
        for rail in self.firmware.pmic_rails() {
            if let Some(volts) = rail.volts {
                out.sample(f.pmic_volts, &[&rail.name], volts);
            }
            if let Some(amperes) = rail.amperes {
                out.sample(f.pmic_amperes, &[&rail.name], amperes);
            }
        }
        throttled_mask
    }

    /// The values whose chosen source is sysfs (where the firmware gives nothing): the
    /// temperature and rail voltages; gives the `get_throttled` mask or the `rpi_volt`
    /// under-voltage alarm when one of them is the throttling source.
    fn write_sysfs(
        &mut self,
        out: &mut Exposition,
        problems: &mut Vec<String>,
    ) -> (Option<u32>, Option<bool>) {
        let f = &self.families;
        let buf = &mut self.buf;
        let source = |family| source_of(&self.sources, family);
        if let (Some(Source::Sysfs(_)), Some((path, _))) =
            (source(f.temperature), &self.sysfs.temperature)
        {
            match read_number(path, buf) {
                Ok(milli) => out.sample(f.temperature, &[], milli / 1000.0),
                Err(err) => problems.push(err.0),
            }
        }
        let (mut mask, mut alarm) = (None, None);
        match source(f.throttled_condition) {
            Some(Source::Sysfs(SysfsFile::GetThrottled)) => {
                if let Some(path) = &self.sysfs.get_throttled {
                    match read_file(path, buf) {
                        Ok(()) => {
                            let text = String::from_utf8_lossy(buf);
                            match throttled::parse_sysfs(&text) {
                                Some(value) => mask = Some(value),
                                None => {
                                    problems.push(format!("{}: invalid {text:?}", path.display()))
                                }
                            }
                        }
                        Err(err) => problems.push(err.0),
                    }
                }
            }
            Some(Source::Sysfs(SysfsFile::RpiVolt)) => {
                if let Some(path) = &self.sysfs.undervoltage_alarm {
                    match read_number(path, buf) {
                        Ok(value) => alarm = Some(value != 0.0),
                        Err(err) => problems.push(err.0),
                    }
                }
            }
            _ => {}
        }
        if source(f.voltage) == Some(Source::Sysfs(SysfsFile::RpiVolt)) {
            for (label, path) in &self.sysfs.rail_inputs {
                match read_number(path, buf) {
                    Ok(millivolts) => out.sample(f.voltage, &[label], millivolts / 1000.0),
                    Err(err) => problems.push(err.0),
                }
            }
        }
        (mask, alarm)
    }

    /// Throttling: the raw mask as read, "now" from it, "since boot" from everything the agent
    /// has seen this boot; without a mask, the under-voltage alarm's since-boot state.
    fn write_throttling(&mut self, out: &mut Exposition, mask: Option<u32>, alarm: Option<bool>) {
        let f = &self.families;
        if let Some(mask) = mask {
            if let Err(err) = self.since_boot.record_mask(mask) {
                warn_state_once(&mut self.state_warned, &err);
            }
            out.sample(f.throttled_flags, &[], mask as f64);
            let seen = self.since_boot.seen();
            for (bit, (condition, now, _)) in throttled::decode(mask).into_iter().enumerate() {
                out.sample(f.throttled_condition, &[condition, "now"], flag(now));
                out.sample(
                    f.throttled_condition,
                    &[condition, "since_boot"],
                    flag(seen & (1 << bit) != 0),
                );
            }
        } else if let Some(alarm) = alarm {
            // in0_lcrit_alarm: under-voltage in the kernel's last 2 s poll.
            if let Err(err) = self.since_boot.record_bits(u32::from(alarm)) {
                warn_state_once(&mut self.state_warned, &err);
            }
            out.sample(
                f.throttled_condition,
                &["under_voltage", "since_boot"],
                flag(self.since_boot.seen() & 1 != 0),
            );
        }
    }

    /// The fan's speed and PWM duty from its hwmon.
    fn write_fan(&mut self, out: &mut Exposition, problems: &mut Vec<String>) {
        let (f, buf) = (&self.families, &mut self.buf);
        if let Some(path) = &self.sysfs.fan_rpm {
            match read_number(path, buf) {
                Ok(rpm) => out.sample(f.fan_rpm, &[], rpm),
                Err(err) => problems.push(err.0),
            }
        }
        if let Some(path) = &self.sysfs.fan_pwm {
            match read_number(path, buf) {
                Ok(pwm) => out.sample(f.fan_pwm, &[], (pwm / 255.0).clamp(0.0, 1.0)),
                Err(err) => problems.push(err.0),
            }
        }
    }

    /// Whether the mailbox answers, its errors by tag, and the source of every value.
    fn write_status(&mut self, out: &mut Exposition) {
        let available = self.firmware.available();
        out.sample(self.families.mailbox_available, &[], flag(available));
        if available {
            for (tag, count) in self.firmware.errors().iter() {
                out.sample(self.families.mailbox_errors, &[tag.name()], count as f64);
            }
        }
        // A value retried into existence brings its source along.
        if self.firmware.answered() != self.answered {
            self.choose_sources();
        }
        let f = &self.families;
        for (_, name, source) in &self.sources {
            let (source, interface) = source.labels();
            out.sample(f.source_info, &[name, source, interface], 1.0);
        }
    }
}

/// The source chosen for `family`, if it has values.
fn source_of(sources: &[(FamilyId, &'static str, Source)], family: FamilyId) -> Option<Source> {
    sources
        .iter()
        .find(|(id, _, _)| *id == family)
        .map(|(_, _, source)| *source)
}

/// A state file that cannot be written costs persistence across restarts, not the values:
/// one warning, and the collector goes on (in memory).
fn warn_state_once(warned: &mut bool, err: &str) {
    if !*warned {
        *warned = true;
        log::warn!(
            "rpi: cannot keep the since-boot state ({err}); kept in memory only, so an agent \
             restart forgets it (the systemd unit needs RuntimeDirectory=pimetrics)"
        );
    }
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}
