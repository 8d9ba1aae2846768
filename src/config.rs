//! The agent's configuration: one RON file, every key optional with a documented default
//! (`examples/pimetrics.ron` shows them all). Unknown keys and bad values are errors that name
//! the file, line, column and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::at_most;
pub use crate::duration::{Seconds, MAX_INTERVAL, MAX_TIMEOUT};
pub use crate::http::WebSettings;
use crate::roots::Roots;

pub const DEFAULT_LISTEN_ADDRESS: &str = ":9243";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Value of the `node` label on every series. Default: the host name.
    pub node: Option<String>,
    /// `host:port`, `:port` (all addresses) or `[v6]:port`.
    pub listen_address: String,
    /// error, warn, info, debug.
    pub log_level: LogLevel,
    pub paths: PathsConfig,
    /// Turns collectors on or off by name, over their defaults: `{"hwmon": false}`.
    pub collectors: BTreeMap<String, bool>,
    pub filesystem: FilesystemConfig,
    pub diskstats: DiskstatsConfig,
    pub netdev: NetdevConfig,
    pub netclass: crate::collector::netclass::NetclassConfig,
    pub netstat: crate::collector::netstat::NetstatConfig,
    pub vmstat: crate::collector::vmstat::VmstatConfig,
    pub arp: crate::collector::arp::ArpConfig,
    pub powersupplyclass: crate::collector::powersupplyclass::PowerSupplyConfig,
    pub textfile: TextfileConfig,
    pub pi: PiConfig,
    /// Pushgateway push (docs/push.md); off unless `push.url` is set.
    pub push: crate::push::PushConfig,
    /// The HTTP endpoint: TLS and auth file, socket activation, limits.
    pub web: WebSettings,
    /// Prometheus remote write (docs/remote-write.md); off unless `remote_write.url` is set.
    pub remote_write: crate::remote_write::RemoteWriteConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node: None,
            listen_address: DEFAULT_LISTEN_ADDRESS.to_string(),
            log_level: LogLevel::Info,
            paths: PathsConfig::default(),
            collectors: BTreeMap::new(),
            filesystem: FilesystemConfig::default(),
            diskstats: DiskstatsConfig::default(),
            netdev: NetdevConfig::default(),
            netclass: Default::default(),
            netstat: Default::default(),
            vmstat: Default::default(),
            arp: Default::default(),
            powersupplyclass: Default::default(),
            textfile: TextfileConfig::default(),
            pi: PiConfig::default(),
            push: crate::push::PushConfig::default(),
            web: WebSettings::default(),
            remote_write: crate::remote_write::RemoteWriteConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    /// Where the device nodes are (`vcio`, `vcio_gencmd`). node_exporter has no such flag.
    pub devfs: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        let roots = Roots::default();
        PathsConfig {
            procfs: roots.procfs,
            sysfs: roots.sysfs,
            rootfs: roots.rootfs,
            devfs: roots.devfs,
        }
    }
}

