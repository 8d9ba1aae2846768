//! node_kernel_hung_tasks_total from /proc/sys/kernel/hung_task_detect_count (Linux 6.13+,
//! with CONFIG_DETECT_HUNG_TASK). Older kernels: no series, not a failure.

use std::path::PathBuf;

use super::sysattr::read_optional;
use super::{parse_u64, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(KernelHungCollector {
        path: ctx.roots.proc("sys/kernel/hung_task_detect_count"),
        buf: Vec::with_capacity(16),
        tasks: out.family(
            "node_kernel_hung_tasks_total",
            "Total number of tasks that have been detected as hung since the system booted.",
            Kind::Counter,
            &[],
        ),
    }))
}

struct KernelHungCollector {
    path: PathBuf,
    buf: Vec<u8>,
    tasks: FamilyId,
}

impl Collector for KernelHungCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        if !read_optional(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let value = parse_u64(&self.buf)
            .ok_or_else(|| CollectError(format!("{}: not a number", self.path.display())))?;
        out.sample(self.tasks, &[], value as f64);
        Ok(())
    }
}
