//! What goes to the gateway: the agent's exposition text minus what the gateway owns or
//! rejects, without timestamps; gzip when large.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Bodies at least this large go gzip-compressed (a Pi's scrape is ~20-60 KiB of text that
/// compresses ~10x; below this the header costs more than it saves).
pub const GZIP_THRESHOLD: usize = 8 * 1024;

/// Families the gateway makes itself (`push_time_seconds`, its process and Go runtime metrics):
/// ours would mix with or clash with them.
const GATEWAY_EXACT: &[&str] = &["push_time_seconds", "push_failure_time_seconds"];
const GATEWAY_PREFIXES: &[&str] = &["process_", "go_", "pushgateway_"];

pub fn owned_by_gateway(name: &str) -> bool {
    GATEWAY_EXACT.contains(&name) || GATEWAY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Appends to `out` the lines of `text` the gateway should get: HELP/TYPE and samples of
/// families it does not own, sample timestamps removed, other comments and blank lines
/// dropped. A malformed sample line is dropped rather than sent (the gateway would refuse the
/// whole push for it); returns how many were dropped.
pub fn prepare(text: &str, out: &mut String) -> usize {
    let mut malformed = 0;
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let name = rest.split(' ').next().unwrap_or("");
            if !name.is_empty() && !owned_by_gateway(name) {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        match split_sample(line) {
            Some((series, value)) => {
                let name_end = series.find('{').unwrap_or(series.len());
                if !owned_by_gateway(&series[..name_end]) {
                    out.push_str(series);
                    out.push(' ');
                    out.push_str(value);
                    out.push('\n');
                }
            }
            None => malformed += 1,
        }
    }
    malformed
}

/// Splits `name{labels} value [timestamp]` into the series (`name{labels}`) and the value,
/// reading label values with their escapes so a `}` or space inside one does not mislead.
fn split_sample(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    let bytes = line.as_bytes();
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    if name_end == 0 {
        return None;
    }
    let mut series_end = name_end;
    if bytes.get(name_end) == Some(&b'{') {
        let mut in_quotes = false;
        let mut escaped = false;
        let mut close = None;
        for (offset, &byte) in bytes[name_end + 1..].iter().enumerate() {
            match (in_quotes, escaped, byte) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (true, false, b'"') => in_quotes = false,
                (false, _, b'"') => in_quotes = true,
                (false, _, b'}') => {
                    close = Some(name_end + 1 + offset);
                    break;
                }
                _ => {}
            }
        }
        series_end = close? + 1;
    }
    let mut fields = line[series_end..].split_whitespace();
    let value = fields.next()?;
    // At most a timestamp may follow.
    if fields.nth(1).is_some() {
        return None;
    }
    Some((&line[..series_end], value))
}

/// The body to send and whether it is gzip-compressed.
pub fn encode(text: String) -> std::io::Result<(Vec<u8>, bool)> {
    if text.len() < GZIP_THRESHOLD {
        return Ok((text.into_bytes(), false));
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 4), Compression::fast());
    encoder.write_all(text.as_bytes())?;
    Ok((encoder.finish()?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(text: &str) -> (String, usize) {
        let mut out = String::new();
        let dropped = prepare(text, &mut out);
        (out, dropped)
    }

    #[test]
    fn gateway_families_and_comments_are_dropped() {
        let text = "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n\
                    node_load1{node=\"pi\"} 0.5\n\
                    # HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\n\
                    process_cpu_seconds_total{node=\"pi\"} 1.5\n\
                    go_goroutines 5\npush_time_seconds 1\npushgateway_build_info 1\n\
                    # a free comment\n\n\
                    push_time_seconds_other{node=\"pi\"} 2\n";
        let (out, dropped) = prepared(text);
        assert_eq!(
            out,
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n\
             node_load1{node=\"pi\"} 0.5\npush_time_seconds_other{node=\"pi\"} 2\n"
        );
        assert_eq!(dropped, 0);
    }

    #[test]
    fn timestamps_are_removed_and_escapes_survive() {
        let (out, _) =
            prepared("a{x=\"} 1 2\",y=\"q\\\"}\"} 3 1700000000000\nb 4   1700000000000\nc 5\n");
        assert_eq!(out, "a{x=\"} 1 2\",y=\"q\\\"}\"} 3\nb 4\nc 5\n");
    }

    #[test]
    fn malformed_lines_are_dropped_not_sent() {
        let (out, dropped) = prepared("a{x=\"1\" 3\nb\n{x=\"1\"} 2\nc 1 2 3\nd 1\n");
        assert_eq!(out, "d 1\n");
        assert_eq!(dropped, 4);
    }

    #[test]
    fn large_bodies_are_gzipped() {
        use std::io::Read;
        let (small, gzipped) = encode("a 1\n".to_string()).unwrap();
        assert!(!gzipped);
        assert_eq!(small, b"a 1\n");
        let big = "node_load1{node=\"pi\"} 0.5\n".repeat(1000);
        let (bytes, gzipped) = encode(big.clone()).unwrap();
        assert!(gzipped);
        assert!(bytes.len() < big.len() / 10);
        let mut back = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, big);
    }
}
