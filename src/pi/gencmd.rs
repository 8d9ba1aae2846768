//! gencmd, the firmware's text commands (what `vcgencmd` sends), over mailbox tag 0x00030080
//! (through /dev/vcio, or /dev/vcio_gencmd, which accepts only this tag), and the parsers of
//! the answers pimetrics uses: `measure_temp`, `get_throttled`, `measure_clock X`,
//! `measure_volts X`, and the Pi 5's `pmic_read_adc`.
//!
//! Value buffer: word 0 is the command's result code (0 in the request), the text starts at
//! byte 4 of the value buffer (byte 24 of the message), NUL-terminated, in both directions.
//!
//! This module builds on `mailbox` (the codec and the client); `mailbox` knows nothing of it.

use super::mailbox::{Client, DecodeError, QueryError, Tag};

/// Sends a gencmd text command (as vcgencmd does) and returns the answer's text. An answer
/// that is an error (`error=1 error_msg="Command not registered"`, or a non-zero result code)
/// is an error.
pub fn call(client: &mut Client, command: &str) -> Result<String, QueryError> {
    let request = request_words(command);
    let capacity = ANSWER_CAPACITY.max(request.len() * 4);
    let (value, length) = client.query_buffer(Tag::Gencmd, &request, capacity)?;
    let answer = decode_answer(value, length).map_err(QueryError::Decode)?;
    if let Some(message) = error_message(&answer.text) {
        return Err(QueryError::Command(format!("{command}: {message}")));
    }
    if answer.code != 0 {
        return Err(QueryError::Command(format!(
            "{command}: result code {}",
            answer.code
        )));
    }
    Ok(answer.text)
}

/// The value after `key=` in an answer such as `temp=46.3'C`, without the unit `suffix`.
fn value_after<'a>(text: &'a str, key: &str, suffix: &str) -> Option<&'a str> {
    let value = text.trim().strip_prefix(key)?.strip_prefix('=')?.trim();
    Some(value.strip_suffix(suffix).unwrap_or(value).trim())
}

/// `measure_temp`: `temp=46.3'C` -> 46.3 (degrees Celsius).
pub fn parse_temperature(text: &str) -> Option<f64> {
    value_after(text, "temp", "'C")?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// `get_throttled`: `throttled=0x50000` -> 0x50000.
pub fn parse_throttled(text: &str) -> Option<u32> {
    let value = value_after(text, "throttled", "")?;
    let hex = value.strip_prefix("0x").unwrap_or(value);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// `measure_clock arm`: `frequency(48)=1500398464` -> (48, 1500398464 Hz). The number in
/// brackets is the firmware's own clock number (0 for a clock it does not know), not the
/// property interface's clock id.
pub fn parse_clock(text: &str) -> Option<(u32, u64)> {
    let rest = text.trim().strip_prefix("frequency(")?;
    let (number, value) = rest.split_once(")=")?;
    Some((number.trim().parse().ok()?, value.trim().parse().ok()?))
}

/// `measure_volts core`: `volt=0.8500V` -> 0.85 (volts).
pub fn parse_volts(text: &str) -> Option<f64> {
    value_after(text, "volt", "V")?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Bytes reserved for an answer: `pmic_read_adc` prints about 26 lines of 35 characters.
pub const ANSWER_CAPACITY: usize = 4096;

/// The request's value words: the result-code slot, then the command, NUL-terminated, packed
/// in host byte order as the firmware reads bytes.
pub fn request_words(command: &str) -> Vec<u32> {
    let mut bytes = command.as_bytes().to_vec();
    bytes.push(0);
    let mut words = vec![0u32];
    words.extend(bytes.chunks(4).map(|chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        u32::from_ne_bytes(word)
    }));
    words
}

/// The answer of a gencmd call: its result code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: u32,
    pub text: String,
}

/// Decodes the value words of a gencmd answer of `length` bytes. Lines may be separated by
/// newlines or NULs; when the firmware gives no usable length, the text ends at the first NUL
/// (as vcgencmd reads it).
pub fn decode_answer(words: &[u32], length: u32) -> Result<Answer, DecodeError> {
    let Some((&code, text_words)) = words.split_first() else {
        return Err(DecodeError::ShortValue { length, needed: 4 });
    };
    let bytes: Vec<u8> = text_words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let text_len = (length as usize).saturating_sub(4).min(bytes.len());
    let text_bytes = if text_len > 0 {
        &bytes[..text_len]
    } else {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        &bytes[..end]
    };
    let text: String = String::from_utf8_lossy(text_bytes)
        .split('\0')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Answer {
        code,
        text: text.trim_end().to_string(),
    })
}

