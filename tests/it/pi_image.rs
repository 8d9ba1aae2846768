//! pi-image/add-pimetrics on a synthetic Raspberry Pi OS image built here (MBR, FAT boot
//! partition, ext4 root holding a Pi OS-like /etc), read back with debugfs and mtools: files,
//! owners, modes, the enable symlink, the user in group video, the config's node and push URL,
//! the boot partition's ssh and userconf.txt; e2fsck finds the file system clean.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::ship::*;

const TOOLS: &[&str] = &[
    "sfdisk",
    "mkfs.ext4",
    "mkfs.fat",
    "debugfs",
    "mcopy",
    "mtype",
    "e2fsck",
];
const SECTOR: u64 = 512;
const BOOT_START: u64 = 2048; // sectors
const BOOT_SECTORS: u64 = 65536; // 32 MiB
const ROOT_START: u64 = BOOT_START + BOOT_SECTORS;
const IMAGE_MIB: u64 = 160;

/// A Raspberry Pi OS-like image: partition 1 FAT (config.txt), partition 2 ext4 (/etc with the
/// users and groups of a fresh Pi OS Lite, the systemd directories).
fn synthetic_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in [
        "etc/systemd/system/multi-user.target.wants",
        "usr/bin",
        "usr/lib/systemd/system",
        "var/lib",
        "boot/firmware",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let write = |path: &str, text: &str| std::fs::write(rootfs.join(path), text).unwrap();
    write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n\
         daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n\
         systemd-timesync:x:997:997:systemd Time Synchronization:/:/usr/sbin/nologin\n\
         pi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
    );
    write(
        "etc/group",
        "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nvideo:x:44:pi\n\
         systemd-network:x:998:\nsystemd-timesync:x:997:\npi:x:1000:\n",
    );
    write(
        "etc/shadow",
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n\
         systemd-network:!*:19000::::::\nsystemd-timesync:!*:19000::::::\npi:!:19000:0:99999:7:::\n",
    );
    write(
        "etc/gshadow",
        "root:*::\ndaemon:*::\nshadow:*::\nvideo:*::pi\nsystemd-network:!::\nsystemd-timesync:!::\npi:!::\n",
    );
    write("etc/hostname", "raspberrypi\n");
    let image = dir.join("raspios.img");
    let file = std::fs::File::create(&image).unwrap();
    file.set_len(IMAGE_MIB * 1024 * 1024).unwrap();
    drop(file);
    let table = format!(
        "label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\nstart={ROOT_START}, type=83\n"
    );
    let table_file = dir.join("table");
    std::fs::write(&table_file, table).unwrap();
    let out = run_with_stdin(
        "sfdisk",
        Command::new("sfdisk").arg("-q").arg(&image),
        std::process::Stdio::from(std::fs::File::open(&table_file).unwrap()),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "sfdisk: {}", text(&out.stderr));
    run_ok(
        "mkfs.fat",
        Command::new("mkfs.fat")
            .args(["-n", "bootfs"])
            .arg(format!("--offset={BOOT_START}"))
            .arg(&image)
            .arg((BOOT_SECTORS * SECTOR / 1024).to_string()),
        Duration::from_secs(30),
    );
    let config_txt = dir.join("config.txt");
    std::fs::write(&config_txt, "[all]\narm_64bit=1\n").unwrap();
    run_ok(
        "mcopy config.txt",
        Command::new("mcopy")
            .arg("-i")
            .arg(format!("{}@@{}", image.display(), BOOT_START * SECTOR))
            .arg(&config_txt)
            .arg("::config.txt"),
        Duration::from_secs(30),
    );
    let root_kib = (IMAGE_MIB * 1024 * 1024 - ROOT_START * SECTOR) / 1024;
    run_ok(
        "mkfs.ext4",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "rootfs", "-d"])
            .arg(&rootfs)
            .arg("-E")
            .arg(format!("offset={},root_owner=0:0", ROOT_START * SECTOR))
            .arg(&image)
            .arg(format!("{root_kib}k")),
        Duration::from_secs(60),
    );
    image
}

fn root_spec(image: &Path) -> String {
    format!("{}?offset={}", image.display(), ROOT_START * SECTOR)
}

