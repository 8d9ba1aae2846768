//! The VideoCore firmware as one source of typed readings: the property tags through
//! /dev/vcio where it opens and answers, else gencmd text commands through /dev/vcio_gencmd
//! (which current Raspberry Pi OS grants the `video` group while /dev/vcio stays root's), plus
//! the Pi 5 PMIC rails, read at most once per interval.
//!
//! What the firmware answers is found by asking everything once at start. A value that fails
//! is asked again with backoff (Pi 5 calls fail now and then, and the kernel logs every
//! failure): at the next read, then after 15 s, 30 s, 60 s, 120 s; after `UNSUPPORTED_AFTER`
//! failures in a row it counts as unsupported and is asked once an hour. A clock the board
//! does not have (rate 0) is dropped at start: that is an answer, not a failure.

use std::time::{Duration, Instant};

use super::gencmd::{self, Rail};
use super::mailbox::{Client, QueryError, Tag, CLOCKS, VOLTAGES};

/// Consecutive failures after which a value counts as unsupported (asked hourly).
pub const UNSUPPORTED_AFTER: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(15);
const UNSUPPORTED_RETRY: Duration = Duration::from_secs(3600);

/// Wait after `failures` consecutive failures before asking again.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n if n >= UNSUPPORTED_AFTER => UNSUPPORTED_RETRY,
        n => FIRST_BACKOFF * (1 << (n - 2)),
    }
}

/// Clock names vcgencmd's `measure_clock` knows (its documentation), which are also the
/// label values the property tags give the same clocks.
pub const GENCMD_CLOCKS: &[&str] = &[
    "arm", "core", "h264", "isp", "v3d", "uart", "pwm", "emmc", "pixel", "vec", "hdmi", "dpi",
];

/// Which interface of the firmware a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A property tag through /dev/vcio.
    Tag(Tag),
    /// A gencmd text command (its first word), through /dev/vcio_gencmd or /dev/vcio.
    Gencmd(&'static str),
}

