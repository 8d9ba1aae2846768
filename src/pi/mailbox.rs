//! The VideoCore mailbox property interface: the message codec (pure) and the `Mailbox` trait
//! the ioctl device and the replay double implement.
//!
//! A message is a buffer of u32 words in host byte order, a multiple of 16 bytes long:
//! `[total size in bytes, code, tag id, value buffer size in bytes, request/response word,
//! value words..., 0 (end tag), padding]`. The code is 0 in a request, 0x80000000 when the
//! firmware processed it, 0x80000001 on error. The firmware sets bit 31 of the
//! request/response word and the value length (bytes) in the other bits of a tag it answered.
//!
//! One tag per message: when the firmware fails any tag the kernel fails the whole buffer, so
//! one rejected tag must cost one value, not all of them.

use std::fmt;
use std::io;

pub const CODE_REQUEST: u32 = 0;
pub const CODE_SUCCESS: u32 = 0x8000_0000;
pub const CODE_ERROR: u32 = 0x8000_0001;
pub const RESPONSE_BIT: u32 = 0x8000_0000;
const END_TAG: u32 = 0;
/// Words before the value buffer: size, code, tag id, value buffer size, request/response.
const HEADER_WORDS: usize = 5;

/// The property tags pimetrics uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    BoardRevision,
    ClockRate,
    ClockRateMeasured,
    Voltage,
    MaxVoltage,
    MinVoltage,
    Temperature,
    MaxTemperature,
    Throttled,
    Gencmd,
}

impl Tag {
    pub const ALL: [Tag; 10] = [
        Tag::BoardRevision,
        Tag::ClockRate,
        Tag::ClockRateMeasured,
        Tag::Voltage,
        Tag::MaxVoltage,
        Tag::MinVoltage,
        Tag::Temperature,
        Tag::MaxTemperature,
        Tag::Throttled,
        Tag::Gencmd,
    ];

    pub fn id(self) -> u32 {
        match self {
            Tag::BoardRevision => 0x0001_0002,
            Tag::ClockRate => 0x0003_0002,
            Tag::ClockRateMeasured => 0x0003_0047,
            Tag::Voltage => 0x0003_0003,
            Tag::MaxVoltage => 0x0003_0005,
            Tag::MinVoltage => 0x0003_0008,
            Tag::Temperature => 0x0003_0006,
            Tag::MaxTemperature => 0x0003_000a,
            Tag::Throttled => 0x0003_0046,
            Tag::Gencmd => 0x0003_0080,
        }
    }

    /// The name used in labels and logs (the firmware wiki's names, snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Tag::BoardRevision => "get_board_revision",
            Tag::ClockRate => "get_clock_rate",
            Tag::ClockRateMeasured => "get_clock_rate_measured",
            Tag::Voltage => "get_voltage",
            Tag::MaxVoltage => "get_max_voltage",
            Tag::MinVoltage => "get_min_voltage",
            Tag::Temperature => "get_temperature",
            Tag::MaxTemperature => "get_max_temperature",
            Tag::Throttled => "get_throttled",
            Tag::Gencmd => "gencmd",
        }
    }
}

/// Why a response buffer is not a valid answer to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer words than the smallest message (header, end tag).
    TooShort {
        words: usize,
    },
    /// The size word does not match the buffer.
    SizeMismatch {
        declared: u32,
        actual: usize,
    },
    /// Code 0x80000001: the firmware failed to parse the request.
    FirmwareError,
    /// A code that is neither success nor error (0: nobody processed the buffer).
    UnexpectedCode(u32),
    WrongTag {
        expected: u32,
        found: u32,
    },
    /// The firmware did not set the response bit: it does not know the tag.
    NotAnswered,
    /// The value buffer does not fit in the message.
    BadValueBuffer {
        size: u32,
    },
    /// Shorter than the tag's answer must be.
    ShortValue {
        length: u32,
        needed: u32,
    },
    MissingEndTag,
    /// The firmware answered about another clock, voltage or sensor id.
    WrongId {
        expected: u32,
        found: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { words } => write!(f, "response of {words} words is too short"),
            DecodeError::SizeMismatch { declared, actual } => write!(
                f,
                "response declares {declared} bytes in a buffer of {actual}"
            ),
            DecodeError::FirmwareError => f.write_str("firmware error (code 0x80000001)"),
            DecodeError::UnexpectedCode(code) => write!(f, "unexpected response code {code:#010x}"),
            DecodeError::WrongTag { expected, found } => {
                write!(f, "response tag {found:#010x}, expected {expected:#010x}")
            }
            DecodeError::NotAnswered => f.write_str("tag not answered (unknown to the firmware)"),
            DecodeError::BadValueBuffer { size } => {
                write!(f, "value buffer of {size} bytes does not fit the message")
            }
            DecodeError::ShortValue { length, needed } => {
                write!(f, "answer of {length} bytes, expected {needed}")
            }
            DecodeError::MissingEndTag => f.write_str("end tag missing"),
            DecodeError::WrongId { expected, found } => {
                write!(f, "answer about id {found}, asked about {expected}")
            }
        }
    }
}

