//! The scrape buffer and the one structured result every output reads: metric families
//! registered once, samples written straight into per-family buffers that keep their capacity
//! across scrapes.
//!
//! Collectors register their families when they are built and keep the returned `FamilyId`; a
//! scrape then appends one entry per sample without allocating: the label pairs go, escaped as
//! the text format wants them (`,cpu="0",mode="idle"`), into one string per family, and the
//! sample keeps where its labels end and its value. Outputs read the same structure: the pull
//! endpoint renders text format 0.0.4 (`render`), push renders it without the families the
//! gateway owns (`render_filtered`), remote write walks the samples with their label pairs
//! unescaped (`for_each_sample`). Every series carries the `node` label, escaped once.
//!
//! `parse` is the one reader of the text format in the agent (the textfile collector's input),
//! checked with the same name rules the writer uses.

pub mod parse;

use std::collections::HashMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
    /// Only from text files (textfile collector): `_bucket`, `_sum`, `_count` samples.
    Histogram,
    /// Only from text files: quantile samples, `_sum`, `_count`.
    Summary,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// The part a sample's name adds to its family's name (histograms and summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    None,
    Bucket,
    Sum,
    Count,
}

impl Suffix {
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
        }
    }

    /// The suffix named by `text` ("", "_bucket", "_sum", "_count").
    pub fn from_name(text: &str) -> Option<Suffix> {
        match text {
            "" => Some(Suffix::None),
            "_bucket" => Some(Suffix::Bucket),
            "_sum" => Some(Suffix::Sum),
            "_count" => Some(Suffix::Count),
            _ => None,
        }
    }
}

/// Handle to a registered family; cheap to copy, valid for the `Exposition` that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FamilyId(usize);

#[derive(Debug, Clone, Copy)]
struct Sample {
    suffix: Suffix,
    /// End of this sample's label text in `Family::labels` (it starts where the previous ends).
    labels_end: u32,
    value: f64,
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    label_names: Vec<String>,
    /// Escaped label pairs of every sample of the current scrape, each `,name="value"`.
    labels: String,
    samples: Vec<Sample>,
}

#[derive(Debug)]
pub struct Exposition {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
    /// Slots of forgotten families, reused by the next new family.
    free: Vec<usize>,
    node: String,
    /// `node="..."`, escaped once.
    node_label: String,
    /// Which collection the samples are from (set by the agent; 0: not numbered). Outputs
    /// that answer several requests from one collection encode it once.
    collection: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyConflict {
    pub name: String,
}

impl std::fmt::Display for FamilyConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "metric {} is already registered with another type or labels",
            self.name
        )
    }
}

/// One sample as an output reads it.
pub struct SampleRef<'a> {
    pub family: &'a str,
    pub kind: Kind,
    pub suffix: Suffix,
    /// Escaped label pairs without the node label, each `,name="value"`.
    escaped_labels: &'a str,
    pub value: f64,
}

impl<'a> SampleRef<'a> {
    /// The label pairs without `node`; values still escaped (see `unescape_into`).
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs {
            rest: self.escaped_labels,
        }
    }
}

/// Iterator over `,name="value"` pairs as `exposition` wrote them; yields the name and the
/// still-escaped value (`unescape_into` turns it back).
pub struct LabelPairs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let text = self.rest.strip_prefix(',')?;
        let eq = text.find("=\"")?;
        let name = &text[..eq];
        let value_start = eq + 2;
        let bytes = text.as_bytes();
        let mut i = value_start;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        let end = i.min(bytes.len());
        let value = &text[value_start..end];
        self.rest = text.get(end + 1..).unwrap_or("");
        Some((name, value))
    }
}

/// Appends the label value `escaped` (as written by `escape_label_value`) unescaped to `out`.
pub fn unescape_into(escaped: &str, out: &mut String) {
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
}

impl Exposition {
    pub fn new(node: &str) -> Self {
        let mut node_label = String::from("node=\"");
        escape_label_value(node, &mut node_label);
        node_label.push('"');
        Exposition {
            families: Vec::new(),
            by_name: HashMap::new(),
            free: Vec::new(),
            node: node.to_string(),
            node_label,
            collection: 0,
        }
    }