/// What a reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Temperature,
    TemperatureMax,
    Throttled,
    ClockSet(&'static str),
    ClockMeasured(&'static str),
    Voltage(&'static str),
    VoltageMin(&'static str),
    VoltageMax(&'static str),
}

impl Quantity {
    /// The same quantity of another clock or rail counts as the same kind (for sources).
    pub fn same_kind(self, other: Quantity) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }
}

#[derive(Debug, Clone)]
enum Request {
    /// Tag with an id, answering `[id, value]`.
    Value(Tag, u32),
    /// get_throttled, mask 0 (read only: never clear the sticky bits).
    Throttled,
    /// A text command and its parser.
    Text(&'static str, String),
}

#[derive(Debug, Clone, Default)]
struct Retry {
    failures: u32,
    next: Option<Instant>,
}

impl Retry {
    fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.next = Some(now + backoff(self.failures));
    }

    fn succeeded(&mut self) {
        *self = Retry::default();
    }
}

#[derive(Debug, Clone)]
struct Item {
    quantity: Quantity,
    request: Request,
    retry: Retry,
    /// Answered at least once: the value exists on this board.
    answered: bool,
}

impl Item {
    fn via(&self) -> Via {
        match &self.request {
            Request::Value(tag, _) => Via::Tag(*tag),
            Request::Throttled => Via::Tag(Tag::Throttled),
            Request::Text(command, _) => Via::Gencmd(command),
        }
    }
}

/// One reading: what, and its value in base units (degrees Celsius, hertz, volts; the
/// throttled mask as a number).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub quantity: Quantity,
    pub value: f64,
}

/// Failed calls by interface, for `rpi_mailbox_errors_total{tag}`.
#[derive(Debug, Default, Clone)]
pub struct ErrorCounts([u64; Tag::ALL.len()]);

impl ErrorCounts {
    pub fn add(&mut self, tag: Tag) {
        if let Some(index) = Tag::ALL.iter().position(|&t| t == tag) {
            if let Some(count) = self.0.get_mut(index) {
                *count += 1;
            }
        }
    }

    pub fn get(&self, tag: Tag) -> u64 {
        Tag::ALL
            .iter()
            .position(|&t| t == tag)
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Tag, u64)> + '_ {
        Tag::ALL.iter().copied().zip(self.0.iter().copied())
    }
}

/// The Pi 5 PMIC rails, read at most once per interval.
struct Pmic {
    interval: Duration,
    read_at: Option<Instant>,
    retry: Retry,
    rails: Vec<Rail>,
    /// Answered with rails at least once.
    answered: bool,
}

/// The firmware behind /dev/vcio and /dev/vcio_gencmd, as readings.
pub struct Firmware {
    /// /dev/vcio (or its replay), when it opened and answers property tags.
    property: Option<Client>,
    /// /dev/vcio_gencmd (or its replay): text commands only.
    text: Option<Client>,
    items: Vec<Item>,
    pmic: Option<Pmic>,
    errors: ErrorCounts,
    readings: Vec<Reading>,
    /// "get_max_voltage(sdram_c) (EINVAL)": what failed when first asked, for the log.
    pub rejected: Vec<String>,
}

impl Firmware {
    /// Asks everything once (at `now`) through the clients that opened; keeps what answered,
    /// and what failed for retries. Property tags win where /dev/vcio answers; otherwise the
    /// text commands. `None` clients and no answers at all give an empty `Firmware`
    /// (`available()` false).
    pub fn start(
        property: Option<Client>,
        text: Option<Client>,
        pmic_interval: Duration,
        now: Instant,
    ) -> Firmware {
        let mut firmware = Firmware {
            property,
            text,
            items: Vec::new(),
            pmic: None,
            errors: ErrorCounts::default(),
            readings: Vec::with_capacity(64),
            rejected: Vec::new(),
        };
        if firmware.property.is_some() {
            firmware.items = property_items();
            firmware.first_read(now);
            if !firmware.items.iter().any(|i| i.answered) && firmware.text.is_some() {
                // Opened but answers nothing (a device that refuses every tag): the text
                // commands instead. Without them, the tags are retried like any failure.
                firmware.property = None;
                firmware.items.clear();
            }
        }
        if firmware.property.is_none() && firmware.text.is_some() {
            firmware.items = text_items();
            firmware.first_read(now);
        }
        firmware.pmic = Some(Pmic {
            interval: pmic_interval,
            read_at: None,
            retry: Retry::default(),
            rails: Vec::new(),
            answered: false,
        });
        firmware.refresh_pmic(now);
        // No PMIC: "Command not registered" (or no client). A call that failed is retried.
        if firmware
            .pmic
            .as_ref()
            .is_some_and(|p| !p.answered && p.retry.failures == 0)
        {
            firmware.pmic = None;
        }
        firmware
    }

    /// The firmware has answered (at start, or a retry since).
    pub fn available(&self) -> bool {
        self.items.iter().any(|i| i.answered) || self.has_pmic()
    }

    /// Values come from property tags (/dev/vcio answers).
    pub fn uses_property_tags(&self) -> bool {
        self.items
            .iter()
            .any(|i| i.answered && matches!(i.via(), Via::Tag(_)))
    }

    /// How many values have answered at least once (grows when a retried value answers).
    pub fn answered(&self) -> usize {
        self.items.iter().filter(|i| i.answered).count() + usize::from(self.has_pmic())
    }

    pub fn errors(&self) -> &ErrorCounts {
        &self.errors
    }

    /// Where values of this kind come from, when the board has any.
    pub fn source_of(&self, quantity: Quantity) -> Option<Via> {
        self.items
            .iter()
            .find(|i| i.answered && i.quantity.same_kind(quantity))
            .map(Item::via)
    }

    /// The PMIC answered with rails (at start or on a retry since).
    pub fn has_pmic(&self) -> bool {
        self.pmic.as_ref().is_some_and(|p| p.answered)
    }

    /// The PMIC rails of the last read (empty when it failed).
    pub fn pmic_rails(&self) -> &[Rail] {
        self.pmic.as_ref().map(|p| &p.rails[..]).unwrap_or(&[])
    }

    /// Reads every value that is due; the readings that succeeded. Failures are counted.
    pub fn read(&mut self, now: Instant) -> &[Reading] {
        self.readings.clear();
        let Firmware {
            property,
            text,
            items,
            errors,
            readings,
            ..
        } = self;
        for item in items.iter_mut() {
            if !item.retry.due(now) {
                continue;
            }
            let client = match item.request {
                Request::Text(..) => text.as_mut().or(property.as_mut()),
                _ => property.as_mut(),
            };
            let Some(client) = client else { continue };
            match ask(client, &item.request) {
                Ok(value) => {
                    item.retry.succeeded();
                    item.answered = true;
                    readings.push(Reading {
                        quantity: item.quantity,
                        value,
                    });
                }
                Err(_) => {
                    item.retry.failed(now);
                    errors.add(match item.via() {
                        Via::Tag(tag) => tag,
                        Via::Gencmd(_) => Tag::Gencmd,
                    });
                }
            }
        }
        self.refresh_pmic(now);
        &self.readings
    }

    fn first_read(&mut self, now: Instant) {
        let Firmware {
            property,
            text,
            items,
            errors,
            rejected,
            ..
        } = self;
        // Clocks with a non-zero rate: a clock the board lacks reads 0 (through gencmd,
        // `frequency(0)=0`); a gated clock measures 0 but has a set rate.
        let mut clocks_present: Vec<&'static str> = Vec::new();
        for item in items.iter_mut() {
            let client = match item.request {
                Request::Text(..) => text.as_mut().or(property.as_mut()),
                _ => property.as_mut(),
            };
            let Some(client) = client else { continue };
            match ask(client, &item.request) {
                Ok(value) => {
                    item.answered = true;
                    if let (Some(name), true) = (clock_name(item.quantity), value > 0.0) {
                        clocks_present.push(name);
                    }
                }
                Err(err) => {
                    item.retry.failed(now);
                    errors.add(match item.via() {
                        Via::Tag(tag) => tag,
                        Via::Gencmd(_) => Tag::Gencmd,
                    });
                    rejected.push(format!("{} ({err})", describe(item)));
                }
            }
        }
        // Keep every clock that exists, and what failed (to retry); drop clocks reading 0.
        items.retain(|item| match clock_name(item.quantity) {
            Some(name) => clocks_present.contains(&name) || !item.answered,
            None => true,
        });
    }

    fn refresh_pmic(&mut self, now: Instant) {
        let Some(pmic) = self.pmic.as_mut() else {
            return;
        };
        if pmic.read_at.is_some_and(|at| now < at + pmic.interval) || !pmic.retry.due(now) {
            return;
        }
        let Some(client) = self.text.as_mut().or(self.property.as_mut()) else {
            pmic.read_at = Some(now);
            return;
        };
        match gencmd::call(client, "pmic_read_adc") {
            Ok(answer) => {
                // The interval counts from a good read; a failed one is retried with backoff.
                pmic.read_at = Some(now);
                pmic.retry.succeeded();
                pmic.rails = gencmd::parse_pmic(&answer);
                pmic.answered |= !pmic.rails.is_empty();
            }
            Err(QueryError::Command(_)) if pmic.rails.is_empty() && pmic.retry.failures == 0 => {
                // "Command not registered": no PMIC on this board; not an error.
                pmic.read_at = Some(now);
                pmic.rails.clear();
            }
            Err(_) => {
                pmic.retry.failed(now);
                self.errors.add(Tag::Gencmd);
                // No stale values: a rail that cannot be read is not exported.
                pmic.rails.clear();
            }
        }
    }
}

fn clock_name(quantity: Quantity) -> Option<&'static str> {
    match quantity {
        Quantity::ClockSet(name) | Quantity::ClockMeasured(name) => Some(name),
        _ => None,
    }
}

