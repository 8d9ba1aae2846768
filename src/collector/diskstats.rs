//! node_disk_* from /proc/diskstats, plus node_disk_info (and the udev-derived
//! node_disk_filesystem_info, node_disk_device_mapper_info, node_disk_ata_*) from
//! <rootfs>/run/udev/data/b<major>:<minor> and /sys/block/<device>/queue/rotational, as
//! node_exporter 1.12 exports them.
//!
//! The kernel prints 11, 15 (Linux 4.18+: discards) or 17 (5.5+: flushes) counters per device;
//! like node_exporter, a series is exported only for the counters the line has.
//!
//! Our own parser rather than procfs-core's `DiskStat`: that one allocates a `String` per line
//! and does not say how many counters the line had.

use std::path::{Path, PathBuf};

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::flag::{text_flag, Flag};
use crate::roots::{parse_u64, KeptFile};

use serde::{Deserialize, Serialize};


pub const DEFAULT_DISK_DEVICE_EXCLUDE: &str =
    "^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";

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
    pub fn filter(&self) -> Result<super::device_filter::DeviceFilter, String> {
        let exclude = if !self.device_include.is_empty()
            && self.device_exclude == DEFAULT_DISK_DEVICE_EXCLUDE
        {
            ""
        } else {
            &self.device_exclude
        };
        super::device_filter::DeviceFilter::new(
            "diskstats",
            exclude,
            &self.device_include,
        )
    }
}

impl super::CollectorSettings for DiskstatsConfig {
    /// `--collector.*` flags of these settings (node_exporter's names).
    const FLAGS: &'static [Flag<Self>] = &[
        text_flag!(
            "--collector.diskstats.device-exclude",
            "REGEX",
            "Regexp of diskstats devices to exclude. Config: diskstats.device_exclude.",
            device_exclude
        ),
        text_flag!(
            "--collector.diskstats.device-include",
            "REGEX",
            "Regexp of diskstats devices to include (mutually exclusive to device-exclude; setting it drops the default exclude). Config: diskstats.device_include.",
            device_include
        ),
    ];

    fn validate(&self) -> Result<(), String> {
        self.filter().map(|_| ())
    }
}

const SECONDS_PER_TICK: f64 = 1.0 / 1000.0;
/// "Standard UNIX 512-byte sectors", whatever the device's block size (Documentation/block/stat.rst).
const SECTOR_BYTES: f64 = 512.0;

/// Name, help, type and scale of each counter, in /proc/diskstats order.
const COUNTERS: [(&str, &str, Kind, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        Kind::Counter,
        SECTOR_BYTES,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        Kind::Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        Kind::Counter,
        SECTOR_BYTES,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        Kind::Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        Kind::Gauge,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        Kind::Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        Kind::Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        Kind::Counter,
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        Kind::Counter,
        SECONDS_PER_TICK,
    ),
];

/// node_exporter's udev properties for ATA disks, and their metrics.
const ATA: [(&str, &str, &str); 3] = [
    (
        "ID_ATA_WRITE_CACHE",
        "node_disk_ata_write_cache",
        "ATA disk has a write cache.",
    ),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

pub fn build(ctx: &Context<DiskstatsConfig>, out: &mut Exposition) -> Setup {
    let filter = match ctx.settings.filter() {
        Ok(filter) => filter,
        Err(err) => return Setup::Unavailable(err),
    };
    let udev_dir = ctx.roots.root("/run/udev/data");
    // As node_exporter: without the udev database the info labels stay empty (said once).
    let udev_dir = if udev_dir.is_dir() {
        Some(udev_dir)
    } else {
        log::info!(
            "diskstats: {} is not a directory: node_disk_info without udev properties",
            udev_dir.display()
        );
        None
    };
    let counters = COUNTERS.map(|(name, help, kind, _)| out.family(name, help, kind, &["device"]));
    let ata = ATA.map(|(_, name, help)| out.family(name, help, Kind::Gauge, &["device"]));
    Setup::Ready(Box::new(DiskstatsCollector {
        file: KeptFile::new(ctx.roots.proc("diskstats")),
        sys_block: ctx.roots.sys("block"),
        udev_dir,
        filter,
        buf: Vec::with_capacity(4096),
        scratch: Vec::with_capacity(1024),
        counters,
        info: out.family(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            Kind::Gauge,
            &[
                "device",
                "major",
                "minor",
                "path",
                "wwn",
                "model",
                "serial",
                "revision",
                "rotational",
            ],
        ),
        filesystem_info: out.family(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            Kind::Gauge,
            &["device", "type", "usage", "uuid", "version"],
        ),
        device_mapper_info: out.family(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            Kind::Gauge,
            &["device", "name", "uuid", "vg_name", "lv_name", "lv_layer"],
        ),
        ata,
        disks: Vec::new(),
        generation: 0,
    }))
}

struct DiskstatsCollector {
    file: KeptFile,
    sys_block: PathBuf,
    udev_dir: Option<PathBuf>,
    filter: super::device_filter::DeviceFilter,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    counters: [FamilyId; 17],
    info: FamilyId,
    filesystem_info: FamilyId,
    device_mapper_info: FamilyId,
    ata: [FamilyId; 3],
    /// Per device, built at first sight: label strings and the udev data they came from.
    disks: Vec<Disk>,
    generation: u64,
}

struct Disk {
    name: String,
    major: u32,
    minor: u32,
    major_label: String,
    minor_label: String,
    udev_path: Option<PathBuf>,
    /// queue/rotational, kept open (udev data files are replaced, so read by path).
    rotational_file: KeptFile,
    /// The udev file and rotational attribute as last read: parsed again only when they change.
    udev_raw: Vec<u8>,
    rotational_raw: Vec<u8>,
    udev: Udev,
    rotational: String,
    seen: u64,
}

/// One line of /proc/diskstats. `count` is how many of `counters` the line had (11, 15, 17).
#[derive(Debug, PartialEq)]
pub struct DiskLine<'a> {
    pub major: u32,
    pub minor: u32,
    pub name: &'a str,
    pub counters: [u64; 17],
    pub count: usize,
}

