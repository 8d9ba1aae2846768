//! scripts/build-deb without installing anything (tests/it/systemd_boot.rs installs the package
//! under a real systemd): the files, owners and modes, the conffile, the control fields per
//! architecture (a static binary needs no libc6), the maintainer scripts, the packaged unit and
//! config; and scripts/deploy's checks that need no host (--dry-run, a bad inventory).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::ship::*;

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    run_ok(
        "dpkg-deb",
        Command::new("dpkg-deb").args(args).arg(deb),
        Duration::from_secs(60),
    )
}

#[test]
fn the_package_holds_binary_unit_config_and_maintainer_scripts() {
    if !have_all(&["dpkg-deb", "objcopy"], "deb contents") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path(), "1.2.3");
    let arch = run_ok(
        "dpkg --print-architecture",
        Command::new("dpkg").arg("--print-architecture"),
        Duration::from_secs(10),
    );
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("pimetrics_1.2.3_{}.deb", arch.trim())
    );
    let contents = dpkg_deb(&["--contents"], &deb);
    let entries: Vec<(String, String)> = contents
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5].to_string(), format!("{} {}", f[0], f[1]))
        })
        .collect();
    let find = |path: &str| {
        entries
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("{path} not in the package:\n{contents}"))
    };
    assert_eq!(find("./"), "drwxr-xr-x root/root");
    assert_eq!(find("./usr/bin/pimetrics"), "-rwxr-xr-x root/root");
    assert_eq!(
        find("./usr/lib/systemd/system/pimetrics.service"),
        "-rw-r--r-- root/root"
    );
    assert_eq!(
        find("./etc/pimetrics/pimetrics.ron"),
        "-rw-r--r-- root/root"
    );
    assert_eq!(
        find("./usr/share/doc/pimetrics/copyright"),
        "-rw-r--r-- root/root"
    );
    // Nothing else (/var/lib/pimetrics is made by postinst, owned by the pimetrics group).
    assert_eq!(
        entries.iter().filter(|(p, _)| !p.ends_with('/')).count(),
        4,
        "{contents}"
    );

    let info = dpkg_deb(&["--info"], &deb);
    assert!(info.contains(" Package: pimetrics\n"));
    assert!(info.contains(" Version: 1.2.3\n"));
    assert!(info.contains(&format!(" Architecture: {}\n", arch.trim())));
    // The binary under test is linked against glibc.
    assert!(info.contains(" Depends: libc6, passwd\n"), "{info}");

    let control = dir.path().join("control");
    run_ok(
        "dpkg-deb --control",
        Command::new("dpkg-deb")
            .arg("--control")
            .arg(&deb)
            .arg(&control),
        Duration::from_secs(30),
    );
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles")).unwrap(),
        "/etc/pimetrics/pimetrics.ron\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        run_ok(
            "sh -n",
            Command::new("sh").arg("-n").arg(control.join(script)),
            Duration::from_secs(10),
        );
    }
    assert!(!control.join("preinst").exists());

    let data = dir.path().join("data");
    run_ok(
        "dpkg-deb -x",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&data),
        Duration::from_secs(60),
    );
    let unit =
        std::fs::read_to_string(data.join("usr/lib/systemd/system/pimetrics.service")).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(repo().join("systemd/pimetrics.service"))
            .unwrap()
            .replace("/usr/local/bin/pimetrics", "/usr/bin/pimetrics")
    );
    let config = data.join("etc/pimetrics/pimetrics.ron");
    let printed = run_ok(
        "pimetrics --print-config",
        Command::new(agent_bin())
            .arg("--config")
            .arg(&config)
            .arg("--print-config"),
        Duration::from_secs(10),
    );
    assert!(
        printed.contains("\"/var/lib/pimetrics/textfile\""),
        "{printed}"
    );
}

#[test]
fn a_static_binary_for_a_pi_gives_an_arm64_package_without_libc() {
    if !have_all(&["dpkg-deb"], "deb for arm64") {
        return;
    }
    // A stand-in for a static aarch64 musl build: build-deb only looks at whether it is
    // dynamically linked (it names no ld-linux interpreter).
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("pimetrics-aarch64");
    std::fs::write(&binary, b"\x7fELF static stand-in").unwrap();
    run_ok(
        "chmod",
        Command::new("chmod").arg("0755").arg(&binary),
        Duration::from_secs(5),
    );
    let out = run_ok(
        "scripts/build-deb",
        Command::new(repo().join("scripts/build-deb"))
            .arg("--out")
            .arg(dir.path())
            .arg(format!("arm64={}", binary.display()))
            .arg(format!("armhf={}", binary.display())),
        Duration::from_secs(120),
    );
    let debs: Vec<&str> = out.lines().collect();
    assert_eq!(debs.len(), 2, "{out}");
    assert!(debs[0].ends_with("_arm64.deb") && debs[1].ends_with("_armhf.deb"));
    for deb in debs {
        let info = dpkg_deb(&["--info"], Path::new(deb));
        assert!(info.contains(" Depends: passwd\n"), "{info}");
    }
    // A target triple with no build is refused with the way to build it.
    let missing = run(
        "scripts/build-deb",
        Command::new(repo().join("scripts/build-deb"))
            .arg("--out")
            .arg(dir.path())
            .arg("riscv64gc-unknown-linux-gnu"),
        Duration::from_secs(60),
    );
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no Debian architecture"));
}

