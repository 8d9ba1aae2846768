//! node_exporter's textfile collector: exports the metrics of the `*.prom` files of
//! `textfile.directory` (`--collector.textfile.directory`), written by cron jobs and scripts.
//!
//! As node_exporter 1.5 does:
//! - `node_textfile_mtime_seconds{file="<dir>/<name>.prom"}` for every file read successfully;
//! - `node_textfile_scrape_error` 1 when any file or the directory failed, else 0 (also 0 when
//!   no directory is configured);
//! - a file that fails is dropped whole (its metrics, its mtime), the others are kept;
//! - files with client-side timestamps are rejected; families without HELP get
//!   "Metric read from <path>".
//!
//! Stricter than node_exporter, which lets the registry drop clashing series later: a file is
//! rejected (and counted as an error) when one of its series duplicates another series (of the
//! same file or of an earlier file, in name order), when a family has another type than in an
//! earlier file, or when it uses a metric name another collector exports (`node_load1`...).
//!
//! Bounded, unlike node_exporter: memory follows the caps below, not the directory. Files are
//! opened non-blocking and must be regular files (a FIFO costs only itself); at most
//! `MAX_FILES` files, `MAX_TOTAL_BYTES`, `MAX_SERIES` series and `MAX_LABELS` labels per
//! scrape, `MAX_FILE_BYTES` per file, `MAX_LABELS_PER_SERIES` per series. What is dropped, and why, is exported as
//! `node_textfile_dropped_files{reason}`. Names no file exports any more are forgotten.
//!
//! Files are parsed again only when their mtime, size or inode change. A bad file is logged
//! once per distinct problem, not on every scrape.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{optional_path, path_or_none, Flag};
use crate::exposition::parse::{self, Family, Limit, Limits};

use serde::{Deserialize, Serialize};


#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    /// Directory of `*.prom` files to export; empty: the textfile collector has nothing to read.
    pub directory: Option<PathBuf>,
}

impl super::CollectorSettings for TextfileConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        Flag {
            name: "--collector.textfile.directory",
            placeholder: "DIR",
            help: "Directory to read text files with metrics from (*.prom). Config: textfile.directory.",
            default: |s| optional_path(&s.directory),
            switch: false,
            apply: |s, v| {
                s.directory = path_or_none(v);
                Ok(())
            },
        },
    ];
}

/// Largest file read; a bigger one is an error (a runaway script must not eat a Pi Zero's RAM).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Most `*.prom` files read per scrape: the first ones in name order, the others are dropped.
pub const MAX_FILES: usize = 1000;
/// Most bytes of all the files exported in one scrape. The text is held about three times
/// (parsed, in the scrape buffer, rendered): 8 MiB keeps the agent near 30 MB at worst.
pub const MAX_TOTAL_BYTES: u64 = 8 * 1024 * 1024;
/// Most series (sample lines) of all the files exported in one scrape. Memory follows this
/// and the byte caps, whatever is in the directory.
pub const MAX_SERIES: usize = 20_000;
/// Most labels on one series.
pub const MAX_LABELS_PER_SERIES: usize = 64;
/// Most label pairs of all the series exported in one scrape: a parsed label costs about 100
/// bytes, so 20,000 series of 63 labels would take 130 MB without this.
pub const MAX_LABELS: usize = 100_000;

/// Why a file was not exported; the label values of `node_textfile_dropped_files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    TooManyFiles,
    FileTooLarge,
    TooManyBytes,
    TooManySeries,
    TooManyLabels,
    TooManyLabelsPerSeries,
    NotRegularFile,
    ReadError,
    ParseError,
    Conflict,
}

impl Reason {
    const ALL: [Reason; 10] = [
        Reason::TooManyFiles,
        Reason::FileTooLarge,
        Reason::TooManyBytes,
        Reason::TooManySeries,
        Reason::TooManyLabels,
        Reason::TooManyLabelsPerSeries,
        Reason::NotRegularFile,
        Reason::ReadError,
        Reason::ParseError,
        Reason::Conflict,
    ];

