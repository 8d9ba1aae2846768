//! A command-line flag that sets one setting, declared next to the settings type it sets: the
//! agent's own flags in `cli`, a collector's (`--collector.NAME.SETTING`, node_exporter's
//! names) in the collector's file (`CollectorSettings::FLAGS`). A leaf module.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

/// A flag that takes a value (or, for a switch, none) and sets a key of `S`.
pub struct Flag<S> {
    pub name: &'static str,
    /// Shown when the default is empty: `--push.url=URL`.
    pub placeholder: &'static str,
    pub help: &'static str,
    /// The key's value in `S::default()`, so `--help` shows the real default.
    pub default: fn(&S) -> String,
    pub apply: fn(&mut S, &str) -> Result<(), String>,
    /// A switch: `--name` alone means `true`, `--name=false` and `--no-name` turn it off;
    /// never takes the next argument.
    pub switch: bool,
}

/// A flag that sets the `String` key `field` of `S` to its value as given (a regex, a list):
/// `text_flag!("--collector.vmstat.fields", "REGEX", "Regexp of ...", fields)`.
macro_rules! text_flag {
    ($name:expr, $placeholder:expr, $help:expr, $field:ident) => {
        $crate::flag::Flag {
            name: $name,
            placeholder: $placeholder,
            help: $help,
            default: |s| s.$field.clone(),
            switch: false,
            apply: |s, v| {
                s.$field = v.to_string();
                Ok(())
            },
        }
    };
}
pub(crate) use text_flag;

/// What the parser and `--help` need to know of a flag, whichever type it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagInfo {
    pub name: &'static str,
    pub placeholder: &'static str,
    pub help: &'static str,
    pub switch: bool,
}

impl<S> Flag<S> {
    pub fn info(&self) -> FlagInfo {
        FlagInfo {
            name: self.name,
            placeholder: self.placeholder,
            help: self.help,
            switch: self.switch,
        }
    }
}

/// An enum's value as the config file writes it: `Auto` -> "auto".
pub fn lower_debug(value: impl Debug) -> String {
    format!("{value:?}").to_ascii_lowercase()
}

pub fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// An optional path as a flag shows it: empty for none.
pub fn optional_path(path: &Option<PathBuf>) -> String {
    path.as_deref().map(path_text).unwrap_or_default()
}

/// An optional path from a flag's value: empty for none.
pub fn path_or_none(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// A switch's value: `true` or `false`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("want true or false, got {value:?}")),
    }
}
