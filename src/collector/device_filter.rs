//! node_exporter's device filter (collector/device_filter.go): an exclude regex or an include
//! regex, never both, compiled once when the collector is built.

use regex_lite::Regex;

#[derive(Debug, Default)]
pub struct DeviceFilter {
    exclude: Option<Regex>,
    include: Option<Regex>,
    /// Answers so far by device name: the same few devices come back every scrape, and a
    /// comparison of names costs far less than a regex match. Bounded: cleared when full.
    answers: Vec<(Box<str>, bool)>,
}

/// More devices than a Pi has; a host with many containers' veths just matches again.
const MAX_ANSWERS: usize = 256;

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
            answers: Vec::new(),
        })
    }

    /// Like node_exporter: unanchored matches (anchor the pattern with ^...$ for whole names).
    pub fn ignored(&mut self, name: &str) -> bool {
        if self.exclude.is_none() && self.include.is_none() {
            return false;
        }
        if let Some((_, ignored)) = self.answers.iter().find(|(known, _)| **known == *name) {
            return *ignored;
        }
        let ignored = self.exclude.as_ref().is_some_and(|re| re.is_match(name))
            || self.include.as_ref().is_some_and(|re| !re.is_match(name));
        if self.answers.len() >= MAX_ANSWERS {
            self.answers.clear();
        }
        self.answers.push((name.into(), ignored));
        ignored
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
        let mut none = DeviceFilter::new("netdev", "", "").unwrap();
        assert!(!none.ignored("eth0"));
        let mut exclude = DeviceFilter::new("netdev", "^veth", "").unwrap();
        assert!(exclude.ignored("veth1a2b"));
        assert!(!exclude.ignored("eth0"));
        // Remembered answers are the same answers.
        assert!(exclude.ignored("veth1a2b"));
        assert!(!exclude.ignored("eth0"));
        for i in 0..1000 {
            assert!(exclude.ignored(&format!("veth{i}")));
            assert!(!exclude.ignored(&format!("eth{i}")));
        }
        assert!(exclude.answers.len() <= MAX_ANSWERS);
        let mut include = DeviceFilter::new("netdev", "", "^(eth|wlan)[0-9]$").unwrap();
        assert!(!include.ignored("wlan0"));
        assert!(include.ignored("lo"));
        let err = DeviceFilter::new("netdev", "a", "b").unwrap_err();
        assert!(err.contains("mutually exclusive"), "{err}");
        let err = DeviceFilter::new("arp", "(", "").unwrap_err();
        assert!(err.contains("arp.device_exclude"), "{err}");
    }
}