    fn label(self) -> &'static str {
        match self {
            Reason::TooManyFiles => "too_many_files",
            Reason::FileTooLarge => "file_too_large",
            Reason::TooManyBytes => "too_many_bytes",
            Reason::TooManySeries => "too_many_series",
            Reason::TooManyLabels => "too_many_labels",
            Reason::TooManyLabelsPerSeries => "too_many_labels_per_series",
            Reason::NotRegularFile => "not_regular_file",
            Reason::ReadError => "read_error",
            Reason::ParseError => "parse_error",
            Reason::Conflict => "conflict",
        }
    }

    /// Depends on what the files before this one used of the scrape's budget, not on this
    /// file alone: the file is read again next scrape.
    fn depends_on_budget(self) -> bool {
        matches!(
            self,
            Reason::TooManyBytes | Reason::TooManySeries | Reason::TooManyLabels
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Problem {
    reason: Reason,
    message: String,
}

impl Problem {
    fn new(reason: Reason, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

pub fn build(ctx: &Context<TextfileConfig>, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(TextfileCollector {
        directory: ctx.settings.directory.clone(),
        mtime: out.family(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
            Kind::Gauge,
            &["file"],
        ),
        scrape_error: out.family(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            Kind::Gauge,
            &[],
        ),
        dropped: out.family(
            "node_textfile_dropped_files",
            "pimetrics: textfiles not exported in this scrape, by reason (errors and limits).",
            Kind::Gauge,
            &["reason"],
        ),
        files: HashMap::new(),
        claims: Claims::default(),
        directory_problem: None,
        files_limit_logged: false,
        names: Vec::new(),
        buf: Vec::new(),
    }))
}

struct TextfileCollector {
    directory: Option<PathBuf>,
    mtime: FamilyId,
    scrape_error: FamilyId,
    dropped: FamilyId,
    /// Per file name: what was read last time.
    files: HashMap<String, FileState>,
    claims: Claims,
    /// The directory error last logged.
    directory_problem: Option<String>,
    files_limit_logged: bool,
    names: Vec<String>,
    buf: Vec<u8>,
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: (i64, i64),
    len: u64,
    inode: u64,
}

impl Stamp {
    /// Matches no file: the file is read again next scrape.
    const NONE: Stamp = Stamp {
        mtime_ns: (i64::MIN, 0),
        len: u64::MAX,
        inode: 0,
    };
}

struct FileState {
    stamp: Stamp,
    mtime_seconds: f64,
    parsed: Result<Vec<Family>, Problem>,
    /// Series and label pairs in `parsed`.
    series: usize,
    labels: usize,
    /// The problem last logged for this file.
    logged: Option<String>,
}

/// Families this collector created, and what this scrape has written so far.
#[derive(Default)]
struct Claims {
    owned: HashSet<FamilyId>,
    /// Type of each family as the first file of this scrape defined it.
    defined: HashMap<FamilyId, Kind>,
    /// Hashes of the series written this scrape.
    series: HashSet<u64>,
}

/// What is left of a scrape's caps.
struct Budget {
    series: usize,
    labels: usize,
    bytes: u64,
}

impl Collector for TextfileCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        self.claims.defined.clear();
        self.claims.series.clear();
        let Some(directory) = self.directory.clone() else {
            out.sample(self.scrape_error, &[], 0.0);
            return Ok(());
        };
        let mut dropped = [0usize; Reason::ALL.len()];
        let mut errored = false;
        match list_prom_files(&directory, &mut self.names) {
            Ok(()) => {
                if self.directory_problem.take().is_some() {
                    log::info!("textfile: {} readable again", directory.display());
                }
            }
            Err(problem) => {
                errored = true;
                self.names.clear();
                if self.directory_problem.as_deref() != Some(problem.as_str()) {
                    log::error!("textfile: {problem}");
                    self.directory_problem = Some(problem);
                }
            }
        }
        let mut names = std::mem::take(&mut self.names);
        if names.len() > MAX_FILES {
            errored = true;
            dropped[Reason::TooManyFiles as usize] += names.len() - MAX_FILES;
            if !self.files_limit_logged {
                log::error!(
                    "textfile: {} has {} *.prom files; only the first {MAX_FILES} (by name) are read",
                    directory.display(),
                    names.len()
                );
                self.files_limit_logged = true;
            }
            names.truncate(MAX_FILES);
        } else {
            self.files_limit_logged = false;
        }
        // `names` is sorted.
        self.files
            .retain(|name, _| names.binary_search(name).is_ok());
        let mut budget = Budget {
            series: MAX_SERIES,
            labels: MAX_LABELS,
            bytes: MAX_TOTAL_BYTES,
        };
        for name in &names {
            let path = directory.join(name);
            let label = path.to_string_lossy();
            match self.process(name, &path, &label, &mut budget, out) {
                Ok(mtime) => out.sample(self.mtime, &[&label], mtime),
                Err(problem) => {
                    errored = true;
                    dropped[problem.reason as usize] += 1;
                    if let Some(state) = self.files.get_mut(name) {
                        if state.logged.as_deref() != Some(problem.message.as_str()) {
                            log::error!("textfile: {label}: {}; file skipped", problem.message);
                            state.logged = Some(problem.message);
                        }
                    }
                }
            }
        }
        self.names = names;
        if self.buf.capacity() > 1024 * 1024 {
            self.buf = Vec::new(); // one big file must not keep 8 MiB between scrapes
        }
        out.sample(self.scrape_error, &[], if errored { 1.0 } else { 0.0 });
        for (reason, count) in Reason::ALL.iter().zip(dropped) {
            out.sample(self.dropped, &[reason.label()], count as f64);
        }
        // Names no file exported this scrape are released, so names that come and go in
        // rewritten files do not accumulate.
        let defined = &self.claims.defined;
        self.claims.owned.retain(|id| {
            let used = defined.contains_key(id);
            if !used {
                out.forget(*id);
            }
            used
        });
        Ok(())
    }
}

impl TextfileCollector {
    /// Reads (if changed) and exports one file; returns its mtime. On error the file has a
    /// state (for logging once).
    fn process(
        &mut self,
        name: &str,
        path: &Path,
        label: &str,
        budget: &mut Budget,
        out: &mut Exposition,
    ) -> Result<f64, Problem> {
        let (file, meta) = match open_regular(path) {
            Ok(opened) => opened,
            Err(problem) => {
                self.remember(name, Stamp::NONE, 0.0, Err(problem.clone()));
                return Err(problem);
            }
        };
        let stamp = Stamp {
            mtime_ns: (meta.mtime(), meta.mtime_nsec()),
            len: meta.len(),
            inode: meta.ino(),
        };
        let unchanged = self.files.get(name).is_some_and(|s| s.stamp == stamp);
        if !unchanged {
            let parsed = if stamp.len > MAX_FILE_BYTES {
                Err(too_big())
            } else if stamp.len > budget.bytes {
                Err(bytes_exhausted())
            } else {
                let limits = Limits {
                    max_labels_per_sample: MAX_LABELS_PER_SERIES,
                    max_label_pairs: budget.labels,
                    max_series: budget.series,
                    max_families: budget.series,
                };
                read_limited(file, &mut self.buf)
                    .and_then(|()| parse_limited(&self.buf, label, limits))
            };
            if let Some(old) = self.files.get(name) {
                if old.parsed.is_err() && parsed.is_ok() {
                    log::info!("textfile: {label} is valid again");
                }
            }
            let stamp = match &parsed {
                Err(problem) if problem.reason.depends_on_budget() => Stamp::NONE,
                _ => stamp,
            };
            self.remember(name, stamp, meta.mtime() as f64, parsed);
        }
        let Some(state) = self.files.get_mut(name) else {
            return Err(Problem::new(
                Reason::ReadError,
                "internal: file state missing",
            ));
        };
        if let Err(problem) = &state.parsed {
            return Err(problem.clone());
        }
        // A file read earlier, now beyond what the files before it left: its families are
        // released and it is read again next scrape.
        let exhausted = if state.series > budget.series {
            Some(series_exhausted())
        } else if state.labels > budget.labels {
            Some(labels_exhausted())
        } else if state.stamp.len > budget.bytes {
            Some(bytes_exhausted())
        } else {
            None
        };
        if let Some(problem) = exhausted {
            state.parsed = Err(problem.clone());
            state.stamp = Stamp::NONE;
            return Err(problem);
        }
        if let Ok(families) = &state.parsed {
            export(families, &mut self.claims, out)
                .map_err(|message| Problem::new(Reason::Conflict, message))?;
        }
        budget.series -= state.series;
        budget.labels -= state.labels;
        budget.bytes -= state.stamp.len;
        state.logged = None;
        Ok(state.mtime_seconds)
    }

    /// Records what was read of `name`, keeping what was logged about it.
    fn remember(
        &mut self,
        name: &str,
        stamp: Stamp,
        mtime_seconds: f64,
        parsed: Result<(Vec<Family>, Counts), Problem>,
    ) {
        let logged = self.files.remove(name).and_then(|s| s.logged);
        let (parsed, counts) = match parsed {
            Ok((families, counts)) => (Ok(families), counts),
            Err(problem) => (Err(problem), Counts::default()),
        };
        self.files.insert(
            name.to_string(),
            FileState {
                stamp,
                mtime_seconds,
                parsed,
                series: counts.series,
                labels: counts.labels,
                logged,
            },
        );
    }
}

fn too_big() -> Problem {
    Problem::new(
        Reason::FileTooLarge,
        format!(
            "file is larger than the {} MiB limit of the textfile collector",
            MAX_FILE_BYTES / (1024 * 1024)
        ),
    )
}

fn bytes_exhausted() -> Problem {
    Problem::new(
        Reason::TooManyBytes,
        format!(
            "the files before it reach the limit of {} MiB per scrape",
            MAX_TOTAL_BYTES / (1024 * 1024)
        ),
    )
}

fn labels_exhausted() -> Problem {
    Problem::new(
        Reason::TooManyLabels,
        format!("the limit of {MAX_LABELS} labels per scrape (all files) is reached"),
    )
}

fn series_exhausted() -> Problem {
    Problem::new(
        Reason::TooManySeries,
        format!("the limit of {MAX_SERIES} series per scrape (all files) is reached"),
    )
}

/// Opens without blocking (a FIFO opens at once and is refused, never waited on) and checks
/// the open file itself is a regular file (`roots::open_regular`).
fn open_regular(path: &Path) -> Result<(File, Metadata), Problem> {
    let file = crate::roots::open_regular(path).map_err(|err| {
        let reason = if err.kind() == std::io::ErrorKind::InvalidInput {
            Reason::NotRegularFile
        } else {
            Reason::ReadError
        };
        Problem::new(reason, err.to_string())
    })?;
    let meta = file
        .metadata()
        .map_err(|err| Problem::new(Reason::ReadError, err.to_string()))?;
    Ok((file, meta))
}

/// The `*.prom` names of `directory`, sorted.
fn list_prom_files(directory: &Path, names: &mut Vec<String>) -> Result<(), String> {
    names.clear();
    let entries = fs::read_dir(directory).map_err(|err| {
        format!(
            "failed to read textfile collector directory {}: {err}",
            directory.display()
        )
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".prom") {
            names.push(name);
        }
    }
    names.sort();
    Ok(())
}

/// Reads at most `MAX_FILE_BYTES`; a bigger file (grown since its fstat) is an error, not a
/// truncated read.
fn read_limited(file: File, buf: &mut Vec<u8>) -> Result<(), Problem> {
    buf.clear();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(buf)
        .map_err(|err| Problem::new(Reason::ReadError, err.to_string()))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        buf.clear();
        return Err(too_big());
    }
    Ok(())
}

