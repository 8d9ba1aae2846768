//! node_sockstat_* from /proc/net/sockstat and /proc/net/sockstat6, named as node_exporter
//! names them: `sockets_used`, `<PROTO>_<state>` and `<PROTO>_mem_bytes` (pages times the
//! page size).

use crate::roots::{read_optional, KeptFile};

use super::named_families::NamedFamilies;
use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, Kind};

pub fn build(ctx: &Context, _out: &mut Exposition) -> Setup {
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Setup::Ready(Box::new(SockstatCollector {
        paths: [
            KeptFile::new(ctx.roots.proc("net/sockstat")),
            KeptFile::new(ctx.roots.proc("net/sockstat6")),
        ],
        page_size: if page_size > 0 {
            page_size as f64
        } else {
            4096.0
        },
        buf: Vec::with_capacity(512),
        families: NamedFamilies::new("node_sockstat_", Kind::Gauge, None),
    }))
}

struct SockstatCollector {
    paths: [KeptFile; 2],
    page_size: f64,
    buf: Vec<u8>,
    families: NamedFamilies,
}

/// The per-protocol keys node_exporter exports (procfs' NetSockstat fields).
const KEYS: [&str; 6] = ["inuse", "orphan", "tw", "alloc", "mem", "memory"];

/// Parses a sockstat file: `PROTO: key value key value...` lines. Calls `each(protocol, key,
/// value)` for the keys node_exporter knows; the `sockets: used N` line comes as
/// `("sockets", "used", N)`.
pub fn parse(bytes: &[u8], mut each: impl FnMut(&str, &str, f64)) -> Result<(), CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("not UTF-8".into()))?;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let bad = || CollectError(format!("invalid line {line:?}"));
        let mut fields = line.split_ascii_whitespace();
        let protocol = fields
            .next()
            .and_then(|p| p.strip_suffix(':'))
            .ok_or_else(bad)?;
        while let Some(key) = fields.next() {
            let value: f64 = fields.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
            let known = if protocol == "sockets" {
                key == "used"
            } else {
                KEYS.contains(&key)
            };
            if known {
                each(protocol, key, value);
            }
        }
    }
    Ok(())
}

impl Collector for SockstatCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        self.families.begin();
        for (index, path) in self.paths.iter_mut().enumerate() {
            // No IPv4 or no IPv6 in this kernel: nothing to say, like node_exporter.
            if !read_optional(path, &mut self.buf)? {
                continue;
            }
            let (families, page_size) = (&mut self.families, self.page_size);
            parse(&self.buf, |protocol, key, value| {
                // sockstat6 has no `sockets:` line today; node_exporter ignores one there.
                if protocol == "sockets" && index == 1 {
                    return;
                }
                let help = |_: &str| {
                    if protocol == "sockets" {
                        "Number of IPv4 sockets in use.".to_string()
                    } else {
                        format!("Number of {protocol} sockets in state {key}.")
                    }
                };
                if let Some(id) = families.id(out, &[protocol, key], help) {
                    out.sample(id, &[], value);
                }
                if key == "mem" {
                    let help =
                        |_: &str| format!("Number of {protocol} sockets in state mem_bytes.");
                    if let Some(id) = families.id(out, &[protocol, "mem_bytes"], help) {
                        out.sample(id, &[], value * page_size);
                    }
                }
            })
            .map_err(|err| CollectError(format!("{}: {err}", path.path().display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_this_machines_sockstat() {
        let mut all = Vec::new();
        parse(
            b"sockets: used 17\nTCP: inuse 1 orphan 0 tw 7 alloc 1 mem 0\nUDP: inuse 0 mem 0\nFRAG: inuse 0 memory 0\n",
            |p, k, v| all.push(format!("{p}_{k}={v}")),
        )
        .unwrap();
        assert_eq!(
            all,
            [
                "sockets_used=17",
                "TCP_inuse=1",
                "TCP_orphan=0",
                "TCP_tw=7",
                "TCP_alloc=1",
                "TCP_mem=0",
                "UDP_inuse=0",
                "UDP_mem=0",
                "FRAG_inuse=0",
                "FRAG_memory=0"
            ]
        );
        for bad in [
            &b"TCP inuse 1\n"[..],
            b"TCP: inuse\n",
            b"TCP: inuse x\n",
            b"\xff",
        ] {
            assert!(parse(bad, |_, _, _| {}).is_err(), "{bad:?}");
        }
    }
}
