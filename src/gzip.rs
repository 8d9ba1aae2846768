//! gzip (RFC 1952) of `/metrics` answers and Pushgateway bodies, with a small deflate
//! (RFC 1951) encoder of its own: greedy LZ77 with one hash probe, and one block with the fixed
//! Huffman codes.
//!
//! Why not miniz_oxide (flate2) at level 1, which this replaced: compressing was half of the
//! agent's own CPU time per scrape, and most of that was memory, not matching. miniz copies the
//! input into a 32 KiB window, zeroes and fills 128 KiB of hash chains and buffers 64 KiB of
//! codes before writing them, all of it cold again at the next scrape because collecting in
//! between touches other memory. Here the matcher reads the rendered text where it lies, keeps
//! one 32 KiB table of positions that is never zeroed (positions carry a generation offset), and
//! writes codes straight to the output. Measured on a 60 KB scrape (`cargo bench --bench scrape
//! -- gzip`, and per scrape in the running agent with scripts/compare): see the README's
//! performance section. The price is ~15 % more bytes than level 1 with dynamic codes (13 KB
//! instead of 11 KB per scrape), nothing against a 15 s scrape interval.
//!
//! The encoder never fails and never panics: any input, including empty, gives a valid stream.

/// Hash table size (entries); 2^13 u32 = 32 KiB, cache-sized.
const HASH_BITS: u32 = 13;
const WINDOW: usize = 32 * 1024;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;

/// A reusable compressor: keep one per thread and call `gzip` for each body.
pub struct Gzip {
    /// Last position (plus `base`) where each 4-byte hash was seen; entries at or below `base`
    /// belong to earlier inputs and count as empty.
    table: Box<[u32; 1 << HASH_BITS]>,
    base: u32,
}

impl Default for Gzip {
    fn default() -> Self {
        Self::new()
    }
}

impl Gzip {
    pub fn new() -> Gzip {
        Gzip {
            table: Box::new([0; 1 << HASH_BITS]),
            base: 0,
        }
    }

    /// `data` gzipped into `out` (cleared first, capacity reused).
    pub fn gzip(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(data.len() / 3 + 64);
        // Magic, deflate, no flags, no mtime, no extra flags, unknown OS (as flate2 writes it).
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        self.deflate(data, out);
        let mut crc = crc32fast::Hasher::new();
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32 (RFC 1952).
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    }

    /// One final deflate block with fixed codes.
    fn deflate(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let base = self.next_base(data.len());
        let table = &mut self.table;
        let mut bits = BitWriter::new(out);
        bits.put(1, 1); // BFINAL
        bits.put(1, 2); // BTYPE 01: fixed Huffman codes
                        // Positions are u32 (with the generation offset): inputs past 2 GiB, never a scrape, are
                        // written as literals only.
        let searched = if data.len() < 1 << 31 { data.len() } else { 0 };
        let mut i = 0;
        while i + MIN_MATCH <= searched {
            let current = read_u32(data, i);
            let slot = &mut table[hash(current)];
            let seen = *slot;
            // i < 2^32 - base: next_base keeps base + data.len() inside u32.
            *slot = base + i as u32 + 1;
            if seen > base {
                let candidate = (seen - base - 1) as usize;
                let distance = i - candidate;
                if distance <= WINDOW && read_u32(data, candidate) == current {
                    let length = match_length(data, candidate, i);
                    bits.put_match(length, distance);
                    i += length;
                    continue;
                }
            }
            bits.put_literal(data[i]);
            i += 1;
        }
        for &byte in &data[i..] {
            bits.put_literal(byte);
        }
        bits.put_literal_code(256); // end of block
        bits.finish();
    }

    /// The generation offset for an input of `len` bytes: above every position stored so far,
    /// with room for this input's positions; when u32 would overflow, the table is cleared
    /// (once in ~4 GB of input).
    fn next_base(&mut self, len: usize) -> u32 {
        let previous_end = self.base;
        let fits = u32::try_from(len)
            .ok()
            .and_then(|len| previous_end.checked_add(len))
            .and_then(|end| end.checked_add(1))
            .is_some();
        if !fits {
            self.table.fill(0);
            self.base = 0;
        }
        let base = self.base;
        // Positions of this input are stored as base + i + 1 <= base + len; the next input
        // starts above them. An input over 4 GiB (never a scrape) still encodes correctly:
        // positions then stop being found (saturating), which only costs compression.
        self.base = base.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        base
    }
}