/// Parses a file's bytes within the collector's caps, rejects client-side timestamps and
/// fills in missing HELP texts.
pub fn parse_file(bytes: &[u8], path_label: &str) -> Result<Vec<Family>, String> {
    let limits = Limits {
        max_labels_per_sample: MAX_LABELS_PER_SERIES,
        max_label_pairs: MAX_LABELS,
        max_series: MAX_SERIES,
        max_families: MAX_SERIES,
    };
    parse_limited(bytes, path_label, limits)
        .map(|(families, _)| families)
        .map_err(|problem| problem.message)
}

/// Series and label pairs of a parsed file.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    series: usize,
    labels: usize,
}

/// `parse_file` with the given limits; also returns what the file holds.
fn parse_limited(
    bytes: &[u8],
    path_label: &str,
    limits: Limits,
) -> Result<(Vec<Family>, Counts), Problem> {
    let mut families = parse::parse_with_limits(bytes, limits).map_err(|err| {
        let reason = match err.limit {
            None => Reason::ParseError,
            Some(Limit::Labels) => Reason::TooManyLabelsPerSeries,
            Some(Limit::LabelPairs) => Reason::TooManyLabels,
            Some(Limit::Series | Limit::Families) => Reason::TooManySeries,
        };
        Problem::new(reason, format!("parse error: {err}"))
    })?;
    if families
        .iter()
        .any(|f| f.samples.iter().any(|s| s.timestamp_ms.is_some()))
    {
        return Err(Problem::new(
            Reason::ParseError,
            "contains unsupported client-side timestamps, skipping entire file",
        ));
    }
    for family in &mut families {
        if family.help.is_none() {
            family.help = Some(format!("Metric read from {path_label}"));
        }
    }
    let mut counts = Counts::default();
    for sample in families.iter().flat_map(|f| &f.samples) {
        counts.series += 1;
        counts.labels += sample.labels.len();
    }
    Ok((families, counts))
}

