//! Deterministic, random-access pseudo-randomness.
//!
//! Every generated value is a pure function of the world seed and a *path* (a domain label plus
//! indices), never of the order in which things were generated. That is what lets the world be
//! generated lazily, one county at a time, and still be byte-identical across runs: why we use a
//! keyed SplitMix64 instead of a sequential generator such as ChaCha.

/// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a label (FNV-1a) so paths can name what they derive.
pub(crate) fn label(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A small generator seeded from a path; cheap to create per entity.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` and the path `(what, a, b)`.
    pub(crate) fn at(seed: u64, what: &str, a: u64, b: u64) -> Self {
        Rng(mix(mix(mix(seed ^ label(what)) ^ a) ^ b.rotate_left(17)))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: bias is < n / 2^64, irrelevant here.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_path_same_values_different_path_different_values() {
        let a: Vec<u64> = (0..4).map(|_| Rng::at(7, "x", 1, 2).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::at(7, "x", 1, 2).next_u64(),
            Rng::at(7, "x", 2, 1).next_u64()
        );
        assert_ne!(
            Rng::at(7, "x", 1, 2).next_u64(),
            Rng::at(8, "x", 1, 2).next_u64()
        );
        let mut r = Rng::at(1, "r", 0, 0);
        assert!((0..1000).all(|_| r.range(3, 5) >= 3 && r.range(3, 5) <= 5));
    }
}