#[test]
fn deploy_dry_run_and_bad_inventories_need_no_host() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory");
    let deploy = |inventory: &Path, extra: &[&str]| {
        run(
            "scripts/deploy",
            Command::new(repo().join("scripts/deploy"))
                .args(extra)
                .arg(inventory),
            Duration::from_secs(60),
        )
    };
    // The example inventory, as shipped, is valid.
    let out = deploy(&repo().join("deploy/inventory.example"), &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("pi@pi-kitchen.local: would deploy node \"pi-kitchen\" (target auto: uname -m over ssh, push off)"), "{report}");
    assert!(report.contains("pi@192.168.1.50:2222: would deploy node \"pi-greenhouse\" (target arm-unknown-linux-musleabihf, push https://push.example.net:9091)"), "{report}");
    assert!(report.contains("-p 2222 pi@192.168.1.50"), "{report}");
    assert!(report.contains("dry run: 3 host(s), nothing done"));

    for (content, complaint) in [
        ("pi@a auto\n", "want HOST TARGET NODE [PUSH_URL]"),
        ("pi@a auto node\"x -\n", "host and node may hold"),
        ("# nothing\n", "no hosts"),
    ] {
        std::fs::write(&inventory, content).unwrap();
        let out = deploy(&inventory, &["--dry-run"]);
        assert_eq!(out.status.code(), Some(2), "{content}");
        assert!(
            text(&out.stderr).contains(complaint),
            "{}",
            text(&out.stderr)
        );
    }
    let out = deploy(&dir.path().join("missing"), &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_shipping_scripts_pass_shellcheck() {
    if !have_all(&["shellcheck"], "shellcheck") {
        return;
    }
    let scripts = [
        "scripts/build-deb",
        "scripts/deploy",
        "pi-image/add-pimetrics",
        "pi-image/cloud-init/firstrun.sh",
        "pi-image/pi-gen/stage-pimetrics/prerun.sh",
        "pi-image/pi-gen/stage-pimetrics/00-install/00-run.sh",
        "packaging/debian/postinst",
        "packaging/debian/prerm",
        "packaging/debian/postrm",
    ];
    run_ok(
        "shellcheck",
        Command::new("shellcheck")
            .args(["--severity=info", "--external-sources"])
            .args(scripts.iter().map(|s| repo().join(s))),
        Duration::from_secs(60),
    );
}

#[test]
fn cross_builds_under_target_become_packages_of_their_architecture() {
    // (triple, Debian architecture, qemu-user program that runs it)
    let cross = [
        ("aarch64-unknown-linux-musl", "arm64", "qemu-aarch64"),
        ("aarch64-unknown-linux-gnu", "arm64", "qemu-aarch64"),
        ("arm-unknown-linux-musleabihf", "armhf", "qemu-arm"),
        ("armv7-unknown-linux-gnueabihf", "armhf", "qemu-arm"),
    ];
    let present: Vec<_> = cross
        .iter()
        .filter(|(triple, _, _)| {
            repo()
                .join("target")
                .join(triple)
                .join("release/pimetrics")
                .is_file()
        })
        .collect();
    if present.is_empty() {
        // CI builds no ARM binary (cross/README.md builds them); nothing to package then.
        eprintln!("SKIPPED cross packages: no target/<pi triple>/release/pimetrics");
        return;
    }
    if !have_all(&["dpkg-deb"], "cross packages") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        "scripts/build-deb --no-build",
        Command::new(repo().join("scripts/build-deb"))
            .arg("--no-build")
            .arg("--out")
            .arg(dir.path()),
        Duration::from_secs(300),
    );
    for (triple, arch, qemu) in present {
        let deb = out
            .lines()
            .find(|l| l.ends_with(&format!("_{arch}.deb")))
            .unwrap_or_else(|| panic!("no {arch} package for {triple}: {out}"));
        let info = dpkg_deb(&["--info"], Path::new(deb));
        assert!(info.contains(&format!(" Architecture: {arch}\n")), "{info}");
        let data = dir.path().join(arch);
        run_ok(
            "dpkg-deb -x",
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&data),
            Duration::from_secs(60),
        );
        // The ARMv6 build goes into armhf when present (it runs on every Pi); the package
        // holds the first build found for its architecture, which is not always `triple`.
        let packaged = std::fs::read(data.join("usr/bin/pimetrics")).unwrap();
        assert!(packaged.starts_with(b"\x7fELF"), "{deb}: no ELF binary");
        if program(qemu).is_some() && triple.ends_with("musl") {
            let version = run_ok(
                qemu,
                Command::new(qemu)
                    .arg(data.join("usr/bin/pimetrics"))
                    .arg("--version"),
                Duration::from_secs(60),
            );
            assert!(version.starts_with("pimetrics "), "{version}");
            assert!(
                info.contains(" Depends: passwd\n"),
                "a static build needs no libc6"
            );
        }
    }
}
