//! node_watchdog_* per watchdog device from /sys/class/watchdog/<name>/ (the Pi's
//! bcm2835-wdt as watchdog0, which systemd's RuntimeWatchdogSec arms). Attributes the
//! driver does not provide are left out; node_watchdog_info carries the text ones.

use std::path::PathBuf;

use super::{CollectError, Collector, Context, Setup};
use crate::roots::{dir_names, parse_int, read_attr};
use crate::exposition::{Exposition, FamilyId, Kind};

/// Integer attributes and their family names (node_exporter 1.12).
const NUMBERS: [(&str, &str); 7] = [
    ("bootstatus", "node_watchdog_bootstatus"),
    ("fw_version", "node_watchdog_fw_version"),
    ("nowayout", "node_watchdog_nowayout"),
    ("timeleft", "node_watchdog_timeleft_seconds"),
    ("timeout", "node_watchdog_timeout_seconds"),
    ("pretimeout", "node_watchdog_pretimeout_seconds"),
    ("access_cs0", "node_watchdog_access_cs0"),
];

/// Text attributes, in node_watchdog_info's label order after `name`.
const TEXTS: [&str; 5] = [
    "options",
    "identity",
    "state",
    "status",
    "pretimeout_governor",
];

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let class = ctx.roots.sys("class/watchdog");
    if !class.is_dir() {
        return Setup::Unavailable(format!("no {} (no watchdog driver)", class.display()));
    }
    Setup::Ready(Box::new(WatchdogCollector {
        class,
        buf: Vec::with_capacity(64),
        texts: Default::default(),
        numbers: NUMBERS.map(|(file, name)| {
            out.family(
                name,
                &format!("Value of /sys/class/watchdog/<watchdog>/{file}"),
                Kind::Gauge,
                &["name"],
            )
        }),
        info: out.family(
            "node_watchdog_info",
            "Info of /sys/class/watchdog/<watchdog>",
            Kind::Gauge,
            &[
                "name",
                "options",
                "identity",
                "state",
                "status",
                "pretimeout_governor",
            ],
        ),
    }))
}

struct WatchdogCollector {
    class: PathBuf,
    buf: Vec<u8>,
    texts: [String; 5],
    numbers: [FamilyId; 7],
    info: FamilyId,
}

impl Collector for WatchdogCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let names = match dir_names(&self.class) {
            Ok(names) => names,
            // No watchdog driver loaded: nothing to report.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(CollectError(format!("{}: {err}", self.class.display()))),
        };
        for name in &names {
            let dir = self.class.join(name);
            for ((file, _), id) in NUMBERS.iter().zip(self.numbers) {
                if let Some(value) = read_attr(&dir.join(file), &mut self.buf).and_then(parse_int) {
                    out.sample(id, &[name], value as f64);
                }
            }
            for (text, file) in self.texts.iter_mut().zip(TEXTS) {
                text.clear();
                text.push_str(read_attr(&dir.join(file), &mut self.buf).unwrap_or(""));
            }
            let [options, identity, state, status, governor] = &self.texts;
            out.sample(
                self.info,
                &[name, options, identity, state, status, governor],
                1.0,
            );
        }
        Ok(())
    }
}
