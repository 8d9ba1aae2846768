//! Turns one collection into one record: a `WriteRequest` with one sample per series, labels
//! sorted by name (`__name__` included), plus staleness markers for the series of the previous
//! collection that are gone; snappy-compressed. Buffers are kept across collections, so a
//! steady state allocates only the record itself.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::ops::Range;

use super::buffer::Record;
use super::proto;
use crate::exposition::{unescape_into, Exposition};

/// Where samples come from: called once per collection with its timestamp; calls `out` once
/// per sample with the metric name, its labels (with `node`) and the value.
pub trait SampleSource {
    fn collect(&mut self, timestamp_ms: i64, out: &mut SampleSink<'_>);
}

/// Receives one sample: metric name, labels (with `node`), value.
pub type SampleSink<'a> = dyn FnMut(&str, &[(&str, &str)], f64) + 'a;

/// The agent's scrape buffer as a source: every sample with the `node` label and the other
/// labels unescaped. No allocation per sample (labels on the stack up to `STACK_LABELS`).
pub struct ExpositionSource<'a>(pub &'a Exposition);

const STACK_LABELS: usize = 16;

impl SampleSource for ExpositionSource<'_> {
    fn collect(&mut self, _timestamp_ms: i64, out: &mut SampleSink<'_>) {
        let node = self.0.node();
        let mut name = String::new();
        let mut unescaped = String::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        self.0.for_each_sample(|sample| {
            name.clear();
            name.push_str(sample.family);
            name.push_str(sample.suffix.as_str());
            // Unescape only the values that need it, into one buffer.
            unescaped.clear();
            spans.clear();
            for (_, value) in sample.labels() {
                if value.contains('\\') {
                    let start = unescaped.len();
                    unescape_into(value, &mut unescaped);
                    spans.push((start, unescaped.len()));
                } else {
                    spans.push((usize::MAX, 0));
                }
            }
            let mut stack = [("", ""); STACK_LABELS];
            let mut heap = Vec::new();
            let count = spans.len() + 1;
            let labels: &mut [(&str, &str)] = if count <= STACK_LABELS {
                &mut stack[..count]
            } else {
                heap.resize(count, ("", ""));
                &mut heap
            };
            labels[0] = ("node", node);
            for (i, (label, escaped)) in sample.labels().enumerate() {
                let (start, end) = spans[i];
                let value = if start == usize::MAX {
                    escaped
                } else {
                    &unescaped[start..end]
                };
                labels[i + 1] = (label, value);
            }
            out(&name, labels, sample.value);
        });
    }
}

/// The encoded label sets of one collection: an arena and an index by hash.
#[derive(Default)]
struct SeriesSet {
    arena: Vec<u8>,
    /// Hash of the encoded labels -> their range in `arena`. A 64-bit collision would cost
    /// one staleness marker, nothing else.
    index: HashMap<u64, Range<usize>, BuildHasherDefault<IdentityHasher>>,
}

impl SeriesSet {
    fn clear(&mut self) {
        self.arena.clear();
        self.index.clear();
    }

    /// Adds a label set; false when it is already there (a duplicate series).
    fn insert(&mut self, hash: u64, labels: &[u8]) -> bool {
        if self.index.contains_key(&hash) {
            return false;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(labels);
        self.index.insert(hash, start..self.arena.len());
        true
    }
}

/// The keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

pub struct Batcher {
    request: Vec<u8>,
    labels: Vec<u8>,
    order: Vec<usize>,
    current: SeriesSet,
    previous: SeriesSet,
    compressor: snap::raw::Encoder,
    /// Samples left out of the last collection because their series repeated.
    pub duplicates: u64,
}

impl Default for Batcher {
    fn default() -> Self {
        Batcher::new()
    }
}

impl Batcher {
    pub fn new() -> Batcher {
        Batcher {
            request: Vec::new(),
            labels: Vec::new(),
            order: Vec::new(),
            current: SeriesSet::default(),
            previous: SeriesSet::default(),
            compressor: snap::raw::Encoder::new(),
            duplicates: 0,
        }
    }

    /// Collects from `source` at `timestamp_ms`; None when there is nothing to send.
    pub fn collect(&mut self, source: &mut dyn SampleSource, timestamp_ms: i64) -> Option<Record> {
        let Batcher {
            request,
            labels: encoded,
            order,
            current,
            previous,
            duplicates,
            ..
        } = self;
        request.clear();
        current.clear();
        *duplicates = 0;
        let mut samples: u32 = 0;
        source.collect(timestamp_ms, &mut |name, labels, value| {
            // Index 0 is __name__, i is labels[i - 1]; sorted by name, stable (first wins).
            let label = |i: usize| {
                if i == 0 {
                    ("__name__", name)
                } else {
                    labels[i - 1]
                }
            };
            order.clear();
            order.extend(0..=labels.len());
            order.sort_by(|&a, &b| label(a).0.cmp(label(b).0));
            order.dedup_by(|a, b| label(*a).0 == label(*b).0);
            // An empty value is the same as no label in Prometheus.
            order.retain(|&i| !label(i).1.is_empty());
            encoded.clear();
            proto::put_labels(order.iter().map(|&i| label(i)), encoded);
            let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(&encoded[..]);
            if !current.insert(hash, encoded) {
                *duplicates += 1;
                return;
            }
            proto::put_series(encoded, value, timestamp_ms, request);
            samples += 1;
        });
        for (hash, range) in &previous.index {
            if !current.index.contains_key(hash) {
                proto::put_series(
                    &previous.arena[range.clone()],
                    proto::stale_nan(),
                    timestamp_ms,
                    request,
                );
                samples += 1;
            }
        }
        std::mem::swap(current, previous);
        self.finish(timestamp_ms, samples)
    }

