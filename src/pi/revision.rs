//! The board revision code (`Revision` in /proc/cpuinfo, mailbox tag 0x00010002), decoded field
//! by field so boards released after this code still get a SoC, memory size and maker.
//!
//! New style (bit 23 set), bits `NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR`:
//! R board revision, T type, P processor, C manufacturer, M memory size. Old style codes are the
//! first boards' serial numbers, 0002-0015, looked up in a table (bit 24 set means the warranty
//! bit was blown by overvolting; it is not part of the code).

/// What a revision code says about the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub code: u32,
    /// "Raspberry Pi 4 Model B", or "unknown type 0x1b" for a type this code does not know.
    pub model: String,
    /// "1.1": board revision as the model string shows it.
    pub board_revision: String,
    /// "BCM2711", or "unknown processor 7".
    pub soc: String,
    /// "4GB", "512MB", or "other" (memory field 7).
    pub memory: String,
    /// 0 when the code names no size ("other").
    pub memory_bytes: u64,
    /// "Sony UK", or "unknown manufacturer 9".
    pub manufacturer: String,
}

const NEW_STYLE: u32 = 1 << 23;
/// Memory field value the revision-code documentation lists as "other".
const MEMORY_OTHER: u32 = 7;
const MB: u64 = 1 << 20;

/// Decodes a code; `None` only for an old-style code outside the known table (0 on a non-Pi
/// ARM board, for instance).
pub fn decode(code: u32) -> Option<Revision> {
    if code & NEW_STYLE != 0 {
        Some(decode_new_style(code))
    } else {
        decode_old_style(code)
    }
}

/// Parses the hexadecimal code as /proc/cpuinfo prints it ("c03111", "0x9000c1", "1000002").
pub fn parse_code(text: &str) -> Option<u32> {
    let text = text.trim();
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

fn decode_new_style(code: u32) -> Revision {
    let revision = code & 0xf;
    let kind = (code >> 4) & 0xff;
    let processor = (code >> 12) & 0xf;
    let manufacturer = (code >> 16) & 0xf;
    let memory = (code >> 20) & 0x7;
    // The size doubles with every step from 256 MB (0) to 16 GB (6); 7 is documented as
    // "other", not 32 GB: no size is claimed for it.
    let (memory_text, memory_bytes) = if memory == MEMORY_OTHER {
        ("other".to_string(), 0)
    } else {
        let bytes = (256 * MB) << memory;
        (memory_text(bytes), bytes)
    };
    Revision {
        code,
        model: board_type_name(kind)
            .map(str::to_string)
            .unwrap_or_else(|| format!("unknown type 0x{kind:02x}")),
        board_revision: format!("1.{revision}"),
        soc: processor_name(processor)
            .map(str::to_string)
            .unwrap_or_else(|| format!("unknown processor {processor}")),
        memory: memory_text,
        memory_bytes,
        manufacturer: manufacturer_name(manufacturer)
            .map(str::to_string)
            .unwrap_or_else(|| format!("unknown manufacturer {manufacturer}")),
    }
}

/// Type numbers of new-style codes (Raspberry Pi documentation, "Raspberry Pi revision codes").
pub fn board_type_name(kind: u32) -> Option<&'static str> {
    Some(match kind {
        0x00 => "Raspberry Pi Model A",
        0x01 => "Raspberry Pi Model B",
        0x02 => "Raspberry Pi Model A+",
        0x03 => "Raspberry Pi Model B+",
        0x04 => "Raspberry Pi 2 Model B",
        0x05 => "Raspberry Pi Alpha",
        0x06 => "Raspberry Pi Compute Module 1",
        0x08 => "Raspberry Pi 3 Model B",
        0x09 => "Raspberry Pi Zero",
        0x0a => "Raspberry Pi Compute Module 3",
        0x0c => "Raspberry Pi Zero W",
        0x0d => "Raspberry Pi 3 Model B+",
        0x0e => "Raspberry Pi 3 Model A+",
        0x10 => "Raspberry Pi Compute Module 3+",
        0x11 => "Raspberry Pi 4 Model B",
        0x12 => "Raspberry Pi Zero 2 W",
        0x13 => "Raspberry Pi 400",
        0x14 => "Raspberry Pi Compute Module 4",
        0x15 => "Raspberry Pi Compute Module 4S",
        0x17 => "Raspberry Pi 5",
        0x18 => "Raspberry Pi Compute Module 5",
        // One type for both keyboards; the device tree's model tells them apart.
        0x19 => "Raspberry Pi 500/500+",
        0x1a => "Raspberry Pi Compute Module 5 Lite",
        0x1b => "Raspberry Pi Compute Module 0",
        _ => return None,
    })
}

fn processor_name(processor: u32) -> Option<&'static str> {
    Some(match processor {
        0 => "BCM2835",
        1 => "BCM2836",
        2 => "BCM2837",
        3 => "BCM2711",
        4 => "BCM2712",
        _ => return None,
    })
}

