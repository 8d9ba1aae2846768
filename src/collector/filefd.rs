//! node_filefd_allocated and node_filefd_maximum from /proc/sys/fs/file-nr
//! ("allocated<TAB>free<TAB>maximum").

use crate::roots::KeptFile;

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let family = |out: &mut Exposition, name: &str| {
        out.family(
            &format!("node_filefd_{name}"),
            &format!("File descriptor statistics: {name}."),
            Kind::Gauge,
            &[],
        )
    };
    Setup::Ready(Box::new(FilefdCollector {
        path: KeptFile::new(ctx.roots.proc("sys/fs/file-nr")),
        buf: Vec::with_capacity(64),
        allocated: family(out, "allocated"),
        maximum: family(out, "maximum"),
    }))
}

struct FilefdCollector {
    path: KeptFile,
    buf: Vec<u8>,
    allocated: FamilyId,
    maximum: FamilyId,
}

/// (allocated, maximum) from file-nr.
pub fn parse(bytes: &[u8]) -> Result<(f64, f64), CollectError> {
    let bad = || {
        CollectError(format!(
            "file-nr: invalid content {:?}",
            String::from_utf8_lossy(bytes)
        ))
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let fields: Vec<f64> = text
        .split_ascii_whitespace()
        .map(|f| f.parse::<u64>().map(|v| v as f64).map_err(|_| bad()))
        .take(4)
        .collect::<Result<_, _>>()?;
    match fields[..] {
        [allocated, _, maximum] => Ok((allocated, maximum)),
        _ => Err(bad()),
    }
}

impl Collector for FilefdCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.path, &mut self.buf)?;
        let (allocated, maximum) = parse(&self.buf)?;
        out.sample(self.allocated, &[], allocated);
        out.sample(self.maximum, &[], maximum);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_nr() {
        assert_eq!(parse(b"570\t0\t2466097\n").unwrap(), (570.0, 2466097.0));
        for bad in [&b""[..], b"1\t2\n", b"1\t2\t3\t4\n", b"a\tb\tc\n", b"\xff"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
