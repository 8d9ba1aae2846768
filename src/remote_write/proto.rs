//! A hand-written encoder for the few messages of Prometheus remote write 1.0
//! (`prompb/remote.proto`, `prompb/types.proto`); smaller than prost plus generated code:
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }   // (metadata = 3 unused)
//! message TimeSeries  { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label       { string name = 1; string value = 2; }
//! message Sample      { double value = 1; int64 timestamp = 2; }  // timestamp in ms
//! ```
//!
//! A `WriteRequest` is only its repeated field 1, so concatenating encoded requests gives the
//! request with all their series: the buffer stores one request per collection.
//! The decoder is here for tests and for reading the buffer back in checks; it never panics.

/// Wire types.
const LEN: u8 = 2;
const I64: u8 = 1;
const VARINT: u8 = 0;

const fn tag(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

/// `WriteRequest.timeseries`, `TimeSeries.labels`, `Label.name`.
const TAG_1_LEN: u8 = tag(1, LEN);
/// `TimeSeries.samples`, `Label.value`.
const TAG_2_LEN: u8 = tag(2, LEN);
/// `Sample.value` (double).
const TAG_SAMPLE_VALUE: u8 = tag(1, I64);
/// `Sample.timestamp` (int64).
const TAG_SAMPLE_TIMESTAMP: u8 = tag(2, VARINT);

/// Prometheus' staleness marker: a NaN with this exact bit pattern (value.StaleNaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

pub fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn label_len(name: &str, value: &str) -> usize {
    1 + varint_len(name.len() as u64)
        + name.len()
        + 1
        + varint_len(value.len() as u64)
        + value.len()
}

/// Bytes of the `labels` fields of a series (each a tag, a length and a Label).
pub fn labels_len<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    labels
        .map(|(name, value)| {
            let len = label_len(name, value);
            1 + varint_len(len as u64) + len
        })
        .sum()
}

/// Appends the `labels` fields of a series. The caller gives them sorted by name.
pub fn put_labels<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>, out: &mut Vec<u8>) {
    for (name, value) in labels {
        out.push(TAG_1_LEN);
        put_varint(label_len(name, value) as u64, out);
        out.push(TAG_1_LEN);
        put_varint(name.len() as u64, out);
        out.extend_from_slice(name.as_bytes());
        out.push(TAG_2_LEN);
        put_varint(value.len() as u64, out);
        out.extend_from_slice(value.as_bytes());
    }
}

fn sample_len(timestamp_ms: i64) -> usize {
    1 + 8 + 1 + varint_len(timestamp_ms as u64)
}

/// Appends one `WriteRequest.timeseries` entry: already encoded labels (from `put_labels`)
/// and one sample.
pub fn put_series(encoded_labels: &[u8], value: f64, timestamp_ms: i64, out: &mut Vec<u8>) {
    let sample = sample_len(timestamp_ms);
    let series = encoded_labels.len() + 1 + varint_len(sample as u64) + sample;
    out.push(TAG_1_LEN);
    put_varint(series as u64, out);
    out.extend_from_slice(encoded_labels);
    out.push(TAG_2_LEN);
    put_varint(sample as u64, out);
    out.push(TAG_SAMPLE_VALUE);
    out.extend_from_slice(&value.to_bits().to_le_bytes());
    out.push(TAG_SAMPLE_TIMESTAMP);
    // int64 is a two's complement varint (10 bytes when negative).
    put_varint(timestamp_ms as u64, out);
}

/// A decoded series (tests, checks).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<(String, String)>,
    /// (value, timestamp ms)
    pub samples: Vec<(f64, i64)>,
}

/// Decodes a `WriteRequest`; unknown fields are skipped as protobuf says.
pub fn decode_write_request(bytes: &[u8]) -> Result<Vec<TimeSeries>, String> {
    let mut series = Vec::new();
    for field in Fields(bytes) {
        if let (1, Value::Bytes(body)) = field? {
            series.push(decode_series(body)?);
        }
    }
    Ok(series)
}

