//! node_os_info{build_id,id,...,version_id} = 1 and node_os_version{id,id_like,name} from
//! <rootfs>/etc/os-release, else <rootfs>/usr/lib/os-release, as node_exporter's `os` collector.
//!
//! The file is parsed again only when its path or modification time changes, as node_exporter
//! does; a scrape otherwise costs one stat().

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::Roots;

/// os-release keys of the node_os_info labels, in node_exporter's label order.
const INFO_KEYS: [&str; 12] = [
    "BUILD_ID",
    "ID",
    "ID_LIKE",
    "IMAGE_ID",
    "IMAGE_VERSION",
    "NAME",
    "PRETTY_NAME",
    "VARIANT",
    "VARIANT_ID",
    "VERSION",
    "VERSION_CODENAME",
    "VERSION_ID",
];
const INFO_LABELS: [&str; 12] = [
    "build_id",
    "id",
    "id_like",
    "image_id",
    "image_version",
    "name",
    "pretty_name",
    "variant",
    "variant_id",
    "version",
    "version_codename",
    "version_id",
];
const ID: usize = 1;
const ID_LIKE: usize = 2;
const NAME: usize = 5;
const VERSION_ID: usize = 11;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(OsCollector {
        candidates: ["/etc/os-release", "/usr/lib/os-release"]
            .map(|path| host_path(ctx.roots, path)),
        cached: None,
        info: out.family(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, \
             image_version, name, pretty_name, variant, variant_id, version, version_codename, \
             version_id.",
            Kind::Gauge,
            &INFO_LABELS,
        ),
        version: out.family(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            Kind::Gauge,
            &["id", "id_like", "name"],
        ),
    }))
}

/// `abs` below the root filesystem. An absolute symlink there (`/etc/os-release ->
/// /usr/lib/os-release` on some systems) points into the host's tree, not ours: follow it
/// below the root too, one level.
fn host_path(roots: &Roots, abs: &str) -> PathBuf {
    let path = roots.root(abs);
    match std::fs::read_link(&path) {
        Ok(target) if target.is_absolute() => target
            .to_str()
            .map_or(path.clone(), |target| roots.root(target)),
        _ => path,
    }
}

struct OsCollector {
    candidates: [PathBuf; 2],
    cached: Option<Cached>,
    info: FamilyId,
    version: FamilyId,
}

struct Cached {
    path_index: usize,
    modified: Option<SystemTime>,
    labels: [String; 12],
    version: f64,
}

/// Parses os-release (freedesktop.org's format, a shell-compatible subset): `KEY=value` lines,
/// values unquoted, "double quoted" (backslash escapes `$ " \ ``) or 'single quoted', blank lines
/// and `#` comments skipped, an optional `export` tolerated. Returns the pairs in file order.
pub fn parse(text: &str) -> Result<Vec<(&str, String)>, CollectError> {
    let mut pairs = Vec::with_capacity(16);
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad =
            |what: &str| CollectError(format!("os-release line {}: {what}: {raw:?}", index + 1));
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, rest) = line.split_once('=').ok_or_else(|| bad("no `=`"))?;
        if !is_valid_key(key) {
            return Err(bad("invalid key"));
        }
        let value = parse_value(rest).map_err(bad)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One value in shell quoting: a run of unquoted, double- and single-quoted pieces, ended by
/// white space, after which only a comment may follow.
fn parse_value(text: &str) -> Result<String, &'static str> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut value = String::with_capacity(text.len());
    let mut quote = Quote::None;
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match (&quote, c) {
            (Quote::None, c) if c.is_ascii_whitespace() => {
                let rest = text[at..].trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    return Ok(value);
                }
                return Err("unquoted white space in value");
            }
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '\\') => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => return Err("value ends with a backslash"),
            },
            (Quote::Double, '"') | (Quote::Single, '\'') => quote = Quote::None,
            (Quote::Double, '\\') => match chars.next() {
                Some((_, escaped @ ('$' | '"' | '\\' | '`'))) => value.push(escaped),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return Err("value ends with a backslash"),
            },
            (_, c) => value.push(c),
        }
    }
    if quote != Quote::None {
        return Err("unterminated quote");
    }
    Ok(value)
}

/// node_exporter's version number: the leading `major[.minor]` of VERSION_ID ("22.04.3" ->
/// 22.04), 0 when there is none.
pub fn version_number(version_id: &str) -> f64 {
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let major = digits(version_id);
    if major == 0 {
        return 0.0;
    }
    let mut end = major;
    if let Some(rest) = version_id[major..].strip_prefix('.') {
        end += 1 + digits(rest);
    }
    version_id[..end].parse().unwrap_or(0.0)
}

/// The node_os_info label values of a parsed file (last assignment wins, as in a shell).
pub fn info_labels(pairs: &[(&str, String)]) -> [String; 12] {
    INFO_KEYS.map(|key| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    })
}

