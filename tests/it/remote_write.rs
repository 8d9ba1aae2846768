//! Remote write against a real receiver: Debian's Prometheus with
//! `--web.enable-remote-write-receiver` and `out_of_order_time_window`, on a free loopback port.
//! The writer runs in the test on its own current-thread runtime, with a deterministic source
//! (series whose values say which collection they come from), so what Prometheus holds can be
//! compared sample by sample with what was collected.

use crate::harness;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::harness::remote_write::*;
use pimetrics::exposition::Exposition;
use pimetrics::remote_write::buffer::{Buffer, Record};
use pimetrics::remote_write::{
    now_ms, Batcher, RemoteWriteFamilies, RemoteWriter, SampleSink, SampleSource,
};

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One series `rw_test_conflict{node}` with a fixed value.
struct Conflict(f64);

impl SampleSource for Conflict {
    fn collect(&mut self, _: i64, out: &mut SampleSink<'_>) {
        out("rw_test_conflict", &[("node", "rw-a")], self.0);
    }
}

fn conflict_record(value: f64, timestamp_ms: i64) -> Record {
    Batcher::new()
        .collect(&mut Conflict(value), timestamp_ms)
        .expect("a record")
}

fn metrics_text(writer_stats: &pimetrics::remote_write::RemoteWriteStats, node: &str) -> String {
    let mut out = Exposition::new(node);
    let families = RemoteWriteFamilies::register(&mut out);
    families.write(writer_stats, now_ms(), &mut out);
    let mut text = String::new();
    out.render(&mut text);
    text
}

#[test]
fn samples_arrive_with_their_labels_and_timestamps_then_go_stale() {
    let dir = harness::tempdir();
    let Some(receiver) = Receiver::start(dir.path(), "remote write to Prometheus") else {
        return;
    };
    let node = "rw-a";
    let mut config = config(&receiver.write_url(), "500ms");
    // Records left in a disk buffer "from before". The same series and timestamp with two
    // values: Prometheus takes the first and refuses the second with a 400, which must be
    // dropped and counted, never retried, and must not hold up the rest.
    let buffer_dir = dir.path().join("buffer");
    let conflict_ts = now_ms() - 60_000;
    let (mut buffer, _) = Buffer::on_disk(&buffer_dir, 1 << 20, i64::MAX).unwrap();
    buffer.push(conflict_record(1.0, conflict_ts));
    buffer.push(conflict_record(2.0, conflict_ts));
    // Older than the receiver's 1 h out-of-order window: Prometheus 2.42 answers 500 "too old
    // sample", which never gets better; dropped and counted, not retried.
    buffer.push(conflict_record(3.0, now_ms() - 2 * 3600 * 1000));
    buffer.flush().unwrap();
    drop(buffer);
    config.buffer_dir = Some(buffer_dir.clone());
    config.flush_interval = pimetrics::config::Seconds::parse("0s").unwrap();

    let mut source = Ticks::new(node);
    source.gone_after = Some(3);
    let produced = source.produced.clone();
    let writer = RemoteWriter::new(&config, source).unwrap();
    let stats = writer.stats();
    run_for(writer, Duration::from_millis(4200));

    let produced = produced.lock().unwrap().clone();
    assert!(produced.len() >= 7, "only {} collections", produced.len());
    // Every collection is there, with its timestamp, and nothing else.
    let ticks = receiver.raw("rw_test_tick{kind=\"tick\"}", "10m");
    assert_eq!(ticks.len(), 1, "{ticks:?}");
    assert_eq!(
        ticks[0].0,
        labels(&[
            ("__name__", "rw_test_tick"),
            ("kind", "tick"),
            ("node", node)
        ]),
        "exactly the labels collected: no job or instance added"
    );
    assert_eq!(ticks[0].1, produced);
    let stamps = receiver.raw("rw_test_tick{kind=\"ts\"}", "10m");
    for (ts, value) in &stamps[0].1 {
        assert_eq!((value * 1000.0).round() as i64, *ts);
    }
    assert_eq!(stamps[0].1.len(), produced.len());

    // rw_test_gone was collected 3 times, then got a staleness marker: Prometheus no longer
    // returns it (without the marker it would for 5 minutes).
    let gone = receiver.raw("rw_test_gone", "10m");
    assert_eq!(gone[0].1.len(), 3, "{gone:?}");
    assert_eq!(receiver.instant_count("rw_test_gone"), 0);
    // The clean shutdown marked every series stale.
    assert_eq!(receiver.raw("rw_test_tick", "10m").len(), 2);
    assert_eq!(receiver.instant_count("rw_test_tick"), 0);

    // The conflicting record: first value kept, second refused once and dropped.
    let conflict = receiver.raw("rw_test_conflict", "10m");
    assert_eq!(conflict[0].1, vec![(conflict_ts, 1.0)]);
    assert_eq!(stats.samples_failed.load(Relaxed), 2);
    assert_eq!(stats.requests[1].load(Relaxed), 1, "one 4xx, not retried");
    assert_eq!(
        stats.requests[3].load(Relaxed),
        1,
        "one 5xx (too old), not retried"
    );
    let text = metrics_text(&stats, node);
    assert!(
        text.contains("pimetrics_remote_write_samples_total{node=\"rw-a\",result=\"failed\"} 2\n"),
        "{text}"
    );
    // Two ticks per collection, rw_test_gone 3 times and its marker, the markers at shutdown,
    // the first conflict sample.
    let expected = produced.len() as u64 * 2 + 3 + 1 + 2 + 1;
    assert_eq!(stats.samples_sent.load(Relaxed), expected);
    assert_eq!(stats.buffered_samples.load(Relaxed), 0);
    assert_eq!(
        std::fs::read_dir(&buffer_dir).unwrap().count(),
        0,
        "sent segments are deleted"
    );
}

