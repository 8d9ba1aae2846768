//! The Pushgateway's URL path for a group: `/metrics/job/<job>{/<label>/<value>}`.
//!
//! A value the gateway cannot carry in a path segment (one containing `/`, or an empty one)
//! goes as `<label>@base64/<URL-safe base64>`, an empty value as `=`, as the Go client does;
//! other values are percent-encoded.

use std::collections::BTreeMap;

/// The path of the group (labels in name order, so the same group always gets the same path).
pub fn grouping_path(job: &str, labels: &BTreeMap<String, String>) -> String {
    let mut path = String::from("/metrics");
    push_pair(&mut path, "job", job);
    for (name, value) in labels {
        push_pair(&mut path, name, value);
    }
    path
}

fn push_pair(path: &mut String, name: &str, value: &str) {
    path.push('/');
    path.push_str(name);
    if value.is_empty() {
        path.push_str("@base64/=");
    } else if value.contains('/') {
        path.push_str("@base64/");
        base64_url(value.as_bytes(), path);
    } else {
        path.push('/');
        percent_encode(value, path);
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        }
    }
}

/// URL-safe base64 without padding (the gateway accepts it with or without).
pub fn base64_url(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(ALPHABET[index as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn b64(text: &str) -> String {
        let mut out = String::new();
        base64_url(text.as_bytes(), &mut out);
        out
    }

    #[test]
    fn plain_values_sorted_by_label() {
        assert_eq!(
            grouping_path(
                "pimetrics",
                &labels(&[("site", "home"), ("instance", "pi-1")])
            ),
            "/metrics/job/pimetrics/instance/pi-1/site/home"
        );
    }

    #[test]
    fn slash_and_empty_values_go_as_base64() {
        assert_eq!(
            grouping_path("a/b", &labels(&[("instance", ""), ("path", "/var/tmp")])),
            "/metrics/job@base64/YS9i/instance@base64/=/path@base64/L3Zhci90bXA"
        );
    }

    #[test]
    fn other_characters_are_percent_encoded() {
        assert_eq!(
            grouping_path("j", &labels(&[("instance", "a b?c#d%é@")])),
            "/metrics/job/j/instance/a%20b%3Fc%23d%25%C3%A9%40"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 section 10, URL-safe alphabet, padding left off.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64(input), expected, "{input}");
        }
        // The URL-safe characters: 0xfb 0xff -> "-_8".
        let mut out = String::new();
        base64_url(&[0xfb, 0xff], &mut out);
        assert_eq!(out, "-_8");
    }
}
