//! What the rpi collector says once at start-up: the board it recognised, where each value
//! comes from, and what is missing and why (no /dev/vcio, a firmware that rejects a tag).
//! Kept apart from the collector: it runs once and only talks to the log.

use super::sysfs::SysfsFile;
use super::{RpiCollector, Source};
use crate::pi::board::Board;

impl RpiCollector {
    pub(super) fn log_summary(&self, board: &Board, open_problem: Option<&str>, text_opened: bool) {
        log::info!("rpi: {}; {}", board_line(board), evidence_line(board));
        let used = self.sources_used();
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
            return;
        }
        let throttled_missing = !matches!(
            self.source(self.families.throttled_flags),
            Some(Source::Firmware(_)) | Some(Source::Sysfs(SysfsFile::GetThrottled))
        );
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

    /// "metric from kind interface" for each family with values.
    fn sources_used(&self) -> Vec<String> {
        self.sources
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
            .collect()
    }
}

/// "Raspberry Pi 4 Model B Rev 1.5 (revision d03115, BCM2711, 8GB)".
fn board_line(board: &Board) -> String {
    let or = |text: &str, unknown: &'static str| {
        if text.is_empty() {
            unknown.to_string()
        } else {
            text.to_string()
        }
    };
    let revision = if board.revision_code.is_some() {
        board.revision_label()
    } else {
        "unknown".into()
    };
    format!(
        "{} (revision {revision}, {}, {})",
        or(&board.model, "unnamed board"),
        or(&board.soc, "SoC unknown"),
        or(&board.memory, "memory unknown"),
    )
}

fn evidence_line(board: &Board) -> String {
    board
        .evidence
        .as_deref()
        .map(|e| format!("recognised by {e}"))
        .unwrap_or_else(|| "not recognised as a Pi, forced on by pi.enabled".into())
}