    /// The value of the `node` label every series carries.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Registers a family, or returns the existing one when name, type and labels agree.
    /// Collectors call this at start-up with names they own; a conflict there is a bug.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind, label_names: &[&str]) -> FamilyId {
        match self.try_family(name, help, kind, label_names) {
            Ok(id) => id,
            // Fixed names cannot conflict unless two collectors disagree; keep the first.
            Err(_) => FamilyId(self.by_name[name]),
        }
    }

    /// Like `family`, for names that come from outside (textfile): a conflict is an error.
    pub fn try_family(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        label_names: &[&str],
    ) -> Result<FamilyId, FamilyConflict> {
        if let Some(&index) = self.by_name.get(name) {
            let family = &self.families[index];
            let same_labels = family.label_names.len() == label_names.len()
                && family
                    .label_names
                    .iter()
                    .zip(label_names)
                    .all(|(a, b)| a == b);
            return if family.kind == kind && same_labels {
                Ok(FamilyId(index))
            } else {
                Err(FamilyConflict {
                    name: name.to_string(),
                })
            };
        }
        let family = Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            label_names: label_names.iter().map(|l| l.to_string()).collect(),
            labels: String::new(),
            samples: Vec::new(),
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.families[index] = family;
                index
            }
            None => {
                self.families.push(family);
                self.families.len() - 1
            }
        };
        self.by_name.insert(name.to_string(), index);
        Ok(FamilyId(index))
    }

    /// Removes a family whose name came from outside (textfile) and is no longer written: its
    /// name and memory are released and its slot goes to the next new family, so names that
    /// come and go do not accumulate. `id` must not be used afterwards.
    pub fn forget(&mut self, id: FamilyId) {
        let Some(family) = self.families.get_mut(id.0) else {
            return;
        };
        if self.by_name.get(&family.name) != Some(&id.0) {
            return; // already forgotten
        }
        self.by_name.remove(&family.name);
        *family = Family {
            name: String::new(),
            help: String::new(),
            kind: Kind::Untyped,
            label_names: Vec::new(),
            labels: String::new(),
            samples: Vec::new(),
        };
        self.free.push(id.0);
    }

    pub fn lookup(&self, name: &str) -> Option<FamilyId> {
        self.by_name.get(name).copied().map(FamilyId)
    }

    pub fn kind_of(&self, id: FamilyId) -> Kind {
        self.families[id.0].kind
    }

    /// Changes the help and type of a family whose definition comes from outside (a text file
    /// that was rewritten). Only for families the caller created and alone writes to.
    pub fn redefine(&mut self, id: FamilyId, help: &str, kind: Kind) {
        let family = &mut self.families[id.0];
        family.kind = kind;
        if family.help != help {
            family.help.clear();
            family.help.push_str(help);
        }
    }

    /// Numbers the collection now in the buffer (the agent's count, never reused while the
    /// process runs); `clear` resets it to 0 (not numbered).
    pub fn set_collection(&mut self, number: u64) {
        self.collection = number;
    }

    /// The number given by `set_collection` since the last `clear`, or 0.
    pub fn collection(&self) -> u64 {
        self.collection
    }

    /// Starts a new scrape: drops the previous samples, keeps the buffers.
    pub fn clear(&mut self) {
        self.collection = 0;
        for family in &mut self.families {
            family.labels.clear();
            family.samples.clear();
        }
    }

    /// Writes one sample with the family's label names, `values` in the same order.
    pub fn sample(&mut self, id: FamilyId, values: &[&str], value: f64) {
        let family = &mut self.families[id.0];
        for (name, label_value) in family.label_names.iter().zip(values) {
            push_pair(&mut family.labels, name, label_value);
        }
        family.push(Suffix::None, value);
    }

    /// Writes one sample whose label names vary per series (textfile input).
    pub fn sample_with_labels(&mut self, id: FamilyId, labels: &[(&str, &str)], value: f64) {
        self.sample_with_suffix(id, "", labels, value);
    }

    /// Like `sample_with_labels`, for the `_bucket`, `_sum` and `_count` series of histograms
    /// and summaries: the sample is named `<family><suffix>`. An unknown suffix is a bug of the
    /// caller; such a sample is dropped.
    pub fn sample_with_suffix(
        &mut self,
        id: FamilyId,
        suffix: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let Some(suffix) = Suffix::from_name(suffix) else {
            return;
        };
        let family = &mut self.families[id.0];
        for (name, label_value) in labels {
            if *name == "node" {
                continue; // the agent's own node label wins
            }
            push_pair(&mut family.labels, name, label_value);
        }
        family.push(suffix, value);
    }

    /// Text format 0.0.4: HELP and TYPE once per family with samples, then its samples.
    pub fn render(&self, out: &mut String) {
        self.render_filtered(out, |_| true);
    }

    /// Like `render`, for the families whose name `keep` accepts.
    pub fn render_filtered(&self, out: &mut String, keep: impl Fn(&str) -> bool) {
        for family in &self.families {
            if family.samples.is_empty() || !keep(&family.name) {
                continue;
            }
            out.push_str("# HELP ");
            out.push_str(&family.name);
            out.push(' ');
            escape_help(&family.help, out);
            out.push_str("\n# TYPE ");
            out.push_str(&family.name);
            out.push(' ');
            out.push_str(family.kind.as_str());
            out.push('\n');
            let mut start = 0;
            for sample in &family.samples {
                let end = sample.labels_end as usize;
                out.push_str(&family.name);
                out.push_str(sample.suffix.as_str());
                out.push('{');
                out.push_str(&self.node_label);
                out.push_str(&family.labels[start..end]);
                out.push_str("} ");
                write_value(sample.value, out);
                out.push('\n');
                start = end;
            }
        }
    }

    /// Calls `visit` for every sample of the current scrape, family by family.
    pub fn for_each_sample(&self, mut visit: impl FnMut(&SampleRef)) {
        for family in &self.families {
            let mut start = 0;
            for sample in &family.samples {
                let end = sample.labels_end as usize;
                visit(&SampleRef {
                    family: &family.name,
                    kind: family.kind,
                    suffix: sample.suffix,
                    escaped_labels: &family.labels[start..end],
                    value: sample.value,
                });
                start = end;
            }
        }
    }

    /// Names of the registered families that have samples in this scrape.
    pub fn names_with_samples(&self) -> impl Iterator<Item = &str> {
        self.families
            .iter()
            .filter(|f| !f.samples.is_empty())
            .map(|f| f.name.as_str())
    }

    /// Number of samples in this scrape.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