/// Builds a one-tag request into `out` (cleared first): `request` words at the start of a value
/// buffer of at least `value_buffer_bytes` (rounded up to whole words, and at least as long as
/// the request), the end tag, zero padding to a multiple of 16 bytes.
pub fn build_request_into(
    out: &mut Vec<u32>,
    tag: u32,
    request: &[u32],
    value_buffer_bytes: usize,
) {
    let value_words = value_buffer_bytes.div_ceil(4).max(request.len());
    let words = (HEADER_WORDS + value_words + 1).next_multiple_of(4);
    out.clear();
    out.extend_from_slice(&[
        (words * 4) as u32,
        CODE_REQUEST,
        tag,
        (value_words * 4) as u32,
        // Request: bit 31 clear, the rest reserved; 0 as the kernel's own driver sends it.
        0,
    ]);
    out.extend_from_slice(request);
    out.resize(HEADER_WORDS + value_words, 0);
    out.push(END_TAG);
    out.resize(words, 0);
}

pub fn build_request(tag: u32, request: &[u32], value_buffer_bytes: usize) -> Vec<u32> {
    let mut out = Vec::new();
    build_request_into(&mut out, tag, request, value_buffer_bytes);
    out
}

/// Checks a response buffer and returns the tag's value words (as many as the answer's length
/// covers) and that length in bytes.
///
/// An answer longer than the value buffer is cut to the buffer and the length says the full
/// length (the property interface's rule): the words that fit are returned, readable, with
/// the full length; the caller decides whether a cut answer is enough.
pub fn decode_response(buffer: &[u32], tag: u32) -> Result<(&[u32], u32), DecodeError> {
    if buffer.len() < HEADER_WORDS + 1 {
        return Err(DecodeError::TooShort {
            words: buffer.len(),
        });
    }
    let word = |index: usize| buffer.get(index).copied().unwrap_or(0);
    if word(0) as usize != buffer.len() * 4 {
        return Err(DecodeError::SizeMismatch {
            declared: word(0),
            actual: buffer.len() * 4,
        });
    }
    match word(1) {
        CODE_SUCCESS => {}
        CODE_ERROR => return Err(DecodeError::FirmwareError),
        other => return Err(DecodeError::UnexpectedCode(other)),
    }
    if word(2) != tag {
        return Err(DecodeError::WrongTag {
            expected: tag,
            found: word(2),
        });
    }
    let capacity = word(3);
    let value_words = (capacity as usize).div_ceil(4);
    let end = HEADER_WORDS
        .checked_add(value_words)
        .filter(|&end| end < buffer.len())
        .ok_or(DecodeError::BadValueBuffer { size: capacity })?;
    let status = word(4);
    if status & RESPONSE_BIT == 0 {
        return Err(DecodeError::NotAnswered);
    }
    let length = status & !RESPONSE_BIT;
    if word(end) != END_TAG {
        return Err(DecodeError::MissingEndTag);
    }
    let answered = HEADER_WORDS + (length.min(capacity) as usize).div_ceil(4);
    Ok((buffer.get(HEADER_WORDS..answered).unwrap_or(&[]), length))
}

/// Something that performs a mailbox property call in place: the `/dev/vcio` ioctl, or a
/// replay of recorded answers.
pub trait Mailbox: Send {
    /// Sends `buffer` (a built request) and leaves the firmware's response in it. An error is
    /// the kernel refusing the call (EINVAL when the firmware failed the tag, EACCES...).
    fn call(&mut self, buffer: &mut [u32]) -> io::Result<()>;
}

/// Why a query gave no value.
#[derive(Debug)]
pub enum QueryError {
    Io(io::Error),
    Decode(DecodeError),
    /// A gencmd command answered with an error.
    Command(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Io(err) => write!(f, "{err}"),
            QueryError::Decode(err) => write!(f, "{err}"),
            QueryError::Command(msg) => f.write_str(msg),
        }
    }
}

/// A mailbox plus a reused message buffer, with one method per kind of query.
pub struct Client {
    mailbox: Box<dyn Mailbox>,
    buffer: Vec<u32>,
}

