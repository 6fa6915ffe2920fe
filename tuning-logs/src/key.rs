//! The key layout of the database trees. Every key starts with the 32-byte **group**
//! prefix `structure(8) pattern(8) target(8) device(8)`, so every query for one
//! (workload, target, device) is a prefix scan that cannot see another target or
//! device, and every query for a workload is a scan of the 16-byte workload prefix.
//!
//! | tree       | key                                        | value                    |
//! |------------|--------------------------------------------|--------------------------|
//! | `records`  | group(32) · seq(8, big endian)             | the record as JSON       |
//! | `best`     | group(32) · median_s bits(8, BE) · seq(8)  | empty (measured only)    |
//! | `measured` | group(32) · trace hash(8) · seq(8)         | empty                    |
//! | `meta`     | `format`                                   | format version, decimal  |
//!
//! `seq` comes from sled's monotonic id generator, so `records` iterates in insertion
//! order within a group. Medians are non-negative finite doubles, whose IEEE bits
//! sort like the numbers when read big endian, so the first `k` entries of a `best`
//! prefix scan are the best `k` records (ties: the earlier record first).

use sha2::{Digest, Sha256};

/// Length of the group prefix.
pub const GROUP_LEN: usize = 32;
/// Length of the workload prefix.
pub const WORKLOAD_LEN: usize = 16;

/// The first 8 bytes of SHA-256 over the parts, each prefixed with its length (so
/// moving bytes between parts changes the hash).
pub fn hash8(parts: &[&[u8]]) -> [u8; 8] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes 16 hex digits into 8 bytes.
pub fn unhex8(s: &str) -> Option<[u8; 8]> {
    if s.len() != 16 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The 16-byte workload prefix of a key (structure and pattern hashes decoded from
/// hex). `None` if either is not 16 hex digits.
pub fn workload_prefix(key: &tir::WorkloadKey) -> Option<[u8; WORKLOAD_LEN]> {
    let mut out = [0u8; WORKLOAD_LEN];
    out[..8].copy_from_slice(&unhex8(&key.structure)?);
    out[8..].copy_from_slice(&unhex8(&key.pattern)?);
    Some(out)
}

/// The 32-byte group prefix.
pub fn group_prefix(
    workload: &[u8; WORKLOAD_LEN],
    target: [u8; 8],
    device: [u8; 8],
) -> [u8; GROUP_LEN] {
    let mut out = [0u8; GROUP_LEN];
    out[..16].copy_from_slice(workload);
    out[16..24].copy_from_slice(&target);
    out[24..].copy_from_slice(&device);
    out
}

/// A `records` key.
pub fn record_key(group: &[u8; GROUP_LEN], seq: u64) -> [u8; GROUP_LEN + 8] {
    let mut out = [0u8; GROUP_LEN + 8];
    out[..GROUP_LEN].copy_from_slice(group);
    out[GROUP_LEN..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// A `best` key. `median_s` must be finite and non-negative (validated records are).
pub fn best_key(group: &[u8; GROUP_LEN], median_s: f64, seq: u64) -> [u8; GROUP_LEN + 16] {
    // +0.0 and -0.0 compare equal; store both as +0.0 so the bits sort.
    let bits = if median_s == 0.0 {
        0
    } else {
        median_s.to_bits()
    };
    let mut out = [0u8; GROUP_LEN + 16];
    out[..GROUP_LEN].copy_from_slice(group);
    out[GROUP_LEN..GROUP_LEN + 8].copy_from_slice(&bits.to_be_bytes());
    out[GROUP_LEN + 8..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// The `measured` prefix of one trace in a group.
pub fn measured_prefix(group: &[u8; GROUP_LEN], trace_json: &str) -> [u8; GROUP_LEN + 8] {
    let mut out = [0u8; GROUP_LEN + 8];
    out[..GROUP_LEN].copy_from_slice(group);
    out[GROUP_LEN..].copy_from_slice(&hash8(&[b"grim-trace-v1", trace_json.as_bytes()]));
    out
}

/// A `measured` key.
pub fn measured_key(group: &[u8; GROUP_LEN], trace_json: &str, seq: u64) -> [u8; GROUP_LEN + 16] {
    let mut out = [0u8; GROUP_LEN + 16];
    out[..GROUP_LEN + 8].copy_from_slice(&measured_prefix(group, trace_json));
    out[GROUP_LEN + 8..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// The trailing big-endian `seq` of a `records`, `best` or `measured` key.
pub fn seq_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_sort_like_numbers() {
        let g = [7u8; GROUP_LEN];
        let xs = [0.0, 1e-9, 2.5e-6, 1e-3, 0.5, 1.0, 3.0, 1e6];
        for w in xs.windows(2) {
            assert!(best_key(&g, w[0], 9) < best_key(&g, w[1], 0));
        }
        assert!(best_key(&g, 1.0, 1) < best_key(&g, 1.0, 2));
        assert_eq!(best_key(&g, -0.0, 1), best_key(&g, 0.0, 1));
    }

    #[test]
    fn hex_round_trip() {
        let k = tir::WorkloadKey {
            structure: "0123456789abcdef".into(),
            pattern: "fedcba9876543210".into(),
        };
        let p = workload_prefix(&k).unwrap();
        assert_eq!(hex(&p), "0123456789abcdeffedcba9876543210");
        assert!(unhex8("0123").is_none());
        assert!(unhex8("0123456789abcdeg").is_none());
        assert!(unhex8("é123456789abcde").is_none());
        assert_eq!(seq_of(&record_key(&[0; GROUP_LEN], 77)), Some(77));
        assert_eq!(seq_of(&[1, 2]), None);
    }
}
