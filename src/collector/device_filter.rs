//! node_exporter's device filter (collector/device_filter.go): an exclude regex or an include
//! regex, never both, compiled once when the collector is built.

use regex_lite::Regex;

#[derive(Debug, Default)]
pub struct DeviceFilter {
    exclude: Option<Regex>,
    include: Option<Regex>,
}

impl DeviceFilter {
    /// Empty strings mean "not set". `what` names the settings in errors ("netdev").
    pub fn new(what: &str, exclude: &str, include: &str) -> Result<DeviceFilter, String> {
        if !exclude.is_empty() && !include.is_empty() {
            return Err(format!(
                "{what}.device_exclude and {what}.device_include are mutually exclusive"
            ));
        }
        Ok(DeviceFilter {
            exclude: optional_regex(&format!("{what}.device_exclude"), exclude)?,
            include: optional_regex(&format!("{what}.device_include"), include)?,
        })
    }

    /// Like node_exporter: unanchored matches (anchor the pattern with ^...$ for whole names).
    pub fn ignored(&self, name: &str) -> bool {
        self.exclude.as_ref().is_some_and(|re| re.is_match(name))
            || self.include.as_ref().is_some_and(|re| !re.is_match(name))
    }
}

/// Compiles an optional regex setting ("" = none), naming the key in the error.
pub fn optional_regex(key: &str, pattern: &str) -> Result<Option<Regex>, String> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(pattern)
        .map(Some)
        .map_err(|err| format!("{key}: invalid regex {pattern:?}: {err}"))
}

/// Compiles a regex setting, naming the key in the error.
pub fn regex(key: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|err| format!("{key}: invalid regex {pattern:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_include_and_neither() {
        let none = DeviceFilter::new("netdev", "", "").unwrap();
        assert!(!none.ignored("eth0"));
        let exclude = DeviceFilter::new("netdev", "^veth", "").unwrap();
        assert!(exclude.ignored("veth1a2b"));
        assert!(!exclude.ignored("eth0"));
        let include = DeviceFilter::new("netdev", "", "^(eth|wlan)[0-9]$").unwrap();
        assert!(!include.ignored("wlan0"));
        assert!(include.ignored("lo"));
        let err = DeviceFilter::new("netdev", "a", "b").unwrap_err();
        assert!(err.contains("mutually exclusive"), "{err}");
        let err = DeviceFilter::new("arp", "(", "").unwrap_err();
        assert!(err.contains("arp.device_exclude"), "{err}");
    }
}