impl Client {
    pub fn new(mailbox: Box<dyn Mailbox>) -> Client {
        Client {
            mailbox,
            buffer: Vec::with_capacity(16),
        }
    }

    /// One tag, one call; the value words of the answer.
    pub fn query(
        &mut self,
        tag: Tag,
        request: &[u32],
        value_buffer_bytes: usize,
    ) -> Result<(&[u32], u32), QueryError> {
        build_request_into(&mut self.buffer, tag.id(), request, value_buffer_bytes);
        self.mailbox
            .call(&mut self.buffer)
            .map_err(QueryError::Io)?;
        decode_response(&self.buffer, tag.id()).map_err(QueryError::Decode)
    }

    /// One tag, one call, and the whole value buffer (capacity bytes) with the answer's length:
    /// for text answers, whose length the firmware does not always set.
    pub fn query_buffer(
        &mut self,
        tag: Tag,
        request: &[u32],
        value_buffer_bytes: usize,
    ) -> Result<(&[u32], u32), QueryError> {
        let (_, length) = self.query(tag, request, value_buffer_bytes)?;
        let capacity = self.buffer.get(3).copied().unwrap_or(0) as usize;
        let value = self
            .buffer
            .get(HEADER_WORDS..HEADER_WORDS + capacity.div_ceil(4))
            .unwrap_or(&[]);
        Ok((value, length))
    }

    /// Tags that take an id and answer `[id, value]`: clocks, voltages, temperatures.
    pub fn value_of(&mut self, tag: Tag, id: u32) -> Result<u32, QueryError> {
        let (words, length) = self.query(tag, &[id, 0], 8)?;
        match words {
            [answered_id, value, ..] if length >= 8 => {
                if *answered_id != id {
                    return Err(QueryError::Decode(DecodeError::WrongId {
                        expected: id,
                        found: *answered_id,
                    }));
                }
                Ok(*value)
            }
            _ => Err(QueryError::Decode(DecodeError::ShortValue {
                length,
                needed: 8,
            })),
        }
    }

    /// Tags that answer one word: board revision (no request), throttled (a mask).
    pub fn word(&mut self, tag: Tag, request: &[u32]) -> Result<u32, QueryError> {
        let (words, length) = self.query(tag, request, 4)?;
        match words.first() {
            Some(value) if length >= 4 => Ok(*value),
            _ => Err(QueryError::Decode(DecodeError::ShortValue {
                length,
                needed: 4,
            })),
        }
    }

    pub fn throttled(&mut self) -> Result<u32, QueryError> {
        // Mask 0: read only. (The kernel's hwmon driver sends 0xffff to clear the sticky bits
        // it polls; a reader must not clear anything.)
        self.word(Tag::Throttled, &[0])
    }

    pub fn board_revision(&mut self) -> Result<u32, QueryError> {
        self.word(Tag::BoardRevision, &[])
    }
}

/// Firmware clock ids (get_clock_rate, get_clock_rate_measured), with their label names.
pub const CLOCKS: &[(u32, &str)] = &[
    (1, "emmc"),
    (2, "uart"),
    (3, "arm"),
    (4, "core"),
    (5, "v3d"),
    (6, "h264"),
    (7, "isp"),
    (8, "sdram"),
    (9, "pixel"),
    (10, "pwm"),
    (11, "hevc"),
    (12, "emmc2"),
    (13, "m2mc"),
    (14, "pixel_bvb"),
    (15, "vec"),
    // BCM2712 (Pi 5) only.
    (16, "disp"),
];