fn debugfs(image: &Path, request: &str) -> String {
    let out = run(
        "debugfs",
        Command::new("debugfs")
            .arg("-R")
            .arg(request)
            .arg(root_spec(image)),
        Duration::from_secs(30),
    );
    text(&out.stdout)
}

/// (mode as octal text, uid, gid) of a path in the image's root partition.
fn stat(image: &Path, path: &str) -> (String, u32, u32) {
    let out = debugfs(image, &format!("stat {path}"));
    let field = |name: &str| -> String {
        out.split(name)
            .nth(1)
            .unwrap_or_else(|| panic!("{path}: no {name} in {out}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    (
        field("Mode:"),
        field("User:").parse().unwrap(),
        field("Group:").parse().unwrap(),
    )
}

fn cat(image: &Path, path: &str, dir: &Path) -> Vec<u8> {
    let local = dir.join("dumped");
    let _ = std::fs::remove_file(&local);
    debugfs(image, &format!("dump {path} {}", local.display()));
    std::fs::read(&local).unwrap_or_else(|e| panic!("{path} not in the image: {e}"))
}

fn boot_file(image: &Path, name: &str) -> Option<String> {
    let out = run(
        "mtype",
        Command::new("mtype")
            .arg("-i")
            .arg(format!("{}@@{}", image.display(), BOOT_START * SECTOR))
            .arg(format!("::{name}")),
        Duration::from_secs(30),
    );
    out.status.success().then(|| text(&out.stdout))
}

fn fsck_clean(image: &Path) {
    run_ok(
        "e2fsck",
        Command::new("e2fsck").arg("-fn").arg(root_spec(image)),
        Duration::from_secs(60),
    );
}

fn add_pimetrics(args: &[&str], image: &Path) -> String {
    run_ok(
        "pi-image/add-pimetrics",
        Command::new(repo().join("pi-image/add-pimetrics"))
            .args(args)
            .arg(image),
        Duration::from_secs(120),
    )
}

#[test]
fn the_deb_contents_go_into_an_image_without_mounting_it() {
    if !have_all(TOOLS, "pi image (deb)") || !have_all(&["dpkg-deb", "objcopy"], "pi image") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = synthetic_image(dir.path());
    let debs = dir.path().join("debs");
    let deb = build_deb(&debs, "0.1.0");
    let hash = "pi:$6$salt$hash";
    let out = add_pimetrics(
        &[
            "--deb",
            deb.to_str().unwrap(),
            "--node",
            "pi-kitchen",
            "--push-url",
            "https://push.example.net:9091",
            "--ssh",
            "--userconf",
            hash,
        ],
        &image,
    );
    assert!(out.contains("node pi-kitchen"), "{out}");

    // The binary is the packaged one, root-owned 0755.
    assert_eq!(
        cat(&image, "/usr/bin/pimetrics", dir.path()),
        std::fs::read(debs.join("pimetrics")).unwrap()
    );
    assert_eq!(stat(&image, "/usr/bin/pimetrics"), ("0755".into(), 0, 0));
    let unit = String::from_utf8(cat(
        &image,
        "/usr/lib/systemd/system/pimetrics.service",
        dir.path(),
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/pimetrics --config /etc/pimetrics/pimetrics.ron"));
    assert_eq!(
        stat(&image, "/usr/lib/systemd/system/pimetrics.service"),
        ("0644".into(), 0, 0)
    );
    // Enabled: the symlink systemctl enable would make.
    let link = debugfs(
        &image,
        "stat /etc/systemd/system/multi-user.target.wants/pimetrics.service",
    );
    assert!(
        link.contains("Fast link dest: \"/usr/lib/systemd/system/pimetrics.service\""),
        "{link}"
    );

    // The user and group: next free system id, group video.
    let passwd = String::from_utf8(cat(&image, "/etc/passwd", dir.path())).unwrap();
    let group = String::from_utf8(cat(&image, "/etc/group", dir.path())).unwrap();
    let shadow = String::from_utf8(cat(&image, "/etc/shadow", dir.path())).unwrap();
    assert!(
        passwd.contains(
            "pimetrics:x:999:999:pimetrics metrics agent:/nonexistent:/usr/sbin/nologin\n"
        ),
        "{passwd}"
    );
    assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/bash\n"));
    assert!(group.contains("video:x:44:pi,pimetrics\n"), "{group}");
    assert!(group.contains("pimetrics:x:999:\n"), "{group}");
    assert!(shadow.contains("pimetrics:!*:"), "{shadow}");
    assert_eq!(stat(&image, "/etc/shadow"), ("0640".into(), 0, 42));
    assert_eq!(stat(&image, "/etc/passwd"), ("0644".into(), 0, 0));

    // The config: the package's, with the node and push URL; readable by the agent's group.
    let config = dir.path().join("pimetrics.ron");
    std::fs::write(
        &config,
        cat(&image, "/etc/pimetrics/pimetrics.ron", dir.path()),
    )
    .unwrap();
    let config_text = std::fs::read_to_string(&config).unwrap();
    assert!(config_text.contains("    node: \"pi-kitchen\",\n"));
    assert!(config_text.contains("        url: \"https://push.example.net:9091\",\n"));
    assert!(config_text.contains("\"/var/lib/pimetrics/textfile\""));
    assert_eq!(
        stat(&image, "/etc/pimetrics/pimetrics.ron"),
        ("0640".into(), 0, 999)
    );
    run_ok(
        "pimetrics --check-config",
        Command::new(agent_bin()).arg("--check-config").arg(&config),
        Duration::from_secs(10),
    );
    assert_eq!(
        stat(&image, "/var/lib/pimetrics/textfile"),
        ("0775".into(), 0, 999)
    );

    // Boot partition: ssh and userconf.txt added, config.txt untouched.
    assert_eq!(boot_file(&image, "ssh").as_deref(), Some(""));
    assert_eq!(boot_file(&image, "userconf.txt"), Some(format!("{hash}\n")));
    assert_eq!(
        boot_file(&image, "config.txt").as_deref(),
        Some("[all]\narm_64bit=1\n")
    );
    fsck_clean(&image);
}

#[test]
fn a_binary_goes_into_an_image_and_a_second_run_changes_only_the_config() {
    if !have_all(TOOLS, "pi image (binary)") || !have_all(&["objcopy"], "pi image") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = synthetic_image(dir.path());
    let binary = stripped_agent(dir.path());
    add_pimetrics(&["--binary", binary.to_str().unwrap()], &image);
    assert_eq!(
        cat(&image, "/usr/local/bin/pimetrics", dir.path()),
        std::fs::read(&binary).unwrap()
    );
    let unit = String::from_utf8(cat(
        &image,
        "/etc/systemd/system/pimetrics.service",
        dir.path(),
    ))
    .unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(repo().join("systemd/pimetrics.service")).unwrap()
    );
    let link = debugfs(
        &image,
        "stat /etc/systemd/system/multi-user.target.wants/pimetrics.service",
    );
    assert!(link.contains("Fast link dest: \"/etc/systemd/system/pimetrics.service\""));
    let config =
        String::from_utf8(cat(&image, "/etc/pimetrics/pimetrics.ron", dir.path())).unwrap();
    assert!(
        config.contains("    node: None,\n"),
        "default: the host name"
    );
    assert!(boot_file(&image, "ssh").is_none());

    // Again with a node name: the user is not added twice, the config changes.
    add_pimetrics(
        &["--binary", binary.to_str().unwrap(), "--node", "pi-garage"],
        &image,
    );
    let passwd = String::from_utf8(cat(&image, "/etc/passwd", dir.path())).unwrap();
    assert_eq!(passwd.matches("pimetrics:").count(), 1, "{passwd}");
    let group = String::from_utf8(cat(&image, "/etc/group", dir.path())).unwrap();
    assert!(group.contains("video:x:44:pi,pimetrics\n"), "{group}");
    let config =
        String::from_utf8(cat(&image, "/etc/pimetrics/pimetrics.ron", dir.path())).unwrap();
    assert!(config.contains("    node: \"pi-garage\",\n"));
    fsck_clean(&image);
}

#[test]
fn a_bad_image_is_refused_with_a_reason() {
    if !have_all(TOOLS, "pi image (bad)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("empty.img");
    std::fs::write(&image, vec![0u8; 1024 * 1024]).unwrap();
    let out = run(
        "add-pimetrics",
        Command::new(repo().join("pi-image/add-pimetrics"))
            .args(["--binary", "/bin/true"])
            .arg(&image),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(!text(&out.stderr).trim().is_empty());
}
