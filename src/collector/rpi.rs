//! Raspberry Pi health: board identity, and from the VideoCore firmware (mailbox) the SoC
//! temperature, the throttled flags, clock rates, voltages and, on a Pi 5, the PMIC rails.
//! Without the mailbox the values Linux also exposes come from sysfs: thermal zone,
//! `get_throttled`, the `rpi_volt` hwmon. The fan always comes from its hwmon.
//!
//! Built once: detects the board (and switches itself off on other machines), opens the
//! mailbox, asks every tag once and keeps those the firmware answers (a rejected tag logs once
//! and is not asked again: the kernel logs each failure), finds the sysfs files by name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{read_file, CollectError, Collector, Context, Setup};
use crate::config::PiEnabled;
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::pi::board::Board;
use crate::pi::mailbox::{Client, QueryError, Tag, CLOCKS, VOLTAGES};
use crate::pi::{gencmd, throttled};
use crate::roots::Roots;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let settings = &ctx.config.pi;
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
    let sysfs = SysfsFiles::find(ctx.roots);
    let client = open_client(ctx);
    let gencmd_client = open_gencmd_client(ctx);
    Setup::Ready(Box::new(RpiCollector::assemble(
        out,
        board,
        client,
        gencmd_client,
        sysfs,
        settings.pmic_interval.0,
    )))
}

impl RpiCollector {
    /// Asks the firmware what it answers, chooses a source per value, logs the outcome.
    fn assemble(
        out: &mut Exposition,
        mut board: Board,
        client: Result<Client, String>,
        gencmd_client: Option<Client>,
        sysfs: SysfsFiles,
        pmic_interval: Duration,
    ) -> RpiCollector {
        let families = Families::register(out);
        let mut errors = ErrorCounts::default();
        let mut probe = Probe::default();
        let pmic;
        let mut open_problem = None;
        match client {
            Ok(mut client) => {
                probe = Probe::run(&mut client, &mut errors);
                if board.revision_code.is_none() {
                    if let Ok(code) = client.board_revision() {
                        fill_revision(&mut board, code);
                    }
                }
                pmic = Pmic::probe(Some(&mut client), gencmd_client, pmic_interval);
                if probe.any_answer() || pmic.is_some() {
                    probe.client = Some(client);
                } else {
                    open_problem = Some(format!(
                        "the mailbox answered no request ({})",
                        probe
                            .rejected
                            .first()
                            .map(String::as_str)
                            .unwrap_or("no error")
                    ));
                }
            }
            Err(problem) => {
                pmic = Pmic::probe(None, gencmd_client, pmic_interval);
                open_problem = Some(problem);
            }
        }
        let sources = Sources::choose(&probe, &sysfs, pmic.is_some());
        log_summary(&board, &probe, &sources, open_problem.as_deref(), &sysfs);
        RpiCollector {
            families,
            info: [
                board.model.clone(),
                board.revision_label(),
                board.soc.clone(),
                board.memory.clone(),
                board.manufacturer.clone(),
            ],
            probe,
            pmic,
            sysfs,
            sources,
            errors,
            buf: Vec::with_capacity(64),
        }
    }
}

fn open_client(ctx: &Context) -> Result<Client, String> {
    let replay = ctx.config.pi.mailbox_replay.as_deref();
    match crate::pi::open_mailbox(&ctx.roots.dev("vcio"), replay) {
        Ok(mailbox) => Ok(Client::new(mailbox)),
        Err(err) => Err(err.advice()),
    }
}