/// Firmware voltage ids (get_voltage, get_min_voltage, get_max_voltage): P before I.
pub const VOLTAGES: &[(u32, &str)] = &[(1, "core"), (2, "sdram_c"), (3, "sdram_p"), (4, "sdram_i")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_word_by_word() {
        // get_temperature of sensor 0: 5 header words, 2 value words, end tag, pad to 8 words.
        assert_eq!(
            build_request(0x0003_0006, &[0, 0], 8),
            [32, 0, 0x0003_0006, 8, 0, 0, 0, 0]
        );
        // get_board_revision: no request words, a one-word answer buffer; 7 words -> 8.
        assert_eq!(
            build_request(0x0001_0002, &[], 4),
            [32, 0, 0x0001_0002, 4, 0, 0, 0, 0]
        );
        // get_throttled with mask 0.
        assert_eq!(
            build_request(0x0003_0046, &[0], 4),
            [32, 0, 0x0003_0046, 4, 0, 0, 0, 0]
        );
        // A clock id fills the first value word; the buffer is rounded to whole words and
        // never shorter than the request.
        assert_eq!(
            build_request(0x0003_0047, &[3, 0], 5),
            [32, 0, 0x0003_0047, 8, 0, 3, 0, 0]
        );
        let long = build_request(0x0003_0080, &[0, 0x6d70_6f76], 16);
        assert_eq!(long.len(), 12);
        assert_eq!(&long[..7], &[48, 0, 0x0003_0080, 16, 0, 0, 0x6d70_6f76]);
        assert_eq!(&long[7..], &[0, 0, 0, 0, 0]);
        for words in [&build_request(1, &[], 0)[..], &long] {
            assert_eq!(words.len() % 4, 0, "16-byte multiple");
            assert_eq!(words[0] as usize, words.len() * 4);
        }
    }

    fn response(tag: u32, values: &[u32], capacity: u32, length: u32) -> Vec<u32> {
        let mut words = build_request(tag, values, capacity as usize);
        words[1] = CODE_SUCCESS;
        words[4] = RESPONSE_BIT | length;
        words
    }

    #[test]
    fn decodes_a_valid_answer() {
        let answer = [
            32,
            CODE_SUCCESS,
            0x0003_0006,
            8,
            RESPONSE_BIT | 8,
            0,
            54768,
            0,
        ];
        assert_eq!(
            decode_response(&answer, 0x0003_0006),
            Ok((&[0, 54768][..], 8))
        );
        // A short answer returns only the answered words.
        let answer = response(0x0003_0080, &[0, 0x4142_4344, 0], 12, 5);
        assert_eq!(
            decode_response(&answer, 0x0003_0080),
            Ok((&[0, 0x4142_4344][..], 5))
        );
    }

    #[test]
    fn rejects_bad_answers() {
        let good = response(0x0003_0006, &[0, 1], 8, 8);
        let tag = 0x0003_0006;
        let with = |index: usize, value: u32| {
            let mut words = good.clone();
            words[index] = value;
            words
        };
        assert_eq!(
            decode_response(&good[..5], tag),
            Err(DecodeError::TooShort { words: 5 })
        );
        assert_eq!(
            decode_response(&with(0, 36), tag),
            Err(DecodeError::SizeMismatch {
                declared: 36,
                actual: 32
            })
        );
        assert_eq!(
            decode_response(&with(1, CODE_ERROR), tag),
            Err(DecodeError::FirmwareError)
        );
        assert_eq!(
            decode_response(&with(1, CODE_REQUEST), tag),
            Err(DecodeError::UnexpectedCode(0))
        );
        assert_eq!(
            decode_response(&with(2, 0x0003_000a), tag),
            Err(DecodeError::WrongTag {
                expected: tag,
                found: 0x0003_000a
            })
        );
        assert_eq!(
            decode_response(&with(3, 64), tag),
            Err(DecodeError::BadValueBuffer { size: 64 })
        );
        assert_eq!(
            decode_response(&with(3, u32::MAX), tag),
            Err(DecodeError::BadValueBuffer { size: u32::MAX })
        );
        assert_eq!(
            decode_response(&with(4, 8), tag),
            Err(DecodeError::NotAnswered)
        );
        // Longer than the buffer: cut to it, still readable, with the full length.
        assert_eq!(
            decode_response(&with(4, RESPONSE_BIT | 12), tag),
            Ok((&[0, 1][..], 12))
        );
        assert_eq!(
            decode_response(&with(7, 0xdead), tag),
            Err(DecodeError::MissingEndTag)
        );
    }

    struct Echo(Vec<u32>);
    impl Mailbox for Echo {
        fn call(&mut self, buffer: &mut [u32]) -> io::Result<()> {
            if self.0.len() != buffer.len() {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            buffer.copy_from_slice(&self.0);
            Ok(())
        }
    }

    #[test]
    fn client_checks_the_answered_id_and_length() {
        let mut client = Client::new(Box::new(Echo(response(
            0x0003_0047,
            &[3, 1_500_398_464],
            8,
            8,
        ))));
        assert_eq!(
            client.value_of(Tag::ClockRateMeasured, 3).unwrap(),
            1_500_398_464
        );
        assert!(matches!(
            client.value_of(Tag::ClockRateMeasured, 4),
            Err(QueryError::Decode(DecodeError::WrongId {
                expected: 4,
                found: 3
            }))
        ));
        let mut client = Client::new(Box::new(Echo(response(0x0003_0047, &[3, 7], 8, 4))));
        assert!(matches!(
            client.value_of(Tag::ClockRateMeasured, 3),
            Err(QueryError::Decode(DecodeError::ShortValue {
                length: 4,
                needed: 8
            }))
        ));
        let mut client = Client::new(Box::new(Echo(vec![0; 3])));
        assert!(matches!(client.throttled(), Err(QueryError::Io(_))));
    }
}
