//! node_nfs_* from /proc/net/rpc/nfs: the NFS client's RPC statistics (a Pi mounting a NAS),
//! as node_exporter's nfs collector exports them through procfs: network packets and
//! connections, RPC counts, and requests per protocol version and procedure. The file appears
//! when the nfs module loads (at the first mount, maybe after start-up): until then, no series.

use crate::roots::{read_optional, KeptFile};

use super::{CollectError, Collector, Context, Setup};
use crate::exposition::{Exposition, FamilyId, Kind};

/// NFSv2 procedures in the order of the `proc2` line (procfs' names, node_exporter's labels).
const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// NFSv3 procedures in the order of the `proc3` line.
const V3: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// NFSv4 client operations in the order of the `proc4` line (procfs reads the first 59).
const V4: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "GetDeviceInfo",
    "LayoutGet",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// The client statistics node_exporter exports. Lines the file lacks count as zeros, as in
/// procfs (a kernel without NFSv2 support prints no `proc2` line).
#[derive(Debug, PartialEq)]
pub struct ClientStats {
    /// net: udp, tcp packets, tcp connections.
    pub udp: u64,
    pub tcp: u64,
    pub tcp_connections: u64,
    /// rpc: calls, retransmissions, authentication refreshes.
    pub rpcs: u64,
    pub retransmissions: u64,
    pub auth_refreshes: u64,
    pub v2: [u64; 18],
    pub v3: [u64; 22],
    pub v4: [u64; 59],
}

impl Default for ClientStats {
    fn default() -> Self {
        ClientStats {
            udp: 0,
            tcp: 0,
            tcp_connections: 0,
            rpcs: 0,
            retransmissions: 0,
            auth_refreshes: 0,
            v2: [0; 18],
            v3: [0; 22],
            v4: [0; 59],
        }
    }
}

/// Parses /proc/net/rpc/nfs with procfs' rules: `net` has 4 numbers, `rpc` 3; `procN` starts
/// with its count, which must match, at least 18 (v2) or 22 (v3) procedures; a short v4 line is
/// padded with zeros; an unknown line is an error.
pub fn parse(bytes: &[u8]) -> Result<ClientStats, CollectError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CollectError("nfs: not UTF-8".into()))?;
    let mut stats = ClientStats::default();
    let mut values = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let bad = || CollectError(format!("nfs: invalid line {line:?}"));
        let mut fields = line.split_ascii_whitespace();
        let key = fields.next().ok_or_else(bad)?;
        values.clear();
        for field in fields {
            values.push(field.parse::<u64>().map_err(|_| bad())?);
        }
        if values.is_empty() {
            return Err(bad());
        }
        let procedures = |min: usize| -> Result<&[u64], CollectError> {
            let count = usize::try_from(values[0]).map_err(|_| bad())?;
            if values.len() - 1 != count || count < min {
                return Err(bad());
            }
            Ok(&values[1..])
        };
        match key {
            "net" => match values[..] {
                [_, udp, tcp, connections] => {
                    (stats.udp, stats.tcp, stats.tcp_connections) = (udp, tcp, connections)
                }
                _ => return Err(bad()),
            },
            "rpc" => match values[..] {
                [rpcs, retransmissions, refreshes] => {
                    (stats.rpcs, stats.retransmissions, stats.auth_refreshes) =
                        (rpcs, retransmissions, refreshes)
                }
                _ => return Err(bad()),
            },
            "proc2" => stats.v2.copy_from_slice(&procedures(18)?[..18]),
            "proc3" => stats.v3.copy_from_slice(&procedures(22)?[..22]),
            "proc4" => {
                let ops = procedures(0)?;
                let n = ops.len().min(59);
                stats.v4[..n].copy_from_slice(&ops[..n]);
            }
            _ => return Err(bad()),
        }
    }
    Ok(stats)
}

