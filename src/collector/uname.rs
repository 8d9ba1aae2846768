//! node_uname_info{sysname,release,version,machine,nodename,domainname} = 1, as node_exporter's
//! `uname` collector, read through the proc root from /proc/sys/kernel/{ostype,osrelease,
//! version,hostname,domainname} (the same strings uname(2) returns). The machine comes from
//! /proc/sys/kernel/arch (Linux 6.1+), else from uname(2) itself.
//!
//! The files are read every scrape: the host and domain names can change at run time.

use std::borrow::Cow;
use std::io;

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::KeptFile;

/// Files of the labels read every scrape, in label order (machine aside).
const FILES: [&str; 5] = ["ostype", "osrelease", "version", "hostname", "domainname"];

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let kernel = |name: &str| ctx.roots.proc(&format!("sys/kernel/{name}"));
    let arch_path = kernel("arch");
    let machine = match crate::roots::read(&arch_path) {
        Ok(bytes) => trim_value(&bytes).into_owned(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => match uname_machine() {
            Ok(machine) => machine,
            Err(err) => return Setup::Unavailable(format!("uname(2): {err}")),
        },
        Err(err) => {
            return Setup::Unavailable(format!("{}: {err}", arch_path.display()));
        }
    };
    Setup::Ready(Box::new(UnameCollector {
        files: FILES.map(|name| KeptFile::new(kernel(name))),
        bufs: Default::default(),
        machine,
        info: out.family(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Kind::Gauge,
            &[
                "sysname",
                "release",
                "version",
                "machine",
                "nodename",
                "domainname",
            ],
        ),
    }))
}

struct UnameCollector {
    files: [KeptFile; 5],
    bufs: [Vec<u8>; 5],
    /// Fixed for the life of the kernel: read once.
    machine: String,
    info: FamilyId,
}

/// A /proc/sys/kernel string as uname(2) gives it: without the trailing newline. Invalid UTF-8
/// (a host name set to raw bytes) is shown with replacement characters rather than dropped.
pub fn trim_value(bytes: &[u8]) -> Cow<'_, str> {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\0'))
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
}

/// The `machine` field of uname(2).
fn uname_machine() -> io::Result<String> {
    // SAFETY: utsname is plain C data; uname only writes into the struct we pass.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = name
        .machine
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl Collector for UnameCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        for (file, buf) in self.files.iter_mut().zip(&mut self.bufs) {
            read_kept(file, buf)?;
        }
        let [sysname, release, version, nodename, domainname] = &self.bufs;
        out.sample(
            self.info,
            &[
                &trim_value(sysname),
                &trim_value(release),
                &trim_value(version),
                &self.machine,
                &trim_value(nodename),
                &trim_value(domainname),
            ],
            1.0,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_like_uname() {
        // This machine's /proc/sys/kernel/version and a Pi 4's osrelease.
        let version = include_bytes!("../../tests/fixtures/x86-vm/proc/sys/kernel/version");
        assert_eq!(trim_value(version), "#1 SMP PREEMPT_DYNAMIC @0");
        assert_eq!(trim_value(b"6.6.31+rpt-rpi-v8\n"), "6.6.31+rpt-rpi-v8");
        assert_eq!(trim_value(b"(none)\n"), "(none)");
        assert_eq!(trim_value(b""), "");
        assert_eq!(trim_value(b"\n\n"), "");
        assert_eq!(trim_value(b"a b \n"), "a b ");
        assert_eq!(trim_value(b"pi\xff\n"), "pi\u{fffd}");
    }

    #[test]
    fn uname_machine_matches_this_machine() {
        let arch = include_bytes!("../../tests/fixtures/x86-vm/proc/sys/kernel/arch");
        // The fixture was copied from this machine; on another one compare with std's idea.
        let machine = uname_machine().unwrap();
        assert!(!machine.is_empty());
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(machine, trim_value(arch));
        }
    }
}