#[inline(always)]
fn read_u32(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

#[inline(always)]
fn hash(four: u32) -> usize {
    (four.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Length of the common run at `earlier` and `at` (at least MIN_MATCH, known equal), capped at
/// MAX_MATCH and the end of the input.
fn match_length(data: &[u8], earlier: usize, at: usize) -> usize {
    let max = MAX_MATCH.min(data.len() - at);
    let mut length = MIN_MATCH;
    while length + 8 <= max {
        let a = u64::from_le_bytes(
            data[earlier + length..earlier + length + 8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let b = u64::from_le_bytes(
            data[at + length..at + length + 8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let differ = a ^ b;
        if differ != 0 {
            return length + (differ.trailing_zeros() / 8) as usize;
        }
        length += 8;
    }
    while length < max && data[earlier + length] == data[at + length] {
        length += 1;
    }
    length
}

/// Deflate's bit order: values LSB first, Huffman codes MSB first (so stored reversed).
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    pending: u64,
    count: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> BitWriter<'a> {
        BitWriter {
            out,
            pending: 0,
            count: 0,
        }
    }

    /// The low `count` (<= 32) bits of `value`.
    #[inline(always)]
    fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += count;
        if self.count >= 32 {
            self.out
                .extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.count -= 32;
        }
    }

    #[inline(always)]
    fn put_literal_code(&mut self, symbol: usize) {
        let (code, length) = LITERAL_CODES[symbol];
        self.put(u32::from(code), u32::from(length));
    }

    #[inline(always)]
    fn put_literal(&mut self, byte: u8) {
        self.put_literal_code(usize::from(byte));
    }

    /// A back-reference: `length` in 3..=258, `distance` in 1..=32768.
    fn put_match(&mut self, length: usize, distance: usize) {
        let (symbol, extra_bits, extra) = length_symbol(length);
        self.put_literal_code(symbol);
        self.put(extra, extra_bits);
        let (code, extra_bits, extra) = distance_code(distance);
        // Distance codes are 5 bits, fixed: stored reversed like every Huffman code.
        self.put(u32::from(DISTANCE_CODES[usize::from(code) & 31]), 5);
        self.put(extra, extra_bits);
    }

    /// Flushes the last partial byte (padded with zero bits).
    fn finish(mut self) {
        while self.count > 0 {
            self.out.push(self.pending as u8);
            self.pending >>= 8;
            self.count = self.count.saturating_sub(8);
        }
    }
}

/// Length 3..=258 as (symbol 257..=285, extra bit count, extra bits value).
fn length_symbol(length: usize) -> (usize, u32, u32) {
    if length >= 258 {
        return (285, 0, 0);
    }
    let x = (length - 3) as u32;
    if x < 8 {
        return (257 + x as usize, 0, 0);
    }
    let log = 31 - x.leading_zeros(); // 3..=7
    let symbol = 257 + 4 * (log - 1) + ((x >> (log - 2)) & 3);
    (symbol as usize, log - 2, x & ((1 << (log - 2)) - 1))
}

/// Distance 1..=32768 as (code 0..=29, extra bit count, extra bits value).
fn distance_code(distance: usize) -> (u16, u32, u32) {
    let x = (distance - 1) as u32;
    if x < 4 {
        return (x as u16, 0, 0);
    }
    let log = 31 - x.leading_zeros(); // 2..=14
    let code = 2 * log + ((x >> (log - 1)) & 1);
    (code as u16, log - 1, x & ((1 << (log - 1)) - 1))
}

const fn reverse(code: u16, length: u32) -> u16 {
    let mut reversed = 0;
    let mut i = 0;
    while i < length {
        reversed |= ((code >> i) & 1) << (length - 1 - i);
        i += 1;
    }
    reversed
}

/// The 5-bit distance codes, reversed.
const DISTANCE_CODES: [u16; 32] = {
    let mut codes = [0u16; 32];
    let mut code = 0;
    while code < 32 {
        codes[code] = reverse(code as u16, 5);
        code += 1;
    }
    codes
};

/// The fixed literal/length codes of RFC 1951 3.2.6, reversed for LSB-first output.
const LITERAL_CODES: [(u16, u8); 288] = {
    let mut codes = [(0u16, 0u8); 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (code, length) = match symbol {
            0..=143 => (0x30 + symbol as u16, 8),
            144..=255 => (0x190 + (symbol as u16 - 144), 9),
            256..=279 => (symbol as u16 - 256, 7),
            _ => (0xC0 + (symbol as u16 - 280), 8),
        };
        codes[symbol] = (reverse(code, length as u32), length);
        symbol += 1;
    }
    codes
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .expect("a valid gzip stream");
        plain
    }

    fn round_trip(gzip: &mut Gzip, data: &[u8]) -> usize {
        let mut out = Vec::new();
        gzip.gzip(data, &mut out);
        assert_eq!(gunzip(&out), data, "{} bytes", data.len());
        out.len()
    }

    /// A deterministic byte generator (xorshift), so a failure repeats.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn exposition(series: usize) -> String {
        let mut text = String::new();
        for i in 0..series {
            text.push_str(&format!(
                "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
                 # TYPE node_network_receive_bytes_total counter\n\
                 node_network_receive_bytes_total{{node=\"pi4\",device=\"eth{i}\"}} {}\n",
                i * 7919 + 12345
            ));
        }
        text
    }

    #[test]
    fn edge_inputs_round_trip() {
        let mut gzip = Gzip::new();
        for data in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            b"abcdabcd",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            round_trip(&mut gzip, data);
        }
        // Every byte value, and runs longer than the longest match (258).
        round_trip(&mut gzip, &(0..=255u8).collect::<Vec<_>>());
        round_trip(&mut gzip, &[7u8; 100_000]);
        round_trip(&mut gzip, &[0u8; 259]);
        round_trip(&mut gzip, &[0u8; 261]);
    }

    #[test]
    fn scrapes_compress_and_round_trip() {
        let mut gzip = Gzip::new();
        let text = exposition(500);
        let size = round_trip(&mut gzip, text.as_bytes());
        assert!(size * 6 < text.len(), "{size} of {}", text.len());
        // The state carries over between inputs: positions of the previous one are never
        // taken for this one's.
        let other = exposition(300).replace("eth", "wlan");
        round_trip(&mut gzip, other.as_bytes());
        round_trip(&mut gzip, text.as_bytes());
    }

    #[test]
    fn noise_and_far_repeats_round_trip() {
        let mut gzip = Gzip::new();
        for seed in 1..20 {
            round_trip(&mut gzip, &noise(1000 * seed as usize, seed));
        }
        // A block repeated beyond the 32 KiB window must not be referenced.
        let block = noise(40_000, 99);
        let mut data = block.clone();
        data.extend_from_slice(&block);
        round_trip(&mut gzip, &data);
        // Mixed: text with noise in between, matches at every distance.
        let mut data = Vec::new();
        for seed in 0..64 {
            data.extend_from_slice(exposition(3).as_bytes());
            data.extend_from_slice(&noise(seed * 97, seed as u64 + 1));
        }
        round_trip(&mut gzip, &data);
    }

    #[test]
    fn every_length_and_distance_code() {
        // Each length 3..=258 at distances spanning every distance code.
        for distance in [
            1, 2, 3, 4, 5, 7, 8, 9, 200, 256, 257, 1024, 4097, 24577, 32768,
        ] {
            let mut data = noise(distance, distance as u64);
            let mut gzip = Gzip::new();
            for length in [4, 5, 10, 11, 18, 19, 34, 35, 66, 67, 130, 131, 257, 258] {
                let start = data.len() - distance;
                for k in 0..length {
                    let byte = data[start + k % distance];
                    data.push(byte);
                }
                data.extend_from_slice(&noise(5, length as u64));
            }
            round_trip(&mut gzip, &data);
        }
        assert_eq!(length_symbol(3), (257, 0, 0));
        assert_eq!(length_symbol(11), (265, 1, 0));
        assert_eq!(length_symbol(257), (284, 5, 30));
        assert_eq!(length_symbol(258), (285, 0, 0));
        assert_eq!(distance_code(1), (0, 0, 0));
        assert_eq!(distance_code(5), (4, 1, 0));
        assert_eq!(distance_code(32768), (29, 13, 8191));
    }

    #[test]
    fn generation_offset_wraps_by_clearing() {
        let mut gzip = Gzip::new();
        gzip.base = u32::MAX - 10;
        round_trip(&mut gzip, exposition(5).as_bytes());
        assert!(gzip.base < 10_000);
        round_trip(&mut gzip, exposition(5).as_bytes());
    }
}
