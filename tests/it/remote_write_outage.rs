//! The receiver goes away for 60 s (longer than any timeout or backoff), and during the outage
//! the writer process is SIGKILLed and started again on the same disk buffer. Afterwards
//! Prometheus holds a sample for every interval step across the outage; the only hole is the
//! second or two the process was dead.
//!
//! The writer process is the agent binary as a Pi runs it (`--remote-write.url`, the loadavg
//! and meminfo collectors), every second, disk buffer, `--remote-write.flush-interval=0s`. Its
//! collection timestamps are the ones of `node_load1`.

use crate::harness;
use std::time::{Duration, Instant};

use crate::harness::remote_write::*;
use pimetrics::remote_write::now_ms;

const NODE: &str = "rw-outage";
const STEP_MS: i64 = 1000;

/// The writer process that the outage test starts, kills, restarts.
fn start_writer(url: &str, buffer_dir: &std::path::Path) -> harness::Proc {
    let mut command = writer_command(NODE, url, Some(buffer_dir));
    harness::Proc::spawn("writer process", &mut command)
}

/// Timestamps (ms) of the collections Prometheus holds (those of `node_load1`).
fn held_ticks(receiver: &Receiver) -> Vec<i64> {
    receiver
        .raw(&format!("node_load1{{node=\"{NODE}\"}}"), "15m")
        .first()
        .map(|(_, values)| values.iter().map(|(ts, _)| *ts).collect())
        .unwrap_or_default()
}

#[test]
fn remote_write_survives_an_outage_and_a_sigkill() {
    let _heavy = crate::harness::heavy();
    let dir = harness::tempdir();
    let Some(mut receiver) = Receiver::start(dir.path(), "remote write outage") else {
        return;
    };
    let buffer_dir = dir.path().join("buffer");
    let url = receiver.write_url();
    let first = start_writer(&url, &buffer_dir);
    let arrived = harness::eventually(Duration::from_secs(30), || {
        (held_ticks(&receiver).len() >= 3).then_some(())
    });
    if arrived.is_none() {
        let (status, stderr) = first.stop_with(libc::SIGTERM, Duration::from_secs(10));
        let names: Vec<String> = receiver
            .raw("{__name__=~\".+\"}", "15m")
            .into_iter()
            .map(|(labels, values)| format!("{labels:?} {}", values.len()))
            .collect();
        panic!("no samples arrive from the writer process ({status:?}): {stderr}; Prometheus holds {names:?}");
    }

    receiver.stop();
    let down_ms = now_ms();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    let (status, _) = first.stop_with(libc::SIGKILL, Duration::from_secs(10));
    assert!(status.is_some(), "the writer process did not die");
    let killed_ms = now_ms();
    let second = start_writer(&url, &buffer_dir);
    std::thread::sleep(Duration::from_secs(60).saturating_sub(down.elapsed()));
    receiver.restart();
    let up_ms = now_ms();

    // The backlog (60 records) goes out at 10 requests per second, behind the new ones.
    let drained = harness::eventually(Duration::from_secs(40), || {
        let held = held_ticks(&receiver);
        let covered = held
            .iter()
            .filter(|&&ts| ts > down_ms && ts < up_ms)
            .count();
        (covered as i64 >= (up_ms - down_ms) / STEP_MS - 3 && held.last() > Some(&(up_ms + 3000)))
            .then_some(held)
    });
    drop(second);
    let held = drained.unwrap_or_else(|| {
        panic!(
            "the backlog did not arrive; Prometheus holds {:?}",
            held_ticks(&receiver)
        )
    });
    assert!(
        held[0] < down_ms - 2 * STEP_MS,
        "samples from before the outage"
    );
    // A missing step is a gap of 2 s; a late tick (a loaded machine) is not.
    let holes = gaps(&held, STEP_MS, STEP_MS * 9 / 10);
    eprintln!(
        "{} samples from {} to {}; outage {down_ms}..{up_ms}, killed at {killed_ms}; holes {holes:?}",
        held.len(),
        held[0],
        held[held.len() - 1]
    );
    // One hole: the time the process was dead (killed, started again, first collection).
    assert!(holes.len() <= 1, "holes {holes:?} in {held:?}");
    for (at, length) in &holes {
        assert!(
            (*at - killed_ms).abs() < 3 * STEP_MS && *length < 5 * STEP_MS,
            "a hole of {length} ms at {at} (killed at {killed_ms})"
        );
    }
    // The agent's own metrics came along, with the same timestamps.
    let build = receiver.raw(&format!("pimetrics_build_info{{node=\"{NODE}\"}}"), "15m");
    assert_eq!(build.len(), 1, "{build:?}");
    let build_ts: Vec<i64> = build[0].1.iter().map(|(ts, _)| *ts).collect();
    assert_eq!(build_ts, held);
    // And the writer's own: during the outage the oldest buffered sample aged to about 60 s
    // (the restarted process read it back from disk), and nothing was dropped.
    let age = receiver.raw(
        &format!("pimetrics_remote_write_oldest_buffered_age_seconds{{node=\"{NODE}\"}}"),
        "15m",
    );
    let max_age = age[0].1.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    assert!(
        (50.0..75.0).contains(&max_age),
        "oldest buffered age at most {max_age}"
    );
    let dropped = receiver.raw(
        &format!("pimetrics_remote_write_samples_dropped_total{{node=\"{NODE}\"}}"),
        "15m",
    );
    assert!(dropped
        .iter()
        .all(|(_, values)| values.iter().all(|(_, v)| *v == 0.0)));
}