/// An answer such as `error=1 error_msg="Command not registered"`.
pub fn error_message(text: &str) -> Option<&str> {
    let rest = text.trim().strip_prefix("error=")?;
    Some(
        rest.split_once("error_msg=")
            .map(|(_, msg)| msg.trim().trim_matches('"'))
            .unwrap_or(rest),
    )
}

/// One PMIC rail: voltage and, except for EXT5V and BATT, current.
#[derive(Debug, Clone, PartialEq)]
pub struct Rail {
    pub name: String,
    pub volts: Option<f64>,
    pub amperes: Option<f64>,
}

/// Parses `pmic_read_adc`: `VDD_CORE_A current(7)=0.56259000A`, `VDD_CORE_V volt(15)=0.7679V`.
/// Current and voltage channels of a rail have different numbers: rails pair by name. Values
/// may read `nan`. Lines that fit neither form are skipped. Rails keep the firmware's order.
pub fn parse_pmic(text: &str) -> Vec<Rail> {
    let mut rails: Vec<Rail> = Vec::new();
    for line in text.split(['\n', '\0']) {
        let Some((name, quantity, value)) = parse_pmic_line(line) else {
            continue;
        };
        let index = match rails.iter().position(|r| r.name == name) {
            Some(index) => index,
            None => {
                rails.push(Rail {
                    name: name.to_string(),
                    volts: None,
                    amperes: None,
                });
                rails.len() - 1
            }
        };
        if let Some(rail) = rails.get_mut(index) {
            match quantity {
                Quantity::Volts => rail.volts = Some(value),
                Quantity::Amperes => rail.amperes = Some(value),
            }
        }
    }
    rails
}

enum Quantity {
    Volts,
    Amperes,
}

