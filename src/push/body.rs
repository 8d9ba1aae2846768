//! What goes to the gateway: the scrape's families minus those the gateway owns or rejects,
//! rendered straight from the scrape buffer (no timestamps: we never write any); gzip when
//! large.

use crate::exposition::Exposition;

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

/// Renders into `out` the families the gateway should get.
pub fn prepare(exposition: &Exposition, out: &mut String) {
    exposition.render_filtered(out, |name| !owned_by_gateway(name));
}

/// The body to send and whether it is gzip-compressed.
pub fn encode(text: String) -> std::io::Result<(Vec<u8>, bool)> {
    if text.len() < GZIP_THRESHOLD {
        return Ok((text.into_bytes(), false));
    }
    let mut body = Vec::new();
    crate::gzip::Gzip::new().gzip(text.as_bytes(), &mut body);
    Ok((body, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Kind;

    #[test]
    fn gateway_families_are_dropped() {
        let mut exp = Exposition::new("pi");
        for name in [
            "node_load1",
            "process_cpu_seconds_total",
            "go_goroutines",
            "push_time_seconds",
            "pushgateway_build_info",
            "push_time_seconds_other",
        ] {
            let id = exp.family(name, "H.", Kind::Gauge, &[]);
            exp.sample(id, &[], 0.5);
        }
        let mut out = String::new();
        prepare(&exp, &mut out);
        assert_eq!(
            out,
            "# HELP node_load1 H.\n# TYPE node_load1 gauge\nnode_load1{node=\"pi\"} 0.5\n\
             # HELP push_time_seconds_other H.\n# TYPE push_time_seconds_other gauge\n\
             push_time_seconds_other{node=\"pi\"} 0.5\n"
        );
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
