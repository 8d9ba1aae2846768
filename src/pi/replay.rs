//! A mailbox that replays recorded request/response buffers instead of calling the firmware:
//! the test double of `/dev/vcio`, and a way for users to check what pimetrics makes of
//! answers recorded on their Pi (config `pi.mailbox_replay`).
//!
//! Text format, one exchange per pair of lines, `#` starts a comment line:
//!
//! ```text
//! # get_temperature: 54.768 C
//! request  00000020 00000000 00030006 00000008 00000000 00000000 00000000 00000000
//! response 00000020 80000000 00030006 00000008 80000008 00000000 0000d5f0 00000000
//! # the firmware fails the tag: the kernel answers EINVAL
//! request  00000020 00000000 00030005 00000008 00000000 00000002 00000000 00000000
//! error    EINVAL
//! ```
//!
//! A word is hexadecimal (`0x` optional). Two shorthands keep text answers readable:
//! `"text"` is its bytes packed into words in host byte order, zero-padded to a whole word
//! (`\n`, `\0`, `\"`, `\\` escapes), and `0*N` is N zero words. A request matches when every
//! word is equal; a request with no recorded answer fails with an error naming its tag.
//!
//! Bounded: a file over `MAX_FILE_BYTES` is refused before it is read, a message over
//! `MAX_MESSAGE_WORDS` words or a file expanding to over `MAX_TOTAL_WORDS` is an error, and a
//! call costs no memory (nothing is recorded per call).

use std::io::{self, Read};
use std::path::Path;

use super::mailbox::Mailbox;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Response(Vec<u32>),
    Errno(i32),
}

/// Largest replay file read (a recorded Pi needs about 60 KB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Largest message: a gencmd buffer of 4 KiB is about 1,030 words.
pub const MAX_MESSAGE_WORDS: usize = 4096;
/// Most words in all messages of a file together (16 MiB).
pub const MAX_TOTAL_WORDS: usize = 1 << 22;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    exchanges: Vec<(Vec<u32>, Outcome)>,
    /// How many calls were made (for tests); a count, so a long-running agent does not grow.
    pub calls: u64,
}

impl Replay {
    pub fn load(path: &Path) -> Result<Replay, String> {
        let fail = |err: String| format!("{}: {err}", path.display());
        let file = std::fs::File::open(path).map_err(|err| fail(err.to_string()))?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|err| fail(err.to_string()))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(fail(format!(
                "larger than {MAX_FILE_BYTES} bytes: not a replay file"
            )));
        }
        Replay::parse(&text).map_err(|err| format!("{}:{err}", path.display()))
    }

    /// Parses the text format; errors start with the line number.
    pub fn parse(text: &str) -> Result<Replay, String> {
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("0: larger than {MAX_FILE_BYTES} bytes"));
        }
        let mut total_words = 0usize;
        let mut replay = Replay::default();
        let mut pending: Option<(usize, Vec<u32>)> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let fail = |msg: String| format!("{number}: {msg}");
            let words_of = |rest: &str, total: &mut usize| -> Result<Vec<u32>, String> {
                let words = parse_words(rest).map_err(fail)?;
                *total += words.len();
                if *total > MAX_TOTAL_WORDS {
                    return Err(fail(format!(
                        "the file's messages exceed {MAX_TOTAL_WORDS} words"
                    )));
                }
                Ok(words)
            };
            match (keyword, pending.take()) {
                ("request", None) => {
                    let words = words_of(rest, &mut total_words)?;
                    if words.first().map(|&w| w as usize) != Some(words.len() * 4) {
                        return Err(fail(format!(
                            "request of {} words does not start with its size in bytes",
                            words.len()
                        )));
                    }
                    pending = Some((number, words));
                }
                ("response", Some((_, request))) => {
                    let words = words_of(rest, &mut total_words)?;
                    if words.len() != request.len() {
                        return Err(fail(format!(
                            "response of {} words answers a request of {}",
                            words.len(),
                            request.len()
                        )));
                    }
                    replay.exchanges.push((request, Outcome::Response(words)));
                }
                ("error", Some((_, request))) => {
                    let errno = parse_errno(rest.trim()).map_err(fail)?;
                    replay.exchanges.push((request, Outcome::Errno(errno)));
                }
                ("request", Some((line, _))) => {
                    return Err(fail(format!("the request of line {line} has no answer")))
                }
                ("response" | "error", None) => {
                    return Err(fail(format!("{keyword} without a request before it")))
                }
                (other, _) => {
                    return Err(fail(format!(
                        "unknown keyword {other:?} (request, response, error)"
                    )))
                }
            }
        }
        if let Some((line, _)) = pending {
            return Err(format!("{line}: request without an answer"));
        }
        Ok(replay)
    }

    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
    }
}

