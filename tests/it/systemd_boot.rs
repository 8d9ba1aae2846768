//! A real systemd: `systemd-nspawn -b` boots a Debian tree (built once by mmdebstrap, cached
//! under target/tmp/nspawn) and the tests work in it as on a Pi:
//! - the .deb from scripts/build-deb: installed, the service active after READY=1, /metrics
//!   with the node label, the live `systemd-analyze security` score, a killed agent restarted,
//!   a hung (SIGSTOPped) agent restarted by the watchdog, an upgrade keeping an edited config,
//!   `dpkg -r` removing it and `dpkg --purge` leaving nothing;
//! - scripts/deploy over ssh to the container's sshd, with a second host that fails.
//!
//! Needs root (mounts, nspawn) and mmdebstrap; without root and outside CI the tests print
//! SKIPPED. Under CI (env CI set) they always run. Runtime: ~1 min for the tree once, then
//! about 1.5 min (the watchdog step waits out the shipped WatchdogSec=30s).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use crate::harness::ship::*;

const TOOLS: &[&str] = &[
    "mmdebstrap",
    "unshare",
    "nsenter",
    "dpkg-deb",
    "curl",
    "ssh",
];

fn ready(test: &str) -> bool {
    root_or_skip(test) && have_all(TOOLS, test)
}

/// Every path of the container's root file system except the ones that change by themselves
/// (logs, dpkg's database, caches), to compare before install and after purge.
const FILES: &str = "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run \
    -o -path /tmp -o -path /var/tmp -o -path /var/log -o -path /var/lib/dpkg -o -path /var/cache \
    -o -path /var/lib/systemd -o -path /var/lib/apt -o -path /root/.ssh \\) -prune -o -print | sort";

/// /metrics of the agent in the container, fetched from its network namespace.
fn scrape(c: &Container, port: u16) -> Option<String> {
    let out = run(
        "curl /metrics",
        c.in_net("curl")
            .args(["-fsS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/metrics")),
        Duration::from_secs(20),
    );
    out.status.success().then(|| text(&out.stdout))
}

fn main_pid(c: &Container) -> u32 {
    c.show("pimetrics.service", "MainPID")["MainPID"]
        .parse()
        .expect("MainPID")
}

/// Waits until the service runs again with a main PID other than `old`.
fn restarted(c: &Container, old: u32, limit: Duration) -> Option<u32> {
    eventually(limit, || {
        let p = c.show("pimetrics.service", "ActiveState,MainPID");
        let pid: u32 = p["MainPID"].parse().ok()?;
        (p["ActiveState"] == "active" && pid != 0 && pid != old).then_some(pid)
    })
}

