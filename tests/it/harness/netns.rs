//! Network namespaces for the tests that put an agent behind a real NAT (push_nat,
//! remote_write_nat): a "pi" on a private network, a masquerading "router", a "cloud" host.
//! Everything is removed when `Namespaces` is dropped, even on a panic.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use crate::harness::{program, Proc};

/// The namespaces of one run; deleted (with their veth pairs) when dropped, even on a panic.
pub struct Namespaces {
    pub prefix: String,
    created: Vec<String>,
}

impl Namespaces {
    /// `tag` keeps two tests' names apart (`pm`, `rw`).
    pub fn new(tag: &str) -> Namespaces {
        Namespaces {
            prefix: format!("{tag}{}", std::process::id() % 100_000),
            created: Vec::new(),
        }
    }

    /// `pi`, `rt` or `cl` with this run's prefix.
    pub fn name(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    pub fn add(&mut self, role: &str) -> String {
        let name = self.name(role);
        self.created.push(name.clone());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn ip(args: &[&str]) {
    run("ip", args);
}

/// Runs `f` on a thread inside network namespace `ns` (setns affects only that thread).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
        // SAFETY: a valid namespace fd; CLONE_NEWNET may be joined by one thread of many.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

pub fn spawn_in(ns: &str, name: &str, program: &Path, args: &[String]) -> Proc {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program).args(args);
    Proc::spawn(name, &mut command)
}

/// Root, or a clear skip; under CI never a skip. `test` names the test in messages.
pub fn may_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ci = std::env::var_os("CI").is_some();
    if !root {
        assert!(!ci, "{test} must run under CI: run the tests as root");
        println!("SKIPPED {test}: needs root for network namespaces (CI unset)");
        return false;
    }
    let masquerade = program("nft").or_else(|| program("iptables"));
    if program("ip").is_none() || masquerade.is_none() {
        assert!(
            !ci,
            "{test} needs `ip` (iproute2) and `nft` (nftables) or iptables"
        );
        println!("SKIPPED {test}: install iproute2 and nftables (CI unset)");
        return false;
    }
    true
}

/// Loads an nft ruleset (`nft -f -`) in the namespace `netns`.
pub fn nft(netns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft in {netns}: {rules}");
}

pub fn masquerade(router: &str, outside_if: &str) {
    if program("nft").is_some() {
        let rules = format!(
            "table ip nat {{\n chain postrouting {{\n  type nat hook postrouting priority srcnat;\n  oifname \"{outside_if}\" masquerade\n }}\n}}\n"
        );
        nft(router, &rules);
    } else {
        run(
            "ip",
            &[
                "netns",
                "exec",
                router,
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                outside_if,
                "-j",
                "MASQUERADE",
            ],
        );
    }
}

/// The addresses of one topology (each test its own, so runs never meet).
pub struct Addrs {
    pub pi: &'static str,
    pub router_inside: &'static str,
    pub router_outside: &'static str,
    pub cloud: &'static str,
}

/// pi --- router (masquerade) --- cloud; the cloud has no route into the pi's network.
/// Returns the namespaces' names: (pi, router, cloud).
pub fn build_network(nets: &mut Namespaces, addrs: &Addrs) -> (String, String, String) {
    let pi = nets.add("pi");
    let router = nets.add("rt");
    let cloud = nets.add("cl");
    let p = nets.prefix.clone();
    let (pi_if, rt_in, rt_out, cl_if) = (
        format!("{p}a"),
        format!("{p}b"),
        format!("{p}c"),
        format!("{p}d"),
    );
    ip(&[
        "link", "add", &pi_if, "netns", &pi, "type", "veth", "peer", "name", &rt_in, "netns",
        &router,
    ]);
    ip(&[
        "link", "add", &rt_out, "netns", &router, "type", "veth", "peer", "name", &cl_if, "netns",
        &cloud,
    ]);
    for (ns, dev, addr) in [
        (&pi, &pi_if, format!("{}/24", addrs.pi)),
        (&router, &rt_in, format!("{}/24", addrs.router_inside)),
        (&router, &rt_out, format!("{}/24", addrs.router_outside)),
        (&cloud, &cl_if, format!("{}/24", addrs.cloud)),
    ] {
        ip(&["-n", ns, "addr", "add", &addr, "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    ip(&[
        "-n",
        &pi,
        "route",
        "add",
        "default",
        "via",
        addrs.router_inside,
    ]);
    run(
        "ip",
        &[
            "netns",
            "exec",
            &router,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ],
    );
    masquerade(&router, &rt_out);
    (pi, router, cloud)
}