impl Mailbox for Replay {
    fn call(&mut self, buffer: &mut [u32]) -> io::Result<()> {
        self.calls += 1;
        let Some((_, outcome)) = self.exchanges.iter().find(|(req, _)| req[..] == buffer[..])
        else {
            let tag = buffer.get(2).copied().unwrap_or(0);
            let id = buffer.get(5).copied().unwrap_or(0);
            return Err(io::Error::other(format!(
                "no recorded answer for tag {tag:#010x} (first value word {id})"
            )));
        };
        match outcome {
            Outcome::Response(words) => {
                buffer.copy_from_slice(words);
                Ok(())
            }
            Outcome::Errno(errno) => Err(io::Error::from_raw_os_error(*errno)),
        }
    }
}

fn parse_errno(text: &str) -> Result<i32, String> {
    Ok(match text {
        "EINVAL" => libc::EINVAL,
        "EACCES" => libc::EACCES,
        "EPERM" => libc::EPERM,
        "ENOENT" => libc::ENOENT,
        "ENODEV" => libc::ENODEV,
        "EIO" => libc::EIO,
        "ETIMEDOUT" => libc::ETIMEDOUT,
        "ENOTTY" => libc::ENOTTY,
        other => other
            .parse()
            .ok()
            .filter(|&n: &i32| n > 0)
            .ok_or_else(|| format!("unknown error {other:?}"))?,
    })
}