fn parse_pmic_line(line: &str) -> Option<(&str, Quantity, f64)> {
    let (channel, reading) = line.trim().split_once(char::is_whitespace)?;
    let (kind, value) = reading.trim().split_once('=')?;
    let (quantity, name, unit) = if kind.starts_with("current(") {
        (Quantity::Amperes, channel.strip_suffix("_A")?, 'A')
    } else if kind.starts_with("volt(") {
        (Quantity::Volts, channel.strip_suffix("_V")?, 'V')
    } else {
        return None;
    };
    let number = value.trim().strip_suffix(unit).unwrap_or(value.trim());
    let value = if number.to_ascii_lowercase().contains("nan") {
        f64::NAN
    } else {
        number.parse::<f64>().ok().filter(|v| v.is_finite())?
    };
    (!name.is_empty()).then_some((name, quantity, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vcgencmd pmic_read_adc` on a Pi 5, captured live and quoted verbatim in a public
    /// exporter's test suite (leading spaces, channel numbers out of order, volt-only EXT5V
    /// and BATT all as the firmware prints them).
    pub const PI5_PMIC: &str = include_str!("../../tests/fixtures/pi5/pmic_read_adc.txt");

    #[test]
    fn pairs_real_pi5_rails_by_name() {
        let rails = parse_pmic(PI5_PMIC);
        assert_eq!(rails.len(), 14);
        let names: Vec<_> = rails.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "3V7_WL_SW",
                "3V3_SYS",
                "1V8_SYS",
                "DDR_VDD2",
                "DDR_VDDQ",
                "1V1_SYS",
                "0V8_SW",
                "VDD_CORE",
                "3V3_DAC",
                "3V3_ADC",
                "0V8_AON",
                "HDMI",
                "EXT5V",
                "BATT"
            ]
        );
        let core = &rails[7];
        assert_eq!(core.amperes, Some(0.56259));
        assert_eq!(core.volts, Some(0.7679846));
        let ext5v = &rails[12];
        assert_eq!((ext5v.volts, ext5v.amperes), (Some(5.14158), None));
        assert_eq!(rails[13].volts, Some(3.280339));
    }

    #[test]
    fn nul_separated_nan_and_garbage() {
        let rails = parse_pmic(
            "VDD_CORE_A current(7)=nanA\0VDD_CORE_V volt(15)=0.86173300V\0EXT5V_V volt(24)=-nanV\0\
             junk\0X_V volt(1)=1.5\0Y_A volt(2)=1V\0Z_V current(3)=1A\0_V volt(4)=1V\0W_V volt(5)=abcV\0\
             Q_V volt(6)=infV",
        );
        assert_eq!(rails.len(), 3, "{rails:?}");
        assert!(rails[0].amperes.unwrap().is_nan());
        assert_eq!(rails[0].volts, Some(0.861733));
        assert!(rails[1].volts.unwrap().is_nan());
        assert_eq!(rails[2].name, "X");
        assert_eq!(rails[2].volts, Some(1.5));
        assert!(parse_pmic("").is_empty());
        assert!(parse_pmic("error=1 error_msg=\"Command not registered\"").is_empty());
    }

    #[test]
    fn text_answers_of_vcgencmd() {
        assert_eq!(parse_temperature("temp=46.3'C"), Some(46.3));
        assert_eq!(parse_temperature("temp=54.768'C\n"), Some(54.768));
        assert_eq!(parse_throttled("throttled=0x50000"), Some(0x50000));
        assert_eq!(parse_throttled("throttled=0x0"), Some(0));
        assert_eq!(
            parse_clock("frequency(48)=1500398464"),
            Some((48, 1_500_398_464))
        );
        assert_eq!(parse_clock("frequency(0)=0"), Some((0, 0)));
        assert_eq!(parse_volts("volt=0.8500V"), Some(0.85));
        assert_eq!(parse_volts("volt=1.1000V"), Some(1.1));
        for bad in [
            "",
            "temp=",
            "temp=hot'C",
            "temp=inf'C",
            "throttled=0x123456789",
            "throttled=zz",
            "frequency(x)=1",
            "frequency(1)=-1",
            "frequency(1=2",
            "volt=V",
            "error=1 error_msg=\"Command not registered\"",
        ] {
            assert_eq!(parse_temperature(bad), None, "{bad:?}");
            assert_eq!(parse_throttled(bad), None, "{bad:?}");
            assert_eq!(parse_clock(bad), None, "{bad:?}");
            assert_eq!(parse_volts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_packs_the_command_after_the_code_slot() {
        let words = request_words("pmic_read_adc");
        assert_eq!(words.len(), 1 + 14usize.div_ceil(4));
        assert_eq!(words[0], 0);
        let bytes: Vec<u8> = words[1..].iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(&bytes[..14], b"pmic_read_adc\0");
        assert_eq!(&bytes[14..], &[0, 0]);
        assert_eq!(request_words("").len(), 2);
    }

    fn text_words(code: u32, text: &[u8], words: usize) -> Vec<u32> {
        let mut bytes = text.to_vec();
        bytes.resize(words * 4, 0);
        std::iter::once(code)
            .chain(
                bytes
                    .chunks(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
            )
            .collect()
    }

    #[test]
    fn answers_decode_by_length_or_first_nul() {
        let words = text_words(0, b"temp=46.6'C\0leftover", 8);
        assert_eq!(
            decode_answer(&words, 4 + 12).unwrap(),
            Answer {
                code: 0,
                text: "temp=46.6'C".into()
            }
        );
        assert_eq!(decode_answer(&words, 0).unwrap().text, "temp=46.6'C");
        let words = text_words(0, b"A_V volt(1)=1V\0B_V volt(2)=2V\0", 8);
        assert_eq!(
            decode_answer(&words, 4 + 30).unwrap().text,
            "A_V volt(1)=1V\nB_V volt(2)=2V"
        );
        let words = text_words(1, b"error=1 error_msg=\"Command not registered\"", 12);
        let answer = decode_answer(&words, 48).unwrap();
        assert_eq!(answer.code, 1);
        assert_eq!(error_message(&answer.text), Some("Command not registered"));
        assert_eq!(error_message("temp=1"), None);
        assert!(decode_answer(&[], 0).is_err());
        // Longer than the buffer (the length says so): the part that fits is read.
        let words = text_words(0, b"A_V volt(1)=1V\0B_V vo", 6);
        assert_eq!(
            decode_answer(&words, 4 + 4000).unwrap().text,
            "A_V volt(1)=1V\nB_V vo"
        );
        assert_eq!(decode_answer(&[0], 999).unwrap().text, "");
    }
}
