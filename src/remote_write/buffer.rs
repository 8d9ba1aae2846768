//! The bounded buffer between collection and sending: one record per collection (its
//! snappy-compressed `WriteRequest`), oldest first, capped by bytes and by age; the oldest go
//! first when full, counted.
//!
//! In memory by default. With a directory, records still arrive in memory and the unsent ones
//! are appended to a segment file in one write per flush (`flush`), so while the link is up and
//! records leave within a flush interval nothing is written to the card at all. On disk each
//! record is framed as `len u32 | crc32 u32 | timestamp_ms i64 | samples u32 | data`
//! (little-endian; the CRC covers everything after it), so a record torn by a power cut is
//! recognised and only it, and whatever follows it in its segment, is lost. Sent records leave
//! the index; a segment file is deleted when none of its records is left. After a restart the
//! segments are read back in order; records of a segment that was partly sent before the
//! restart are sent again (at-least-once; a receiver ignores a repeated identical sample).
//!
//! Only the index (about 40 bytes per record) stays in memory; records on disk are read back
//! one at a time when they are sent.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `len` and `crc32`.
const FRAME_HEADER: usize = 8;
/// `timestamp_ms` and `samples`.
const RECORD_HEADER: usize = 12;
const SEGMENT_SUFFIX: &str = ".rwseg";
/// Larger frames are not ours (a torn length field): stop reading the segment.
const MAX_RECORD: usize = 64 << 20;

/// One collection, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it was collected (also the timestamp of its samples).
    pub timestamp_ms: i64,
    pub samples: u32,
    /// Snappy-compressed (block format) `WriteRequest`.
    pub data: Vec<u8>,
}

/// A record taken for sending; `id` tells `remove` which record it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub id: u64,
    pub record: Record,
}

/// Samples (and, for torn records, bytes) the buffer gave up, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The buffer was full: the oldest went.
    pub full_samples: u64,
    /// Older than `buffer_max_age`.
    pub too_old_samples: u64,
    /// Records that failed their CRC or were cut short (power cut), or could not be read.
    pub torn_records: u64,
    pub torn_bytes: u64,
}

#[derive(Debug)]
enum Place {
    Memory(Vec<u8>),
    Disk { segment: u64, offset: u64 },
}

#[derive(Debug)]
struct Entry {
    id: u64,
    timestamp_ms: i64,
    samples: u32,
    /// Bytes of `data`.
    len: u32,
    place: Place,
}

/// What was found in the directory at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub segments: usize,
    pub records: usize,
    pub samples: u64,
    /// Segments with a torn or corrupt record (the rest of each is lost).
    pub torn_segments: usize,
    pub torn_bytes: u64,
}

pub struct Buffer {
    entries: VecDeque<Entry>,
    next_id: u64,
    /// Bytes the entries take (framing included on disk).
    bytes: u64,
    samples: u64,
    max_bytes: u64,
    max_age_ms: i64,
    disk: Option<Disk>,
    pub dropped: Dropped,
}

struct Disk {
    dir: PathBuf,
    /// Live records per segment file.
    live: BTreeMap<u64, usize>,
    /// The segment appended to, and its length.
    current: Option<(u64, File, u64)>,
    next_segment: u64,
    segment_max: u64,
    /// The segment last read from, kept open while the backlog is read.
    reading: Option<(u64, File)>,
}

impl Buffer {
    pub fn in_memory(max_bytes: u64, max_age_ms: i64) -> Buffer {
        Buffer {
            entries: VecDeque::new(),
            next_id: 0,
            bytes: 0,
            samples: 0,
            max_bytes,
            max_age_ms,
            disk: None,
            dropped: Dropped::default(),
        }
    }

