//! node_kernel_hung_tasks_total from /proc/sys/kernel/hung_task_detect_count (Linux 6.13+,
//! with CONFIG_DETECT_HUNG_TASK). Other kernels: the collector is off, said once at start-up.

use crate::roots::{parse_u64, KeptFile};

use super::{read_kept, CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let path = ctx.roots.proc("sys/kernel/hung_task_detect_count");
    if !path.exists() {
        return Setup::Unavailable(format!(
            "no {} (Linux before 6.13 or without CONFIG_DETECT_HUNG_TASK)",
            path.display()
        ));
    }
    Setup::Ready(Box::new(KernelHungCollector {
        path: KeptFile::new(path),
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
    path: KeptFile,
    buf: Vec<u8>,
    tasks: FamilyId,
}

impl Collector for KernelHungCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        read_kept(&mut self.path, &mut self.buf)?;
        let value = parse_u64(&self.buf)
            .ok_or_else(|| CollectError(format!("{}: not a number", self.path.path().display())))?;
        out.sample(self.tasks, &[], value as f64);
        Ok(())
    }
}