/// Words of a request or response line: hex words, `"text"`, `0*N`.
fn parse_words(text: &str) -> Result<Vec<u32>, String> {
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut bytes = Vec::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => bytes.push(b'\n'),
                        Some('0') => bytes.push(0),
                        Some('"') => bytes.push(b'"'),
                        Some('\\') => bytes.push(b'\\'),
                        other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
                    },
                    c => {
                        let mut utf8 = [0; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    }
                }
            }
            if !closed {
                return Err("unterminated string".to_string());
            }
            if bytes.len() > MAX_MESSAGE_WORDS * 4 {
                return Err(format!("message longer than {MAX_MESSAGE_WORDS} words"));
            }
            bytes.resize(bytes.len().next_multiple_of(4), 0);
            words.extend(
                bytes
                    .chunks(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
            );
            continue;
        }
        let mut end = text.len();
        while let Some(&(index, c)) = chars.peek() {
            if c.is_whitespace() {
                end = index;
                break;
            }
            chars.next();
        }
        let token = &text[start..end];
        if let Some(count) = token.strip_prefix("0*") {
            let count: usize = count
                .parse()
                .ok()
                .filter(|&n| n <= MAX_MESSAGE_WORDS)
                .ok_or_else(|| format!("bad repeat {token:?}"))?;
            words.resize(words.len() + count, 0);
        } else {
            let hex = token.strip_prefix("0x").unwrap_or(token);
            let word = u32::from_str_radix(hex, 16).map_err(|_| format!("bad word {token:?}"))?;
            words.push(word);
        }
        if words.len() > MAX_MESSAGE_WORDS {
            return Err(format!("message longer than {MAX_MESSAGE_WORDS} words"));
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pi::mailbox::{build_request, Client, QueryError, Tag};

    const TEMPERATURE: &str = "# get_temperature
request  00000020 00000000 00030006 00000008 00000000 00000000 00000000 00000000
response 00000020 80000000 00030006 00000008 80000008 00000000 0000d5f0 00000000
request  00000020 00000000 0003000a 00000008 00000000 00000000 00000000 00000000
error    EINVAL
";

    #[test]
    fn replays_answers_and_errors() {
        let mut client = Client::new(Box::new(Replay::parse(TEMPERATURE).unwrap()));
        assert_eq!(client.value_of(Tag::Temperature, 0).unwrap(), 54768);
        match client.value_of(Tag::MaxTemperature, 0) {
            Err(QueryError::Io(err)) => assert_eq!(err.raw_os_error(), Some(libc::EINVAL)),
            other => panic!("{other:?}"),
        }
        match client.value_of(Tag::Voltage, 1) {
            Err(QueryError::Io(err)) => assert!(err.to_string().contains("0x00030003"), "{err}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shorthands_expand_to_words() {
        let words = parse_words("0x10 \"ab\\n\" 0*2 \"abcd\" ffffffff").unwrap();
        assert_eq!(words.len(), 6);
        assert_eq!(words[0], 0x10);
        assert_eq!(words[1].to_ne_bytes(), *b"ab\n\0");
        assert_eq!(&words[2..4], &[0, 0]);
        assert_eq!(words[4].to_ne_bytes(), *b"abcd");
        assert_eq!(words[5], u32::MAX);
        let request = build_request(0x0003_0006, &[0, 0], 8);
        let text = "request 20 0 30006 8 0 0*3\nresponse 20 80000000 30006 8 80000008 0 d5f0 0\n";
        let mut replay = Replay::parse(text).unwrap();
        let mut buffer = request.clone();
        replay.call(&mut buffer).unwrap();
        assert_eq!(buffer[6], 0xd5f0);
        assert_eq!(replay.calls, 1);
    }

    #[test]
    fn malformed_files_are_errors_with_line_numbers() {
        for (text, expected) in [
            ("request 20 0\n", "1: request of 2 words"),
            ("request 8 0\nrequest 8 0\n", "2: the request of line 1"),
            ("response 8 0\n", "1: response without a request"),
            ("request 8 0\nresponse 8\n", "2: response of 1 words"),
            ("request 8 0\nerror EWHAT\n", "2: unknown error"),
            ("request 8 0\n", "1: request without an answer"),
            ("request 8 zz\n", "1: bad word"),
            ("request 8 \"ab\n", "1: unterminated string"),
            ("request 0*99999999\n", "1: bad repeat"),
            (
                "request 0*4096 0*4096\n",
                "1: message longer than 4096 words",
            ),
            ("hello\n", "1: unknown keyword"),
        ] {
            let err = Replay::parse(text).unwrap_err();
            assert!(err.starts_with(expected), "{text:?}: {err}");
        }
        assert!(Replay::parse("# nothing\n\n").unwrap().is_empty());
    }

    #[test]
    fn calls_cost_no_memory() {
        // Issue 8: every call used to keep a copy of its buffer (2.4 KB per scrape, forever).
        let mut replay = Replay::parse(TEMPERATURE).unwrap();
        let request = build_request(0x0003_0006, &[0, 0], 8);
        for _ in 0..10_000 {
            let mut buffer = request.clone();
            replay.call(&mut buffer).unwrap();
        }
        assert_eq!(replay.calls, 10_000);
        assert_eq!(std::mem::size_of_val(&replay.calls), 8);
    }

    #[test]
    fn expansion_and_file_size_are_bounded() {
        // 160 KB of lines each expanding to the largest message: stopped at the word cap
        // instead of growing to gigabytes.
        let pair = "request 1000 0*1023\nresponse 1000 0*1023\n";
        let text = pair.repeat(160_000 / pair.len());
        let err = Replay::parse(&text).unwrap_err();
        assert!(err.contains("exceed"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.replay");
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(Replay::load(&path).unwrap_err().contains("larger than"));
    }
}