    /// Opens (creating it if needed) the buffer directory and reads back its segments.
    pub fn on_disk(dir: &Path, max_bytes: u64, max_age_ms: i64) -> io::Result<(Buffer, Recovered)> {
        std::fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            segments.push(seq);
        }
        segments.sort_unstable();
        let mut buffer = Buffer::in_memory(max_bytes, max_age_ms);
        let disk = Disk {
            dir: dir.to_path_buf(),
            live: BTreeMap::new(),
            current: None,
            next_segment: segments.last().map_or(0, |s| s + 1),
            segment_max: (max_bytes / 16).clamp(64 << 10, 4 << 20),
            reading: None,
        };
        let mut live = BTreeMap::new();
        let paths: Vec<(u64, PathBuf)> =
            segments.iter().map(|&seq| (seq, disk.path(seq))).collect();
        // Before any entry is added: entries on disk count their framing.
        buffer.disk = Some(disk);
        let mut recovered = Recovered::default();
        for (seq, path) in paths {
            let bytes = std::fs::read(&path)?;
            let (records, torn) = scan_segment(&bytes);
            if torn > 0 {
                recovered.torn_segments += 1;
                recovered.torn_bytes += torn as u64;
                buffer.dropped.torn_records += 1;
                buffer.dropped.torn_bytes += torn as u64;
                log::warn!(
                    "remote write: {}: {torn} bytes at the end are torn or corrupt (power cut?); dropped",
                    path.display()
                );
            }
            if records.is_empty() {
                std::fs::remove_file(&path)?;
                continue;
            }
            recovered.segments += 1;
            live.insert(seq, records.len());
            for (offset, timestamp_ms, samples, len) in records {
                recovered.records += 1;
                recovered.samples += u64::from(samples);
                buffer.add(Entry {
                    id: 0,
                    timestamp_ms,
                    samples,
                    len,
                    place: Place::Disk {
                        segment: seq,
                        offset,
                    },
                });
            }
        }
        if let Some(disk) = &mut buffer.disk {
            disk.live = live;
        }
        Ok((buffer, recovered))
    }

    fn entry_bytes(&self, len: u32) -> u64 {
        let framing = if self.disk.is_some() {
            (FRAME_HEADER + RECORD_HEADER) as u64
        } else {
            0
        };
        u64::from(len) + framing
    }

    fn add(&mut self, mut entry: Entry) {
        entry.id = self.next_id;
        self.next_id += 1;
        self.bytes += self.entry_bytes(entry.len);
        self.samples += u64::from(entry.samples);
        self.entries.push_back(entry);
    }

    /// Adds a collection; when over the size cap the oldest records are dropped.
    pub fn push(&mut self, record: Record) {
        let Ok(len) = u32::try_from(record.data.len()) else {
            self.dropped.full_samples += u64::from(record.samples);
            return;
        };
        self.add(Entry {
            id: 0,
            timestamp_ms: record.timestamp_ms,
            samples: record.samples,
            len,
            place: Place::Memory(record.data),
        });
        while self.bytes > self.max_bytes {
            if let Some(samples) = self.pop_front() {
                self.dropped.full_samples += u64::from(samples);
            }
        }
    }

    /// Drops the records older than the age cap at `now_ms`.
    pub fn expire(&mut self, now_ms: i64) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.timestamp_ms < now_ms.saturating_sub(self.max_age_ms))
        {
            if let Some(samples) = self.pop_front() {
                self.dropped.too_old_samples += u64::from(samples);
            }
        }
    }

    /// The oldest record, read from disk if there. A record that cannot be read is dropped
    /// (counted as torn) and the next one tried.
    pub fn oldest(&mut self) -> Option<Taken> {
        loop {
            let entry = self.entries.front()?;
            let data = match &entry.place {
                Place::Memory(data) => Ok(data.clone()),
                Place::Disk { segment, offset } => {
                    let (segment, offset, len) = (*segment, *offset, entry.len);
                    match &mut self.disk {
                        Some(disk) => disk.read(segment, offset, len),
                        None => Err(io::Error::other("no disk")),
                    }
                }
            };
            let entry = self.entries.front()?;
            match data {
                Ok(data) => {
                    return Some(Taken {
                        id: entry.id,
                        record: Record {
                            timestamp_ms: entry.timestamp_ms,
                            samples: entry.samples,
                            data,
                        },
                    })
                }
                Err(err) => {
                    log::warn!("remote write: cannot read a buffered record: {err}; dropped");
                    let len = u64::from(entry.len);
                    self.pop_front();
                    self.dropped.torn_records += 1;
                    self.dropped.torn_bytes += len;
                }
            }
        }
    }

    /// Removes a record taken with `oldest` (sent, or refused for good). False when it had
    /// already been dropped meanwhile.
    pub fn remove(&mut self, id: u64) -> bool {
        if self.entries.front().is_some_and(|e| e.id == id) {
            self.pop_front();
            true
        } else {
            false
        }
    }

    /// Removes the oldest entry; returns its samples.
    fn pop_front(&mut self) -> Option<u32> {
        let entry = self.entries.pop_front()?;
        self.bytes -= self.entry_bytes(entry.len);
        self.samples -= u64::from(entry.samples);
        if let (Place::Disk { segment, .. }, Some(disk)) = (&entry.place, &mut self.disk) {
            disk.release(*segment);
        }
        Some(entry.samples)
    }

    /// Disk buffer: appends the records still in memory to the current segment in one write
    /// and syncs it. On an error they stay in memory (and the next flush tries a new segment).
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(disk) = &mut self.disk else {
            return Ok(());
        };
        let first = self
            .entries
            .iter()
            .position(|e| matches!(e.place, Place::Memory(_)));
        let Some(first) = first else {
            return Ok(());
        };
        let mut batch = Vec::new();
        for entry in self.entries.range(first..) {
            if let Place::Memory(data) = &entry.place {
                frame(entry.timestamp_ms, entry.samples, data, &mut batch);
            }
        }
        let (segment, start) = disk.append(&batch)?;
        let mut offset = start;
        for entry in self.entries.range_mut(first..) {
            let frame_len = (FRAME_HEADER + RECORD_HEADER) as u64 + u64::from(entry.len);
            entry.place = Place::Disk { segment, offset };
            offset += frame_len;
            *disk.live.entry(segment).or_insert(0) += 1;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn records(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn oldest_timestamp_ms(&self) -> Option<i64> {
        self.entries.front().map(|e| e.timestamp_ms)
    }

    /// Records not yet written to disk (always 0 in memory mode... which has no disk: all).
    pub fn unflushed(&self) -> usize {
        self.entries
            .iter()
            .rev()
            .take_while(|e| matches!(e.place, Place::Memory(_)))
            .count()
    }
}

impl Disk {
    fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(format!("{segment:020}{SEGMENT_SUFFIX}"))
    }

    /// Appends `batch` to the current segment (a new one when it is full or there is none);
    /// returns the segment and the offset the batch starts at.
    fn append(&mut self, batch: &[u8]) -> io::Result<(u64, u64)> {
        if self
            .current
            .as_ref()
            .is_some_and(|(_, _, len)| *len >= self.segment_max)
        {
            self.current = None;
        }
        if self.current.is_none() {
            let segment = self.next_segment;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(self.path(segment))?;
            // The new name must survive a power cut too.
            File::open(&self.dir)?.sync_all()?;
            self.next_segment += 1;
            self.current = Some((segment, file, 0));
        }
        let Some((segment, file, len)) = &mut self.current else {
            return Err(io::Error::other("no segment"));
        };
        let start = *len;
        let written = file.write_all(batch).and_then(|()| file.sync_data());
        if let Err(err) = written {
            // Cut off what may have been written and start a new segment next time.
            let _ = file.set_len(start);
            let segment = *segment;
            self.current = None;
            if self.live.get(&segment).copied().unwrap_or(0) == 0 {
                self.live.remove(&segment);
                let _ = std::fs::remove_file(self.path(segment));
            }
            return Err(err);
        }
        *len += batch.len() as u64;
        Ok((*segment, start))
    }

    fn read(&mut self, segment: u64, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        if self.reading.as_ref().is_none_or(|(s, _)| *s != segment) {
            self.reading = Some((segment, File::open(self.path(segment))?));
        }
        let Some((_, file)) = &self.reading else {
            return Err(io::Error::other("no segment open"));
        };
        let mut frame = vec![0; FRAME_HEADER + RECORD_HEADER + len as usize];
        file.read_exact_at(&mut frame, offset)?;
        let stored_crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if crc32fast::hash(&frame[FRAME_HEADER..]) != stored_crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "CRC mismatch (the file changed on disk)",
            ));
        }
        frame.drain(..FRAME_HEADER + RECORD_HEADER);
        Ok(frame)
    }

    /// One record of `segment` is gone; delete the file when it was the last.
    fn release(&mut self, segment: u64) {
        let Some(live) = self.live.get_mut(&segment) else {
            return;
        };
        *live = live.saturating_sub(1);
        if *live > 0 {
            return;
        }
        self.live.remove(&segment);
        if self.current.as_ref().is_some_and(|(s, _, _)| *s == segment) {
            self.current = None;
        }
        if self.reading.as_ref().is_some_and(|(s, _)| *s == segment) {
            self.reading = None;
        }
        let path = self.path(segment);
        if let Err(err) = std::fs::remove_file(&path) {
            log::warn!("remote write: cannot delete {}: {err}", path.display());
        }
    }
}

