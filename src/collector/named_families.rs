//! Families named after keys read from a file, for collectors whose metric names come from
//! the kernel's own field names (netstat, vmstat, sockstat).

use std::collections::HashMap;

use regex_lite::Regex;

use crate::exposition::{is_valid_metric_name, Exposition, FamilyId, Kind};

/// Families named after keys read from a file (`node_netstat_<Proto>_<Field>`), registered
/// the first time a key is seen and remembered, so a scrape allocates nothing once the keys
/// are known. Keys the filter rejects are remembered as `None`.
///
/// The kernel writes these files in the same order every time, so besides the map the keys
/// are remembered by position: a scrape that calls `begin` first finds each key where it was
/// last time with one short comparison, and hashes only when the file's layout changed
/// (a module loaded, a new kernel). /proc/net/netstat, snmp and snmp6 hold ~300 keys.
pub struct NamedFamilies {
    prefix: &'static str,
    kind: Kind,
    filter: Option<Regex>,
    ids: HashMap<String, Option<FamilyId>>,
    key: String,
    by_position: Vec<(String, Option<FamilyId>)>,
    position: usize,
}

/// More keys than any kernel file has; a guard against a runaway (fuzzed) input.
const MAX_KEYS: usize = 4096;

impl NamedFamilies {
    pub fn new(prefix: &'static str, kind: Kind, filter: Option<Regex>) -> NamedFamilies {
        NamedFamilies {
            prefix,
            kind,
            filter,
            ids: HashMap::new(),
            key: String::new(),
            by_position: Vec::new(),
            position: 0,
        }
    }

    /// Starts a scrape: keys are expected in the order of the last one.
    pub fn begin(&mut self) {
        self.position = 0;
    }

    /// The family for the key `parts` joined with `_`, registering it with `help(key)`.
    pub fn id(
        &mut self,
        out: &mut Exposition,
        parts: &[&str],
        help: impl FnOnce(&str) -> String,
    ) -> Option<FamilyId> {
        self.key.clear();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.key.push('_');
            }
            self.key.push_str(part);
        }
        let position = self.position;
        self.position = self.position.saturating_add(1);
        if let Some((key, id)) = self.by_position.get(position) {
            if *key == self.key {
                return *id;
            }
        }
        let id = match self.ids.get(self.key.as_str()) {
            Some(id) => *id,
            None => {
                let name = format!("{}{}", self.prefix, self.key);
                let wanted = self
                    .filter
                    .as_ref()
                    .is_none_or(|filter| filter.is_match(&self.key));
                let id = (wanted && is_valid_metric_name(&name))
                    .then(|| out.family(&name, &help(&self.key), self.kind, &[]));
                if self.ids.len() < MAX_KEYS {
                    self.ids.insert(self.key.clone(), id);
                }
                id
            }
        };
        if let Some(slot) = self.by_position.get_mut(position) {
            slot.0.clone_from(&self.key);
            slot.1 = id;
        } else if position == self.by_position.len() && position < MAX_KEYS {
            self.by_position.push((self.key.clone(), id));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_families_filter_and_remember() {
        let mut out = Exposition::new("n");
        let mut families =
            NamedFamilies::new("node_vmstat_", Kind::Untyped, Regex::new("^pg").ok());
        let help = |key: &str| format!("field {key}.");
        let id = families.id(&mut out, &["pgfault"], help);
        assert!(id.is_some());
        assert_eq!(families.id(&mut out, &["pgfault"], help), id);
        assert_eq!(families.id(&mut out, &["nr_free_pages"], help), None);
        assert_eq!(families.id(&mut out, &["pg-bad name"], help), None);
        assert_eq!(out.lookup("node_vmstat_pgfault"), id);
    }

    #[test]
    fn named_families_by_position_follow_a_changed_layout() {
        let mut out = Exposition::new("n");
        let mut families = NamedFamilies::new("node_netstat_", Kind::Untyped, None);
        let help = |key: &str| format!("field {key}.");
        families.begin();
        let a = families.id(&mut out, &["Tcp", "InSegs"], help);
        let b = families.id(&mut out, &["Tcp", "OutSegs"], help);
        assert_ne!(a, b);
        // Same layout: same ids.
        families.begin();
        assert_eq!(families.id(&mut out, &["Tcp", "InSegs"], help), a);
        assert_eq!(families.id(&mut out, &["Tcp", "OutSegs"], help), b);
        // A key inserted before the others (a module loaded): every key keeps its family.
        families.begin();
        let c = families.id(&mut out, &["Tcp", "ActiveOpens"], help);
        assert_eq!(families.id(&mut out, &["Tcp", "InSegs"], help), a);
        assert_eq!(families.id(&mut out, &["Tcp", "OutSegs"], help), b);
        families.begin();
        assert_eq!(families.id(&mut out, &["Tcp", "ActiveOpens"], help), c);
        assert_eq!(families.id(&mut out, &["Tcp", "InSegs"], help), a);
        assert_eq!(out.lookup("node_netstat_Tcp_ActiveOpens"), c);
    }
}
