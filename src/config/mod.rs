//! The agent's configuration: one RON file, every key optional with a documented default
//! (`examples/pimetrics.ron` shows them all). Unknown keys and bad values are errors that name
//! the file, line, column and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::collector::{self, Context, Scraper, COLLECTORS};
use crate::http::WebSettings;
use crate::logging::LogLevel;
use crate::push::PushConfig;
use crate::remote_write::RemoteWriteConfig;
// Where tests and benches have always found them; they live with what they configure.
pub use crate::collector::rpi::PiEnabled;
pub use crate::duration::Seconds;
use crate::roots::Roots;

mod errors;

pub use errors::ConfigError;
use errors::{describe_ron_error, key_before, locate_key};

pub const DEFAULT_LISTEN_ADDRESS: &str = ":9243";

/// The whole configuration. Its own keys are the agent's (node, listen address, paths, which
/// collectors run, push, web, remote write); every other section belongs to a collector and is
/// routed by name through the collector table (`collector::COLLECTORS`), so an unknown section
/// is an error like any unknown key.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Value of the `node` label on every series. Default: the host name.
    pub node: Option<String>,
    /// `host:port`, `:port` (all addresses) or `[v6]:port`.
    pub listen_address: String,
    /// error, warn, info, debug.
    pub log_level: LogLevel,
    /// Where /proc, /sys, / and /dev are (`--path.*`).
    pub paths: Roots,
    /// Turns collectors on or off by name, over their defaults: `{"hwmon": false}`.
    pub collectors: BTreeMap<String, bool>,
    /// Each collector's own section (`filesystem: (...)`, `pi: (...)`), written at the top
    /// level of the file between `collectors` and `push`.
    pub collector_settings: collector::Settings,
    /// Pushgateway push (docs/push.md); off unless `push.url` is set.
    pub push: PushConfig,
    /// The HTTP endpoint: TLS and auth file, socket activation, limits.
    pub web: WebSettings,
    /// Prometheus remote write (docs/remote-write.md); off unless `remote_write.url` is set.
    pub remote_write: RemoteWriteConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node: None,
            listen_address: DEFAULT_LISTEN_ADDRESS.to_string(),
            log_level: LogLevel::Info,
            paths: Roots::default(),
            collectors: BTreeMap::new(),
            collector_settings: collector::Settings::default(),
            push: PushConfig::default(),
            web: WebSettings::default(),
            remote_write: RemoteWriteConfig::default(),
        }
    }
}

/// The agent's own keys before the collector sections, and after them.
const KEYS_BEFORE: [&str; 5] = ["node", "listen_address", "log_level", "paths", "collectors"];
const KEYS_AFTER: [&str; 3] = ["push", "web", "remote_write"];
const KEY_COUNT: usize = KEYS_BEFORE.len() + collector::Settings::KEYS.len() + KEYS_AFTER.len();
/// Every top-level key, in file order (the "expected one of" list of an unknown key).
static KEYS: [&str; KEY_COUNT] = all_keys();

const fn all_keys() -> [&'static str; KEY_COUNT] {
    let mut keys = [""; KEY_COUNT];
    let parts: [&[&str]; 3] = [&KEYS_BEFORE, collector::Settings::KEYS, &KEYS_AFTER];
    let (mut part, mut at) = (0, 0);
    while part < parts.len() {
        let mut index = 0;
        while index < parts[part].len() {
            keys[at] = parts[part][index];
            at += 1;
            index += 1;
        }
        part += 1;
    }
    keys
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Config", KEY_COUNT)?;
        out.serialize_field("node", &self.node)?;
        out.serialize_field("listen_address", &self.listen_address)?;
        out.serialize_field("log_level", &self.log_level)?;
        out.serialize_field("paths", &self.paths)?;
        out.serialize_field("collectors", &self.collectors)?;
        self.collector_settings.serialize_sections(&mut out)?;
        out.serialize_field("push", &self.push)?;
        out.serialize_field("web", &self.web)?;
        out.serialize_field("remote_write", &self.remote_write)?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
        deserializer.deserialize_struct("Config", &KEYS, ConfigVisitor)
    }
}