#[test]
fn a_full_buffer_drops_the_oldest_first_and_says_so() {
    let dir = harness::tempdir();
    let Some(mut receiver) = Receiver::prepare(dir.path(), "remote write, full buffer") else {
        return;
    };
    let node = "rw-full";
    let mut config = config(&receiver.write_url(), "200ms");
    config.buffer_max_bytes = 64 << 10;
    config.backlog_requests_per_second = 50;
    let mut source = Ticks::new(node);
    source.extra = 400; // about 10 KB per compressed record
    let produced = source.produced.clone();
    let writer = RemoteWriter::new(&config, source).unwrap();
    let stats = writer.stats();
    let running = std::thread::spawn(move || run_for(writer, Duration::from_secs(8)));

    // The receiver is down for 4 s: more than the buffer holds.
    std::thread::sleep(Duration::from_secs(4));
    let dropped_while_down = stats.dropped_full.load(Relaxed);
    assert!(dropped_while_down > 0, "nothing dropped");
    assert!(stats.buffered_bytes.load(Relaxed) <= 64 << 10);
    let text = metrics_text(&stats, node);
    assert!(
        text.contains(
            "pimetrics_remote_write_samples_dropped_total{node=\"rw-full\",reason=\"full\"}"
        ),
        "{text}"
    );
    let age = harness::parse_exposition(&text)
        .value("pimetrics_remote_write_oldest_buffered_age_seconds", &[])
        .unwrap();
    assert!(age > 0.0 && age < 4.0, "oldest buffered age {age}");
    receiver.restart();
    running.join().unwrap();

    let produced = produced.lock().unwrap().clone();
    let ticks = receiver.raw("rw_test_tick{kind=\"tick\"}", "10m");
    let held: Vec<u64> = ticks[0].1.iter().map(|(_, v)| *v as u64).collect();
    // What is missing is exactly the first collections: no hole anywhere else.
    let first = held[0];
    assert!(first > 0, "the oldest were dropped");
    assert_eq!(held, (first..produced.len() as u64).collect::<Vec<_>>());
    let samples_per_record = 2 + 1 + 400;
    assert_eq!(stats.dropped_full.load(Relaxed), first * samples_per_record);
    let text = metrics_text(&stats, node);
    assert!(
        text.contains(&format!(
            "pimetrics_remote_write_samples_dropped_total{{node=\"rw-full\",reason=\"full\"}} {}\n",
            first * samples_per_record
        )),
        "{text}"
    );
}

/// Frame boundaries of a segment file: (offset, length) of each record.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize + 8;
        out.push((at, len));
        at += len;
    }
    out
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
}

