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
//! Files are parsed again only when their mtime, size or inode change. A bad file is logged
//! once per distinct problem, not on every scrape.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::textformat::{self, Family};

/// Largest file read; a bigger one is an error (a runaway script must not eat a Pi Zero's RAM).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(TextfileCollector {
        directory: ctx.config.textfile.directory.clone(),
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
        files: HashMap::new(),
        claims: Claims::default(),
        directory_problem: None,
        names: Vec::new(),
        buf: Vec::new(),
    }))
}

struct TextfileCollector {
    directory: Option<PathBuf>,
    mtime: FamilyId,
    scrape_error: FamilyId,
    /// Per file name: what was read last time.
    files: HashMap<String, FileState>,
    claims: Claims,
    /// The directory error last logged.
    directory_problem: Option<String>,
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

struct FileState {
    stamp: Stamp,
    mtime_seconds: f64,
    parsed: Result<Vec<Family>, String>,
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

impl Collector for TextfileCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        self.claims.defined.clear();
        self.claims.series.clear();
        let Some(directory) = self.directory.clone() else {
            out.sample(self.scrape_error, &[], 0.0);
            return Ok(());
        };
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
        let names = std::mem::take(&mut self.names);
        self.files.retain(|name, _| names.contains(name));
        for name in &names {
            let path = directory.join(name);
            let label = path.to_string_lossy();
            match self.process(name, &path, &label, out) {
                Ok(mtime) => out.sample(self.mtime, &[&label], mtime),
                Err(problem) => {
                    errored = true;
                    if let Some(state) = self.files.get_mut(name) {
                        if state.logged.as_deref() != Some(problem.as_str()) {
                            log::error!("textfile: {label}: {problem}; file skipped");
                            state.logged = Some(problem);
                        }
                    } else {
                        // Not even stat-able: logged once per scrape it stays so is too much,
                        // so remember it with an impossible stamp.
                        log::error!("textfile: {label}: {problem}; file skipped");
                        self.files.insert(
                            name.clone(),
                            FileState {
                                stamp: Stamp {
                                    mtime_ns: (i64::MIN, 0),
                                    len: u64::MAX,
                                    inode: 0,
                                },
                                mtime_seconds: 0.0,
                                parsed: Err(problem.clone()),
                                logged: Some(problem),
                            },
                        );
                    }
                }
            }
        }
        self.names = names;
        out.sample(self.scrape_error, &[], if errored { 1.0 } else { 0.0 });
        Ok(())
    }
}

impl TextfileCollector {
    /// Reads (if changed) and exports one file; returns its mtime.
    fn process(
        &mut self,
        name: &str,
        path: &Path,
        label: &str,
        out: &mut Exposition,
    ) -> Result<f64, String> {
        let meta = fs::metadata(path).map_err(|err| err.to_string())?;
        if meta.is_dir() {
            return Err("is a directory".into());
        }
        let stamp = Stamp {
            mtime_ns: (meta.mtime(), meta.mtime_nsec()),
            len: meta.len(),
            inode: meta.ino(),
        };
        let unchanged = self.files.get(name).is_some_and(|s| s.stamp == stamp);
        if !unchanged {
            let parsed = read_limited(path, meta.len(), &mut self.buf)
                .and_then(|()| parse_file(&self.buf, label));
            if let Some(old) = self.files.get(name) {
                if old.parsed.is_err() && parsed.is_ok() {
                    log::info!("textfile: {label} is valid again");
                }
            }
            let logged = self.files.remove(name).and_then(|s| s.logged);
            self.files.insert(
                name.to_string(),
                FileState {
                    stamp,
                    mtime_seconds: meta.mtime() as f64,
                    parsed,
                    logged,
                },
            );
        }
        let Some(state) = self.files.get_mut(name) else {
            return Err("internal: file state missing".into());
        };
        let families = state.parsed.as_ref().map_err(Clone::clone)?;
        export(families, &mut self.claims, out)?;
        state.logged = None;
        Ok(state.mtime_seconds)
    }
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

/// Reads at most `MAX_FILE_BYTES`; a bigger file is an error, not a truncated read.
fn read_limited(path: &Path, len: u64, buf: &mut Vec<u8>) -> Result<(), String> {
    let too_big = || {
        format!(
            "file is larger than the {} MiB limit of the textfile collector",
            MAX_FILE_BYTES / (1024 * 1024)
        )
    };
    if len > MAX_FILE_BYTES {
        return Err(too_big());
    }
    buf.clear();
    // Never a blocking open: a FIFO named *.prom costs only itself.
    crate::roots::open_regular(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(buf))
        .map_err(|err| err.to_string())?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        buf.clear();
        buf.shrink_to(64 * 1024);
        return Err(too_big());
    }
    Ok(())
}

/// Parses a file's bytes, rejects client-side timestamps and fills in missing HELP texts.
pub fn parse_file(bytes: &[u8], path_label: &str) -> Result<Vec<Family>, String> {
    let mut families = textformat::parse(bytes).map_err(|err| format!("parse error: {err}"))?;
    if families
        .iter()
        .any(|f| f.samples.iter().any(|s| s.timestamp_ms.is_some()))
    {
        return Err("contains unsupported client-side timestamps, skipping entire file".into());
    }
    for family in &mut families {
        if family.help.is_none() {
            family.help = Some(format!("Metric read from {path_label}"));
        }
    }
    Ok(families)
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