#[test]
fn the_package_runs_under_a_real_systemd() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: package") {
        return;
    }
    let tree = debian_tree();
    let debs = tempfile::tempdir().unwrap();
    let v1 = build_deb(debs.path(), "0.1.0");
    let v2 = build_deb(debs.path(), "0.1.0+upgrade");
    let c = Container::boot(&tree, "pi-nspawn");

    let files_before = c.sh_ok(FILES);
    let users_before = c.sh_ok("cat /etc/passwd /etc/group /etc/shadow /etc/gshadow");

    // Install: postinst creates the user, enables and starts the service; with Type=notify the
    // start returns only once the agent sent READY=1.
    c.put(&v1, "/tmp/pimetrics.deb");
    c.sh_ok("dpkg -i /tmp/pimetrics.deb");
    let p = c.show(
        "pimetrics.service",
        "ActiveState,SubState,Type,StatusText,UnitFileState,WatchdogUSec,User,FragmentPath",
    );
    eprintln!("after dpkg -i: {p:?}");
    assert_eq!(p["ActiveState"], "active", "{p:?}");
    assert_eq!(p["SubState"], "running", "{p:?}");
    assert_eq!(p["Type"], "notify");
    assert_eq!(p["UnitFileState"], "enabled");
    assert_eq!(p["WatchdogUSec"], "30s");
    assert_eq!(p["User"], "pimetrics");
    assert!(
        !p["StatusText"].trim().is_empty(),
        "no STATUS= from the agent: {p:?}"
    );
    let id = c.sh_ok("id pimetrics");
    assert!(id.contains("(video)"), "pimetrics not in group video: {id}");
    assert_eq!(
        c.sh_ok("stat -c '%U:%G %a' /var/lib/pimetrics/textfile /etc/pimetrics/pimetrics.ron"),
        "root:pimetrics 775\nroot:pimetrics 640\n"
    );
    let agent_user = c.sh_ok(&format!("ps -o user= -p {}", main_pid(&c)));
    assert_eq!(agent_user.trim(), "pimetrics");

    // /metrics with the node label (the host name: the package's config leaves node unset).
    let metrics = eventually(Duration::from_secs(20), || scrape(&c, 9243)).expect("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("node_uname_info{") && l.contains("node=\"pi-nspawn\"")),
        "no node_uname_info with node=\"pi-nspawn\" in:\n{metrics}"
    );
    assert!(
        metrics.contains("node_textfile_scrape_error{node=\"pi-nspawn\"} 0"),
        "the package's textfile directory is not read cleanly:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("textfile"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The live sandbox score (systemd in the container computes it from the running unit).
    let security = c.sh_ok("systemd-analyze security --no-pager pimetrics.service");
    let overall = security
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for pimetrics.service: "))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_string())
        .expect("overall exposure line");
    let score: f64 = overall.parse().expect("score");
    eprintln!("live systemd-analyze security pimetrics.service: {score}");
    assert!(
        score <= 1.7,
        "exposure {score} above 1.7:\n{}",
        security
            .lines()
            .filter(|l| l.starts_with('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A killed agent is restarted (Restart=always, RestartSec=5s).
    let first = main_pid(&c);
    c.sh_ok(&format!("kill -KILL {first}"));
    let second =
        restarted(&c, first, Duration::from_secs(30)).expect("the killed agent was not restarted");
    assert!(eventually(Duration::from_secs(20), || scrape(&c, 9243)).is_some());

    // A hung agent (stopped: no more WATCHDOG=1) is killed by the watchdog and restarted.
    c.sh_ok(&format!("kill -STOP {second}"));
    let third = restarted(&c, second, Duration::from_secs(120))
        .expect("the stopped agent was not restarted by the watchdog");
    let journal = c.sh_ok("journalctl -u pimetrics.service --no-pager -o cat");
    assert!(
        journal.contains("Watchdog timeout"),
        "no watchdog timeout in the journal:\n{journal}"
    );
    assert!(eventually(Duration::from_secs(20), || scrape(&c, 9243)).is_some());
    eprintln!("agent pids: installed {first}, after kill {second}, after watchdog {third}");

    // Upgrade: an edited config survives (a conffile), the service keeps running.
    c.sh_ok(
        "sed -i 's|^    node: None,$|    node: \"edited-node\",|' /etc/pimetrics/pimetrics.ron",
    );
    c.put(&v2, "/tmp/pimetrics2.deb");
    c.sh_ok("dpkg -i --force-confdef --force-confold /tmp/pimetrics2.deb");
    assert_eq!(
        c.sh_ok("dpkg-query -W -f '${Version}' pimetrics"),
        "0.1.0+upgrade"
    );
    assert!(c
        .sh_ok("cat /etc/pimetrics/pimetrics.ron")
        .contains("    node: \"edited-node\","));
    let after_upgrade = eventually(Duration::from_secs(30), || {
        scrape(&c, 9243).filter(|m| m.contains("node=\"edited-node\""))
    });
    assert!(
        after_upgrade.is_some(),
        "after the upgrade the agent does not run with the edited config"
    );

    // dpkg -r: service stopped and gone, binary gone, config kept.
    c.sh_ok("dpkg -r pimetrics");
    let p = c.show("pimetrics.service", "LoadState,ActiveState");
    assert_eq!(p["LoadState"], "not-found", "{p:?}");
    assert_eq!(c.sh("test -e /usr/bin/pimetrics").status.code(), Some(1));
    assert_eq!(c.sh("pgrep -x pimetrics").status.code(), Some(1));
    assert!(scrape(&c, 9243).is_none());
    c.sh_ok("test -f /etc/pimetrics/pimetrics.ron");

    // dpkg --purge: nothing left: same files, same users and groups as before the install.
    c.sh_ok("dpkg --purge pimetrics");
    let files_after = c.sh_ok(FILES);
    let before: BTreeSet<&str> = files_before.lines().collect();
    let after: BTreeSet<&str> = files_after.lines().collect();
    // useradd/userdel keep the previous passwd/group/shadow as "<file>-" backups.
    let backups = [
        "/etc/passwd-",
        "/etc/group-",
        "/etc/shadow-",
        "/etc/gshadow-",
    ];
    let left: Vec<&&str> = after
        .difference(&before)
        .filter(|p| !backups.contains(p))
        .collect();
    let gone: Vec<&&str> = before.difference(&after).collect();
    assert!(left.is_empty(), "left behind after purge: {left:?}");
    assert!(gone.is_empty(), "removed by the package: {gone:?}");
    assert_eq!(
        c.sh_ok("cat /etc/passwd /etc/group /etc/shadow /etc/gshadow"),
        users_before
    );
}

#[test]
fn deploy_installs_over_ssh_and_reports_the_failing_host() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: deploy") || !have_all(&["ssh-keygen"], "systemd boot: deploy") {
        return;
    }
    let tree = debian_tree();
    let c = Container::boot(&tree, "deploy-target");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    run_ok(
        "ssh-keygen",
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
        Duration::from_secs(30),
    );
    c.sh_ok("mkdir -p -m 0700 /root/.ssh");
    c.put(&key.with_extension("pub"), "/root/.ssh/authorized_keys");
    c.sh_ok("chmod 0600 /root/.ssh/authorized_keys; systemctl is-active ssh.service");

    // Two hosts: the container's sshd, and a port nobody listens on.
    let inventory = dir.path().join("inventory");
    std::fs::write(
        &inventory,
        "# host target node push_url\n\
         root@127.0.0.1 auto pi-deployed -\n\
         root@127.0.0.1:2 aarch64-unknown-linux-musl pi-unreachable\n",
    )
    .unwrap();
    let arch = run_ok(
        "uname -m",
        Command::new("uname").arg("-m"),
        Duration::from_secs(5),
    );
    let agent = stripped_agent(dir.path());
    let deploy = |extra: &[&str]| {
        let mut cmd = c.in_net(repo().join("scripts/deploy"));
        cmd.args(extra)
            .arg("--binary")
            .arg(format!("{}={}", arch.trim(), agent.display()))
            .arg("--binary")
            .arg(format!("aarch64-unknown-linux-musl={}", agent.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!("IdentityFile={}", key.display()))
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .arg(&inventory);
        run("scripts/deploy", &mut cmd, Duration::from_secs(300))
    };

    // --dry-run: says what it would do and touches nothing.
    let dry = deploy(&["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let dry_out = text(&dry.stdout);
    assert!(
        dry_out.contains("root@127.0.0.1: would deploy node \"pi-deployed\""),
        "{dry_out}"
    );
    assert!(
        dry_out.contains("root@127.0.0.1:2: would deploy node \"pi-unreachable\""),
        "{dry_out}"
    );
    assert_eq!(
        c.sh("test -e /usr/local/bin/pimetrics").status.code(),
        Some(1)
    );

    let out = deploy(&[]);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(1), "one host failed: {report}");
    assert!(
        report.contains("OK      root@127.0.0.1 (node pi-deployed)"),
        "{report}"
    );
    assert!(
        report.contains("FAILED  root@127.0.0.1:2 (node pi-unreachable)"),
        "{report}"
    );
    assert!(
        report.contains("deploy: 1 of 2 host(s) deployed"),
        "{report}"
    );

    // On the "Pi": the installed files, the user, the running service with READY, /metrics.
    let p = c.show(
        "pimetrics.service",
        "ActiveState,UnitFileState,User,FragmentPath",
    );
    assert_eq!(p["ActiveState"], "active", "{p:?}");
    assert_eq!(p["UnitFileState"], "enabled", "{p:?}");
    assert_eq!(p["FragmentPath"], "/etc/systemd/system/pimetrics.service");
    assert_eq!(
        c.sh_ok("stat -c '%a %U' /usr/local/bin/pimetrics; grep '^    node:' /etc/pimetrics/pimetrics.ron"),
        "755 root\n    node: \"pi-deployed\",\n"
    );
    let metrics = eventually(Duration::from_secs(20), || scrape(&c, 9243)).expect("/metrics");
    assert!(metrics.contains("node=\"pi-deployed\""));

    // A second run (an update), as Raspberry Pi OS's first user: not root, password-less
    // sudo. It restarts the agent in place, with the new node name.
    c.sh_ok(
        "useradd -m -s /bin/bash pi && mkdir -m 0700 ~pi/.ssh && \
         cp /root/.ssh/authorized_keys ~pi/.ssh/ && chown -R pi:pi ~pi/.ssh && \
         echo 'pi ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/010_pi-nopasswd",
    );
    std::fs::write(&inventory, "pi@127.0.0.1 auto pi-renamed\n").unwrap();
    let old = main_pid(&c);
    let again = deploy(&[]);
    assert!(
        text(&again.stdout).contains("OK      pi@127.0.0.1 (node pi-renamed)"),
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
    assert!(scrape(&c, 9243).is_some_and(|m| m.contains("node=\"pi-renamed\"")));
    assert_ne!(
        main_pid(&c),
        old,
        "the agent was not restarted by the second deploy"
    );
}

/// An overlay of the cached tree (a root file system to build on), unmounted on drop.
struct Overlay {
    merged: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Overlay {
    fn new(tree: &std::path::Path) -> Overlay {
        let dir = tempfile::Builder::new()
            .prefix("overlay-")
            .tempdir_in(tree.parent().unwrap())
            .unwrap();
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let merged = dir.path().join("merged");
        run_ok(
            "mount overlay",
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o"])
                .arg(format!(
                    "lowerdir={},upperdir={},workdir={}",
                    tree.display(),
                    dir.path().join("upper").display(),
                    dir.path().join("work").display()
                ))
                .arg(&merged),
            Duration::from_secs(30),
        );
        Overlay { merged, _dir: dir }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
    }
}

#[test]
fn the_pi_gen_stage_installs_the_package_into_a_root_that_then_boots_with_it() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: pi-gen stage") {
        return;
    }
    let tree = debian_tree();
    let debs = tempfile::tempdir().unwrap();
    let deb = build_deb(debs.path(), "0.1.0");
    let arch = run_ok(
        "dpkg --print-architecture",
        Command::new("dpkg").arg("--print-architecture"),
        Duration::from_secs(10),
    );
    let arch = arch.trim();

    // The stage as pi-gen has it, with the package in files/.
    let stage = tempfile::tempdir().unwrap();
    run_ok(
        "cp stage",
        Command::new("cp")
            .arg("-a")
            .arg(repo().join("pi-image/pi-gen/stage-pimetrics"))
            .arg(stage.path()),
        Duration::from_secs(30),
    );
    let stage = stage.path().join("stage-pimetrics");
    assert!(stage.join("EXPORT_IMAGE").exists());
    std::fs::copy(
        &deb,
        stage
            .join("00-install/files")
            .join(deb.file_name().unwrap()),
    )
    .unwrap();

    let rootfs = Overlay::new(&tree);
    // pi-gen's helpers, as its scripts/common defines them (on_chroot: a chroot with /proc,
    // /dev and /sys mounted; copy_previous: rsync of the previous stage).
    let helpers = r#"
on_chroot() {
    mount -t proc proc "${ROOTFS_DIR}/proc"
    mount --rbind /dev "${ROOTFS_DIR}/dev"
    mount --rbind /sys "${ROOTFS_DIR}/sys"
    local rc=0
    chroot "${ROOTFS_DIR}" /bin/bash -e "$@" || rc=$?
    umount -l "${ROOTFS_DIR}/sys" "${ROOTFS_DIR}/dev" "${ROOTFS_DIR}/proc"
    return $rc
}
copy_previous() { echo copy_previous called; }
export -f on_chroot copy_previous
"#;
    // prerun.sh: copies the previous stage only when the root does not exist yet.
    let prerun = run_ok(
        "prerun.sh",
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash", "-ec"])
            .arg(format!(
                "{helpers}\nROOTFS_DIR=/nonexistent-pimetrics-root bash -e {}",
                stage.join("prerun.sh").display()
            )),
        Duration::from_secs(30),
    );
    assert_eq!(prerun.trim(), "copy_previous called");
    let out = run_ok(
        "00-run.sh",
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash", "-ec"])
            .arg(format!("{helpers}\ncd 00-install && bash -e ./00-run.sh"))
            .current_dir(&stage)
            .env("ROOTFS_DIR", &rootfs.merged)
            .env("ARCH", arch)
            .env("PIMETRICS_NODE", "pi-gen-built")
            .env("PIMETRICS_PUSH_URL", "https://push.example.net:9091"),
        Duration::from_secs(300),
    );
    assert!(out.contains("enabled"), "{out}");
    let root = &rootfs.merged;
    assert!(root.join("usr/bin/pimetrics").is_file());
    assert!(!root.join("tmp/pimetrics.deb").exists());
    assert_eq!(
        std::fs::read_link(
            root.join("etc/systemd/system/multi-user.target.wants/pimetrics.service")
        )
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("/usr"),
        "/lib/systemd/system/pimetrics.service"
    );
    let config = std::fs::read_to_string(root.join("etc/pimetrics/pimetrics.ron")).unwrap();
    assert!(config.contains("    node: \"pi-gen-built\","), "{config}");
    assert!(config.contains("        url: \"https://push.example.net:9091\","));
    assert!(std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("\npimetrics:"));

    // First boot of the built root: the agent is up with the node name from pi-gen's config.
    let c = Container::boot(root, "pi-gen-image");
    assert_eq!(
        c.show("pimetrics.service", "ActiveState")["ActiveState"],
        "active"
    );
    let metrics = eventually(Duration::from_secs(20), || scrape(&c, 9243)).expect("/metrics");
    assert!(metrics.contains("node=\"pi-gen-built\""));
}

/// Runs Raspberry Pi OS first-boot material in a booted container: the package at
/// /boot/firmware/pimetrics.deb, as the README tells users to put it.
fn first_boot_container(name: &str) -> (Container, tempfile::TempDir) {
    let tree = debian_tree();
    let debs = tempfile::tempdir().unwrap();
    let deb = build_deb(debs.path(), "0.1.0");
    let c = Container::boot(&tree, name);
    c.sh_ok("mkdir -p /boot/firmware");
    c.put(&deb, "/boot/firmware/pimetrics.deb");
    (c, debs)
}

#[test]
fn the_cloud_init_user_data_installs_and_starts_the_agent() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: cloud-init") || !have_all(&["yq"], "cloud-init") {
        return;
    }
    let user_data = repo().join("pi-image/cloud-init/user-data");
    assert!(std::fs::read_to_string(&user_data)
        .unwrap()
        .starts_with("#cloud-config\n"));
    let json = run_ok(
        "yq",
        Command::new("yq").args(["-c", "."]).arg(&user_data),
        Duration::from_secs(30),
    );
    let doc: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let (c, _debs) = first_boot_container("cloud-init-pi");
    // What cloud-init does with these two modules: write_files, then runcmd.
    for file in doc["write_files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let content = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(content.path(), file["content"].as_str().unwrap()).unwrap();
        c.sh_ok(&format!("mkdir -p \"$(dirname {path})\""));
        c.put(content.path(), path);
        c.sh_ok(&format!(
            "chmod {} {path}",
            file["permissions"].as_str().unwrap()
        ));
    }
    for command in doc["runcmd"].as_array().unwrap() {
        let argv: Vec<String> = command
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("'{}'", a.as_str().unwrap()))
            .collect();
        c.sh_ok(&argv.join(" "));
    }
    let p = c.show("pimetrics.service", "ActiveState,UnitFileState");
    assert_eq!(p["ActiveState"], "active", "{p:?}");
    assert_eq!(p["UnitFileState"], "enabled", "{p:?}");
    let metrics = eventually(Duration::from_secs(20), || scrape(&c, 9243)).expect("/metrics");
    assert!(metrics.contains("node=\"pi-kitchen\""));
    assert!(metrics.contains("node_textfile_scrape_error{node=\"pi-kitchen\"} 0"));
}