/// node_exporter's defaults, so the same filesystems are reported.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";
pub const DEFAULT_DISK_DEVICE_EXCLUDE: &str =
    "^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Regex of mount points to skip.
    pub mount_points_exclude: String,
    /// Regex of filesystem types to skip.
    pub fs_types_exclude: String,
    /// How long a statfs may take before its mount is reported with `device_error` and skipped.
    pub mount_timeout: Seconds,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.to_string(),
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.to_string(),
            mount_timeout: Seconds(Duration::from_secs(5)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskstatsConfig {
    /// Regex of block devices to skip (partitions, loop and RAM disks by default).
    pub device_exclude: String,
    /// Regex of the only block devices to report; setting it drops the default exclude (as
    /// node_exporter does); exclusive with a changed `device_exclude`.
    pub device_include: String,
}

impl Default for DiskstatsConfig {
    fn default() -> Self {
        DiskstatsConfig {
            device_exclude: DEFAULT_DISK_DEVICE_EXCLUDE.to_string(),
            device_include: String::new(),
        }
    }
}

impl DiskstatsConfig {
    /// node_exporter's rule: an include replaces the default exclude.
    pub fn filter(&self) -> Result<crate::collector::device_filter::DeviceFilter, String> {
        let exclude = if !self.device_include.is_empty()
            && self.device_exclude == DEFAULT_DISK_DEVICE_EXCLUDE
        {
            ""
        } else {
            &self.device_exclude
        };
        crate::collector::device_filter::DeviceFilter::new(
            "diskstats",
            exclude,
            &self.device_include,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevConfig {
    /// Regex of network devices to skip; empty: none. Exclusive with `device_include`.
    pub device_exclude: String,
    /// Regex of the only network devices to report; empty: all.
    pub device_include: String,
}

impl NetdevConfig {
    pub fn filter(&self) -> Result<crate::collector::device_filter::DeviceFilter, String> {
        crate::collector::device_filter::DeviceFilter::new(
            "netdev",
            &self.device_exclude,
            &self.device_include,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    /// Directory of `*.prom` files to export; empty: the textfile collector has nothing to read.
    pub directory: Option<PathBuf>,
}

/// The Raspberry Pi collector (`rpi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiConfig {
    /// auto: only on a board recognised as a Raspberry Pi; on: also when not recognised; off.
    pub enabled: PiEnabled,
    /// Least time between two reads of the Pi 5 PMIC (`pmic_read_adc` costs the firmware
    /// about 23 ms); scrapes in between export the last reading. "0s": every scrape.
    pub pmic_interval: Seconds,
    /// Replays mailbox answers recorded in this file instead of calling /dev/vcio (to check
    /// what pimetrics makes of a Pi's answers; see docs/pi.md). Default: none.
    pub mailbox_replay: Option<PathBuf>,
    /// Replays gencmd answers recorded in this file instead of calling /dev/vcio_gencmd.
    /// Default: none.
    pub gencmd_replay: Option<PathBuf>,
    /// Where the throttling conditions seen since boot are kept across agent restarts (under
    /// /run, which a reboot empties). None: in memory only.
    pub state_file: Option<PathBuf>,
}

/// The default `pi.state_file` (systemd's `RuntimeDirectory=pimetrics` makes the directory).
pub const DEFAULT_PI_STATE_FILE: &str = "/run/pimetrics/rpi-since-boot";

impl Default for PiConfig {
    fn default() -> Self {
        PiConfig {
            enabled: PiEnabled::Auto,
            pmic_interval: Seconds(Duration::from_secs(30)),
            mailbox_replay: None,
            gencmd_replay: None,
            state_file: Some(PathBuf::from(DEFAULT_PI_STATE_FILE)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiEnabled {
    Auto,
    On,
    Off,
}

impl PiEnabled {
    pub fn parse(text: &str) -> Option<PiEnabled> {
        match text {
            "auto" => Some(PiEnabled::Auto),
            "on" => Some(PiEnabled::On),
            "off" => Some(PiEnabled::Off),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text {
            "error" => Some(LogLevel::Error),
            "warn" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            _ => None,
        }
    }

    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

/// A configuration error, with where it is when it comes from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    fn value(message: String) -> Self {
        ConfigError {
            file: None,
            line: 0,
            column: 0,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) if self.line > 0 => write!(
                f,
                "{}:{}:{}: {}",
                file.display(),
                self.line,
                self.column,
                self.message
            ),
            Some(file) => write!(f, "{}: {}", file.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses RON text; `file` only names the source in errors.
    pub fn from_ron(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let config: Config = options.from_str(text).map_err(|err| {
            let (line, column) = (err.span.start.line, err.span.start.col);
            let mut message = describe_ron_error(&err.code);
            if !matches!(
                err.code,
                ron::Error::NoSuchStructField { .. } | ron::Error::DuplicateStructField { .. }
            ) {
                if let Some(key) = key_before(text, line, column) {
                    message = format!("{key}: {message}");
                }
            }
            ConfigError {
                file: file.map(Path::to_path_buf),
                line,
                column,
                message,
            }
        })?;
        config.validate().map_err(|mut err| {
            err.file = file.map(Path::to_path_buf);
            if let Some(pos) = locate_key(text, &err.message) {
                (err.line, err.column) = pos;
            }
            err
        })?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            file: Some(path.to_path_buf()),
            line: 0,
            column: 0,
            message: format!("cannot read: {err}"),
        })?;
        Config::from_ron(&text, Some(path))
    }

    /// Checks values serde cannot: regexes, addresses, collector names. Messages start with
    /// the key's path so the caller can point at it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(node) = &self.node {
            if node.trim().is_empty() {
                return Err(ConfigError::value("node: must not be empty".into()));
            }
        }
        parse_listen_address(&self.listen_address)
            .map_err(|err| ConfigError::value(format!("listen_address: {err}")))?;
        for (key, pattern) in [
            (
                "filesystem.mount_points_exclude",
                &self.filesystem.mount_points_exclude,
            ),
            (
                "filesystem.fs_types_exclude",
                &self.filesystem.fs_types_exclude,
            ),
        ] {
            regex_lite::Regex::new(pattern).map_err(|err| {
                ConfigError::value(format!("{key}: invalid regex {pattern:?}: {err}"))
            })?;
        }
        // Each collector's own settings check themselves.
        for check in [
            self.diskstats.filter().map(|_| ()),
            self.netdev.filter().map(|_| ()),
            self.netclass.validate(),
            self.netstat.validate(),
            self.vmstat.validate(),
            self.arp.validate(),
            self.powersupplyclass.validate(),
        ] {
            check.map_err(ConfigError::value)?;
        }
        if self.filesystem.mount_timeout.0.is_zero() {
            return Err(ConfigError::value(
                "filesystem.mount_timeout: must be more than 0".into(),
            ));
        }
        self.push.validate().map_err(ConfigError::value)?;
        self.remote_write.validate().map_err(ConfigError::value)?;
        for (key, value, max) in [
            (
                "filesystem.mount_timeout",
                self.filesystem.mount_timeout,
                MAX_TIMEOUT,
            ),
            ("pi.pmic_interval", self.pi.pmic_interval, MAX_INTERVAL),
        ] {
            at_most(key, value, max).map_err(ConfigError::value)?;
        }
        self.web.validate().map_err(ConfigError::value)?;
        for name in self.collectors.keys() {
            if crate::collector::spec(name).is_none() {
                let known: Vec<_> = crate::collector::COLLECTORS
                    .iter()
                    .map(|s| s.name)
                    .collect();
                return Err(ConfigError::value(format!(
                    "collectors: unknown collector {name:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn roots(&self) -> Roots {
        Roots {
            procfs: self.paths.procfs.clone(),
            sysfs: self.paths.sysfs.clone(),
            rootfs: self.paths.rootfs.clone(),
            devfs: self.paths.devfs.clone(),
        }
    }

    /// The effective config as RON, for `--print-config`.
    pub fn to_ron(&self) -> String {
        let pretty = ron::ser::PrettyConfig::default().struct_names(false);
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .to_string_pretty(self, pretty)
            .unwrap_or_else(|err| format!("// cannot print config: {err}"))
    }

    /// Names of the collectors to run: defaults, then the config's `collectors` map.
    pub fn enabled_collectors(&self) -> Vec<&'static str> {
        crate::collector::COLLECTORS
            .iter()
            .filter(|spec| {
                self.collectors
                    .get(spec.name)
                    .copied()
                    .unwrap_or(spec.enabled_by_default)
            })
            .map(|spec| spec.name)
            .collect()
    }
}

/// `:9243` -> all addresses; otherwise `host:port`.
pub fn parse_listen_address(text: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid port in {text:?}"))?;
        return Ok(vec![
            std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
            std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)),
        ]);
    }
    let addrs: Vec<_> = text
        .to_socket_addrs()
        .map_err(|err| format!("invalid address {text:?} (want host:port or :port): {err}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("address {text:?} resolves to nothing"));
    }
    Ok(addrs)
}

fn describe_ron_error(err: &ron::Error) -> String {
    match err {
        ron::Error::NoSuchStructField {
            expected,
            found,
            outer,
        } => format!(
            "unknown key `{found}`{}; expected one of: {}",
            outer
                .as_ref()
                .map(|o| format!(" in {o}"))
                .unwrap_or_default(),
            expected.join(", ")
        ),
        ron::Error::DuplicateStructField { field, .. } => format!("key `{field}` given twice"),
        other => other.to_string(),
    }
}

/// The last `key:` before a parse error's position: the key whose value is wrong.
fn key_before(text: &str, line: usize, column: usize) -> Option<String> {
    let mut prefix = String::new();
    for (index, text_line) in text.lines().enumerate() {
        if index + 1 == line {
            prefix.extend(text_line.chars().take(column.saturating_sub(1)));
            break;
        }
        prefix.push_str(text_line);
        prefix.push('\n');
    }
    let code = blank_strings_and_comments(&prefix);
    let mut rest = code.as_str();
    // Colons inside strings and comments are blanked, so every colon left follows a key or
    // a map's string key (then look further back, to the map's own key).
    while let Some(colon) = rest.rfind(':') {
        let before = rest.get(..colon).unwrap_or_default().trim_end();
        // The key is the ASCII word before the colon; start after the last other character,
        // whatever its width.
        let start = before
            .char_indices()
            .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = before.get(start..).unwrap_or_default();
        if key.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Some(key.to_string());
        }
        rest = rest.get(..colon).unwrap_or_default();
    }
    None
}

/// `text` with the contents of string literals, `//` comments and (nested) `/* */` comments
/// replaced by spaces (quotes and line breaks kept), so punctuation inside them is not taken
/// for RON syntax.
fn blank_strings_and_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut in_comment) = (false, false, false);
    let mut block_depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if block_depth > 0 && !in_string {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block_depth -= 1;
                out.push_str("  ");
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                block_depth += 1;
                out.push_str("  ");
            } else {
                out.push(if c == '\n' { '\n' } else { ' ' });
            }
        } else if c == '\n' {
            in_comment = false;
            out.push(c);
        } else if in_comment {
            out.push(' ');
        } else if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            out.push(if in_string { ' ' } else { '"' });
        } else if c == '"' {
            in_string = true;
            out.push('"');
        } else if c == '/' && chars.peek() == Some(&'/') {
            in_comment = true;
            out.push(' ');
        } else if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            block_depth = 1;
            out.push_str("  ");
        } else {
            out.push(c);
        }
    }
    out
}

/// The line without a `//` comment; a `//` inside a string (a URL) is not one.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let mut previous = ' ';
    for (index, c) in line.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (false, _, '/') if previous == '/' => return &line[..index - 1],
            _ => {}
        }
        previous = c;
    }
    line
}

