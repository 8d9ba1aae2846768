//! A strict parser of the Prometheus text exposition format (0.0.4), for the textfile
//! collector. It follows the Go parser node_exporter uses (expfmt.TextParser) where that one
//! accepts input, and is stricter where Go silently drops data (a histogram sample without
//! `le`, a summary sample without `quantile`): such input is an error naming the line.
//!
//! Never panics: every index is checked, every error is a `ParseError`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{is_valid_label_name, is_valid_metric_name, Kind};

/// One metric family of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: Option<String>,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// One sample line. `suffix` is "" or, for histograms and summaries, "_bucket", "_sum" or
/// "_count": the line's metric name is the family name plus the suffix.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
    /// Set when the input is well-formed so far but exceeds one of the `Limits`.
    pub limit: Option<Limit>,
}

/// Which of the `Limits` a parse exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Labels on one sample line.
    Labels,
    /// Label pairs of all sample lines together.
    LabelPairs,
    Series,
    Families,
}

/// Bounds on what one parse builds, so memory follows them and not the input: the parse stops
/// with an error at the first line that exceeds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Labels on one sample line.
    pub max_labels_per_sample: usize,
    /// Label pairs of all the sample lines together (each costs memory: ~100 bytes).
    pub max_label_pairs: usize,
    /// Sample lines (series) in the input.
    pub max_series: usize,
    /// Metric names (HELP, TYPE or sample lines) in the input.
    pub max_families: usize,
}

impl Limits {
    pub const NONE: Limits = Limits {
        max_labels_per_sample: usize::MAX,
        max_label_pairs: usize::MAX,
        max_series: usize::MAX,
        max_families: usize::MAX,
    };
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole file. Families come out in the order they first appear; families that only
/// had HELP or TYPE lines are dropped (as the Go parser drops them).
pub fn parse(bytes: &[u8]) -> Result<Vec<Family>, ParseError> {
    parse_with_limits(bytes, Limits::NONE)
}

/// `parse`, stopping at the first line beyond `limits`. Time and memory are linear in the
/// input.
pub fn parse_with_limits(bytes: &[u8], limits: Limits) -> Result<Vec<Family>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let valid = bytes.get(..err.valid_up_to()).unwrap_or_default();
        ParseError {
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            message: "invalid UTF-8".to_string(),
            limit: None,
        }
    })?;
    let mut parser = Parser {
        families: Vec::new(),
        by_name: HashMap::new(),
        limits,
        series: 0,
        label_pairs: 0,
        exceeded: None,
    };
    for (index, line) in text.split('\n').enumerate() {
        parser.line(line).map_err(|message| ParseError {
            line: index + 1,
            message,
            limit: parser.exceeded,
        })?;
    }
    Ok(parser
        .families
        .into_iter()
        .filter(|f| !f.family.samples.is_empty())
        .map(|f| f.family)
        .collect())
}

struct FamilyState {
    family: Family,
    /// A TYPE line or a sample fixed the type: a later TYPE line is an error.
    typed: bool,
}