/// Appends one framed record.
fn frame(timestamp_ms: i64, samples: u32, data: &[u8], out: &mut Vec<u8>) {
    let payload_len = RECORD_HEADER + data.len();
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(&samples.to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The intact records of a segment as (offset, timestamp, samples, data length), and how many
/// bytes at the end are not (a torn or corrupt record and everything after it).
fn scan_segment(bytes: &[u8]) -> (Vec<(u64, i64, u32, u32)>, usize) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(record) = parse_frame(&bytes[at..]) else {
            return (records, bytes.len() - at);
        };
        let (timestamp_ms, samples, data_len) = record;
        records.push((at as u64, timestamp_ms, samples, data_len as u32));
        at += FRAME_HEADER + RECORD_HEADER + data_len;
    }
    (records, 0)
}

/// (timestamp, samples, data length) of the frame at the start of `bytes`, if intact.
fn parse_frame(bytes: &[u8]) -> Option<(i64, u32, usize)> {
    let header = bytes.get(..FRAME_HEADER)?;
    let payload_len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if !(RECORD_HEADER..=MAX_RECORD).contains(&payload_len) {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER..FRAME_HEADER + payload_len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let timestamp_ms = i64::from_le_bytes(payload[..8].try_into().ok()?);
    let samples = u32::from_le_bytes(payload[8..12].try_into().ok()?);
    Some((timestamp_ms, samples, payload_len - RECORD_HEADER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ts: i64, size: usize) -> Record {
        Record {
            timestamp_ms: ts,
            samples: 10,
            data: vec![(ts % 251) as u8; size],
        }
    }

    fn drain(buffer: &mut Buffer) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(taken) = buffer.oldest() {
            assert_eq!(
                taken.record,
                record(taken.record.timestamp_ms, taken.record.data.len())
            );
            out.push(taken.record.timestamp_ms);
            assert!(buffer.remove(taken.id));
        }
        out
    }

    #[test]
    fn memory_full_drops_oldest_first_and_counts() {
        let mut buffer = Buffer::in_memory(1000, i64::MAX);
        for ts in 0..15 {
            buffer.push(record(ts, 100));
        }
        assert_eq!(buffer.records(), 10);
        assert_eq!(buffer.bytes(), 1000);
        assert_eq!(buffer.dropped.full_samples, 50);
        assert_eq!(buffer.oldest_timestamp_ms(), Some(5));
        assert_eq!(drain(&mut buffer), (5..15).collect::<Vec<_>>());
        assert_eq!((buffer.bytes(), buffer.samples()), (0, 0));
    }

    #[test]
    fn age_cap_drops_old_records() {
        let mut buffer = Buffer::in_memory(1 << 20, 1000);
        for ts in [0, 500, 1500, 2500] {
            buffer.push(record(ts, 10));
        }
        buffer.expire(2000);
        assert_eq!(buffer.dropped.too_old_samples, 20);
        assert_eq!(drain(&mut buffer), vec![1500, 2500]);
    }

    #[test]
    fn a_record_dropped_while_in_flight_is_not_removed_twice() {
        let mut buffer = Buffer::in_memory(250, i64::MAX);
        buffer.push(record(1, 100));
        let taken = buffer.oldest().unwrap();
        buffer.push(record(2, 100));
        buffer.push(record(3, 100)); // drops 1
        assert!(!buffer.remove(taken.id));
        assert_eq!(drain(&mut buffer), vec![2, 3]);
    }

    #[test]
    fn disk_survives_reopen_and_deletes_sent_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, recovered) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        assert_eq!(recovered, Recovered::default());
        for ts in 0..5 {
            buffer.push(record(ts, 300));
        }
        assert_eq!(buffer.unflushed(), 5);
        buffer.flush().unwrap();
        assert_eq!(buffer.unflushed(), 0);
        buffer.push(record(5, 300)); // never flushed: lost like in a crash
        drop(buffer);
        let (mut buffer, recovered) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        assert_eq!(recovered.records, 5);
        assert_eq!(recovered.samples, 50);
        assert_eq!(drain(&mut buffer), vec![0, 1, 2, 3, 4]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn records_sent_before_the_flush_never_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, _) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        for ts in 0..10 {
            buffer.push(record(ts, 300));
            let taken = buffer.oldest().unwrap();
            assert!(buffer.remove(taken.id));
        }
        buffer.flush().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_torn_tail_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, _) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        for ts in 0..3 {
            buffer.push(record(ts, 200));
        }
        buffer.flush().unwrap();
        drop(buffer);
        let (mut buffer, _) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        for ts in 3..6 {
            buffer.push(record(ts, 200));
        }
        buffer.flush().unwrap();
        drop(buffer);
        // Power cut in the middle of the second segment's last record.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2);
        let last = &names[1];
        let len = std::fs::metadata(last).unwrap().len();
        let file = OpenOptions::new().write(true).open(last).unwrap();
        file.set_len(len - 50).unwrap();
        let (mut buffer, recovered) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        assert_eq!(recovered.torn_segments, 1);
        assert_eq!(recovered.torn_bytes, 220 - 50);
        assert_eq!(buffer.dropped.torn_records, 1);
        assert_eq!(drain(&mut buffer), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_crc() {
        let dir = tempfile::tempdir().unwrap();
        let (mut buffer, _) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        for ts in 0..3 {
            buffer.push(record(ts, 100));
        }
        buffer.flush().unwrap();
        drop(buffer);
        let path = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[120 + 30] ^= 1; // inside the second record's data
        std::fs::write(&path, bytes).unwrap();
        let (mut buffer, recovered) = Buffer::on_disk(dir.path(), 1 << 20, i64::MAX).unwrap();
        assert_eq!(recovered.torn_bytes, 240);
        assert_eq!(drain(&mut buffer), vec![0]);
    }

    #[test]
    fn disk_full_drops_oldest_and_whole_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        // 64 KiB segments; 1 KiB records; cap 128 KiB.
        let (mut buffer, _) = Buffer::on_disk(dir.path(), 128 << 10, i64::MAX).unwrap();
        for ts in 0..400 {
            buffer.push(record(ts, 1004));
            if ts % 10 == 9 {
                buffer.flush().unwrap();
            }
        }
        assert!(buffer.bytes() <= 128 << 10);
        let kept = buffer.records() as i64;
        assert_eq!(kept, (128 << 10) / 1024);
        assert_eq!(buffer.dropped.full_samples, (400 - kept as u64) * 10);
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= (128 << 10) + (64 << 10) + 10 * 1024, "{on_disk}");
        assert_eq!(drain(&mut buffer), (400 - kept..400).collect::<Vec<_>>());
    }
}