/// The identity of a series: its full name and its labels, sorted, without the agent's `node`
/// label and without empty values (Prometheus treats `a=""` as no label).
fn series_hash<'a>(
    name: &str,
    suffix: &str,
    labels: &'a [(String, String)],
    scratch: &mut Vec<(&'a str, &'a str)>,
) -> u64 {
    scratch.clear();
    scratch.extend(
        labels
            .iter()
            .filter(|(n, v)| n != "node" && !v.is_empty())
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    scratch.sort_unstable();
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    suffix.hash(&mut hasher);
    scratch.hash(&mut hasher);
    hasher.finish()
}

/// Checks a file's families against what is already exported, then writes them. Nothing is
/// written when the file conflicts.
fn export(families: &[Family], claims: &mut Claims, out: &mut Exposition) -> Result<(), String> {
    let mut ids = Vec::with_capacity(families.len());
    for family in families {
        let help = family.help.as_deref().unwrap_or("");
        let id = match out.lookup(&family.name) {
            None => {
                let id = out
                    .try_family(&family.name, help, family.kind, &[])
                    .map_err(|err| err.to_string())?;
                claims.owned.insert(id);
                id
            }
            Some(id) if !claims.owned.contains(&id) => {
                return Err(format!(
                    "metric {} is exported by another collector",
                    family.name
                ))
            }
            Some(id) => id,
        };
        if let Some(kind) = claims.defined.get(&id) {
            if *kind != family.kind {
                return Err(format!(
                    "metric {} has type {} here but {} in an earlier file",
                    family.name,
                    family.kind.as_str(),
                    kind.as_str()
                ));
            }
        }
        ids.push(id);
    }
    let mut scratch = Vec::new();
    let mut hashes = HashSet::new();
    for family in families {
        for sample in &family.samples {
            let hash = series_hash(&family.name, sample.suffix, &sample.labels, &mut scratch);
            if claims.series.contains(&hash) || !hashes.insert(hash) {
                return Err(format!(
                    "duplicate series {}{}{}",
                    family.name,
                    sample.suffix,
                    format_labels(&sample.labels)
                ));
            }
        }
    }
    claims.series.extend(hashes);
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for (family, &id) in families.iter().zip(&ids) {
        if let std::collections::hash_map::Entry::Vacant(entry) = claims.defined.entry(id) {
            entry.insert(family.kind);
            out.redefine(id, family.help.as_deref().unwrap_or(""), family.kind);
        }
        for sample in &family.samples {
            labels.clear();
            labels.extend(sample.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            out.sample_with_suffix(id, sample.suffix, &labels, sample.value);
        }
    }
    Ok(())
}

fn format_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_reject_the_file_and_help_is_filled_in() {
        let err = parse_file(b"a 1 1700000000000\n", "/x/a.prom").unwrap_err();
        assert!(err.contains("client-side timestamps"), "{err}");
        let families = parse_file(b"a 1\n", "/x/a.prom").unwrap();
        assert_eq!(
            families[0].help.as_deref(),
            Some("Metric read from /x/a.prom")
        );
        let err = parse_file(b"a{", "/x/a.prom").unwrap_err();
        assert!(err.starts_with("parse error: line 1:"), "{err}");
    }

    #[test]
    fn conflicts_write_nothing() {
        let mut out = Exposition::new("pi");
        let load = out.family("node_load1", "1m load average.", Kind::Gauge, &[]);
        let mut claims = Claims::default();
        let ok = parse_file(b"# TYPE x gauge\nx{a=\"1\"} 1\n", "f").unwrap();
        export(&ok, &mut claims, &mut out).unwrap();
        for (text, problem) in [
            (&b"y 1\nnode_load1 5\n"[..], "exported by another collector"),
            (
                b"y 1\n# TYPE x gauge\nx{a=\"1\",node=\"other\"} 2\n",
                "duplicate series x{a=\"1\"",
            ),
            (
                b"y 1\n# TYPE x counter\nx{a=\"2\"} 2\n",
                "has type counter here but gauge in an earlier file",
            ),
            (b"y{b=\"\"} 1\ny 2\n", "duplicate series y"),
        ] {
            let families = parse_file(text, "g").unwrap();
            let err = export(&families, &mut claims, &mut out).unwrap_err();
            assert!(err.contains(problem), "{err}");
        }
        let mut text = String::new();
        out.render(&mut text);
        assert_eq!(
            text,
            "# HELP x Metric read from f\n# TYPE x gauge\nx{node=\"pi\",a=\"1\"} 1\n"
        );
        assert_eq!(out.kind_of(load), Kind::Gauge);
    }
}
