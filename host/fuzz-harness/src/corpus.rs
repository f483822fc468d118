//! Deterministic inputs for running the harnesses as ordinary tests: seeds
//! (real messages, real components) and pseudo-random mutations of them,
//! from a fixed seed so that a failure reproduces.
//!
//! The mutations are libFuzzer's commonest (bit flips, interesting bytes,
//! inserted, deleted, duplicated and spliced ranges, truncation), without
//! its coverage feedback: enough to walk every decoder's error paths, not a
//! replacement for the `scripts/fuzz` campaign.

/// A xorshift64* generator: tiny, seeded, and the same on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Bytes that sit on the edges of bincode's varints, bools, enum tags and
/// UTF-8: where decoders branch.
const INTERESTING: [u8; 12] = [
    0, 1, 2, 0x7f, 0x80, 0xc0, 0xf0, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];

/// A mutation of `seed`: one to four edits, some splicing in a range of
/// `other` (another seed).
pub fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                let bytes = rng.bytes(8);
                out.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at..end);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let copy = out[at..end].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, copy);
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            6 if !other.is_empty() => {
                let at = rng.below(other.len());
                let end = (at + 1 + rng.below(64)).min(other.len());
                let to = rng.below(len + 1);
                out.splice(to..to, other[at..end].iter().copied());
            }
            7 if len >= 4 => {
                // A little-endian u32 or a varint marker somewhere: lengths
                // and counts are where decoders trust their input.
                let at = rng.below(len - 3);
                let word = match rng.below(4) {
                    0 => u32::MAX,
                    1 => 0x8000_0000,
                    2 => rng.next_u64() as u32,
                    _ => len as u32 + 1,
                };
                out[at..at + 4].copy_from_slice(&word.to_le_bytes());
            }
            _ => {
                let at = rng.below(len + 1);
                out.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
        }
    }
    out
}

/// The inputs a CI run feeds a harness: every seed as it is, then `count`
/// mutations (and one in eight plain random inputs), from `seed`.
pub fn inputs(seeds: &[Vec<u8>], count: usize, seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rng = Rng::new(seed);
    let mutants = (0..count).map(move |_| {
        if seeds.is_empty() || rng.below(8) == 0 {
            return rng.bytes(64);
        }
        let base = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        mutate(&mut rng, base, other)
    });
    seeds.iter().cloned().chain(mutants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let seeds = vec![b"hello world".to_vec(), vec![0; 16]];
        let a: Vec<_> = inputs(&seeds, 200, 42).collect();
        let b: Vec<_> = inputs(&seeds, 200, 42).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 202);
        // And the mutations differ from the seeds.
        assert!(a[2..].iter().filter(|m| !seeds.contains(m)).count() > 150);
    }
}
