//! Every collector, built and scraped on one fixture tree where one file at a time holds a
//! mutated copy of its contents: the parsers plus the code around them (directory walks,
//! optional files, previous values).
//!
//! An input is a file number (two bytes, little endian, modulo the number of files) and the
//! file's new contents; the seeds are every file of the tree as it is.

use std::path::{Path, PathBuf};

use pimetrics::collector::{Context, Setup, COLLECTORS};
use pimetrics::config::Config;
use pimetrics::exposition::Exposition;
use pimetrics::roots::Roots;

use crate::driver::{self, Bound, Target};

/// The fixture trees merged into one machine (later ones win: the Pi 5's thermal, hwmon and
/// pressure files over the Pi 4's), and single files from the fuzz corpus for what the trees
/// lack.
const TREES: &[&str] = &["pi4", "pi5"];
const EXTRA_FILES: &[(&str, &str)] = &[("mountinfo/pi-mountinfo", "proc/1/mountinfo")];

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        // A later tree's entry replaces an earlier one of another kind (the Pi 5's
        // thermal_zone0 is a link where the Pi 4's is a directory).
        if let Ok(existing) = std::fs::symlink_metadata(&target) {
            if existing.is_dir() && !kind.is_dir() {
                std::fs::remove_dir_all(&target).unwrap();
            } else if existing.file_type().is_symlink() && !kind.is_symlink() {
                std::fs::remove_file(&target).unwrap();
            }
        }
        if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).unwrap();
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(link, &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Regular files below `dir` (not through symlinks), sorted.
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_below(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

pub fn fuzz() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = manifest.join("tests/fixtures");
    let temp = tempfile::tempdir().unwrap();
    let machine = temp.path().to_path_buf();
    for tree in TREES {
        copy_tree(&fixtures.join(tree), &machine);
    }
    for (corpus_file, target) in EXTRA_FILES {
        let target = machine.join(target);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(manifest.join("tests/fuzz_corpus").join(corpus_file), target).unwrap();
    }
    copy_tree(&fixtures.join("textfile/good"), &machine.join("textfile"));
    let mut files = Vec::new();
    files_below(&machine, &mut files);
    files.retain(|f| !f.ends_with("SOURCE"));
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let seeds = originals
        .iter()
        .enumerate()
        .map(|(index, content)| {
            let mut seed = (index as u16).to_le_bytes().to_vec();
            seed.extend_from_slice(content);
            seed
        })
        .collect();

    let roots = Roots {
        procfs: machine.join("proc"),
        sysfs: machine.join("sys"),
        rootfs: machine.join("root"),
        devfs: machine.join("dev"),
    };
    let mut config = Config::default();
    config.collector_settings.textfile.directory = Some(machine.join("textfile"));
    // Mutated file, to restore before the next input (also after a panic).
    let mut dirty: Option<usize> = None;
    let run = move |data: &[u8]| -> usize {
        if let Some(index) = dirty.take() {
            std::fs::write(&files[index], &originals[index]).unwrap();
        }
        let (number, content) = match data {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (0, data),
        };
        let index = number % files.len();
        std::fs::write(&files[index], content).unwrap();
        dirty = Some(index);
        let ctx = Context {
            roots: &roots,
            settings: &config.collector_settings,
        };
        let mut exposition = Exposition::new("fuzz");
        let mut collectors = Vec::new();
        for spec in COLLECTORS.iter().filter(|spec| spec.enabled_by_default) {
            if let Setup::Ready(collector) = (spec.build)(&ctx, &mut exposition) {
                collectors.push(collector);
            }
        }
        let mut text = String::new();
        for _ in 0..2 {
            exposition.clear();
            for collector in &mut collectors {
                let _ = collector.update(&mut exposition);
            }
            text.clear();
            exposition.render(&mut text);
        }
        text.len()
    };
    driver::fuzz(Target {
        name: "collectors_on_a_mutated_tree",
        // The whole exposition of the machine, whatever the input.
        output: Bound {
            per_byte: 64,
            base: 4 * 1024 * 1024,
        },
        alloc: Bound {
            per_byte: 256,
            base: 64 * 1024 * 1024,
        },
        extra_seeds: seeds,
        iterations: (driver::iterations() / 10).max(1),
        scale: false,
        run,
    });
    drop(temp);
}