fn decode_series(bytes: &[u8]) -> Result<TimeSeries, String> {
    let mut out = TimeSeries {
        labels: Vec::new(),
        samples: Vec::new(),
    };
    for field in Fields(bytes) {
        match field? {
            (1, Value::Bytes(body)) => {
                let (mut name, mut value) = (String::new(), String::new());
                for field in Fields(body) {
                    match field? {
                        (1, Value::Bytes(b)) => name = utf8(b)?,
                        (2, Value::Bytes(b)) => value = utf8(b)?,
                        _ => {}
                    }
                }
                out.labels.push((name, value));
            }
            (2, Value::Bytes(body)) => {
                let (mut value, mut timestamp) = (0.0, 0i64);
                for field in Fields(body) {
                    match field? {
                        (1, Value::Fixed64(bits)) => value = f64::from_bits(bits),
                        (2, Value::Varint(v)) => timestamp = v as i64,
                        _ => {}
                    }
                }
                out.samples.push((value, timestamp));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 in a string field".to_string())
}

enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// The fields of one message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.0.len() {
            return Err(format!("field of {len} bytes, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let value = match (key & 7) as u8 {
                VARINT => Value::Varint(self.varint()?),
                I64 => {
                    let b = self.take(8)?;
                    let mut bits = [0u8; 8];
                    bits.copy_from_slice(b);
                    Value::Fixed64(u64::from_le_bytes(bits))
                }
                LEN => {
                    let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                    Value::Bytes(self.take(len)?)
                }
                5 => {
                    self.take(4)?;
                    Value::Fixed32
                }
                other => return Err(format!("unsupported wire type {other}")),
            };
            Ok((key >> 3, value))
        })();
        if field.is_err() {
            self.0 = &[]; // stop after an error
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(labels: &[(&str, &str)], value: f64, ts: i64) -> Vec<u8> {
        let mut encoded = Vec::new();
        put_labels(labels.iter().copied(), &mut encoded);
        assert_eq!(encoded.len(), labels_len(labels.iter().copied()));
        let mut out = Vec::new();
        put_series(&encoded, value, ts, &mut out);
        out
    }

    #[test]
    fn bytes_match_the_proto_field_numbers() {
        // Worked by hand from types.proto: TimeSeries(1:LEN){ Label(1:LEN){name(1) value(2)},
        // Sample(2:LEN){ value(1:I64) timestamp(2:VARINT) } }.
        let bytes = encode(&[("__name__", "up")], 1.0, 1000);
        let mut want = vec![0x0a, 30, 0x0a, 14, 0x0a, 8];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 2]);
        want.extend_from_slice(b"up");
        want.extend_from_slice(&[0x12, 12, 0x09]);
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn round_trips_long_strings_negative_timestamps_and_stale_nan() {
        let long = "x".repeat(300);
        let mut request = encode(&[("__name__", "a"), ("long", &long)], 2.5, -5);
        request.extend(encode(&[("__name__", "b")], stale_nan(), 1_700_000_000_123));
        let series = decode_write_request(&request).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(
            series[0].labels,
            vec![
                ("__name__".into(), "a".into()),
                ("long".into(), long.clone())
            ]
        );
        assert_eq!(series[0].samples, vec![(2.5, -5)]);
        assert_eq!(series[1].samples[0].0.to_bits(), STALE_NAN_BITS);
        assert_eq!(series[1].samples[0].1, 1_700_000_000_123);
    }

    #[test]
    fn varints() {
        for value in [0u64, 1, 127, 128, 300, 16383, 16384, u64::MAX] {
            let mut out = Vec::new();
            put_varint(value, &mut out);
            assert_eq!(out.len(), varint_len(value));
            let mut fields = Fields(&out);
            assert_eq!(fields.varint().unwrap(), value);
        }
        assert_eq!(varint_len(-1i64 as u64), 10);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x0a, 5, 1][..],
            &[0x0a],
            &[0x0f],
            &[0xff; 12],
            &[0x0a, 2, 0x09, 1],
        ] {
            assert!(decode_write_request(bad).is_err(), "{bad:?}");
        }
        assert_eq!(decode_write_request(&[]).unwrap(), vec![]);
    }
}