fn describe(item: &Item) -> String {
    match &item.request {
        Request::Value(tag, _) => {
            let what = match item.quantity {
                Quantity::ClockSet(n)
                | Quantity::ClockMeasured(n)
                | Quantity::Voltage(n)
                | Quantity::VoltageMin(n)
                | Quantity::VoltageMax(n) => n,
                _ => return tag.name().to_string(),
            };
            format!("{}({what})", tag.name())
        }
        Request::Throttled => Tag::Throttled.name().to_string(),
        Request::Text(_, command) => format!("gencmd {command}"),
    }
}

fn ask(client: &mut Client, request: &Request) -> Result<f64, QueryError> {
    let bad = |command: &str, text: &str| QueryError::Command(format!("{command}: {text:?}"));
    match request {
        Request::Value(tag, id) => {
            let raw = client.value_of(*tag, *id)? as f64;
            Ok(match tag {
                Tag::Temperature | Tag::MaxTemperature => raw / 1000.0,
                Tag::Voltage | Tag::MinVoltage | Tag::MaxVoltage => raw / 1e6,
                _ => raw,
            })
        }
        Request::Throttled => Ok(client.throttled()? as f64),
        Request::Text(kind, command) => {
            let text = gencmd::call(client, command)?;
            match *kind {
                "measure_temp" => gencmd::parse_temperature(&text),
                "get_throttled" => gencmd::parse_throttled(&text).map(f64::from),
                "measure_clock" => gencmd::parse_clock(&text).map(|(_, hz)| hz as f64),
                "measure_volts" => gencmd::parse_volts(&text),
                _ => None,
            }
            .ok_or_else(|| bad(command, &text))
        }
    }
}

