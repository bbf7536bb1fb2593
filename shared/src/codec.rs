//! Encodings shared by the stores and the job engines: canonical JSON (a stable byte form of a
//! value, for hashing), lowercase hex, key hashes and random ids.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// JSON text with object members sorted by key (recursively) and JavaScript number
/// formatting: the same value always gives the same bytes.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let mut members: Vec<_> = map.iter().collect();
                members.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, v)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).unwrap_or_default());
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            scalar => out.extend(crate::protocol::json::to_vec(scalar).unwrap_or_default()),
        }
    }
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The hash a caller's key is stored and compared as (never the key in clear): lowercase hex
/// SHA-256 of the key's canonical JSON (object members sorted) within `scope`.
pub fn key_hash(scope: &str, key: &Value) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0x1f]);
    h.update(canonical_json(key));
    hex(&h.finalize())
}

/// A fresh random id of 32 hex characters (128 bits from the OS-seeded hasher keys, the clock,
/// the process id and a counter, hashed): lock tokens, job ids.
pub fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    for _ in 0..2 {
        let mut s = std::collections::hash_map::RandomState::new().build_hasher();
        s.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.update(s.finish().to_le_bytes());
    }
    h.update(crate::time::since_epoch().as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    hex(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_hashes_ignore_member_order_and_depend_on_scope() {
        let a = key_hash("job", &json!({"email": "a@x", "campaign": 1}));
        let b = key_hash("job", &json!({"campaign": 1, "email": "a@x"}));
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, key_hash("rate", &json!({"email": "a@x", "campaign": 1})));
        assert!(!a.contains("a@x"));
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 32);
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