impl Family {
    fn push(&mut self, suffix: Suffix, value: f64) {
        // Label text of one scrape stays far below 4 GiB (the textfile input is capped).
        let labels_end = u32::try_from(self.labels.len()).unwrap_or(u32::MAX);
        self.samples.push(Sample {
            suffix,
            labels_end,
            value,
        });
    }
}

fn push_pair(out: &mut String, name: &str, value: &str) {
    out.push(',');
    out.push_str(name);
    out.push_str("=\"");
    escape_label_value(value, out);
    out.push('"');
}

pub fn escape_label_value(value: &str, out: &mut String) {
    // Almost every value needs no escaping: copy it whole.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str, out: &mut String) {
    if !help.bytes().any(|b| matches!(b, b'\\' | b'\n')) {
        out.push_str(help);
        return;
    }
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Integers print as integers; other values in Rust's shortest round-trip form, which
/// Prometheus parses exactly.
pub fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        write_integer(value as i64, out);
    } else if value.abs() >= 1e15 || value.abs() < 1e-5 {
        let _ = write!(out, "{value:e}");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// `value` in decimal, without the formatting machinery (most samples are integers).
fn write_integer(value: i64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut rest = value.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    for &digit in &digits[start..] {
        out.push(digit as char);
    }
}

/// Metric and label names as the text format allows them.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_node_label_and_escaping() {
        let mut exp = Exposition::new("pi\"1");
        let load = exp.family("node_load1", "1m load average.", Kind::Gauge, &[]);
        let cpu = exp.family(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            Kind::Counter,
            &["cpu", "mode"],
        );
        exp.sample(cpu, &["0", "idle"], 1234.5);
        exp.sample(load, &[], 0.25);
        exp.sample(cpu, &["0", "us\\er\n"], 7.0);
        let mut out = String::new();
        exp.render(&mut out);
        assert_eq!(
            out,
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1{node=\"pi\\\"1\"} 0.25\n\
             # HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{node=\"pi\\\"1\",cpu=\"0\",mode=\"idle\"} 1234.5\n\
             node_cpu_seconds_total{node=\"pi\\\"1\",cpu=\"0\",mode=\"us\\\\er\\n\"} 7\n"
        );
    }

    #[test]
    fn clear_drops_samples_and_empty_families_are_not_rendered() {
        let mut exp = Exposition::new("n");
        let a = exp.family("a", "A.", Kind::Gauge, &[]);
        exp.sample(a, &[], 1.0);
        exp.clear();
        let mut out = String::new();
        exp.render(&mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn same_family_twice_is_shared_and_conflicts_are_reported() {
        let mut exp = Exposition::new("n");
        let a = exp.family("a", "A.", Kind::Gauge, &["x"]);
        assert_eq!(exp.family("a", "A.", Kind::Gauge, &["x"]), a);
        assert!(exp.try_family("a", "A.", Kind::Counter, &["x"]).is_err());
        assert!(exp.try_family("a", "A.", Kind::Gauge, &["y"]).is_err());
    }

    #[test]
    fn forgotten_families_release_their_name_and_slot() {
        let mut exp = Exposition::new("n");
        let kept = exp.family("kept", "K.", Kind::Gauge, &[]);
        let gone = exp.try_family("gone", "G.", Kind::Gauge, &[]).unwrap();
        exp.sample(gone, &[], 1.0);
        exp.forget(gone);
        exp.forget(gone);
        assert_eq!(exp.lookup("gone"), None);
        let mut out = String::new();
        exp.render(&mut out);
        assert_eq!(out, "");
        let new = exp.try_family("new", "N.", Kind::Counter, &[]).unwrap();
        assert_eq!(new, gone, "the slot is reused");
        assert_eq!(exp.families.len(), 2);
        exp.sample(kept, &[], 2.0);
        exp.sample(new, &[], 3.0);
        exp.render(&mut out);
        assert_eq!(
            out,
            "# HELP kept K.\n# TYPE kept gauge\nkept{node=\"n\"} 2\n\
             # HELP new N.\n# TYPE new counter\nnew{node=\"n\"} 3\n"
        );
    }

    #[test]
    fn values_format_as_prometheus_parses_them() {
        let cases = [
            (0.0, "0"),
            (16647168000.0, "16647168000"),
            (-3.0, "-3"),
            (0.5, "0.5"),
            (1e300, "1e300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (18446744073709551615.0, "1.8446744073709552e19"),
            (0.000001, "1e-6"),
            (999999999999999.0, "999999999999999"),
            (-999999999999999.0, "-999999999999999"),
            (-0.0, "0"),
            (10.0, "10"),
        ];
        for (value, text) in cases {
            let mut out = String::new();
            write_value(value, &mut out);
            assert_eq!(out, text, "{value}");
            if value.is_finite() {
                assert_eq!(out.parse::<f64>().unwrap(), value);
            }
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(is_valid_metric_name("node_cpu:rate5m"));
        assert!(!is_valid_metric_name("1abc"));
        assert!(!is_valid_metric_name("a-b"));
        assert!(is_valid_label_name("_x1"));
        assert!(!is_valid_label_name("a:b"));
    }

    #[test]
    fn outputs_read_samples_with_their_labels() {
        let mut exp = Exposition::new("pi");
        let cpu = exp.family("c", "C.", Kind::Counter, &["cpu", "mode"]);
        let text = exp.family("h", "H.", Kind::Histogram, &[]);
        exp.sample(cpu, &["0", "a\"b\nc"], 2.5);
        exp.sample_with_suffix(text, "_bucket", &[("le", "+Inf"), ("node", "x")], 3.0);
        exp.sample_with_suffix(text, "_odd", &[], 3.0);
        let mut seen = Vec::new();
        exp.for_each_sample(|s| {
            let mut labels = Vec::new();
            for (name, value) in s.labels() {
                let mut plain = String::new();
                unescape_into(value, &mut plain);
                labels.push((name.to_string(), plain));
            }
            seen.push((s.family.to_string(), s.suffix, labels, s.value));
        });
        assert_eq!(
            seen,
            vec![
                (
                    "c".to_string(),
                    Suffix::None,
                    vec![
                        ("cpu".to_string(), "0".to_string()),
                        ("mode".to_string(), "a\"b\nc".to_string())
                    ],
                    2.5
                ),
                (
                    "h".to_string(),
                    Suffix::Bucket,
                    vec![("le".to_string(), "+Inf".to_string())],
                    3.0
                ),
            ]
        );
        let mut out = String::new();
        exp.render_filtered(&mut out, |name| name != "c");
        assert_eq!(
            out,
            "# HELP h H.\n# TYPE h histogram\nh_bucket{node=\"pi\",le=\"+Inf\"} 3\n"
        );
    }
}