/// Parses one line: `None` for a blank line, an error for anything but `major minor name` and
/// at least the 11 counters every kernel since 2.6 prints.
pub fn parse_line(line: &str) -> Result<Option<DiskLine<'_>>, CollectError> {
    let mut fields = line.split_ascii_whitespace();
    let Some(first) = fields.next() else {
        return Ok(None);
    };
    let bad = || CollectError(format!("diskstats: invalid line {line:?}"));
    let major = first.parse().map_err(|_| bad())?;
    let minor = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
    let name = fields.next().ok_or_else(bad)?;
    let mut counters = [0u64; 17];
    let mut count = 0;
    for field in fields {
        let slot = counters.get_mut(count).ok_or_else(bad)?;
        *slot = field.parse().map_err(|_| bad())?;
        count += 1;
    }
    if count < 11 {
        return Err(bad());
    }
    Ok(Some(DiskLine {
        major,
        minor,
        name,
        counters,
        count,
    }))
}

/// The udev properties node_exporter uses, from a udev database file (`E:KEY=value` lines).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Udev {
    pub path: String,
    pub wwn: String,
    pub model: String,
    pub serial: String,
    pub revision: String,
    pub fs_type: String,
    pub fs_usage: String,
    pub fs_uuid: String,
    pub fs_version: String,
    pub dm_name: String,
    pub dm_uuid: String,
    pub dm_vg_name: String,
    pub dm_lv_name: String,
    pub dm_lv_layer: String,
    pub ata: bool,
    /// ID_ATA_WRITE_CACHE, ID_ATA_WRITE_CACHE_ENABLED, ID_ATA_ROTATION_RATE_RPM when numeric.
    pub ata_values: [Option<f64>; 3],
}

pub fn parse_udev(bytes: &[u8]) -> Udev {
    let text = String::from_utf8_lossy(bytes);
    let mut udev = Udev::default();
    let (mut scsi_serial, mut serial_short, mut serial) = (None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.strip_prefix("E:").and_then(|p| p.split_once('=')) else {
            continue;
        };
        let value = value.to_string();
        match key {
            "ID_PATH" => udev.path = value,
            "ID_WWN" => udev.wwn = value,
            "ID_MODEL" => udev.model = value,
            "ID_REVISION" => udev.revision = value,
            "SCSI_IDENT_SERIAL" => scsi_serial = Some(value),
            "ID_SERIAL_SHORT" => serial_short = Some(value),
            "ID_SERIAL" => serial = Some(value),
            "ID_FS_TYPE" => udev.fs_type = value,
            "ID_FS_USAGE" => udev.fs_usage = value,
            "ID_FS_UUID" => udev.fs_uuid = value,
            "ID_FS_VERSION" => udev.fs_version = value,
            "DM_NAME" => udev.dm_name = value,
            "DM_UUID" => udev.dm_uuid = value,
            "DM_VG_NAME" => udev.dm_vg_name = value,
            "DM_LV_NAME" => udev.dm_lv_name = value,
            "DM_LV_LAYER" => udev.dm_lv_layer = value,
            "ID_ATA" => udev.ata = !value.is_empty(),
            _ => {
                if let Some(index) = ATA.iter().position(|(k, _, _)| *k == key) {
                    udev.ata_values[index] = value.trim().parse().ok();
                }
            }
        }
    }
    // node_exporter: the serial on the label, else the short serial, else ID_SERIAL (virtio).
    udev.serial = [scsi_serial, serial_short, serial]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    udev
}