    /// Staleness markers for every series of the last collection (clean shutdown).
    pub fn stale_all(&mut self, timestamp_ms: i64) -> Option<Record> {
        self.request.clear();
        let mut samples = 0;
        for range in self.previous.index.values() {
            proto::put_series(
                &self.previous.arena[range.clone()],
                proto::stale_nan(),
                timestamp_ms,
                &mut self.request,
            );
            samples += 1;
        }
        self.previous.clear();
        self.finish(timestamp_ms, samples)
    }

    fn finish(&mut self, timestamp_ms: i64, samples: u32) -> Option<Record> {
        if samples == 0 {
            return None;
        }
        match self.compressor.compress_vec(&self.request) {
            Ok(data) => Some(Record {
                timestamp_ms,
                samples,
                data,
            }),
            Err(err) => {
                log::error!("remote write: cannot compress a collection: {err}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Labels = Vec<(&'static str, &'static str)>;

    /// Series given as (name, labels, value).
    struct Fixed(Vec<(&'static str, Labels, f64)>);

    impl SampleSource for Fixed {
        fn collect(&mut self, _: i64, out: &mut SampleSink<'_>) {
            for (name, labels, value) in &self.0 {
                out(name, labels, *value);
            }
        }
    }

    fn decode(record: &Record) -> Vec<proto::TimeSeries> {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&record.data)
            .unwrap();
        let mut series = proto::decode_write_request(&raw).unwrap();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        series
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn labels_are_sorted_with_the_name_and_cleaned() {
        let mut source = Fixed(vec![(
            "node_cpu_seconds_total",
            vec![
                ("node", "pi"),
                ("mode", "idle"),
                ("Zone", "z"),
                ("cpu", "0"),
                ("cpu", "1"),
                ("empty", ""),
            ],
            12.5,
        )]);
        let mut batcher = Batcher::new();
        let record = batcher.collect(&mut source, 1000).unwrap();
        assert_eq!(record.samples, 1);
        assert_eq!(record.timestamp_ms, 1000);
        let series = decode(&record);
        assert_eq!(
            series[0].labels,
            labels(&[
                ("Zone", "z"),
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("mode", "idle"),
                ("node", "pi"),
            ])
        );
        assert_eq!(series[0].samples, vec![(12.5, 1000)]);
    }

    #[test]
    fn the_scrape_buffer_is_a_source_with_node_and_unescaped_values() {
        use crate::exposition::Kind;
        let mut exposition = Exposition::new("pi \"7\"");
        let cpu = exposition.family(
            "node_cpu_seconds_total",
            "CPU.",
            Kind::Counter,
            &["cpu", "mode"],
        );
        let hist = exposition.family("h", "H.", Kind::Histogram, &[]);
        exposition.sample(cpu, &["0", "us\\er\n\"x\""], 5.5);
        exposition.sample_with_suffix(hist, "_bucket", &[("le", "+Inf")], 3.0);
        let many: Vec<(String, String)> = (0..20)
            .map(|i| (format!("l{i:02}"), i.to_string()))
            .collect();
        let many_refs: Vec<(&str, &str)> =
            many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let wide = exposition.family("wide", "W.", Kind::Untyped, &[]);
        exposition.sample_with_labels(wide, &many_refs, 1.0);
        let record = Batcher::new()
            .collect(&mut ExpositionSource(&exposition), 7000)
            .unwrap();
        let series = decode(&record);
        assert_eq!(series.len(), 3);
        assert_eq!(
            series[0].labels,
            labels(&[
                ("__name__", "h_bucket"),
                ("le", "+Inf"),
                ("node", "pi \"7\"")
            ])
        );
        assert_eq!(
            series[1].labels,
            labels(&[
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("mode", "us\\er\n\"x\""),
                ("node", "pi \"7\""),
            ])
        );
        assert_eq!(series[1].samples, vec![(5.5, 7000)]);
        assert_eq!(series[2].labels.len(), 22);
    }

    #[test]
    fn vanished_series_get_a_stale_marker_and_shutdown_marks_all() {
        let mut source = Fixed(vec![
            ("a", vec![("node", "pi")], 1.0),
            ("b", vec![("node", "pi")], 2.0),
            ("a", vec![("node", "pi")], 9.0), // duplicate: left out
        ]);
        let mut batcher = Batcher::new();
        let first = batcher.collect(&mut source, 1000).unwrap();
        assert_eq!(first.samples, 2);
        assert_eq!(batcher.duplicates, 1);
        source.0.remove(1);
        let second = decode(&batcher.collect(&mut source, 2000).unwrap());
        assert_eq!(second.len(), 2);
        assert_eq!(second[0].samples, vec![(1.0, 2000)]);
        assert_eq!(
            second[1].labels,
            labels(&[("__name__", "b"), ("node", "pi")])
        );
        assert_eq!(second[1].samples[0].0.to_bits(), proto::STALE_NAN_BITS);
        assert_eq!(second[1].samples[0].1, 2000);
        // b is not marked twice.
        assert_eq!(
            decode(&batcher.collect(&mut source, 3000).unwrap()).len(),
            1
        );
        let last = decode(&batcher.stale_all(4000).unwrap());
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].labels, labels(&[("__name__", "a"), ("node", "pi")]));
        assert_eq!(last[0].samples[0].0.to_bits(), proto::STALE_NAN_BITS);
        assert!(batcher.stale_all(5000).is_none());
    }
}
