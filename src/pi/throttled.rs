//! The firmware's throttled bitmask (`vcgencmd get_throttled`, mailbox tag 0x00030046, sysfs
//! `get_throttled`): bits 0-3 conditions now, bits 16-19 the same conditions since boot.

/// The four conditions, with their label value, in bit order.
pub const CONDITIONS: [&str; 4] = [
    "under_voltage",
    "arm_frequency_capped",
    "throttled",
    "soft_temperature_limit",
];

/// `(condition, now, since_boot)` for each condition.
pub fn decode(mask: u32) -> [(&'static str, bool, bool); 4] {
    let mut out = [("", false, false); 4];
    for (bit, (slot, name)) in out.iter_mut().zip(CONDITIONS).enumerate() {
        *slot = (name, mask & (1 << bit) != 0, mask & (1 << (bit + 16)) != 0);
    }
    out
}

/// Parses the sysfs attribute: hexadecimal without `0x` and a newline (`80008`, `0`).
pub fn parse_sysfs(text: &str) -> Option<u32> {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let hex = text.strip_prefix("0x").unwrap_or(text);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        let d = decode(0x50000);
        assert_eq!(d[0], ("under_voltage", false, true));
        assert_eq!(d[1], ("arm_frequency_capped", false, false));
        assert_eq!(d[2], ("throttled", false, true));
        let d = decode(0x50005);
        assert_eq!(d[0], ("under_voltage", true, true));
        assert_eq!(d[2], ("throttled", true, true));
        let d = decode(0x80008);
        assert_eq!(d[3], ("soft_temperature_limit", true, true));
        assert!(d[..3].iter().all(|&(_, now, since)| !now && !since));
        assert!(decode(0).iter().all(|&(_, now, since)| !now && !since));
        // Bits outside the documented ones are ignored here (the raw value keeps them).
        assert!(decode(0xfff0_fff0)
            .iter()
            .all(|&(_, now, since)| !now && !since));
    }

    #[test]
    fn sysfs_text() {
        assert_eq!(parse_sysfs("80000\n"), Some(0x80000));
        assert_eq!(parse_sysfs("80008\n"), Some(0x80008));
        assert_eq!(parse_sysfs("0\n"), Some(0));
        assert_eq!(parse_sysfs("0x50005"), Some(0x50005));
        for bad in ["", "\n", "zz", "123456789", "-1"] {
            assert_eq!(parse_sysfs(bad), None, "{bad:?}");
        }
    }
}
