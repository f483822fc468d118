//! A fast hash for the small integer ids the scheduler's owner assigns:
//! engine ids and tenant keys.
//!
//! The standard library's SipHash costs tens of nanoseconds per lookup and
//! the scheduler looks engines up several times per decision. These ids are
//! not chosen by a peer (engine ids count joins, tenant keys come from the
//! controller's own interner), so a hash-flooding defence buys nothing for
//! them; the multiply-rotate hash of rustc's `FxHasher` is enough. Task ids,
//! which clients choose, are kept in a B-tree instead (see `scheduler`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The `FxHasher` step: rotate, mix in, multiply by an odd constant.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.add(u64::from(byte));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by an owner-assigned id.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use wasp_proto::EngineId;

    #[test]
    fn sequential_ids_hash_apart() {
        let mut map: IdMap<EngineId, u32> = IdMap::default();
        for id in 0..10_000 {
            map.insert(EngineId(id), id);
        }
        assert!((0..10_000).all(|id| map.get(&EngineId(id)) == Some(&id)));
    }
}