pub fn build(ctx: &Context, out: &mut Exposition) -> Setup {
    let counter = |out: &mut Exposition, name: &str, help: &str, labels: &[&str]| {
        out.family(name, help, Kind::Counter, labels)
    };
    Setup::Ready(Box::new(NfsCollector {
        path: KeptFile::new(ctx.roots.proc("net/rpc/nfs")),
        buf: Vec::with_capacity(1024),
        packets: counter(
            out,
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            &["protocol"],
        ),
        connections: counter(
            out,
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
            &[],
        ),
        rpcs: counter(
            out,
            "node_nfs_rpcs_total",
            "Total number of RPCs performed.",
            &[],
        ),
        retransmissions: counter(
            out,
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
            &[],
        ),
        auth_refreshes: counter(
            out,
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            &[],
        ),
        requests: counter(
            out,
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
            &["proto", "method"],
        ),
    }))
}

struct NfsCollector {
    path: KeptFile,
    buf: Vec<u8>,
    packets: FamilyId,
    connections: FamilyId,
    rpcs: FamilyId,
    retransmissions: FamilyId,
    auth_refreshes: FamilyId,
    requests: FamilyId,
}

impl Collector for NfsCollector {
    fn update(&mut self, out: &mut Exposition) -> Result<(), CollectError> {
        if !read_optional(&mut self.path, &mut self.buf)? {
            return Ok(()); // no NFS mount since boot: the nfs module is not loaded
        }
        let stats = parse(&self.buf)
            .map_err(|err| CollectError(format!("{}: {err}", self.path.path().display())))?;
        out.sample(self.packets, &["udp"], stats.udp as f64);
        out.sample(self.packets, &["tcp"], stats.tcp as f64);
        out.sample(self.connections, &[], stats.tcp_connections as f64);
        out.sample(self.rpcs, &[], stats.rpcs as f64);
        out.sample(self.retransmissions, &[], stats.retransmissions as f64);
        out.sample(self.auth_refreshes, &[], stats.auth_refreshes as f64);
        let versions: [(&str, &[&str], &[u64]); 3] = [
            ("2", &V2, &stats.v2),
            ("3", &V3, &stats.v3),
            ("4", &V4, &stats.v4),
        ];
        for (proto, names, counts) in versions {
            for (method, count) in names.iter().zip(counts) {
                out.sample(self.requests, &[proto, method], *count as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Pi 4 with an NFSv4 mount of a NAS (Linux 6.x layout: 69 NFSv4 operations).
    const SAMPLE: &str = "net 0 0 0 0
rpc 181203 3 181206
proc3 22 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
proc4 69 0 14820 9312 205 1021 0 0 0 1019 44 2 0 0 0 0 0 0 511 20011 3120 1 12 4 0 0 3 0 2 0 120 1 350 0 0 0 0 0 0 1 1 1 156021 0 1 0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
";

    #[test]
    fn parses_a_pi_nfs_client() {
        let stats = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            (stats.rpcs, stats.retransmissions, stats.auth_refreshes),
            (181203, 3, 181206)
        );
        assert_eq!(stats.v2, [0; 18], "no proc2 line: zeros");
        assert_eq!(stats.v3[1], 2, "GetAttr");
        assert_eq!((V4[1], stats.v4[1]), ("Read", 14820));
        assert_eq!((V4[2], stats.v4[2]), ("Write", 9312));
        assert_eq!((V4[41], stats.v4[41]), ("Sequence", 156021));
    }

    #[test]
    fn bad_lines_are_errors() {
        for bad in [
            "net 1 2 3\n",
            "rpc 1 2\n",
            "proc3 22 1 2\n",
            "proc2 3 1 2 3\n",
            "proc4 5 1 2\n",
            "proc4\n",
            "proc9 1 1\n",
            "net 1 2 3 x\n",
            "proc4 18446744073709551615 1\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let short = parse(b"proc4 3 1 2 3\n").unwrap();
        assert_eq!(&short.v4[..4], &[1, 2, 3, 0]);
    }
}