fn item(quantity: Quantity, request: Request) -> Item {
    Item {
        quantity,
        request,
        retry: Retry::default(),
        answered: false,
    }
}

fn property_items() -> Vec<Item> {
    let mut items = vec![
        item(Quantity::Temperature, Request::Value(Tag::Temperature, 0)),
        item(
            Quantity::TemperatureMax,
            Request::Value(Tag::MaxTemperature, 0),
        ),
        item(Quantity::Throttled, Request::Throttled),
    ];
    for &(id, name) in CLOCKS {
        items.push(item(
            Quantity::ClockSet(name),
            Request::Value(Tag::ClockRate, id),
        ));
        items.push(item(
            Quantity::ClockMeasured(name),
            Request::Value(Tag::ClockRateMeasured, id),
        ));
    }
    for &(id, rail) in VOLTAGES {
        items.push(item(
            Quantity::Voltage(rail),
            Request::Value(Tag::Voltage, id),
        ));
        items.push(item(
            Quantity::VoltageMin(rail),
            Request::Value(Tag::MinVoltage, id),
        ));
        items.push(item(
            Quantity::VoltageMax(rail),
            Request::Value(Tag::MaxVoltage, id),
        ));
    }
    items
}

fn text_items() -> Vec<Item> {
    let text = |kind: &'static str, arg: &str| match arg {
        "" => Request::Text(kind, kind.to_string()),
        arg => Request::Text(kind, format!("{kind} {arg}")),
    };
    let mut items = vec![
        item(Quantity::Temperature, text("measure_temp", "")),
        item(Quantity::Throttled, text("get_throttled", "")),
    ];
    for &name in GENCMD_CLOCKS {
        items.push(item(
            Quantity::ClockMeasured(name),
            text("measure_clock", name),
        ));
    }
    for &(_, rail) in VOLTAGES {
        items.push(item(Quantity::Voltage(rail), text("measure_volts", rail)));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pi::mailbox::Mailbox;
    use crate::pi::replay::Replay;
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A board's recorded answers; calls of `failing_tag` fail (as the kernel fails a tag the
    /// firmware rejects) while `failing` is set, and gencmd calls are counted.
    struct Flaky {
        replay: Replay,
        failing_tag: u32,
        failing: Arc<AtomicUsize>,
        gencmd_calls: Arc<AtomicUsize>,
        tag_calls: Arc<AtomicUsize>,
    }

    impl Mailbox for Flaky {
        fn call(&mut self, buffer: &mut [u32]) -> io::Result<()> {
            let tag = buffer.get(2).copied().unwrap_or(0);
            if tag == Tag::Gencmd.id() {
                self.gencmd_calls.fetch_add(1, Ordering::SeqCst);
            }
            if tag == self.failing_tag {
                self.tag_calls.fetch_add(1, Ordering::SeqCst);
                if self.failing.load(Ordering::SeqCst) > 0 {
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
            }
            self.replay.call(buffer)
        }
    }

    struct Handles {
        failing: Arc<AtomicUsize>,
        gencmd_calls: Arc<AtomicUsize>,
        tag_calls: Arc<AtomicUsize>,
    }

    fn board(file: &str, failing_tag: u32, failing: bool) -> (Client, Handles) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let handles = Handles {
            failing: Arc::new(AtomicUsize::new(usize::from(failing))),
            gencmd_calls: Arc::new(AtomicUsize::new(0)),
            tag_calls: Arc::new(AtomicUsize::new(0)),
        };
        let mailbox = Flaky {
            replay: Replay::load(&path).unwrap(),
            failing_tag,
            failing: Arc::clone(&handles.failing),
            gencmd_calls: Arc::clone(&handles.gencmd_calls),
            tag_calls: Arc::clone(&handles.tag_calls),
        };
        (Client::new(Box::new(mailbox)), handles)
    }

    fn value(readings: &[Reading], quantity: Quantity) -> Option<f64> {
        readings
            .iter()
            .find(|r| r.quantity == quantity)
            .map(|r| r.value)
    }

    #[test]
    fn backoff_grows_then_settles_hourly() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 15, 30, 60, 3600, 3600, 3600]);
    }

    #[test]
    fn a_tag_failing_at_start_is_retried_with_backoff_and_recovers() {
        let (client, handles) = board("pi5/mailbox.replay", Tag::Temperature.id(), true);
        let start = Instant::now();
        let mut firmware = Firmware::start(Some(client), None, Duration::from_secs(3600), start);
        assert!(firmware.uses_property_tags());
        assert_eq!(firmware.source_of(Quantity::Temperature), None);
        assert_eq!(handles.tag_calls.load(Ordering::SeqCst), 1);
        // Second failure at the next read; then 15 s of rest.
        firmware.read(start);
        assert_eq!(handles.tag_calls.load(Ordering::SeqCst), 2);
        firmware.read(start + Duration::from_secs(10));
        assert_eq!(handles.tag_calls.load(Ordering::SeqCst), 2, "backing off");
        // The firmware answers again: the value appears, errors stay counted.
        handles.failing.store(0, Ordering::SeqCst);
        let readings = firmware.read(start + Duration::from_secs(16));
        assert_eq!(value(readings, Quantity::Temperature), Some(46.3));
        assert_eq!(firmware.errors().get(Tag::Temperature), 2);
        assert_eq!(
            firmware.source_of(Quantity::Temperature),
            Some(Via::Tag(Tag::Temperature))
        );
        // Every read now asks it.
        firmware.read(start + Duration::from_secs(17));
        assert_eq!(handles.tag_calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_tag_that_keeps_failing_becomes_unsupported_and_is_asked_hourly() {
        let (client, handles) = board("pi5/mailbox.replay", Tag::Temperature.id(), true);
        let start = Instant::now();
        let mut firmware = Firmware::start(Some(client), None, Duration::from_secs(3600), start);
        let mut now = start;
        for _ in 0..1000 {
            now += Duration::from_secs(1);
            firmware.read(now);
        }
        // 1000 s of reads every second: start, then 0, 15, 30, 60 s waits, then hourly.
        assert_eq!(
            handles.tag_calls.load(Ordering::SeqCst),
            UNSUPPORTED_AFTER as usize
        );
        firmware.read(now + Duration::from_secs(3600));
        assert_eq!(
            handles.tag_calls.load(Ordering::SeqCst),
            UNSUPPORTED_AFTER as usize + 1
        );
        // The rest of the board is unaffected.
        let readings = firmware.read(now + Duration::from_secs(3601));
        assert_eq!(
            value(readings, Quantity::ClockMeasured("arm")),
            Some(1_500_004_352.0)
        );
    }

    #[test]
    fn pmic_is_read_at_most_once_per_interval_through_vcio_gencmd_when_present() {
        let (client, _) = board("pi5/mailbox.replay", 0, false);
        let (text, text_handles) = board("pi5/gencmd.replay", 0, false);
        let start = Instant::now();
        let mut firmware =
            Firmware::start(Some(client), Some(text), Duration::from_secs(30), start);
        assert_eq!(text_handles.gencmd_calls.load(Ordering::SeqCst), 1);
        for second in 1..30 {
            firmware.read(start + Duration::from_secs(second));
        }
        assert_eq!(
            text_handles.gencmd_calls.load(Ordering::SeqCst),
            1,
            "cached"
        );
        firmware.read(start + Duration::from_secs(30));
        assert_eq!(text_handles.gencmd_calls.load(Ordering::SeqCst), 2);
        let rail = &firmware.pmic_rails()[12];
        assert_eq!((rail.name.as_str(), rail.volts), ("EXT5V", Some(5.14158)));
    }

    #[test]
    fn a_pmic_read_failing_at_start_is_retried() {
        let (client, handles) = board("pi5/gencmd.replay", Tag::Gencmd.id(), true);
        let start = Instant::now();
        let mut firmware = Firmware::start(None, Some(client), Duration::from_secs(30), start);
        assert!(!firmware.has_pmic());
        handles.failing.store(0, Ordering::SeqCst);
        firmware.read(start + Duration::from_secs(1));
        assert!(firmware.has_pmic(), "answered on the retry");
        assert_eq!(firmware.pmic_rails().len(), 14);
        assert!(firmware.available());
    }

    #[test]
    fn text_commands_when_only_vcio_gencmd_opens() {
        let (text, _) = board("pi4/gencmd.replay", 0, false);
        let start = Instant::now();
        let mut firmware = Firmware::start(None, Some(text), Duration::from_secs(30), start);
        assert!(firmware.available());
        assert!(!firmware.uses_property_tags());
        assert!(!firmware.has_pmic(), "no PMIC on a Pi 4");
        let readings = firmware.read(start).to_vec();
        assert_eq!(value(&readings, Quantity::Temperature), Some(54.8));
        assert_eq!(
            value(&readings, Quantity::Throttled),
            Some(f64::from(0x50000))
        );
        assert_eq!(
            value(&readings, Quantity::ClockMeasured("arm")),
            Some(1_500_398_464.0)
        );
        assert_eq!(value(&readings, Quantity::Voltage("core")), Some(0.85));
        assert_eq!(
            firmware.source_of(Quantity::Voltage("sdram_p")),
            Some(Via::Gencmd("measure_volts"))
        );
        assert_eq!(firmware.source_of(Quantity::TemperatureMax), None);
        assert_eq!(firmware.errors().get(Tag::Gencmd), 0);
    }

    #[test]
    fn nothing_answers_nothing_available() {
        let start = Instant::now();
        let firmware = Firmware::start(
            Some(Client::new(Box::new(Replay::default()))),
            None,
            Duration::from_secs(30),
            start,
        );
        assert!(!firmware.available());
        let firmware = Firmware::start(None, None, Duration::from_secs(30), start);
        assert!(!firmware.available());
    }
}