/// Newer kernels have /dev/vcio_gencmd, which takes only text commands: a unit can grant it
/// alone. When it is there (and no replay is configured), the PMIC is read through it.
fn open_gencmd_client(ctx: &Context) -> Option<Client> {
    if ctx.config.pi.mailbox_replay.is_some() {
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
                "rpi: cannot open {}: {err}; text commands go through vcio",
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
                "1 when a throttling condition is active now or has occurred since boot.",
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
                "1 when the firmware mailbox (/dev/vcio) answers, 0 when values come from sysfs.",
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

/// What the firmware answered when asked once at start.
#[derive(Default)]
struct Probe {
    client: Option<Client>,
    temperature: bool,
    temperature_max: bool,
    throttled: bool,
    /// (clock id, name, set rate answered, measured rate answered)
    clocks: Vec<(u32, &'static str, bool, bool)>,
    /// (tag, voltage id, rail)
    voltages: Vec<(Tag, u32, &'static str)>,
    /// "get_max_voltage(sdram_c)": what the firmware rejected, for the log.
    rejected: Vec<String>,
}

impl Probe {
    fn run(client: &mut Client, errors: &mut ErrorCounts) -> Probe {
        let mut probe = Probe::default();
        let mut check = |result: Result<u32, QueryError>, tag: Tag, what: String| match result {
            Ok(_) => true,
            Err(err) => {
                errors.add(tag);
                probe.rejected.push(format!("{what} ({err})"));
                false
            }
        };
        let temperature = check(
            client.value_of(Tag::Temperature, 0),
            Tag::Temperature,
            "get_temperature".into(),
        );
        let temperature_max = check(
            client.value_of(Tag::MaxTemperature, 0),
            Tag::MaxTemperature,
            "get_max_temperature".into(),
        );
        let throttled = check(client.throttled(), Tag::Throttled, "get_throttled".into());
        let mut clocks = Vec::new();
        for &(id, name) in CLOCKS {
            // A clock the board does not have reads 0: not an error, not exported.
            let set = client.value_of(Tag::ClockRate, id);
            let measured = client.value_of(Tag::ClockRateMeasured, id);
            let set_ok = matches!(set, Ok(rate) if rate > 0);
            let measured_ok = matches!(measured, Ok(rate) if rate > 0);
            if set_ok || measured_ok {
                clocks.push((id, name, set.is_ok(), measured.is_ok()));
            }
            for (result, tag) in [(set, Tag::ClockRate), (measured, Tag::ClockRateMeasured)] {
                check(result, tag, format!("{}({name})", tag.name()));
            }
        }
        let mut voltages = Vec::new();
        for &(id, rail) in VOLTAGES {
            for tag in [Tag::Voltage, Tag::MinVoltage, Tag::MaxVoltage] {
                if check(
                    client.value_of(tag, id),
                    tag,
                    format!("{}({rail})", tag.name()),
                ) {
                    voltages.push((tag, id, rail));
                }
            }
        }
        probe.temperature = temperature;
        probe.temperature_max = temperature_max;
        probe.throttled = throttled;
        probe.clocks = clocks;
        probe.voltages = voltages;
        probe
    }

    fn any_answer(&self) -> bool {
        self.temperature || self.throttled || !self.clocks.is_empty() || !self.voltages.is_empty()
    }
}

/// The Pi 5 PMIC rails, read at most once per interval.
struct Pmic {
    interval: Duration,
    read_at: Instant,
    rails: Vec<gencmd::Rail>,
    /// /dev/vcio_gencmd, when it answered; otherwise the main mailbox is used.
    gencmd_client: Option<Client>,
}

impl Pmic {
    /// Reads once, through /dev/vcio_gencmd when it answers, else the main mailbox: boards
    /// without a PMIC answer "Command not registered".
    fn probe(
        main: Option<&mut Client>,
        gencmd_client: Option<Client>,
        interval: Duration,
    ) -> Option<Pmic> {
        let mut dedicated = gencmd_client;
        let text = match dedicated.as_mut().map(|c| c.gencmd("pmic_read_adc")) {
            Some(Ok(text)) => text,
            _ => {
                dedicated = None;
                main?.gencmd("pmic_read_adc").ok()?
            }
        };
        let rails = gencmd::parse_pmic(&text);
        (!rails.is_empty()).then(|| Pmic {
            interval,
            read_at: Instant::now(),
            rails,
            gencmd_client: dedicated,
        })
    }

    fn refresh(&mut self, main: Option<&mut Client>, errors: &mut ErrorCounts) {
        if self.read_at.elapsed() < self.interval {
            return;
        }
        self.read_at = Instant::now();
        let Some(client) = self.gencmd_client.as_mut().or(main) else {
            return;
        };
        match client.gencmd("pmic_read_adc") {
            Ok(text) => self.rails = gencmd::parse_pmic(&text),
            Err(_) => {
                errors.add(Tag::Gencmd);
                // No stale values: a rail that cannot be read is not exported.
                self.rails.clear();
            }
        }
    }
}

/// Sysfs files found at start, by name, never by hwmon number.
#[derive(Default)]
struct SysfsFiles {
    thermal_temp: Option<(PathBuf, &'static str)>,
    get_throttled: Option<PathBuf>,
    undervoltage_alarm: Option<PathBuf>,
    /// (rail label, inN_input)
    rpi_volt_inputs: Vec<(String, PathBuf)>,
    fan_rpm: Option<PathBuf>,
    fan_pwm: Option<PathBuf>,
    fan_name: String,
}

impl SysfsFiles {
    fn find(roots: &Roots) -> SysfsFiles {
        let mut files = SysfsFiles::default();
        let hwmons = hwmon_devices(roots);
        files.thermal_temp = cpu_thermal_zone(roots)
            .map(|p| (p, "thermal_zone"))
            .or_else(|| {
                hwmons
                    .iter()
                    .find(|(_, name)| name == "cpu_thermal")
                    .map(|(dir, _)| (dir.join("temp1_input"), "hwmon_cpu_thermal"))
                    .filter(|(p, _)| p.exists())
            });
        if let Some((dir, _)) = hwmons.iter().find(|(_, name)| name == "rpi_volt") {
            let alarm = dir.join("in0_lcrit_alarm");
            files.undervoltage_alarm = alarm.exists().then_some(alarm);
            for n in 0..8 {
                let input = dir.join(format!("in{n}_input"));
                if !input.exists() {
                    continue;
                }
                let label = crate::roots::read_trimmed(&dir.join(format!("in{n}_label")))
                    .unwrap_or_else(|_| format!("in{n}"));
                files.rpi_volt_inputs.push((label, input));
            }
            // The firmware device is the hwmon's grandparent: .../soc:firmware/raspberrypi-hwmon/hwmon/hwmonN.
            if let Some(firmware) = std::fs::canonicalize(dir)
                .ok()
                .and_then(|p| p.ancestors().nth(3).map(Path::to_path_buf))
            {
                let path = firmware.join("get_throttled");
                if path.exists() {
                    files.get_throttled = Some(path);
                }
            }
        }
        if files.get_throttled.is_none() {
            let path = roots.sys("devices/platform/soc/soc:firmware/get_throttled");
            files.get_throttled = path.exists().then_some(path);
        }
        // The Pi 5 fan (cooling_fan) and the PoE HAT fan (pwm-fan) both use the pwm-fan
        // driver, whose hwmon is named "pwmfan"; prefer the board's own fan.
        let fan = hwmons
            .iter()
            .filter(|(_, name)| matches!(name.as_str(), "pwmfan" | "cooling_fan" | "pwm-fan"))
            .max_by_key(|(dir, _)| {
                std::fs::canonicalize(dir)
                    .map(|p| p.to_string_lossy().contains("cooling_fan"))
                    .unwrap_or(false)
            });
        if let Some((dir, _)) = fan {
            let rpm = dir.join("fan1_input");
            let pwm = dir.join("pwm1");
            files.fan_rpm = rpm.exists().then_some(rpm);
            files.fan_pwm = pwm.exists().then_some(pwm);
            files.fan_name = std::fs::canonicalize(dir)
                .ok()
                .and_then(|p| {
                    p.ancestors()
                        .nth(2)
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "pwmfan".into());
        }
        files
    }
}

/// `(directory, name)` of every hwmon device, in name order.
fn hwmon_devices(roots: &Roots) -> Vec<(PathBuf, String)> {
    let mut found: Vec<(PathBuf, String)> = std::fs::read_dir(roots.sys("class/hwmon"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            let name = crate::roots::read_trimmed(&dir.join("name")).ok()?;
            Some((dir, name))
        })
        .collect();
    found.sort();
    found
}

/// The thermal zone of type `cpu-thermal` (thermal_zone0 on every Pi, but found by type).
fn cpu_thermal_zone(roots: &Roots) -> Option<PathBuf> {
    let mut zones: Vec<PathBuf> = std::fs::read_dir(roots.sys("class/thermal"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("thermal_zone"))
        })
        .collect();
    zones.sort();
    zones
        .into_iter()
        .find(|zone| {
            crate::roots::read_trimmed(&zone.join("type")).is_ok_and(|t| t == "cpu-thermal")
        })
        .map(|zone| zone.join("temp"))
        .filter(|p| p.exists())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    None,
    Mailbox,
    Sysfs(&'static str),
}

/// Which source each value comes from, decided once.
struct Sources {
    temperature: Source,
    throttled: Source,
    voltages: Source,
    /// (metric, source, interface) for `rpi_metric_source_info`.
    table: Vec<(&'static str, &'static str, &'static str)>,
}

impl Sources {
    fn choose(probe: &Probe, sysfs: &SysfsFiles, pmic: bool) -> Sources {
        let temperature = if probe.temperature {
            Source::Mailbox
        } else if let Some((_, interface)) = sysfs.thermal_temp {
            Source::Sysfs(interface)
        } else {
            Source::None
        };
        let throttled = if probe.throttled {
            Source::Mailbox
        } else if sysfs.get_throttled.is_some() {
            Source::Sysfs("get_throttled")
        } else if sysfs.undervoltage_alarm.is_some() {
            Source::Sysfs("rpi_volt")
        } else {
            Source::None
        };
        let voltages = if probe
            .voltages
            .iter()
            .any(|(tag, _, _)| *tag == Tag::Voltage)
        {
            Source::Mailbox
        } else if !sysfs.rpi_volt_inputs.is_empty() {
            Source::Sysfs("rpi_volt")
        } else {
            Source::None
        };
        let mut table = Vec::new();
        let mut add =
            |metric: &'static str, source: Source, mailbox_interface: &'static str| match source {
                Source::None => {}
                Source::Mailbox => table.push((metric, "mailbox", mailbox_interface)),
                Source::Sysfs(interface) => table.push((metric, "sysfs", interface)),
            };
        add(
            "rpi_soc_temperature_celsius",
            temperature,
            "get_temperature",
        );
        if probe.temperature_max {
            add(
                "rpi_soc_temperature_max_celsius",
                Source::Mailbox,
                "get_max_temperature",
            );
        }
        if throttled != Source::Sysfs("rpi_volt") {
            add("rpi_throttled_flags", throttled, "get_throttled");
        }
        add("rpi_throttled_condition", throttled, "get_throttled");
        if probe.clocks.iter().any(|c| c.2) {
            add("rpi_clock_set_hertz", Source::Mailbox, "get_clock_rate");
        }
        if probe.clocks.iter().any(|c| c.3) {
            add(
                "rpi_clock_measured_hertz",
                Source::Mailbox,
                "get_clock_rate_measured",
            );
        }
        add("rpi_voltage_volts", voltages, "get_voltage");
        if probe
            .voltages
            .iter()
            .any(|(tag, _, _)| *tag == Tag::MinVoltage)
        {
            add("rpi_voltage_min_volts", Source::Mailbox, "get_min_voltage");
        }
        if probe
            .voltages
            .iter()
            .any(|(tag, _, _)| *tag == Tag::MaxVoltage)
        {
            add("rpi_voltage_max_volts", Source::Mailbox, "get_max_voltage");
        }
        if pmic {
            add("rpi_pmic_volts", Source::Mailbox, "gencmd pmic_read_adc");
            add("rpi_pmic_amperes", Source::Mailbox, "gencmd pmic_read_adc");
        }
        if sysfs.fan_rpm.is_some() {
            add("rpi_fan_rpm", Source::Sysfs("hwmon_pwmfan"), "");
        }
        if sysfs.fan_pwm.is_some() {
            add("rpi_fan_pwm_ratio", Source::Sysfs("hwmon_pwmfan"), "");
        }
        Sources {
            temperature,
            throttled,
            voltages,
            table,
        }
    }
}

fn log_summary(
    board: &Board,
    probe: &Probe,
    sources: &Sources,
    open_problem: Option<&str>,
    sysfs: &SysfsFiles,
) {
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
    if let Some(problem) = open_problem {
        let mut fallbacks: Vec<&str> = Vec::new();
        if let Source::Sysfs(i) = sources.temperature {
            fallbacks.push(if i == "thermal_zone" {
                "temperature from the thermal zone"
            } else {
                "temperature from the cpu_thermal hwmon"
            });
        }
        match sources.throttled {
            Source::Sysfs("get_throttled") => {
                fallbacks.push("throttled flags from the deprecated sysfs get_throttled")
            }
            Source::Sysfs(_) => fallbacks.push("under-voltage since boot from the rpi_volt hwmon"),
            _ => {}
        }
        if sources.voltages != Source::None {
            fallbacks.push("voltages from rpi_volt");
        }
        if sysfs.fan_rpm.is_some() || sysfs.fan_pwm.is_some() {
            fallbacks.push("fan from its hwmon");
        }
        log::warn!(
            "rpi: firmware mailbox unavailable: {problem}. Missing: measured and set clock rates, \
             maximum temperature, voltage limits, PMIC rails{}. Using sysfs: {}",
            if sources.throttled == Source::Sysfs("rpi_volt") || sources.throttled == Source::None {
                ", throttled flags"
            } else {
                ""
            },
            if fallbacks.is_empty() {
                "nothing found".to_string()
            } else {
                fallbacks.join(", ")
            },
        );
    } else if !probe.rejected.is_empty() {
        log::info!(
            "rpi: the firmware rejects {}: not asked again",
            probe.rejected.join(", ")
        );
    }
}

#[derive(Default)]
struct ErrorCounts([u64; Tag::ALL.len()]);

impl ErrorCounts {
    fn add(&mut self, tag: Tag) {
        if let Some(index) = Tag::ALL.iter().position(|&t| t == tag) {
            if let Some(count) = self.0.get_mut(index) {
                *count += 1;
            }
        }
    }
}

struct RpiCollector {
    families: Families,
    /// model, revision, soc, memory, manufacturer
    info: [String; 5],
    probe: Probe,
    pmic: Option<Pmic>,
    sysfs: SysfsFiles,
    sources: Sources,
    errors: ErrorCounts,
    buf: Vec<u8>,
}

fn read_number(path: &Path, buf: &mut Vec<u8>) -> Result<f64, CollectError> {
    read_file(path, buf)?;
    std::str::from_utf8(buf)
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .map(|v| v as f64)
        .ok_or_else(|| CollectError(format!("{}: not an integer", path.display())))
}

/// The throttled mask from the chosen source: one read per scrape.
fn throttled_mask(
    source: Source,
    client: Option<&mut Client>,
    sysfs: &SysfsFiles,
    errors: &mut ErrorCounts,
    buf: &mut Vec<u8>,
) -> Result<Option<u32>, CollectError> {
    match (source, client, &sysfs.get_throttled) {
        (Source::Mailbox, Some(client), _) => match client.throttled() {
            Ok(mask) => Ok(Some(mask)),
            Err(_) => {
                errors.add(Tag::Throttled);
                Ok(None)
            }
        },
        (Source::Sysfs("get_throttled"), _, Some(path)) => {
            read_file(path, buf)?;
            let text = String::from_utf8_lossy(buf);
            throttled::parse_sysfs(&text)
                .map(Some)
                .ok_or_else(|| CollectError(format!("{}: invalid {text:?}", path.display())))
        }
        _ => Ok(None),
    }
}

impl Collector for RpiCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let RpiCollector {
            families: f,
            info,
            probe,
            pmic,
            sysfs,
            sources,
            errors,
            buf,
        } = self;
        let [model, revision, soc, memory, manufacturer] = &*info;
        out.sample(
            f.board_info,
            &[model, revision, soc, memory, manufacturer],
            1.0,
        );
        let mut problems: Vec<String> = Vec::new();

        // Temperature.
        match (
            sources.temperature,
            probe.client.as_mut(),
            &sysfs.thermal_temp,
        ) {
            (Source::Mailbox, Some(client), _) => match client.value_of(Tag::Temperature, 0) {
                Ok(milli) => out.sample(f.temperature, &[], milli as f64 / 1000.0),
                Err(_) => errors.add(Tag::Temperature),
            },
            (Source::Sysfs(_), _, Some((path, _))) => match read_number(path, buf) {
                Ok(milli) => out.sample(f.temperature, &[], milli / 1000.0),
                Err(err) => problems.push(err.0),
            },
            _ => {}
        }
        if let (true, Some(client)) = (probe.temperature_max, probe.client.as_mut()) {
            match client.value_of(Tag::MaxTemperature, 0) {
                Ok(milli) => out.sample(f.temperature_max, &[], milli as f64 / 1000.0),
                Err(_) => errors.add(Tag::MaxTemperature),
            }
        }

        // Throttling: raw and split, from one read.
        match throttled_mask(sources.throttled, probe.client.as_mut(), sysfs, errors, buf) {
            Ok(Some(mask)) => {
                out.sample(f.throttled_flags, &[], mask as f64);
                for (condition, now, since_boot) in throttled::decode(mask) {
                    out.sample(f.throttled_condition, &[condition, "now"], flag(now));
                    out.sample(
                        f.throttled_condition,
                        &[condition, "since_boot"],
                        flag(since_boot),
                    );
                }
            }
            Ok(None) => {
                if let (Source::Sysfs("rpi_volt"), Some(path)) =
                    (sources.throttled, &sysfs.undervoltage_alarm)
                {
                    match read_number(path, buf) {
                        Ok(alarm) => out.sample(
                            f.throttled_condition,
                            &["under_voltage", "since_boot"],
                            flag(alarm != 0.0),
                        ),
                        Err(err) => problems.push(err.0),
                    }
                }
            }
            Err(err) => problems.push(err.0),
        }

        // Clocks, voltages, PMIC (mailbox only), each tag on its own.
        if let Some(client) = probe.client.as_mut() {
            for &(id, name, set, measured) in &probe.clocks {
                if set {
                    match client.value_of(Tag::ClockRate, id) {
                        Ok(hz) => out.sample(f.clock_set, &[name], hz as f64),
                        Err(_) => errors.add(Tag::ClockRate),
                    }
                }
                if measured {
                    match client.value_of(Tag::ClockRateMeasured, id) {
                        Ok(hz) => out.sample(f.clock_measured, &[name], hz as f64),
                        Err(_) => errors.add(Tag::ClockRateMeasured),
                    }
                }
            }
            for &(tag, id, rail) in &probe.voltages {
                let family = match tag {
                    Tag::MinVoltage => f.voltage_min,
                    Tag::MaxVoltage => f.voltage_max,
                    _ => f.voltage,
                };
                match client.value_of(tag, id) {
                    Ok(microvolts) => out.sample(family, &[rail], microvolts as f64 / 1e6),
                    Err(_) => errors.add(tag),
                }
            }
        }
        if let Some(pmic) = pmic.as_mut() {
            pmic.refresh(probe.client.as_mut(), errors);
            for rail in &pmic.rails {
                if let Some(volts) = rail.volts {
                    out.sample(f.pmic_volts, &[&rail.name], volts);
                }
                if let Some(amperes) = rail.amperes {
                    out.sample(f.pmic_amperes, &[&rail.name], amperes);
                }
            }
        }
        if sources.voltages == Source::Sysfs("rpi_volt") {
            for (label, path) in &sysfs.rpi_volt_inputs {
                match read_number(path, buf) {
                    Ok(millivolts) => out.sample(f.voltage, &[label], millivolts / 1000.0),
                    Err(err) => problems.push(err.0),
                }
            }
        }

        // Fan.
        if let Some(path) = &sysfs.fan_rpm {
            match read_number(path, buf) {
                Ok(rpm) => out.sample(f.fan_rpm, &[], rpm),
                Err(err) => problems.push(err.0),
            }
        }
        if let Some(path) = &sysfs.fan_pwm {
            match read_number(path, buf) {
                Ok(pwm) => out.sample(f.fan_pwm, &[], (pwm / 255.0).clamp(0.0, 1.0)),
                Err(err) => problems.push(err.0),
            }
        }

        let available = probe.client.is_some();
        out.sample(f.mailbox_available, &[], flag(available));
        if available {
            for (tag, count) in Tag::ALL.iter().zip(errors.0) {
                out.sample(f.mailbox_errors, &[tag.name()], count as f64);
            }
        }
        for (metric, source, interface) in &sources.table {
            out.sample(f.source_info, &[metric, source, interface], 1.0);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CollectError(problems.join("; ")))
        }
    }
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pi::mailbox::Mailbox;
    use crate::pi::replay::Replay;
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The Pi 5's recorded answers, counting calls per tag; after `fail_after` calls of
    /// `failing_tag` those calls fail as the kernel fails a rejected tag.
    struct Recorded {
        replay: Replay,
        gencmd_calls: Arc<AtomicUsize>,
        failing_tag: u32,
        fail_after: usize,
        seen: usize,
    }

    impl Mailbox for Recorded {
        fn call(&mut self, buffer: &mut [u32]) -> io::Result<()> {
            let tag = buffer.get(2).copied().unwrap_or(0);
            if tag == Tag::Gencmd.id() {
                self.gencmd_calls.fetch_add(1, Ordering::SeqCst);
            }
            if tag == self.failing_tag {
                self.seen += 1;
                if self.seen > self.fail_after {
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
            }
            self.replay.call(buffer)
        }
    }

    fn pi5(failing_tag: u32, fail_after: usize) -> (Client, Arc<AtomicUsize>) {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pi/pi5/mailbox.replay");
        let calls = Arc::new(AtomicUsize::new(0));
        let mailbox = Recorded {
            replay: Replay::load(&path).unwrap(),
            gencmd_calls: Arc::clone(&calls),
            failing_tag,
            fail_after,
            seen: 0,
        };
        (Client::new(Box::new(mailbox)), calls)
    }

    fn pi5_board() -> Board {
        crate::pi::board::identify(&crate::pi::board::Sources {
            cpuinfo: "Revision\t: d04170\n",
            ..Default::default()
        })
    }

    #[test]
    fn pmic_is_read_at_most_once_per_interval() {
        let (client, calls) = pi5(0, 0);
        let mut out = Exposition::new("n");
        let mut collector = RpiCollector::assemble(
            &mut out,
            pi5_board(),
            Ok(client),
            None,
            SysfsFiles::default(),
            Duration::from_secs(3600),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "read once at start");
        for _ in 0..3 {
            out.clear();
            collector.update(&mut out).unwrap();
            let mut text = String::new();
            out.render(&mut text);
            assert!(text.contains("rpi_pmic_volts{node=\"n\",rail=\"EXT5V\"} 5.14158\n"));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "cached within the interval"
        );
        if let Some(pmic) = collector.pmic.as_mut() {
            pmic.interval = Duration::ZERO;
        }
        collector.update(&mut out).unwrap();
        collector.update(&mut out).unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "re-read once the interval passed"
        );
    }

    #[test]
    fn pmic_is_read_through_vcio_gencmd_when_vcio_is_not_there() {
        // A unit that grants only /dev/vcio_gencmd: the main mailbox fails to open.
        let (gencmd_only, calls) = pi5(0, 0);
        let mut out = Exposition::new("n");
        let mut collector = RpiCollector::assemble(
            &mut out,
            pi5_board(),
            Err("no /dev/vcio".into()),
            Some(gencmd_only),
            SysfsFiles::default(),
            Duration::ZERO,
        );
        collector.update(&mut out).unwrap();
        let mut text = String::new();
        out.render(&mut text);
        assert!(
            text.contains("rpi_pmic_volts{node=\"n\",rail=\"EXT5V\"} 5.14158\n"),
            "{text}"
        );
        assert!(
            text.contains("rpi_pmic_amperes{node=\"n\",rail=\"VDD_CORE\"} "),
            "{text}"
        );
        assert!(
            !text.contains("rpi_clock_set_hertz"),
            "no other firmware values without vcio"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "probe, then one read per scrape at interval 0"
        );
    }

    #[test]
    fn a_tag_failing_at_scrape_time_costs_one_value() {
        // get_temperature answers when probed, then the firmware starts rejecting it.
        let (client, _) = pi5(Tag::Temperature.id(), 1);
        let mut out = Exposition::new("n");
        let mut collector = RpiCollector::assemble(
            &mut out,
            pi5_board(),
            Ok(client),
            None,
            SysfsFiles::default(),
            Duration::from_secs(3600),
        );
        for scrape in 1..=2 {
            out.clear();
            collector.update(&mut out).unwrap();
            let mut text = String::new();
            out.render(&mut text);
            assert!(!text.contains("rpi_soc_temperature_celsius{"), "{text}");
            assert!(text.contains(&format!(
                "rpi_mailbox_errors_total{{node=\"n\",tag=\"get_temperature\"}} {scrape}\n"
            )));
            assert!(
                text.contains("rpi_clock_measured_hertz{node=\"n\",clock=\"arm\"} 1500004352\n")
            );
            assert!(text.contains("rpi_throttled_flags{node=\"n\"} 0\n"));
        }
    }

    #[test]
    fn a_mailbox_that_answers_nothing_counts_as_unavailable() {
        let mut out = Exposition::new("n");
        let mut collector = RpiCollector::assemble(
            &mut out,
            pi5_board(),
            Ok(Client::new(Box::new(Replay::default()))),
            None,
            SysfsFiles::default(),
            Duration::from_secs(30),
        );
        collector.update(&mut out).unwrap();
        let mut text = String::new();
        out.render(&mut text);
        assert!(
            text.contains("rpi_mailbox_available{node=\"n\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("memory=\"8GB\""), "{text}");
    }
}