#[test]
fn firstrun_sh_installs_the_agent_and_removes_itself() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: firstrun.sh") {
        return;
    }
    let (c, _debs) = first_boot_container("firstrun-pi");
    c.put(
        &repo().join("pi-image/cloud-init/firstrun.sh"),
        "/boot/firmware/firstrun.sh",
    );
    c.sh_ok(
        "echo 'console=serial0,115200 root=PARTUUID=1234-02 rootwait systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target' > /boot/firmware/cmdline.txt",
    );
    c.sh_ok("bash /boot/firmware/firstrun.sh");
    assert_eq!(
        c.sh_ok("ls /boot/firmware; cat /boot/firmware/cmdline.txt"),
        "cmdline.txt\nconsole=serial0,115200 root=PARTUUID=1234-02 rootwait\n"
    );
    assert_eq!(
        c.show("pimetrics.service", "UnitFileState")["UnitFileState"],
        "enabled"
    );
    // The reboot that follows: the enabled service starts.
    c.sh_ok("systemctl start pimetrics.service");
    let metrics = eventually(Duration::from_secs(20), || scrape(&c, 9243)).expect("/metrics");
    assert!(metrics.contains("node=\"pi-kitchen\""));
}

/// The shell block of README.md just before the line holding `marker`.
fn readme_block_before(marker: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let at = readme.find(marker).expect("marker in README.md");
    let before = &readme[..at];
    let end = before.rfind("```").expect("block end");
    let start = before[..end].rfind("```sh\n").expect("block start") + "```sh\n".len();
    before[start..end].to_string()
}

