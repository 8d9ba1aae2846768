//! node_load1/5/15 from /proc/loadavg.

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};
use crate::roots::KeptFile;

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(LoadavgCollector {
        file: KeptFile::new(ctx.roots.proc("loadavg")),
        buf: Vec::with_capacity(64),
        load: [
            out.family("node_load1", "1m load average.", Kind::Gauge, &[]),
            out.family("node_load5", "5m load average.", Kind::Gauge, &[]),
            out.family("node_load15", "15m load average.", Kind::Gauge, &[]),
        ],
    }))
}

struct LoadavgCollector {
    file: KeptFile,
    buf: Vec<u8>,
    load: [FamilyId; 3],
}

/// The first three fields of /proc/loadavg. (procfs-core's `LoadAverage` holds them as f32,
/// which turns 0.44 into 0.4399999976; the kernel prints two decimals, kept exact here.)
pub fn parse(bytes: &[u8]) -> Result<[f64; 3], CollectError> {
    let bad = || {
        CollectError(format!(
            "loadavg: invalid content {:?}",
            String::from_utf8_lossy(bytes)
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let mut fields = text
        .split_ascii_whitespace()
        .map(|f| f.parse::<f64>().ok().filter(|v| v.is_finite()));
    let mut next = || fields.next().flatten().ok_or_else(bad);
    Ok([next()?, next()?, next()?])
}

impl Collector for LoadavgCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.file, &mut self.buf)?;
        let values = parse(&self.buf)?;
        for (id, value) in self.load.iter().zip(values) {
            out.sample(*id, &[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_loadavg() {
        assert_eq!(
            parse(b"0.52 0.58 0.59 1/389 12345\n").unwrap(),
            [0.52, 0.58, 0.59]
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b""[..],
            b"\n",
            b"abc def ghi",
            b"1.0",
            b"\xff\xfe 1 2 3/4 5",
            b"NaN 1 2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
