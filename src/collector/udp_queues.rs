//! node_udp_queues{queue="tx|rx",ip="v4|v6"}: bytes queued in UDP sockets, summed over the
//! sockets of /proc/net/udp and /proc/net/udp6 (`tx_queue:rx_queue`, hex).

use crate::roots::{read_optional, KeptFile};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    Setup::Ready(Box::new(UdpQueuesCollector {
        paths: [
            KeptFile::new(ctx.roots.proc("net/udp")),
            KeptFile::new(ctx.roots.proc("net/udp6")),
        ],
        buf: Vec::with_capacity(4096),
        queues: out.family(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
            Kind::Gauge,
            &["queue", "ip"],
        ),
    }))
}

struct UdpQueuesCollector {
    paths: [KeptFile; 2],
    buf: Vec<u8>,
    queues: FamilyId,
}

/// (tx, rx) summed over the socket lines of /proc/net/udp or udp6.
pub fn sum_queues(bytes: &[u8]) -> Result<(u64, u64), CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("udp: not UTF-8".into()))?;
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let bad = || CollectError(format!("udp: invalid line {line:?}"));
        let queues = line.split_ascii_whitespace().nth(4).ok_or_else(bad)?;
        let (line_tx, line_rx) = queues.split_once(':').ok_or_else(bad)?;
        tx = tx.saturating_add(u64::from_str_radix(line_tx, 16).map_err(|_| bad())?);
        rx = rx.saturating_add(u64::from_str_radix(line_rx, 16).map_err(|_| bad())?);
    }
    Ok((tx, rx))
}

impl Collector for UdpQueuesCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        for (path, ip) in self.paths.iter_mut().zip(["v4", "v6"]) {
            // No IPv6 (or no IPv4) in this kernel: no series, like node_exporter.
            if !read_optional(path, &mut self.buf)? {
                continue;
            }
            let (tx, rx) = sum_queues(&self.buf)
                .map_err(|err| CollectError(format!("{}: {err}", path.path().display())))?;
            out.sample(self.queues, &["tx", ip], tx as f64);
            out.sample(self.queues, &["rx", ip], rx as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_queue_column() {
        let text = b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:0044 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 12345 2 0000000000000000 0
  456: 3500007F:0035 00000000:0000 07 00000010:00000001 00:00000000 00000000   101        0 23456 2 0000000000000000 0
";
        assert_eq!(sum_queues(text).unwrap(), (0x10, 0x301));
        assert_eq!(sum_queues(b"header only\n").unwrap(), (0, 0));
        for bad in [
            &b"h\n 1: a b c\n"[..],
            b"h\n 1: a b c zz:00\n",
            b"h\n 1: a b c 0000\n",
        ] {
            assert!(sum_queues(bad).is_err(), "{bad:?}");
        }
    }
}