struct Parser {
    families: Vec<FamilyState>,
    by_name: HashMap<String, usize>,
    limits: Limits,
    series: usize,
    label_pairs: usize,
    /// The limit the failing line exceeded, if that is why it failed.
    exceeded: Option<Limit>,
}

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.ends_with('\r') {
            return Err("line ends with \\r (Windows line endings are not allowed)".into());
        }
        let mut cursor = Cursor::new(line);
        cursor.skip_blanks();
        match cursor.peek() {
            None => Ok(()),
            Some(b'#') => {
                cursor.bump();
                self.comment(cursor)
            }
            Some(_) => self.sample(cursor),
        }
    }

    fn family_index(&mut self, name: &str) -> Result<usize, String> {
        if let Some(&index) = self.by_name.get(name) {
            return Ok(index);
        }
        let index = self.families.len();
        if index >= self.limits.max_families {
            self.exceeded = Some(Limit::Families);
            return Err(format!(
                "more than {} metric names",
                self.limits.max_families
            ));
        }
        self.families.push(FamilyState {
            family: Family {
                name: name.to_string(),
                help: None,
                kind: Kind::Untyped,
                samples: Vec::new(),
            },
            typed: false,
        });
        self.by_name.insert(name.to_string(), index);
        Ok(index)
    }

    fn comment(&mut self, mut cursor: Cursor<'_>) -> Result<(), String> {
        cursor.skip_blanks();
        let keyword = cursor.token();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(()); // a plain comment
        }
        cursor.skip_blanks();
        let name = cursor.token();
        if !is_valid_metric_name(name) {
            return Err(format!("invalid metric name {name:?} in {keyword} line"));
        }
        cursor.skip_blanks();
        let index = self.family_index(name)?;
        let Some(state) = self.families.get_mut(index) else {
            return Err("internal: family index".into());
        };
        if keyword == "HELP" {
            if state.family.help.is_some() {
                return Err(format!("second HELP line for metric {name}"));
            }
            state.family.help = Some(unescape_help(cursor.rest())?);
            return Ok(());
        }
        let type_name = cursor.token();
        cursor.skip_blanks();
        if !cursor.at_end() {
            return Err(format!("unexpected text after TYPE of {name}"));
        }
        let kind = match type_name.to_ascii_lowercase().as_str() {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "untyped" => Kind::Untyped,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            _ => return Err(format!("unknown metric type {type_name:?} for {name}")),
        };
        if state.typed {
            return Err(format!(
                "second TYPE line for metric {name}, or TYPE after its samples"
            ));
        }
        state.typed = true;
        state.family.kind = kind;
        Ok(())
    }

    /// The family a sample name belongs to, as the Go parser finds it: the exact name, else
    /// a summary's `_sum`/`_count`, else a histogram's `_sum`/`_count`/`_bucket`.
    fn family_of_sample(&mut self, name: &str) -> Result<(usize, &'static str), String> {
        if let Some(&index) = self.by_name.get(name) {
            return Ok((index, ""));
        }
        let typed_as = |parser: &Parser, base: &str, kind: Kind| {
            parser
                .by_name
                .get(base)
                .copied()
                .filter(|&i| parser.families.get(i).map(|f| f.family.kind) == Some(kind))
        };
        for suffix in ["_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(index) = typed_as(self, base, Kind::Summary) {
                    return Ok((index, suffix));
                }
            }
        }
        for suffix in ["_sum", "_count", "_bucket"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(index) = typed_as(self, base, Kind::Histogram) {
                    return Ok((index, suffix));
                }
            }
        }
        Ok((self.family_index(name)?, ""))
    }

    fn sample(&mut self, mut cursor: Cursor<'_>) -> Result<(), String> {
        let start = cursor.pos;
        let name = cursor.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
        let name_ends_well = matches!(cursor.peek(), None | Some(b' ' | b'\t' | b'{'));
        if !is_valid_metric_name(name) || !name_ends_well {
            cursor.pos = start;
            let token = cursor.token();
            return Err(format!("invalid metric name in sample {token:?}"));
        }
        if self.series >= self.limits.max_series {
            self.exceeded = Some(Limit::Series);
            return Err(format!("more than {} series", self.limits.max_series));
        }
        let labels = if cursor.peek() == Some(b'{') {
            cursor.bump();
            let per_sample = self.limits.max_labels_per_sample;
            let left = self.limits.max_label_pairs.saturating_sub(self.label_pairs);
            parse_labels(&mut cursor, per_sample.min(left)).map_err(|(message, exceeded)| {
                if !exceeded {
                    message
                } else if per_sample <= left {
                    self.exceeded = Some(Limit::Labels);
                    message
                } else {
                    self.exceeded = Some(Limit::LabelPairs);
                    format!("more than {} labels in all", self.limits.max_label_pairs)
                }
            })?
        } else {
            Vec::new()
        };
        cursor.skip_blanks();
        let value_text = cursor.token();
        if value_text.is_empty() {
            return Err(format!("missing value for {name}"));
        }
        let value = parse_value(value_text)
            .ok_or_else(|| format!("invalid value {value_text:?} for {name}"))?;
        cursor.skip_blanks();
        let timestamp_ms = if cursor.at_end() {
            None
        } else {
            let text = cursor.token();
            let timestamp = text
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {text:?} for {name}"))?;
            cursor.skip_blanks();
            if !cursor.at_end() {
                return Err(format!("unexpected text after the timestamp of {name}"));
            }
            Some(timestamp)
        };
        let (index, suffix) = self.family_of_sample(name)?;
        let Some(state) = self.families.get_mut(index) else {
            return Err("internal: family index".into());
        };
        state.typed = true;
        let needs = match (state.family.kind, suffix) {
            (Kind::Histogram, "_bucket") => Some("le"),
            (Kind::Histogram, "") => {
                return Err(format!(
                    "sample {name} of histogram {name} must be {name}_bucket, _sum or _count"
                ))
            }
            (Kind::Summary, "") => Some("quantile"),
            _ => None,
        };
        if let Some(label) = needs {
            let bound = labels
                .iter()
                .find(|(n, _)| n == label)
                .ok_or_else(|| format!("{name} needs a {label} label"))?;
            if parse_value(&bound.1).is_none() {
                return Err(format!("{label}={:?} of {name} is not a number", bound.1));
            }
        }
        let labels_len = labels.len();
        state.family.samples.push(Sample {
            suffix,
            labels,
            value,
            timestamp_ms,
        });
        self.series += 1;
        self.label_pairs += labels_len;
        Ok(())
    }
}

