//! Every parser of the parity collectors on mutated real samples: never a panic, whatever the
//! bytes (a deterministic generator, so a failure repeats).

use crate::collector::{
    arp, conntrack, filefd, netstat, nfs, nvme, schedstat, selinux, sockstat, softnet, udp_queues,
    vmstat,
};
use crate::roots::parse_int;

const SAMPLES: &[&[u8]] = &[
    b"Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: RtoAlgorithm MaxConn\nTcp: 1 -1\n",
    b"Ip6InReceives \t1234\nIcmp6InMsgs 5\n",
    b"pgfault 9343812\noom_kill 0\n",
    b"sockets: used 17\nTCP: inuse 1 orphan 0 tw 7 alloc 1 mem 0\nFRAG: inuse 0 memory 0\n",
    b"IP address HW type Flags HW address Mask Device\n192.168.1.1 0x1 0x2 dc:a6:32:00:00:01 * eth0\n",
    b"entries clashres found\n0000002a 00000000 00000010 00000000 00000003 00000001 00000000 00000000 00000004 00000000 00000002 00000000 00000000 00000000 00000000 00000000 0000000f\n",
    b"570\t0\t2466097\n",
    b"000021af 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000\n",
    b"sl local rem st q\n 1: 00000000:0044 00000000:0000 07 00000000:00000300 00:00000000 00000000 0 0 1 2 0 0\n",
    b"version 15\ncpu0 0 0 0 0 0 0 2503614358795 118843207683 16367543\n",
    b"SELINUX=enforcing\n",
    b"nvme0n1",
    b"0x1003\n",
    b"net 0 0 0 0\nrpc 18 3 18\nproc3 22 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nproc4 3 1 2 3\n",
];
const INSERTS: &[&[u8]] = &[
    b":",
    b" ",
    b"\n",
    b"\t",
    b"0x",
    b"-",
    b"6",
    b"99999999999999999999",
    b"\xff",
    b"\xc3\xa9",
    b"cpu",
    b"_",
];

struct XorShift(u64);
impl XorShift {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below.max(1) as u64) as usize
    }
}

fn mutate(sample: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut bytes = sample.to_vec();
    for _ in 0..1 + rng.next(4) {
        let at = rng.next(bytes.len() + 1);
        match rng.next(4) {
            0 => bytes.truncate(at),
            1 if at < bytes.len() => bytes[at] = rng.next(256) as u8,
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {
                let insert = INSERTS[rng.next(INSERTS.len())];
                bytes.splice(at..at, insert.iter().copied());
            }
        }
    }
    bytes
}

#[test]
fn parsers_never_panic_on_mutated_samples() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut counts = Vec::new();
    for round in 0..20_000 {
        let sample = SAMPLES[round % SAMPLES.len()];
        let bytes = mutate(sample, &mut rng);
        let text = String::from_utf8_lossy(&bytes);
        let _ = netstat::parse_pairs(&bytes, |_, _, _| {});
        let _ = netstat::parse_snmp6(&bytes, |_, _, _| {});
        let _ = vmstat::parse(&bytes, |_, _| {});
        let _ = sockstat::parse(&bytes, |_, _, _| {});
        let _ = arp::count_entries(&bytes, &mut counts);
        let _ = conntrack::parse_stat(&bytes);
        let _ = nfs::parse(&bytes);
        let _ = filefd::parse(&bytes);
        for line in text.lines() {
            let _ = softnet::parse_line(line, round);
        }
        let _ = udp_queues::sum_queues(&bytes);
        let _ = schedstat::parse(&bytes, |_, _| {});
        let _ = selinux::config_mode(&text);
        let _ = nvme::namespace_id(&text);
        let _ = parse_int(&text);
    }
}
