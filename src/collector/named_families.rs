//! Families named after keys read from a file, for collectors whose metric names come from
//! the kernel's own field names (netstat, vmstat, sockstat).

use std::collections::HashMap;

use regex_lite::Regex;

use crate::exposition::{is_valid_metric_name, Exposition, FamilyId, Kind};

/// Families named after keys read from a file (`node_netstat_<Proto>_<Field>`), registered
/// the first time a key is seen and remembered, so a scrape allocates nothing once the keys
/// are known. Keys the filter rejects are remembered as `None`.
pub struct NamedFamilies {
    prefix: &'static str,
    kind: Kind,
    filter: Option<Regex>,
    ids: HashMap<String, Option<FamilyId>>,
    key: String,
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
        }
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
        if let Some(id) = self.ids.get(self.key.as_str()) {
            return *id;
        }
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
}
