//! node_entropy_available_bits and node_entropy_pool_size_bits from
//! /proc/sys/kernel/random/{entropy_avail,poolsize}.

use crate::roots::{parse_u64, KeptFile};

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(EntropyCollector {
        available_path: KeptFile::new(ctx.roots.proc("sys/kernel/random/entropy_avail")),
        pool_size_path: KeptFile::new(ctx.roots.proc("sys/kernel/random/poolsize")),
        buf: Vec::with_capacity(16),
        available: out.family(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            Kind::Gauge,
            &[],
        ),
        pool_size: out.family(
            "node_entropy_pool_size_bits",
            "Bits of entropy pool.",
            Kind::Gauge,
            &[],
        ),
    }))
}

struct EntropyCollector {
    available_path: KeptFile,
    pool_size_path: KeptFile,
    buf: Vec<u8>,
    available: FamilyId,
    pool_size: FamilyId,
}

impl Collector for EntropyCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        for (path, id) in [
            (&mut self.available_path, self.available),
            (&mut self.pool_size_path, self.pool_size),
        ] {
            read_kept(path, &mut self.buf)?;
            let value = parse_u64(&self.buf)
                .ok_or_else(|| CollectError(format!("{}: not a number", path.path().display())))?;
            out.sample(id, &[], value as f64);
        }
        Ok(())
    }
}