/// /sys/block/<dev>/queue/rotational as node_exporter labels it: base 2, "0" when missing.
fn rotational_label(raw: &[u8]) -> String {
    match parse_u64(raw) {
        Some(value) => format!("{value:b}"),
        None => "0".to_string(),
    }
}

/// Reads `path` into `scratch` (empty when unreadable) and says whether it differs from `last`.
fn changed(path: Option<&Path>, scratch: &mut Vec<u8>, last: &[u8]) -> bool {
    let read = path.map(|p| crate::roots::read_into(p, scratch));
    if !matches!(read, Some(Ok(()))) {
        scratch.clear();
    }
    scratch.as_slice() != last
}

/// `changed` for a sysfs attribute kept open.
fn kept_changed(file: &mut KeptFile, scratch: &mut Vec<u8>, last: &[u8]) -> bool {
    if file.read_into(scratch).is_err() {
        scratch.clear();
    }
    scratch.as_slice() != last
}

impl DiskstatsCollector {
    /// The cached entry of a device, made at first sight (or when its numbers changed).
    fn disk_index(&mut self, line: &DiskLine) -> usize {
        if let Some(index) = self
            .disks
            .iter()
            .position(|d| d.name == line.name && d.major == line.major && d.minor == line.minor)
        {
            return index;
        }
        self.disks.retain(|d| d.name != line.name);
        self.disks.push(Disk {
            name: line.name.to_string(),
            major: line.major,
            minor: line.minor,
            major_label: line.major.to_string(),
            minor_label: line.minor.to_string(),
            udev_path: self
                .udev_dir
                .as_ref()
                .map(|dir| dir.join(format!("b{}:{}", line.major, line.minor))),
            rotational_file: KeptFile::new(self.sys_block.join(line.name).join("queue/rotational")),
            udev_raw: Vec::new(),
            rotational_raw: Vec::new(),
            udev: Udev::default(),
            rotational: "0".to_string(),
            seen: 0,
        });
        self.disks.len() - 1
    }

    fn refresh(&mut self, index: usize) {
        let Some(disk) = self.disks.get_mut(index) else {
            return;
        };
        disk.seen = self.generation;
        if changed(disk.udev_path.as_deref(), &mut self.scratch, &disk.udev_raw) {
            disk.udev = parse_udev(&self.scratch);
            std::mem::swap(&mut disk.udev_raw, &mut self.scratch);
        }
        if kept_changed(
            &mut disk.rotational_file,
            &mut self.scratch,
            &disk.rotational_raw,
        ) {
            disk.rotational = rotational_label(&self.scratch);
            std::mem::swap(&mut disk.rotational_raw, &mut self.scratch);
        }
    }
}

impl Collector for DiskstatsCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.file, &mut self.buf)?;
        let buf = std::mem::take(&mut self.buf);
        let result = self.write(&buf, out);
        self.buf = buf;
        result
    }
}