/// Reads the config's struct as serde's derive would (`deny_unknown_fields`, `default`), with
/// the collector sections handed to `collector::Settings`.
struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Config")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let mut config = Config::default();
        let mut seen = [false; KEY_COUNT];
        while let Some(index) = map.next_key_seed(KeySeed)? {
            let key = KEYS.get(index).copied().unwrap_or_default();
            if let Some(seen) = seen.get_mut(index) {
                if std::mem::replace(seen, true) {
                    return Err(<A::Error as de::Error>::duplicate_field(key));
                }
            }
            match key {
                "node" => config.node = map.next_value()?,
                "listen_address" => config.listen_address = map.next_value()?,
                "log_level" => config.log_level = map.next_value()?,
                "paths" => config.paths = map.next_value()?,
                "collectors" => config.collectors = map.next_value()?,
                "push" => config.push = map.next_value()?,
                "web" => config.web = map.next_value()?,
                "remote_write" => config.remote_write = map.next_value()?,
                section => {
                    if !config
                        .collector_settings
                        .deserialize_section(section, &mut map)?
                    {
                        return Err(<A::Error as de::Error>::unknown_field(section, &KEYS));
                    }
                }
            }
        }
        Ok(config)
    }
}

/// A top-level key, checked while it is read (so an unknown key's error points at the key):
/// its index in `KEYS`.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        KEYS.iter()
            .position(|known| *known == key)
            .ok_or_else(|| E::unknown_field(key, &KEYS))
    }
}

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
        self.collector_settings
            .validate()
            .map_err(ConfigError::value)?;
        self.push.validate().map_err(ConfigError::value)?;
        self.remote_write.validate().map_err(ConfigError::value)?;
        self.web.validate().map_err(ConfigError::value)?;
        for name in self.collectors.keys() {
            if collector::spec(name).is_none() {
                let known: Vec<_> = COLLECTORS.iter().map(|s| s.name).collect();
                return Err(ConfigError::value(format!(
                    "collectors: unknown collector {name:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The roots the collectors read below (the `paths` section).
    pub fn roots(&self) -> Roots {
        self.paths.clone()
    }

    /// The effective config as RON, for `--print-config`.
    pub fn to_ron(&self) -> String {
        let pretty = ron::ser::PrettyConfig::default().struct_names(false);
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .to_string_pretty(self, pretty)
            .unwrap_or_else(|err| format!("// cannot print config: {err}"))
    }

    /// Builds the enabled collectors, each from its own settings, and gives the node label
    /// (the agent, `--once`, reloads, benches). Reads files: call from a blocking context.
    pub fn build_scraper(&self) -> (Scraper, String) {
        let node = self.node.clone().unwrap_or_else(crate::agent::host_name);
        let roots = self.roots();
        let ctx = Context {
            roots: &roots,
            settings: &self.collector_settings,
        };
        let scraper = Scraper::new(&ctx, &node, &self.enabled_collectors());
        (scraper, node)
    }

    /// Names of the collectors to run: defaults, then the config's `collectors` map.
    pub fn enabled_collectors(&self) -> Vec<&'static str> {
        COLLECTORS
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;
    use std::time::Duration;

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
            config.collector_settings.filesystem.mount_timeout,
            Seconds(Duration::from_secs(90))
        );
        assert!(!config.enabled_collectors().contains(&"loadavg"));
        assert_eq!(
            config.collector_settings.filesystem.fs_types_exclude,
            crate::collector::filesystem::DEFAULT_FS_TYPES_EXCLUDE
        );
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
    fn collector_sections_are_routed_by_the_collector_table() {
        let config = Config::from_ron(
            "(vmstat: (fields: \"^pgfault$\"), textfile: (directory: \"/t\"))",
            None,
        )
        .unwrap();
        assert_eq!(config.collector_settings.vmstat.fields, "^pgfault$");
        assert_eq!(
            config.collector_settings.textfile.directory,
            Some(PathBuf::from("/t"))
        );
        let err = Config::from_ron("(\n  cpu: (),\n)", Some(Path::new("u.ron")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("u.ron:2:3: unknown key `cpu`"), "{err}");
        assert!(err.contains("filesystem, netclass"), "{err}");
        let err = Config::from_ron("(pi: (), pi: ())", None).unwrap_err();
        assert!(err.to_string().contains("key `pi` given twice"), "{err}");
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
        assert_eq!(config.collector_settings.pi.enabled, PiEnabled::On);
        assert_eq!(
            config.collector_settings.pi.pmic_interval,
            Seconds(Duration::from_secs(60))
        );
        assert_eq!(
            config.collector_settings.pi.mailbox_replay,
            Some(PathBuf::from("/tmp/r.txt"))
        );
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
}
