//! A steady-state scrape allocates nothing in the system collectors: after warm-up scrapes
//! have grown the buffers, each collector's `update` (and the encoding of its samples) is
//! counted by a global allocator that counts only on the thread under test.
//!
//! On this machine for the collectors that apply here, and on the Raspberry Pi 4 fixture tree
//! for those that need a Pi's sysfs (cpufreq, hwmon, thermal_zone).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pimetrics::collector::{Context, Scraper};
use pimetrics::config::Config;

struct CountingOnThisThread;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: the thread-locals may be gone while a thread exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|count| count.set(count.get() + 1));
        }
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingOnThisThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingOnThisThread = CountingOnThisThread;

fn allocations(run: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    run();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

/// Scrapes `name` alone a few times, then counts the allocations of 20 more scrapes (the
/// collector's reads and the text encoding of its samples). None when the collector does
/// not apply or fails here.
fn steady_state_allocations(config: &Config, name: &'static str) -> Option<u64> {
    let roots = config.roots();
    let ctx = Context {
        roots: &roots,
        settings: &config.collector_settings,
    };
    let mut scraper = Scraper::new(&ctx, "n", &[name]);
    scraper.active_names().next()?;
    let mut text = String::new();
    for _ in 0..3 {
        text.clear();
        scraper.collect(None).render(&mut text);
    }
    let ok = format!("node_scrape_collector_success{{node=\"n\",collector=\"{name}\"}} 1\n");
    if !text.contains(&ok) {
        return None;
    }
    Some(allocations(|| {
        for _ in 0..20 {
            text.clear();
            scraper.collect(None).render(&mut text);
        }
    }))
}

#[test]
fn system_collectors_do_not_allocate_per_scrape_on_this_machine() {
    // The counter sees an allocation on this thread.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))), 1);
    let config = Config::default();
    let mut checked = Vec::new();
    for name in [
        "cpu",
        "cpufreq",
        "diskstats",
        "filesystem",
        "hwmon",
        "loadavg",
        "meminfo",
        "netdev",
        "os",
        "pressure",
        "stat",
        "thermal_zone",
        "time",
        "uname",
    ] {
        if let Some(count) = steady_state_allocations(&config, name) {
            assert_eq!(count, 0, "{name}: {count} allocations in 20 scrapes");
            checked.push(name);
        }
    }
    // /proc alone gives these on any Linux machine.
    for name in [
        "cpu", "stat", "meminfo", "loadavg", "netdev", "uname", "time",
    ] {
        assert!(checked.contains(&name), "{name} not checked: {checked:?}");
    }
}

#[test]
fn pi_sysfs_collectors_do_not_allocate_per_scrape_on_the_pi4_fixture() {
    let tree = crate::harness::tree("pi4");
    let mut config = Config::default();
    config.paths.procfs = tree.proc();
    config.paths.sysfs = tree.sys();
    config.paths.rootfs = tree.root();
    for name in [
        "cpufreq",
        "hwmon",
        "thermal_zone",
        "stat",
        "cpu",
        "netdev",
        "pressure",
        "diskstats",
    ] {
        let count = steady_state_allocations(&config, name)
            .unwrap_or_else(|| panic!("{name} does not succeed on the Pi 4 fixture"));
        assert_eq!(count, 0, "{name}: {count} allocations in 20 scrapes");
    }
}
