//! Property/fuzz harness over every parser of outside input (text format, RON config, flags,
//! /proc and /sys files), on stable Rust. CI runs it with the rest of the suite (a fixed seed
//! and a fixed number of inputs per target: about half a minute in all); a longer run:
//!
//! ```sh
//! PIMETRICS_FUZZ_ITERATIONS=200000 PIMETRICS_FUZZ_SEED=$RANDOM cargo test --release --test fuzz
//! ```
//!
//! Each target is a function in `targets.rs`, from bytes to the size of what the parser
//! produced, and one `fuzz_target!` line here (its seeds are tests/fuzz_corpus/<name>/*). Every input must not
//! panic, must stay within the output and allocation bounds (linear in the input: `per_byte`,
//! `base`), and must finish. See tests/fuzz_corpus/README.md.

mod driver;

mod targets;

use driver::{Bound, Target};

#[global_allocator]
static ALLOCATOR: driver::CountingAllocator = driver::CountingAllocator;

/// Output: what a parser returns is at most a few items per input byte.
const OUTPUT: Bound = Bound {
    per_byte: 16,
    base: 4096,
};
/// Allocation: a parser may hold a few structures per input byte, plus a fixed start.
const ALLOC: Bound = Bound {
    per_byte: 128,
    base: 256 * 1024,
};

/// `fuzz_target!(name, function)` or `fuzz_target!(name, output_bound, alloc_bound, function)`:
/// one #[test] fuzzing `function` (in `targets.rs`) with the seeds of tests/fuzz_corpus/<name>/.
macro_rules! fuzz_target {
    ($name:ident, $run:expr) => {
        fuzz_target!($name, OUTPUT, ALLOC, $run);
    };
    ($name:ident, $output:expr, $alloc:expr, $run:expr) => {
        #[test]
        fn $name() {
            driver::fuzz(Target {
                name: stringify!($name),
                output: $output,
                alloc: $alloc,
                extra_seeds: Vec::new(),
                iterations: driver::iterations(),
                scale: true,
                run: $run,
            });
        }
    };
}

// ------------------------------------------------------------------ text format and config

fuzz_target!(exposition_parse, targets::exposition_parse);
fuzz_target!(textfile, targets::textfile);
// Validation compiles the exclude regexes (about a megabyte for the defaults).
fuzz_target!(
    config_ron,
    OUTPUT,
    Bound {
        per_byte: 512,
        base: 8 * 1024 * 1024
    },
    targets::config_ron
);
// Flags end in config validation, as the config does.
fuzz_target!(
    cli_args,
    OUTPUT,
    Bound {
        per_byte: 512,
        base: 8 * 1024 * 1024
    },
    targets::cli_args
);

// ------------------------------------------------------------------ /proc

fuzz_target!(proc_stat, targets::proc_stat);
fuzz_target!(meminfo, targets::meminfo);
fuzz_target!(loadavg, targets::loadavg);
fuzz_target!(diskstats, targets::diskstats);
fuzz_target!(netdev, targets::netdev);
fuzz_target!(pressure, targets::pressure);
fuzz_target!(os_release, targets::os_release);
fuzz_target!(mountinfo, targets::mountinfo);

// ------------------------------------------------------------------ /sys

// A range names many CPUs in few bytes: bounded by MAX_CPUS, not by the input.
fuzz_target!(
    cpu_list,
    Bound {
        per_byte: 16,
        base: pimetrics::collector::cpu::MAX_CPUS + 16
    },
    ALLOC,
    targets::cpu_list
);
fuzz_target!(cpufreq, targets::cpufreq);
fuzz_target!(hwmon, targets::hwmon);
fuzz_target!(thermal, targets::thermal);
fuzz_target!(clocksource, targets::clocksource);
fuzz_target!(uname, targets::uname);

// ------------------------------------------------------------------ Raspberry Pi firmware

fuzz_target!(pi_mailbox_response, targets::pi_mailbox_response);
fuzz_target!(pi_gencmd_text, targets::pi_gencmd_text);
// `0*N` expands to N words: bounded by the replay's caps, not by the input's length.
fuzz_target!(
    pi_replay,
    OUTPUT,
    Bound {
        per_byte: 128,
        base: pimetrics::pi::replay::MAX_TOTAL_WORDS * 4 * 3,
    },
    targets::pi_replay
);
fuzz_target!(pi_board, targets::pi_board);
fuzz_target!(pi_state, targets::pi_state);

// ------------------------------------------------------------------ whole collectors on a tree

mod tree;

#[test]
fn collectors_on_a_mutated_tree() {
    tree::fuzz();
}
