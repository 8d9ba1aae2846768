//! The board lines of /proc/cpuinfo (`Hardware`, `Revision`, `Serial`, `Model`). Raspberry Pi
//! kernels print them at the end; arm64 kernels dropped `Hardware`, old ones say `BCM2835` on
//! every Pi, Debian's and mainline kernels print none, and some versions repeat the block.

/// The board lines found; each the first non-empty value of its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardLines {
    pub hardware: Option<String>,
    pub revision: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
}

/// Parses the whole of /proc/cpuinfo. Never fails: missing lines are `None`.
pub fn parse(text: &str) -> BoardLines {
    let mut lines = BoardLines::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let slot = match key.trim() {
            "Hardware" => &mut lines.hardware,
            "Revision" => &mut lines.revision,
            "Serial" => &mut lines.serial,
            "Model" => &mut lines.model,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.to_string());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pi 4B, 64-bit kernel 6.12 (sample in the project's Pi facts): no Hardware line.
    const PI4_ARM64_TAIL: &str = "processor\t: 3\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n\
CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n\
Revision\t: c03111\nSerial\t\t: 10000000a43957f6\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n";

    #[test]
    fn pi4_arm64_has_no_hardware_line() {
        let lines = parse(PI4_ARM64_TAIL);
        assert_eq!(lines.hardware, None);
        assert_eq!(lines.revision.as_deref(), Some("c03111"));
        assert_eq!(lines.serial.as_deref(), Some("10000000a43957f6"));
        assert_eq!(
            lines.model.as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.1")
        );
    }

    #[test]
    fn repeated_blocks_and_a_model_name_line_do_not_confuse() {
        // "model name" is a per-CPU line on 32-bit kernels; only "Model" is the board.
        let text =
            "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n\nHardware\t: BCM2835\n\
Revision\t: a020d3\nSerial\t\t: 00000000b8f0c1a2\nModel\t\t: Raspberry Pi 3 Model B Plus Rev 1.3\n\
Hardware\t: BCM2835\nRevision\t: a020d3\nSerial\t\t: 00000000b8f0c1a2\n";
        let lines = parse(text);
        assert_eq!(lines.hardware.as_deref(), Some("BCM2835"));
        assert_eq!(lines.revision.as_deref(), Some("a020d3"));
        assert_eq!(
            lines.model.as_deref(),
            Some("Raspberry Pi 3 Model B Plus Rev 1.3")
        );
    }

    #[test]
    fn debian_kernel_and_garbage_give_nothing() {
        let debian = "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n";
        assert_eq!(parse(debian), BoardLines::default());
        assert_eq!(parse(""), BoardLines::default());
        assert_eq!(
            parse("Revision\t:\nModel:   \n:::\n\u{0}\u{ff}"),
            BoardLines::default()
        );
    }
}