fn manufacturer_name(manufacturer: u32) -> Option<&'static str> {
    Some(match manufacturer {
        0 => "Sony UK",
        1 => "Egoman",
        2 | 4 => "Embest",
        3 => "Sony Japan",
        5 => "Stadium",
        _ => return None,
    })
}

fn memory_text(bytes: u64) -> String {
    if bytes >= 1024 * MB {
        format!("{}GB", bytes / (1024 * MB))
    } else {
        format!("{}MB", bytes / MB)
    }
}

/// The first boards, by serial code: (model, board revision, memory in MB, manufacturer).
const OLD_STYLE: &[(u32, &str, &str, u64, &str)] = &[
    (0x0002, "Raspberry Pi Model B", "1.0", 256, "Egoman"),
    (0x0003, "Raspberry Pi Model B", "1.0", 256, "Egoman"),
    (0x0004, "Raspberry Pi Model B", "2.0", 256, "Sony UK"),
    (0x0005, "Raspberry Pi Model B", "2.0", 256, "Qisda"),
    (0x0006, "Raspberry Pi Model B", "2.0", 256, "Egoman"),
    (0x0007, "Raspberry Pi Model A", "2.0", 256, "Egoman"),
    (0x0008, "Raspberry Pi Model A", "2.0", 256, "Sony UK"),
    (0x0009, "Raspberry Pi Model A", "2.0", 256, "Qisda"),
    (0x000d, "Raspberry Pi Model B", "2.0", 512, "Egoman"),
    (0x000e, "Raspberry Pi Model B", "2.0", 512, "Sony UK"),
    (0x000f, "Raspberry Pi Model B", "2.0", 512, "Egoman"),
    (0x0010, "Raspberry Pi Model B+", "1.2", 512, "Sony UK"),
    (
        0x0011,
        "Raspberry Pi Compute Module 1",
        "1.0",
        512,
        "Sony UK",
    ),
    (0x0012, "Raspberry Pi Model A+", "1.1", 256, "Sony UK"),
    (0x0013, "Raspberry Pi Model B+", "1.2", 512, "Embest"),
    (
        0x0014,
        "Raspberry Pi Compute Module 1",
        "1.0",
        512,
        "Embest",
    ),
    // Sold with 256 MB and later 512 MB under the same code; the smaller is certain.
    (0x0015, "Raspberry Pi Model A+", "1.1", 256, "Embest"),
];

const WARRANTY_VOID: u32 = 1 << 24;

