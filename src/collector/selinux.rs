//! node_selinux_enabled, and when SELinux is on node_selinux_current_mode and
//! node_selinux_config_mode (1 enforcing, 0 permissive, -1 disabled). Raspberry Pi OS ships
//! without SELinux: one series saying 0.

use std::path::PathBuf;

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::read_to_string;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(SelinuxCollector {
        enforce_path: ctx.roots.sys("fs/selinux/enforce"),
        config_path: ctx.roots.root("/etc/selinux/config"),
        config_mode: out.family(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
            Kind::Gauge,
            &[],
        ),
        current_mode: out.family(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            Kind::Gauge,
            &[],
        ),
        enabled: out.family(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
            Kind::Gauge,
            &[],
        ),
    }))
}

struct SelinuxCollector {
    enforce_path: PathBuf,
    config_path: PathBuf,
    config_mode: FamilyId,
    current_mode: FamilyId,
    enabled: FamilyId,
}

/// The SELINUX= mode of /etc/selinux/config: 1 enforcing, 0 permissive, else -1.
pub fn config_mode(text: &str) -> f64 {
    let mode = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("SELINUX="))
        .next_back()
        .map(|value| value.trim().trim_matches('"'));
    match mode {
        Some("enforcing") => 1.0,
        Some("permissive") => 0.0,
        _ => -1.0,
    }
}

impl Collector for SelinuxCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        // selinuxfs mounted with an `enforce` file: SELinux is on.
        let Ok(enforce) = read_to_string(&self.enforce_path) else {
            out.sample(self.enabled, &[], 0.0);
            return Ok(());
        };
        out.sample(self.enabled, &[], 1.0);
        let config = read_to_string(&self.config_path).unwrap_or_default();
        out.sample(self.config_mode, &[], config_mode(&config));
        let current = match enforce.trim() {
            "1" => 1.0,
            "0" => 0.0,
            _ => -1.0,
        };
        out.sample(self.current_mode, &[], current);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_modes() {
        assert_eq!(
            config_mode("# comment\nSELINUX=enforcing\nSELINUXTYPE=targeted\n"),
            1.0
        );
        assert_eq!(config_mode("SELINUX=permissive\n"), 0.0);
        assert_eq!(config_mode("SELINUX=disabled\n"), -1.0);
        assert_eq!(config_mode(""), -1.0);
    }
}