#[test]
fn the_readme_quick_start_gives_a_running_service() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: README quick start") {
        return;
    }
    let tree = debian_tree();
    let dir = tempfile::tempdir().unwrap();
    let c = Container::boot(&tree, "raspberrypi");
    // What the Quick start's scp put in the pi user's home directory.
    c.sh_ok("mkdir -p /home/pi");
    c.put(&stripped_agent(dir.path()), "/home/pi/pimetrics");
    c.sh_ok("chmod 0755 /home/pi/pimetrics");
    c.put(
        &repo().join("systemd/pimetrics.service"),
        "/home/pi/pimetrics.service",
    );
    c.put(
        &repo().join("examples/pimetrics.ron"),
        "/home/pi/pimetrics.ron",
    );
    let block = readme_block_before("<!-- tests/it/systemd_boot.rs runs the block above");
    assert!(
        block.contains("systemctl enable --now pimetrics"),
        "{block}"
    );
    let out = c.sh_ok(&format!("cd /home/pi && set -e\n{block}"));
    assert!(
        out.contains("node_uname_info{node=\"raspberrypi\""),
        "{out}"
    );
    let p = c.show(
        "pimetrics.service",
        "ActiveState,UnitFileState,User,StatusText",
    );
    assert_eq!(p["ActiveState"], "active", "{p:?}");
    assert_eq!(p["UnitFileState"], "enabled", "{p:?}");
    assert_eq!(p["User"], "pimetrics");

    // The README's package route on the same system, once the manual install is gone.
    c.sh_ok(
        "systemctl disable --now pimetrics; rm -r /etc/systemd/system/pimetrics.service \
         /usr/local/bin/pimetrics /etc/pimetrics; userdel pimetrics; systemctl daemon-reload",
    );
    let arch = run_ok(
        "dpkg --print-architecture",
        Command::new("dpkg").arg("--print-architecture"),
        Duration::from_secs(10),
    );
    let deb = build_deb(dir.path(), "0.1.0");
    c.put(
        &deb,
        &format!("/home/pi/{}", deb.file_name().unwrap().to_str().unwrap()),
    );
    let apt_block = readme_block_before("<!-- tests/it/systemd_boot.rs runs the apt line above");
    let apt_line = apt_block
        .lines()
        .find_map(|l| {
            l.split_once("ssh pi@raspberrypi '")
                .map(|(_, r)| r.trim_end_matches('\''))
        })
        .expect("the ssh line")
        .replace("_arm64.deb", &format!("_{}.deb", arch.trim()));
    c.sh_ok(&format!(
        "cd /home/pi && DEBIAN_FRONTEND=noninteractive {apt_line} -y"
    ));
    let p = c.show("pimetrics.service", "ActiveState,FragmentPath");
    assert_eq!(p["ActiveState"], "active", "{p:?}");
    assert_eq!(p["FragmentPath"], "/lib/systemd/system/pimetrics.service");
}