fn decode_old_style(code: u32) -> Option<Revision> {
    let serial = code & !WARRANTY_VOID;
    let &(_, model, board_revision, memory_mb, manufacturer) =
        OLD_STYLE.iter().find(|entry| entry.0 == serial)?;
    Some(Revision {
        code,
        model: model.to_string(),
        board_revision: board_revision.to_string(),
        soc: "BCM2835".to_string(),
        memory: memory_text(memory_mb * MB),
        memory_bytes: memory_mb * MB,
        manufacturer: manufacturer.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: u32, model: &str, rev: &str, soc: &str, memory: &str, maker: &str) {
        let decoded = decode(code).unwrap_or_else(|| panic!("{code:x} decodes"));
        assert_eq!(
            (
                decoded.model.as_str(),
                decoded.board_revision.as_str(),
                decoded.soc.as_str(),
                decoded.memory.as_str(),
                decoded.manufacturer.as_str()
            ),
            (model, rev, soc, memory, maker),
            "{code:06x}"
        );
    }

    #[test]
    fn new_style_codes_of_real_boards() {
        check(
            0x9000c1,
            "Raspberry Pi Zero W",
            "1.1",
            "BCM2835",
            "512MB",
            "Sony UK",
        );
        check(
            0xa020d3,
            "Raspberry Pi 3 Model B+",
            "1.3",
            "BCM2837",
            "1GB",
            "Sony UK",
        );
        check(
            0xa02082,
            "Raspberry Pi 3 Model B",
            "1.2",
            "BCM2837",
            "1GB",
            "Sony UK",
        );
        check(
            0xa22082,
            "Raspberry Pi 3 Model B",
            "1.2",
            "BCM2837",
            "1GB",
            "Embest",
        );
        check(
            0xa01041,
            "Raspberry Pi 2 Model B",
            "1.1",
            "BCM2836",
            "1GB",
            "Sony UK",
        );
        check(
            0xc03111,
            "Raspberry Pi 4 Model B",
            "1.1",
            "BCM2711",
            "4GB",
            "Sony UK",
        );
        check(
            0xc03115,
            "Raspberry Pi 4 Model B",
            "1.5",
            "BCM2711",
            "4GB",
            "Sony UK",
        );
        check(
            0xd03114,
            "Raspberry Pi 4 Model B",
            "1.4",
            "BCM2711",
            "8GB",
            "Sony UK",
        );
        check(
            0xc03141,
            "Raspberry Pi Compute Module 4",
            "1.1",
            "BCM2711",
            "4GB",
            "Sony UK",
        );
        check(
            0x902120,
            "Raspberry Pi Zero 2 W",
            "1.0",
            "BCM2837",
            "512MB",
            "Sony UK",
        );
        check(
            0xc03130,
            "Raspberry Pi 400",
            "1.0",
            "BCM2711",
            "4GB",
            "Sony UK",
        );
        check(
            0xd04170,
            "Raspberry Pi 5",
            "1.0",
            "BCM2712",
            "8GB",
            "Sony UK",
        );
        check(
            0xd04171,
            "Raspberry Pi 5",
            "1.1",
            "BCM2712",
            "8GB",
            "Sony UK",
        );
        check(
            0xe04171,
            "Raspberry Pi 5",
            "1.1",
            "BCM2712",
            "16GB",
            "Sony UK",
        );
        check(
            0xd04180,
            "Raspberry Pi Compute Module 5",
            "1.0",
            "BCM2712",
            "8GB",
            "Sony UK",
        );
        check(
            0xd04190,
            "Raspberry Pi 500/500+",
            "1.0",
            "BCM2712",
            "8GB",
            "Sony UK",
        );
        check(
            0xb041a0,
            "Raspberry Pi Compute Module 5 Lite",
            "1.0",
            "BCM2712",
            "2GB",
            "Sony UK",
        );
        check(
            0x9020e0,
            "Raspberry Pi 3 Model A+",
            "1.0",
            "BCM2837",
            "512MB",
            "Sony UK",
        );
        check(
            0x900093,
            "Raspberry Pi Zero",
            "1.3",
            "BCM2835",
            "512MB",
            "Sony UK",
        );
    }

    #[test]
    fn new_style_fields_decode_bit_by_bit() {
        // Type 0x2f, processor 5, manufacturer 9: none known, still decoded; memory 7 is
        // "other" (not 32GB).
        let code = NEW_STYLE | (7 << 20) | (9 << 16) | (5 << 12) | (0x2f << 4) | 0x2;
        let decoded = decode(code).unwrap();
        assert_eq!(decoded.model, "unknown type 0x2f");
        assert_eq!(decoded.soc, "unknown processor 5");
        assert_eq!(decoded.manufacturer, "unknown manufacturer 9");
        assert_eq!(decoded.memory, "other");
        assert_eq!(decoded.memory_bytes, 0);
        assert_eq!(decoded.board_revision, "1.2");
        assert_eq!(decode(NEW_STYLE | (6 << 20)).unwrap().memory, "16GB");
        // CM0 (type 0x1b, BCM2837, 512 MB).
        let cm0 = decode(0x9021b0).unwrap();
        assert_eq!(cm0.model, "Raspberry Pi Compute Module 0");
        assert_eq!(
            (cm0.soc.as_str(), cm0.memory.as_str()),
            ("BCM2837", "512MB")
        );
        // Stadium and the second Embest number.
        assert_eq!(decode(0xc53111).unwrap().manufacturer, "Stadium");
        assert_eq!(decode(0xa42082).unwrap().manufacturer, "Embest");
        assert_eq!(decode(0xa32082).unwrap().manufacturer, "Sony Japan");
        assert_eq!(decode(0xa12082).unwrap().manufacturer, "Egoman");
    }

    #[test]
    fn old_style_codes_use_the_table() {
        check(
            0x0002,
            "Raspberry Pi Model B",
            "1.0",
            "BCM2835",
            "256MB",
            "Egoman",
        );
        check(
            0x000e,
            "Raspberry Pi Model B",
            "2.0",
            "BCM2835",
            "512MB",
            "Sony UK",
        );
        check(
            0x0010,
            "Raspberry Pi Model B+",
            "1.2",
            "BCM2835",
            "512MB",
            "Sony UK",
        );
        check(
            0x0014,
            "Raspberry Pi Compute Module 1",
            "1.0",
            "BCM2835",
            "512MB",
            "Embest",
        );
        check(
            0x0015,
            "Raspberry Pi Model A+",
            "1.1",
            "BCM2835",
            "256MB",
            "Embest",
        );
        // Warranty bit set by overvolting.
        check(
            0x100000e,
            "Raspberry Pi Model B",
            "2.0",
            "BCM2835",
            "512MB",
            "Sony UK",
        );
        assert_eq!(decode(0x100000e).unwrap().code, 0x100000e);
        for unknown in [0x0000, 0x0001, 0x000a, 0x0016, 0x7fffff] {
            assert!(decode(unknown).is_none(), "{unknown:x}");
        }
    }

    #[test]
    fn codes_parse_as_cpuinfo_prints_them() {
        assert_eq!(parse_code("c03111"), Some(0xc03111));
        assert_eq!(parse_code(" 0x9000C1\n"), Some(0x9000c1));
        assert_eq!(parse_code("1000002"), Some(0x1000002));
        assert_eq!(parse_code("0002"), Some(2));
        for bad in ["", "0x", "xyz", "123456789", "-1", "c0 3111"] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
    }
}
