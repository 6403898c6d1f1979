//! A small deterministic mutator, so the corpus test explores beyond the seeds the same way on
//! every run (a failure names the seed, the round and the RNG seed that reproduce it).

/// xorshift64*: tiny, seeded, good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Bytes that matter to the decoders: JSON structure, escapes, percent signs, protobuf tags and
/// varint continuations, invalid UTF-8.
const INTERESTING: &[u8] = b"{}[]\",:\\%&=+ 0-9eE\x00\x08\x0a\x12\x1a\x22\x80\xff";

/// One to four random edits of `input`; `donor` (another seed) is spliced in now and then.
pub fn mutate(rng: &mut Rng, input: &[u8], donor: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < out.len() => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at..end);
            }
            3 if at < out.len() => {
                // Repeat a slice: deep nesting, long strings, repeated fields.
                let end = (at + 1 + rng.below(16)).min(out.len());
                let piece = out[at..end].to_vec();
                for _ in 0..1 + rng.below(64) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 if !donor.is_empty() => {
                let from = rng.below(donor.len());
                let end = (from + 1 + rng.below(32)).min(donor.len());
                out.splice(at..at, donor[from..end].iter().copied());
            }
            5 => out.truncate(at),
            _ => {
                let i = rng.below(out.len().max(1));
                if let Some(b) = out.get_mut(i) {
                    *b = rng.next_u64() as u8;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic() {
        let run = || {
            let mut rng = Rng::new(7);
            (0..50)
                .map(|_| mutate(&mut rng, b"{\"a\":[1,2]}", b"xyz"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert!(run().iter().any(|m| m != b"{\"a\":[1,2]}"));
    }
}