impl OsCollector {
    /// Brings the cache up to date with the first os-release file that exists.
    fn refresh(&mut self) -> Result<(), CollectError> {
        for (path_index, path) in self.candidates.iter().enumerate() {
            let modified = match std::fs::metadata(path) {
                Ok(meta) => meta.modified().ok(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(CollectError(format!("{}: {err}", path.display()))),
            };
            let up_to_date = self.cached.as_ref().is_some_and(|c| {
                c.path_index == path_index && c.modified == modified && modified.is_some()
            });
            if !up_to_date {
                self.cached = None;
                self.cached = Some(load(path, path_index, modified)?);
            }
            return Ok(());
        }
        self.cached = None;
        Err(CollectError(format!(
            "no os-release file: neither {} nor {}",
            self.candidates[0].display(),
            self.candidates[1].display()
        )))
    }
}

fn load(
    path: &Path,
    path_index: usize,
    modified: Option<SystemTime>,
) -> Result<Cached, CollectError> {
    let text = crate::roots::read_to_string(path)
        .map_err(|err| CollectError(format!("{}: {err}", path.display())))?;
    let pairs = parse(&text).map_err(|err| CollectError(format!("{}: {err}", path.display())))?;
    let labels = info_labels(&pairs);
    let version = version_number(&labels[VERSION_ID]);
    Ok(Cached {
        path_index,
        modified,
        labels,
        version,
    })
}

impl Collector for OsCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        self.refresh()?;
        let Some(cached) = &self.cached else {
            return Ok(());
        };
        let labels = &cached.labels;
        let values: [&str; 12] = std::array::from_fn(|i| labels[i].as_str());
        out.sample(self.info, &values, 1.0);
        if cached.version > 0.0 {
            out.sample(
                self.version,
                &[&labels[ID], &labels[ID_LIKE], &labels[NAME]],
                cached.version,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raspberry Pi OS bookworm 64-bit (= Debian 12's /usr/lib/os-release).
    const BOOKWORM: &str = include_str!("../../tests/fixtures/pi4/root/etc/os-release");
    /// Raspbian 11 bullseye 32-bit.
    const BULLSEYE: &str = include_str!("../../tests/fixtures/pi3b-plus/root/usr/lib/os-release");

    #[test]
    fn parses_raspberry_pi_os_bookworm() {
        let pairs = parse(BOOKWORM).unwrap();
        let labels = info_labels(&pairs);
        assert_eq!(labels[ID], "debian");
        assert_eq!(labels[ID_LIKE], "");
        assert_eq!(labels[NAME], "Debian GNU/Linux");
        assert_eq!(labels[6], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(labels[9], "12 (bookworm)");
        assert_eq!(labels[10], "bookworm");
        assert_eq!(labels[VERSION_ID], "12");
        assert!(pairs.contains(&("HOME_URL", "https://www.debian.org/".to_string())));
        assert_eq!(version_number(&labels[VERSION_ID]), 12.0);
    }

    #[test]
    fn parses_raspbian_bullseye() {
        let labels = info_labels(&parse(BULLSEYE).unwrap());
        assert_eq!(labels[ID], "raspbian");
        assert_eq!(labels[ID_LIKE], "debian");
        assert_eq!(labels[NAME], "Raspbian GNU/Linux");
        assert_eq!(labels[6], "Raspbian GNU/Linux 11 (bullseye)");
        assert_eq!(labels[VERSION_ID], "11");
    }

    #[test]
    fn quoting_escapes_and_comments() {
        let text = "# comment\n\n  # indented comment\nA=plain\nB=\"two words\"\nC='it''s'\n\
                    D=\"q\\\"uote \\$HOME \\\\ \\n\"\nE=esc\\ aped\nexport F=1\nG=\"x\"  # trailing\n\
                    H=\nI=\"\"\nA=again\n";
        let pairs = parse(text).unwrap();
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("A"), Some("again"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("its"));
        assert_eq!(get("D"), Some("q\"uote $HOME \\ \\n"));
        assert_eq!(get("E"), Some("esc aped"));
        assert_eq!(get("F"), Some("1"));
        assert_eq!(get("G"), Some("x"));
        assert_eq!(get("H"), Some(""));
        assert_eq!(get("I"), Some(""));
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for bad in [
            "NAME",
            "NAME=\"unterminated",
            "NAME='unterminated",
            "NAME=two words",
            "1NAME=x",
            "NA-ME=x",
            "=x",
            "NAME=x\\",
            "NAME=\"x\\",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("line 1"), "{bad}: {err}");
        }
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn version_numbers_like_node_exporter() {
        for (id, number) in [
            ("12", 12.0),
            ("22.04", 22.04),
            ("22.04.3", 22.04),
            ("3.18.4", 3.18),
            ("12.", 12.0),
            ("2024.1-rc", 2024.1),
            ("", 0.0),
            ("rolling", 0.0),
            ("v12", 0.0),
            ("99999999999999999999999", 1e23),
        ] {
            assert_eq!(version_number(id), number, "{id}");
        }
    }
}
