//! node_nvme_info per controller and node_nvme_namespace_* per namespace from
//! /sys/class/nvme/<nvmeN>/ (Pi 5 NVMe HATs, CM5 carrier boards).

use std::path::{Path, PathBuf};

use super::{CollectError, Collector, Context, Setup};
use crate::roots::{dir_names, read_attr};
use crate::exposition::{Exposition, FamilyId, Kind};

/// Controller attributes, in node_nvme_info's label order after `device`.
const CONTROLLER: [&str; 5] = ["firmware_rev", "model", "serial", "state", "cntlid"];

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let class = ctx.roots.sys("class/nvme");
    if !class.is_dir() {
        return Setup::Unavailable(format!("no {} (no NVMe driver)", class.display()));
    }
    let namespace = |out: &mut Exposition, name: &str, help: &str| {
        out.family(name, help, Kind::Gauge, &["device", "nsid"])
    };
    Setup::Ready(Box::new(NvmeCollector {
        class,
        buf: Vec::with_capacity(64),
        texts: Default::default(),
        info: out.family(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            Kind::Gauge,
            &["device", "firmware_revision", "model", "serial", "state", "cntlid"],
        ),
        namespace_info: out.family(
            "node_nvme_namespace_info",
            "Information about NVMe namespaces. Value is always 1",
            Kind::Gauge,
            &["device", "nsid", "ana_state"],
        ),
        sizes: [
            namespace(out, "node_nvme_namespace_capacity_bytes", "Capacity of the NVMe namespace in bytes. Computed as namespace_size * namespace_logical_block_size"),
            namespace(out, "node_nvme_namespace_size_bytes", "Size of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/size"),
            namespace(out, "node_nvme_namespace_used_bytes", "Used space of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/nuse"),
            namespace(out, "node_nvme_namespace_logical_block_size_bytes", "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in /sys/class/nvme/<device>/<namespace>/queue/logical_block_size"),
        ],
    }))
}

struct NvmeCollector {
    class: PathBuf,
    buf: Vec<u8>,
    texts: [String; 5],
    info: FamilyId,
    namespace_info: FamilyId,
    /// capacity, size, used, logical block size.
    sizes: [FamilyId; 4],
}

/// The namespace id of a controller entry named like node_exporter's `nvme\d+n(\d+)`
/// ("nvme0n1" -> "1"); `None` for other entries.
pub fn namespace_id(entry: &str) -> Option<&str> {
    let rest = entry.strip_prefix("nvme")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let id = rest[digits..].strip_prefix('n')?;
    let end = id.find(|c: char| !c.is_ascii_digit()).unwrap_or(id.len());
    (digits > 0 && end > 0).then(|| &id[..end])
}

fn read_number(path: &Path, buf: &mut Vec<u8>) -> Result<u64, CollectError> {
    let text = read_attr(path, buf)
        .ok_or_else(|| CollectError(format!("{}: cannot read", path.display())))?;
    // node_exporter counts an unparsable value as 0.
    Ok(text.parse().unwrap_or(0))
}

impl Collector for NvmeCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        let devices = match dir_names(&self.class) {
            Ok(names) => names,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(CollectError(format!("{}: {err}", self.class.display()))),
        };
        for device in &devices {
            let dir = self.class.join(device);
            for (text, file) in self.texts.iter_mut().zip(CONTROLLER) {
                let path = dir.join(file);
                let value = read_attr(&path, &mut self.buf)
                    .ok_or_else(|| CollectError(format!("{}: cannot read", path.display())))?;
                text.clear();
                text.push_str(value);
            }
            let [firmware, model, serial, state, cntlid] = &self.texts;
            out.sample(
                self.info,
                &[device, firmware, model, serial, state, cntlid],
                1.0,
            );
            let entries =
                dir_names(&dir).map_err(|err| CollectError(format!("{}: {err}", dir.display())))?;
            for entry in &entries {
                let Some(nsid) = namespace_id(entry) else {
                    continue;
                };
                let ns = dir.join(entry);
                let used = read_number(&ns.join("nuse"), &mut self.buf)?;
                let size = read_number(&ns.join("size"), &mut self.buf)?;
                let block = read_number(&ns.join("queue/logical_block_size"), &mut self.buf)?;
                let ana_state = read_attr(&ns.join("ana_state"), &mut self.buf)
                    .unwrap_or("unknown")
                    .to_string();
                out.sample(self.namespace_info, &[device, nsid, &ana_state], 1.0);
                let bytes = [
                    size.saturating_mul(block),
                    size.saturating_mul(block),
                    used.saturating_mul(block),
                    block,
                ];
                for (id, value) in self.sizes.iter().zip(bytes) {
                    out.sample(*id, &[device, nsid], value as f64);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_ids() {
        assert_eq!(namespace_id("nvme0n1"), Some("1"));
        assert_eq!(namespace_id("nvme0c0n12"), None);
        assert_eq!(namespace_id("nvme12n3p1"), Some("3"));
        for other in ["device", "nvme0", "nvmen1", "nvme0n", "power"] {
            assert_eq!(namespace_id(other), None, "{other}");
        }
    }
}
