//! Durations in settings, written as Prometheus writes them ("500ms", "15s", "1m30s", "2h"),
//! and the bounds every duration setting is checked against. A leaf module: every section of
//! the config (collectors, push, remote write, the endpoint) uses it, it uses none of them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest duration any setting accepts: a day (intervals); timeouts are bounded lower.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Longest timeout any setting accepts.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// `key: VALUE is longer than the most allowed, MAX` when `value` is over `max`.
pub fn at_most(key: &str, value: Seconds, max: Duration) -> Result<(), String> {
    if value.0 > max {
        return Err(format!(
            "{key}: {value} is longer than the most allowed, {}",
            Seconds(max)
        ));
    }
    Ok(())
}

/// A duration written as Prometheus writes them: "500ms", "15s", "1m30s", "2h".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Seconds {
    pub fn parse(text: &str) -> Result<Seconds, String> {
        let bad = || format!("invalid duration {text:?} (examples: \"500ms\", \"15s\", \"1m30s\")");
        let mut total = Duration::ZERO;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let too_long = || format!("duration {text:?} is too long");
            let seconds = |factor: u64| number.checked_mul(factor).ok_or_else(too_long);
            let unit = match &rest[..unit_len] {
                "ms" => Duration::from_millis(number),
                "s" => Duration::from_secs(number),
                "m" => Duration::from_secs(seconds(60)?),
                "h" => Duration::from_secs(seconds(3600)?),
                "d" => Duration::from_secs(seconds(86400)?),
                _ => return Err(bad()),
            };
            total = total.checked_add(unit).ok_or_else(too_long)?;
            rest = &rest[unit_len..];
        }
        Ok(Seconds(total))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 {
            write!(f, "{ms}ms")
        } else if ms % 60_000 != 0 || ms == 0 {
            write!(f, "{}s", ms / 1000)
        } else if ms % 3_600_000 != 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 86_400_000 != 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else {
            write!(f, "{}d", ms / 86_400_000)
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Seconds::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            Seconds::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(Seconds::parse("2h").unwrap().0, Duration::from_secs(7200));
        for bad in ["", "s", "5", "5x", "-1s", "1.5s"] {
            assert!(Seconds::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Seconds(Duration::from_secs(90)).to_string(), "90s");
        assert_eq!(Seconds(Duration::from_secs(120)).to_string(), "2m");
    }

    #[test]
    fn bounds() {
        assert!(at_most("a.b", Seconds(MAX_TIMEOUT), MAX_TIMEOUT).is_ok());
        let err = at_most("a.b", Seconds(Duration::from_secs(3600)), MAX_TIMEOUT).unwrap_err();
        assert_eq!(err, "a.b: 1h is longer than the most allowed, 10m");
    }
}