/// Finds `key:` of a validation message ("filesystem.mount_timeout: ...") in the text, so the
/// error can point at a line and column.
fn locate_key(text: &str, message: &str) -> Option<(usize, usize)> {
    let path = message.split(':').next()?;
    let key = path.rsplit('.').next()?;
    for (index, line) in text.lines().enumerate() {
        let code = strip_comment(line);
        if let Some(col) = code.find(key) {
            let after = code[col + key.len()..].trim_start();
            let before_ok = col == 0
                || !code.as_bytes()[col - 1].is_ascii_alphanumeric()
                    && code.as_bytes()[col - 1] != b'_';
            if before_ok && after.starts_with(':') {
                return Some((index + 1, col + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::from_ron("()", None).unwrap(), Config::default());
    }

    #[test]
    fn keys_and_nested_sections_parse() {
        let config = Config::from_ron(
            r#"(node: "pi-kitchen", listen_address: "127.0.0.1:9999",
               filesystem: (mount_timeout: "1m30s"), collectors: {"loadavg": false})"#,
            None,
        )
        .unwrap();
        assert_eq!(config.node.as_deref(), Some("pi-kitchen"));
        assert_eq!(
            config.filesystem.mount_timeout,
            Seconds(Duration::from_secs(90))
        );
        assert!(!config.enabled_collectors().contains(&"loadavg"));
        assert_eq!(config.filesystem.fs_types_exclude, DEFAULT_FS_TYPES_EXCLUDE);
    }

    #[test]
    fn unknown_key_names_file_line_column_and_key() {
        let err = Config::from_ron(
            "(\n  node: \"a\",\n  lisen_address: \":1\",\n)",
            Some(Path::new("pi.ron")),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("pi.ron:3:"), "{text}");
        assert!(text.contains("unknown key `lisen_address`"), "{text}");
    }

    #[test]
    fn bad_values_are_errors_with_their_key() {
        let cases = [
            (
                "(filesystem: (mount_points_exclude: \"(\"))",
                "filesystem.mount_points_exclude",
            ),
            (
                "(filesystem: (mount_timeout: \"5 parsecs\"))",
                "invalid duration",
            ),
            ("(listen_address: \"nope\")", "listen_address"),
            ("(collectors: {\"warp_drive\": true})", "unknown collector"),
            ("(log_level: loud)", "loud"),
            ("(node: 42)", "node"),
            ("(node: \"\")", "node: must not be empty"),
            (
                "(push: (url: \"http://gw:9091\", interval: \"0s\"))",
                "push.interval: must be more than 0",
            ),
            ("(push: (url: \"http://gw\", mode: sometimes))", "sometimes"),
            (
                "(push: (url: \"http://gw\", passwd: \"x\"))",
                "unknown key `passwd`",
            ),
        ];
        for (text, expected) in cases {
            let err = Config::from_ron(text, Some(Path::new("c.ron")))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with("c.ron:1:"), "{text}: {err}");
        }
    }

    #[test]
    fn syntax_errors_name_the_key_before_them() {
        // The colon inside ":1" and the one in the comment must not hide `listen_address`.
        let err = Config::from_ron(
            "(\n  node: \"a\", // a: b\n  listen_address: \":1\"\n  log_level: info,\n)",
            Some(Path::new("s.ron")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("s.ron:4:3: listen_address: "), "{err}");
        let err = Config::from_ron("(collectors: {\"a:b\": 1})", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("collectors: "), "{err}");
    }

    #[test]
    fn non_ascii_before_a_syntax_error_is_no_panic() {
        // Found by fuzzing: a colon in a block comment after "ó", before a syntax error, made
        // the key search slice inside the character.
        let err = Config::from_ron(
            "/* Configuración: x */\n(\n listen_address \":9243\",\n)\n",
            Some(Path::new("es.ron")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("es.ron:3:"), "{err}");
        assert!(
            !err.contains("Configuraci"),
            "a comment is not a key: {err}"
        );
        for text in [
            "(\n node: \"é\", // año: x\n listen_address \":1\")",
            "/* ó: ñ */ (node: 1)",
            "(é:",
            "(nodeé: 1)",
            "/* /* nested: ü */ */ (log_level: 4)",
        ] {
            assert!(Config::from_ron(text, None).is_err(), "{text}");
        }
    }

    #[test]
    fn printed_config_parses_back_to_the_same() {
        let config = Config {
            node: Some("pi".into()),
            collectors: BTreeMap::from([("meminfo".to_string(), false)]),
            ..Config::default()
        };
        let text = config.to_ron();
        assert_eq!(Config::from_ron(&text, None).unwrap(), config);
    }

    #[test]
    fn pi_section_and_devfs() {
        let config = Config::from_ron(
            r#"(paths: (devfs: "/host/dev"), pi: (enabled: on, pmic_interval: "1m", mailbox_replay: "/tmp/r.txt"))"#,
            None,
        )
        .unwrap();
        assert_eq!(config.roots().dev("vcio"), PathBuf::from("/host/dev/vcio"));
        assert_eq!(config.pi.enabled, PiEnabled::On);
        assert_eq!(config.pi.pmic_interval, Seconds(Duration::from_secs(60)));
        assert_eq!(config.pi.mailbox_replay, Some(PathBuf::from("/tmp/r.txt")));
        assert_eq!(
            Config::default().roots().dev("vcio"),
            PathBuf::from("/dev/vcio")
        );
        let err = Config::from_ron("(pi: (enabled: maybe))", None).unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    #[test]
    fn push_section_parses() {
        let config = Config::from_ron(
            r#"(push: (url: "https://gw:9091", job: "pis", grouping: {"site": "home"},
               interval: "30s", mode: fallback, fallback_after: "5m",
               basic_auth: (username: "pi", password_file: "/etc/pimetrics/push.pw"),
               ca_file: "/etc/pimetrics/ca.pem", delete_on_shutdown: false))"#,
            None,
        )
        .unwrap();
        let push = &config.push;
        assert_eq!(push.url.as_deref(), Some("https://gw:9091"));
        assert_eq!(push.grouping.get("site").map(String::as_str), Some("home"));
        assert_eq!(push.mode, crate::push::PushMode::Fallback);
        assert_eq!(push.fallback_after, Seconds(Duration::from_secs(300)));
        assert_eq!(push.basic_auth.as_ref().unwrap().username, "pi");
        assert!(!push.delete_on_shutdown);
        assert_eq!(push.timeout, Seconds(Duration::from_secs(10)));
        assert_eq!(Config::from_ron(&config.to_ron(), None).unwrap(), config);
    }

    #[test]
    fn comments_end_at_double_slash_outside_strings() {
        assert_eq!(strip_comment("a: 1, // note"), "a: 1, ");
        assert_eq!(
            strip_comment("url: \"http://gw\", // x"),
            "url: \"http://gw\", "
        );
        assert_eq!(strip_comment("s: \"a\\\"//b\""), "s: \"a\\\"//b\"");
    }
}