#[test]
fn a_torn_segment_after_a_power_cut_costs_only_itself() {
    let dir = harness::tempdir();
    let Some(mut receiver) = Receiver::prepare(dir.path(), "remote write, torn segment") else {
        return;
    };
    let node = "rw-torn";
    let buffer_dir = dir.path().join("buffer");
    let mut config = config(&receiver.write_url(), "200ms");
    config.buffer_dir = Some(buffer_dir.clone());
    config.flush_interval = pimetrics::config::Seconds::parse("0s").unwrap();

    // Two runs while the receiver is down: two segments.
    let mut collected = Vec::new();
    for first in [0, 100] {
        let mut source = Ticks::new(node);
        source.next = first;
        let produced = source.produced.clone();
        run_for(
            RemoteWriter::new(&config, source).unwrap(),
            Duration::from_millis(1500),
        );
        collected.push(produced.lock().unwrap().clone());
    }
    let files = segments(&buffer_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    // Power cut while the second segment's last collection was written: its record ends
    // half-way (the shutdown's staleness markers after it are lost with it).
    let bytes = std::fs::read(&files[1]).unwrap();
    let records = frames(&bytes);
    let (offset, len) = records[records.len() - 2];
    std::fs::write(&files[1], &bytes[..offset + len / 2]).unwrap();

    receiver.restart();
    let mut source = Ticks::new(node);
    source.next = 200;
    let produced = source.produced.clone();
    let writer = RemoteWriter::new(&config, source).unwrap();
    let stats = writer.stats();
    run_for(writer, Duration::from_secs(2));
    collected.push(produced.lock().unwrap().clone());

    let held: BTreeSet<u64> = receiver.raw("rw_test_tick{kind=\"tick\"}", "10m")[0]
        .1
        .iter()
        .map(|(_, v)| *v as u64)
        .collect();
    let mut expected = BTreeSet::new();
    for (run, ticks) in collected.iter().enumerate() {
        let keep = if run == 1 {
            ticks.len() - 1
        } else {
            ticks.len()
        };
        expected.extend(ticks[..keep].iter().map(|(_, v)| *v as u64));
    }
    assert_eq!(held, expected, "only the torn record is missing");
    assert_eq!(stats.torn_records.load(Relaxed), 1);
    assert!(metrics_text(&stats, node)
        .contains("pimetrics_remote_write_buffer_torn_records_total{node=\"rw-torn\"} 1\n"));
}

#[test]
fn the_agent_writes_through_its_collect_thread_and_a_stop_marks_everything_stale() {
    let dir = harness::tempdir();
    let Some(receiver) = Receiver::start(dir.path(), "remote write from the agent") else {
        return;
    };
    let node = "rw-agent";
    let mut agent_config = pimetrics::config::Config {
        node: Some(node.to_string()),
        ..pimetrics::config::Config::default()
    };
    for spec in pimetrics::collector::COLLECTORS {
        agent_config
            .collectors
            .insert(spec.name.to_string(), spec.name == "loadavg");
    }
    let config = config(&receiver.write_url(), "500ms");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent = std::sync::Arc::new({
        let (scraper, node) = agent_config.build_scraper();
        pimetrics::agent::Agent::start(scraper, node).unwrap()
    });
    let scrape = |agent: &std::sync::Arc<pimetrics::agent::Agent>| {
        runtime
            .block_on(agent.collect(None, Duration::from_secs(5), |exposition| {
                let mut text = String::new();
                exposition.render(&mut text);
                text
            }))
            .unwrap()
    };
    let writer = runtime.block_on(async {
        let writer = pimetrics::remote_write::RemoteWrite::start(agent.clone(), &config).unwrap();
        tokio::time::sleep(Duration::from_millis(2200)).await;
        writer
    });
    // Its metrics are among the agent's own while it runs.
    let text = scrape(&agent);
    let sent = harness::parse_exposition(&text)
        .value(
            "pimetrics_remote_write_samples_total",
            &[("result", "sent")],
        )
        .expect("the writer's metrics in the scrape");
    assert!(sent > 0.0, "{text}");
    runtime.block_on(writer.stop());
    assert!(!scrape(&agent).contains("pimetrics_remote_write_"));

    let load = receiver.raw(&format!("node_load1{{node=\"{node}\"}}"), "10m");
    assert_eq!(load.len(), 1);
    assert!(load[0].1.len() >= 4, "{load:?}");
    let build = receiver.raw(&format!("pimetrics_build_info{{node=\"{node}\"}}"), "10m");
    assert_eq!(
        build[0].1.len(),
        load[0].1.len(),
        "the agent's own metrics come along"
    );
    // The stop marked every series stale: none is returned any more.
    assert!(receiver.instant_count(&format!("{{node=\"{node}\"}}")) == 0);
}