impl DiskstatsCollector {
    fn write(&mut self, buf: &[u8], out: &mut Exposition) -> Result<(), CollectError> {
        let text = std::str::from_utf8(buf)
            .map_err(|_| CollectError(format!("{}: not UTF-8", self.file.path().display())))?;
        self.generation += 1;
        let mut first_error = None;
        for line in text.lines() {
            let disk_line = match parse_line(line) {
                Ok(Some(disk_line)) => disk_line,
                Ok(None) => continue,
                Err(err) => {
                    first_error.get_or_insert(err);
                    continue;
                }
            };
            if self.filter.ignored(disk_line.name) {
                continue;
            }
            let index = self.disk_index(&disk_line);
            self.refresh(index);
            let Some(disk) = self.disks.get(index) else {
                continue;
            };
            let device = [disk_line.name];
            let udev = &disk.udev;
            out.sample(
                self.info,
                &[
                    disk_line.name,
                    &disk.major_label,
                    &disk.minor_label,
                    &udev.path,
                    &udev.wwn,
                    &udev.model,
                    &udev.serial,
                    &udev.revision,
                    &disk.rotational,
                ],
                1.0,
            );
            let present = disk_line.count.min(COUNTERS.len());
            for ((id, (_, _, _, scale)), value) in self
                .counters
                .iter()
                .zip(COUNTERS)
                .zip(disk_line.counters)
                .take(present)
            {
                out.sample(*id, &device, value as f64 * scale);
            }
            if !udev.fs_type.is_empty() {
                out.sample(
                    self.filesystem_info,
                    &[
                        disk_line.name,
                        &udev.fs_type,
                        &udev.fs_usage,
                        &udev.fs_uuid,
                        &udev.fs_version,
                    ],
                    1.0,
                );
            }
            if !udev.dm_name.is_empty() {
                out.sample(
                    self.device_mapper_info,
                    &[
                        disk_line.name,
                        &udev.dm_name,
                        &udev.dm_uuid,
                        &udev.dm_vg_name,
                        &udev.dm_lv_name,
                        &udev.dm_lv_layer,
                    ],
                    1.0,
                );
            }
            if udev.ata {
                for (id, value) in self.ata.iter().zip(udev.ata_values) {
                    if let Some(value) = value {
                        out.sample(*id, &device, value);
                    }
                }
            }
        }
        let generation = self.generation;
        self.disks.retain(|d| d.seen == generation);
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kernel_formats() {
        // node_exporter's fixture collector/fixtures/proc/diskstats (Apache-2.0): a real
        // Raspberry Pi SD card in the 14-field format of older kernels.
        let old = parse_line(" 179       0 mmcblk0 192 3 1560 156 0 0 0 0 0 136 156")
            .unwrap()
            .unwrap();
        assert_eq!(
            (old.major, old.minor, old.name, old.count),
            (179, 0, "mmcblk0", 11)
        );
        assert_eq!(old.counters[2], 1560);
        assert_eq!(old.counters[10], 156);

        // 18 fields (discards, Linux 4.18+): node_exporter's fixture, sdb.
        let discards = parse_line(
            "   8       0 sdb 326552 841 9657779 84 41822 2895 1972905 5007 0 60730 67070 68851 0 1925173784 11130",
        )
        .unwrap()
        .unwrap();
        assert_eq!(discards.count, 15);
        assert_eq!(discards.counters[13], 1925173784);

        // 20 fields (flushes, Linux 5.5+): a Raspberry Pi's mmcblk0 line quoted in a public
        // project's test data.
        let flushes = parse_line(
            " 179       0 mmcblk0 21470 16922 2596324 100287 10449 21286 531225 80768 0 39160 182660 0 0 0 0 7375 1604",
        )
        .unwrap()
        .unwrap();
        assert_eq!(flushes.count, 17);
        assert_eq!(flushes.counters[6], 531225);
        assert_eq!(flushes.counters[15], 7375);
        assert_eq!(flushes.counters[16], 1604);

        // This machine (Debian VM, virtio disk), verbatim.
        let vda = parse_line(
            " 254       0 vda 33377 6599 3544730 13318 9743 25030 8555232 13310 0 4608 26938 4300 76 471288 283 961 26",
        )
        .unwrap()
        .unwrap();
        assert_eq!(vda.counters[13], 471288);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "179 0 mmcblk0",
            "179 0 mmcblk0 1 2 3 4 5 6 7 8 9 10",
            "x 0 mmcblk0 1 2 3 4 5 6 7 8 9 10 11",
            "179 0 mmcblk0 1 2 3 4 5 6 7 8 9 10 -11",
            "179 0 mmcblk0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
            "179",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_line("   ").unwrap(), None);
        let max = parse_line("8 0 sda 18446744073709551615 0 0 0 0 0 0 0 0 0 0")
            .unwrap()
            .unwrap();
        assert_eq!(max.counters[0], u64::MAX);
    }

    #[test]
    fn udev_properties_and_serial_fallbacks() {
        // Shape of a real /run/udev/data/b8:0 of a USB SSD on a Pi (values shortened).
        let udev = parse_udev(
            b"S:disk/by-id/usb-Samsung_PSSD_T7_S6WBNJ0R123456A-0:0\nW:5\nI:3466553\n\
E:ID_PATH=platform-fd500000.pcie-pci-0000:01:00.0-usb-0:2:1.0-scsi-0:0:0:0\n\
E:ID_MODEL=PSSD_T7\nE:ID_REVISION=0\nE:ID_SERIAL=Samsung_PSSD_T7_S6WBNJ0R123456A-0:0\n\
E:ID_SERIAL_SHORT=S6WBNJ0R123456A\nE:ID_WWN=0x5000000000000001\nE:ID_ATA=1\n\
E:ID_ATA_ROTATION_RATE_RPM=0\nE:ID_ATA_WRITE_CACHE=x\nE:broken\nG:systemd\n",
        );
        assert_eq!(udev.model, "PSSD_T7");
        assert_eq!(udev.serial, "S6WBNJ0R123456A");
        assert_eq!(udev.wwn, "0x5000000000000001");
        assert!(udev.ata);
        assert_eq!(udev.ata_values, [None, None, Some(0.0)]);
        assert_eq!(parse_udev(b"E:ID_SERIAL=virtio-1\n").serial, "virtio-1");
        assert_eq!(parse_udev(b"\xff\xfe\x00"), Udev::default());
        assert_eq!(rotational_label(b"1\n"), "1");
        assert_eq!(rotational_label(b"2\n"), "10");
        assert_eq!(rotational_label(b"junk"), "0");
    }
}