/// Go's strconv.ParseFloat accepts these; so does Rust's parser (plus "infinity").
fn parse_value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// Up to this many labels, duplicates are found by scanning; beyond, by a set, so a line with
/// any number of labels parses in linear time.
const LABELS_SCANNED: usize = 16;

/// `{a="1",b="x\"y"}` after the `{`: label pairs, escapes resolved, duplicates rejected, at
/// most `max` of them. The error says whether `max` was the problem.
fn parse_labels<'a>(
    cursor: &mut Cursor<'a>,
    max: usize,
) -> Result<Vec<(String, String)>, (String, bool)> {
    let syntax = |message: String| (message, false);
    let mut labels: Vec<(String, String)> = Vec::new();
    // The names as slices of the line, and as a set once there are many.
    let mut names: Vec<&'a str> = Vec::new();
    let mut seen: HashSet<&'a str> = HashSet::new();
    loop {
        cursor.skip_blanks();
        if cursor.peek() == Some(b'}') {
            cursor.bump();
            return Ok(labels);
        }
        if labels.len() >= max {
            return Err((format!("more than {max} labels on one line"), true));
        }
        let name = cursor.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_valid_label_name(name) {
            return Err(syntax(format!(
                "invalid label name at {:?}",
                cursor.rest_from(name)
            )));
        }
        if name == "__name__" {
            return Err(syntax("label name __name__ is reserved".into()));
        }
        cursor.skip_blanks();
        if cursor.peek() != Some(b'=') {
            return Err(syntax(format!("expected '=' after label name {name}")));
        }
        cursor.bump();
        cursor.skip_blanks();
        if cursor.peek() != Some(b'"') {
            return Err(syntax(format!(
                "expected '\"' to start the value of label {name}"
            )));
        }
        cursor.bump();
        let value = cursor.quoted_value(name).map_err(syntax)?;
        let duplicate = if names.len() < LABELS_SCANNED {
            names.contains(&name)
        } else {
            if seen.is_empty() {
                seen.extend(names.iter().copied());
            }
            !seen.insert(name)
        };
        if duplicate {
            return Err(syntax(format!("duplicate label name {name}")));
        }
        names.push(name);
        labels.push((name.to_string(), value));
        cursor.skip_blanks();
        match cursor.peek() {
            Some(b',') => cursor.bump(),
            Some(b'}') => {}
            _ => return Err(syntax(format!("expected ',' or '}}' after label {name}"))),
        }
    }
}

/// HELP text: `\\` and `\n` are the only escapes.
fn unescape_help(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => return Err(format!("invalid escape sequence '\\{other}' in HELP")),
            None => return Err("HELP ends with a lone backslash".into()),
        }
    }
    Ok(out)
}

struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str) -> Self {
        Cursor { line, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = (self.pos + 1).min(self.line.len());
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or("")
    }

    /// The rest of the line from where `token` (just taken) started, for error messages.
    fn rest_from(&self, token: &str) -> &'a str {
        self.line
            .get(self.pos.saturating_sub(token.len())..)
            .unwrap_or("")
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// ASCII-only predicates keep `pos` on a char boundary.
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && accept(b)) {
            self.pos += 1;
        }
        self.line.get(start..self.pos).unwrap_or("")
    }

    /// Up to the next blank (or the end).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        self.line.get(start..self.pos).unwrap_or("")
    }

    /// A label value after its opening quote, up to the closing one; `\\`, `\"` and `\n`
    /// are the only escapes.
    fn quoted_value(&mut self, label: &str) -> Result<String, String> {
        let rest = self.rest();
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((offset, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += offset + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, other)) => {
                        return Err(format!(
                            "invalid escape sequence '\\{other}' in the value of label {label}"
                        ))
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(format!("unterminated value of label {label}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The textfile node_exporter's own docs show (collector/fixtures/textfile), and what the
    // Raspberry Pi textfile exporters of pi-facts.md write (fahlke/raspberrypi_exporter style).
    const PI_EXPORTER: &str = "# HELP rpi_temperature Temperature of the SoC in degrees Celsius.\n\
# TYPE rpi_temperature gauge\n\
rpi_temperature{sensor=\"soc\"} 46.7\n\
# HELP rpi_frequency Clock frequency in Hz.\n\
# TYPE rpi_frequency gauge\n\
rpi_frequency{component=\"arm\"} 1500000000\n\
rpi_frequency{component=\"core\"} 500000000\n\
# HELP rpi_voltage Voltage in volts.\n\
# TYPE rpi_voltage gauge\n\
rpi_voltage{id=\"core\"} 0.8600\n";

    #[test]
    fn parses_a_pi_exporter_file() {
        let families = parse(PI_EXPORTER.as_bytes()).unwrap();
        assert_eq!(families.len(), 3);
        assert_eq!(families[1].name, "rpi_frequency");
        assert_eq!(families[1].kind, Kind::Gauge);
        assert_eq!(families[1].help.as_deref(), Some("Clock frequency in Hz."));
        assert_eq!(
            families[1].samples[1],
            Sample {
                suffix: "",
                labels: vec![("component".into(), "core".into())],
                value: 500000000.0,
                timestamp_ms: None
            }
        );
        assert_eq!(families[2].samples[0].value, 0.86);
    }

    #[test]
    fn escapes_special_values_and_untyped_families() {
        let text = "# HELP m Multi\\nline \\\\ help\n\
                    m{path=\"C:\\\\x\",q=\"say \\\"hi\\\"\",nl=\"a\\nb\",} NaN\n\
                    \t  other{}  +Inf   \n\
                    # just a comment\n\
                    #TYPE lower_case_type COUNTER\n\
                    lower_case_type -Inf\n\
                    nounit 1e-3 1700000000000\n";
        let families = parse(text.as_bytes()).unwrap();
        assert_eq!(families[0].help.as_deref(), Some("Multi\nline \\ help"));
        assert_eq!(
            families[0].samples[0].labels,
            vec![
                ("path".to_string(), "C:\\x".to_string()),
                ("q".to_string(), "say \"hi\"".to_string()),
                ("nl".to_string(), "a\nb".to_string()),
            ]
        );
        assert!(families[0].samples[0].value.is_nan());
        assert_eq!(families[0].kind, Kind::Untyped);
        assert_eq!(families[1].samples[0].value, f64::INFINITY);
        assert_eq!(families[2].kind, Kind::Counter);
        assert_eq!(families[3].samples[0].value, 0.001);
        assert_eq!(families[3].samples[0].timestamp_ms, Some(1700000000000));
    }

    #[test]
    fn histograms_and_summaries_group_their_series() {
        let text = "# TYPE h histogram\n\
                    h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n\
                    # TYPE s summary\n\
                    s{quantile=\"0.9\"} 0.25\ns_sum 10\ns_count 40\n\
                    s_total 1\n";
        let families = parse(text.as_bytes()).unwrap();
        let suffixes: Vec<_> = families[0].samples.iter().map(|s| s.suffix).collect();
        assert_eq!(suffixes, ["_bucket", "_bucket", "_sum", "_count"]);
        assert_eq!(families[0].kind, Kind::Histogram);
        assert_eq!(families[1].samples.len(), 3);
        assert_eq!(families[2].name, "s_total", "not a summary suffix");
    }

    #[test]
    fn families_with_only_help_or_type_are_dropped() {
        let families = parse(b"# HELP a A.\n# TYPE b gauge\n\n").unwrap();
        assert!(families.is_empty());
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn bad_input_is_an_error_with_its_line() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"a 1\nb-c 2\n", 2, "invalid metric name"),
            (b"1a 1\n", 1, "invalid metric name"),
            (b"a\n", 1, "missing value"),
            (b"a \n", 1, "missing value"),
            (b"a one\n", 1, "invalid value"),
            (b"a 1 2 3\n", 1, "after the timestamp"),
            (b"a 1 1.5\n", 1, "invalid timestamp"),
            (b"a{x=\"1\",x=\"2\"} 1\n", 1, "duplicate label name x"),
            (b"a{x=\"1} 1\n", 1, "unterminated"),
            (b"a{x=\"\\t\"} 1\n", 1, "invalid escape"),
            (b"a{x=1} 1\n", 1, "expected '\"'"),
            (b"a{1x=\"1\"} 1\n", 1, "invalid label name"),
            (b"a{x=\"1\" y=\"2\"} 1\n", 1, "expected ','"),
            (b"a{__name__=\"b\"} 1\n", 1, "reserved"),
            (b"a{x\"1\"} 1\n", 1, "expected '='"),
            (b"# TYPE a gauge\n# TYPE a counter\na 1\n", 2, "second TYPE"),
            (b"a 1\n# TYPE a gauge\n", 2, "TYPE after"),
            (b"# TYPE a gauges\n", 1, "unknown metric type"),
            (b"# TYPE a gauge extra\n", 1, "unexpected text"),
            (b"# HELP a x\n# HELP a y\n", 2, "second HELP"),
            (b"# HELP a bad \\t\n", 1, "invalid escape"),
            (b"# HELP 9a x\n", 1, "invalid metric name"),
            (b"# TYPE h histogram\nh_bucket 1\n", 2, "needs a le label"),
            (
                b"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                2,
                "not a number",
            ),
            (b"# TYPE h histogram\nh 1\n", 2, "must be h_bucket"),
            (b"# TYPE s summary\ns 1\n", 2, "needs a quantile label"),
            (b"a 1\r\n", 1, "\\r"),
            (b"a 1\nb{x=\"\xff\"} 1\n", 2, "invalid UTF-8"),
        ];
        for (text, line, message) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                err.line,
                *line,
                "{:?}: {err}",
                String::from_utf8_lossy(text)
            );
            assert!(
                err.message.contains(message),
                "{:?}: {err}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn many_labels_on_one_line_parse_in_linear_time() {
        // Found by fuzzing: 600k labels on one line never finished (quadratic duplicate check).
        let mut line = String::from("m{");
        for i in 0..200_000 {
            line.push_str(&format!("l{i}=\"v\","));
        }
        line.push_str("} 1\n");
        let families = parse(line.as_bytes()).unwrap();
        assert_eq!(families[0].samples[0].labels.len(), 200_000);
        line.insert_str(2, "l199999=\"w\",");
        let err = parse(line.as_bytes()).unwrap_err();
        assert!(
            err.message.contains("duplicate label name l199999"),
            "{err}"
        );
        assert_eq!(err.limit, None);
    }

    #[test]
    fn limits_stop_the_parse_at_the_line_that_exceeds_them() {
        let limits = Limits {
            max_labels_per_sample: 2,
            max_label_pairs: 3,
            max_series: 3,
            max_families: 2,
        };
        let ok = b"a{x=\"1\",y=\"2\"} 1\na 2\nb 3\n";
        assert_eq!(parse_with_limits(ok, limits).unwrap().len(), 2);
        let err = parse_with_limits(b"a 1\na{x=\"1\",y=\"2\",z=\"3\"} 1\n", limits).unwrap_err();
        assert_eq!((err.line, err.limit), (2, Some(Limit::Labels)), "{err}");
        assert!(err.message.contains("more than 2 labels"), "{err}");
        let err = parse_with_limits(b"a 1\na{x=\"\"} 2\na{y=\"\"} 3\nb 4\n", limits).unwrap_err();
        assert_eq!((err.line, err.limit), (4, Some(Limit::Series)), "{err}");
        let err =
            parse_with_limits(b"a{x=\"1\",y=\"2\"} 1\nb{x=\"1\",y=\"2\"} 1\n", limits).unwrap_err();
        assert_eq!((err.line, err.limit), (2, Some(Limit::LabelPairs)), "{err}");
        assert!(err.message.contains("more than 3 labels in all"), "{err}");
        // Names alone (HELP lines) cost memory too.
        let err = parse_with_limits(b"# HELP a A\n# HELP b B\n# HELP c C\n", limits).unwrap_err();
        assert_eq!((err.line, err.limit), (3, Some(Limit::Families)), "{err}");
        // A syntax error is no limit.
        assert_eq!(parse_with_limits(b"a{\n", limits).unwrap_err().limit, None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        let alphabet = b"a_:{}=\",\\ \t\n#HELPTYPE01.+-Infle\xc3\xa9\xff";
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                input.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&input);
        }
    }
}