#[test]
fn the_rpi_image_gen_layer_hooks_install_the_package_into_a_root_that_boots_with_it() {
    let _heavy = crate::harness::heavy();
    if !ready("systemd boot: rpi-image-gen layer") || !have_all(&["yq"], "rpi-image-gen layer") {
        return;
    }
    let tree = debian_tree();
    let debs = tempfile::tempdir().unwrap();
    let deb = build_deb(debs.path(), "0.1.0");
    let layer = repo().join("pi-image/rpi-image-gen/layer/pimetrics.yaml");
    let layer_text = std::fs::read_to_string(&layer).unwrap();
    for var in ["deb", "node", "push_url"] {
        assert!(
            layer_text.contains(&format!("# X-Env-Var-{var}-Desc:")),
            "{var}"
        );
    }
    let json = run_ok(
        "yq",
        Command::new("yq").args(["-c", "."]).arg(&layer),
        Duration::from_secs(30),
    );
    let doc: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let hooks: Vec<String> = doc["mmdebstrap"]["customize-hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    let rootfs = Overlay::new(&tree);
    // As mmdebstrap runs customize hooks: `sh -c HOOK exec ROOT`, with /proc, /sys and /dev
    // mounted in the root.
    let mut script = String::from(
        "set -e\nR=\"$ROOT\"\nmount -t proc proc \"$R/proc\"\nmount --rbind /dev \"$R/dev\"\nmount --rbind /sys \"$R/sys\"\n",
    );
    for hook in &hooks {
        script.push_str(&format!(
            "sh -c '{}' exec \"$R\"\n",
            hook.replace('\'', "'\\''")
        ));
    }
    let out = run_ok(
        "layer hooks",
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("ROOT", &rootfs.merged)
            .env("IGconf_pimetrics_deb", &deb)
            .env("IGconf_pimetrics_node", "image-gen-built")
            .env("IGconf_pimetrics_push_url", ""),
        Duration::from_secs(300),
    );
    assert!(out.contains("enabled"), "{out}");
    let root = &rootfs.merged;
    assert!(!root.join("tmp/pimetrics.deb").exists());
    let config = std::fs::read_to_string(root.join("etc/pimetrics/pimetrics.ron")).unwrap();
    assert!(config.contains("    node: \"image-gen-built\","));
    assert!(config.contains("        url: None,"));

    let c = Container::boot(root, "image-gen-pi");
    let metrics = eventually(Duration::from_secs(20), || scrape(&c, 9243)).expect("/metrics");
    assert!(metrics.contains("node=\"image-gen-built\""));
}
