//! Byte-level mutation of corpus entries: bit flips, interesting bytes, dictionary
//! tokens, insertion, deletion, duplication and splicing, one at a time or stacked.

use tir::rng::SplitMix64;

/// Bytes that often sit on a parser's edges.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'-', b'+', b'.', b'e', b'\n', b'\r', b' ', b'"', b'\\',
    b'{', b'}', b'[', b']', b'(', b')', b',', b':', b';', b'=', b'#', b'x',
];

/// Mutates `input` in place; `others` is the corpus for splicing and `dict` the
/// target's tokens. The result never exceeds `max_len` bytes.
pub fn mutate(
    rng: &mut SplitMix64,
    input: &mut Vec<u8>,
    others: &[Vec<u8>],
    dict: &[&str],
    max_len: usize,
) {
    // Half the inputs get a single mutation (so that many stay valid and reach the
    // code behind the parser), the rest a stack of 2 to 8.
    let steps = if rng.next_u64().is_multiple_of(2) {
        1
    } else {
        2 + (rng.next_u64() % 7) as usize
    };
    for _ in 0..steps {
        let len = input.len();
        let pick = |rng: &mut SplitMix64, n: usize| (rng.next_u64() % (n as u64).max(1)) as usize;
        match rng.next_u64() % 10 {
            0 if len > 0 => {
                let i = pick(rng, len);
                input[i] ^= 1 << (rng.next_u64() % 8);
            }
            1 if len > 0 => {
                let i = pick(rng, len);
                input[i] = INTERESTING[pick(rng, INTERESTING.len())];
            }
            2 if len > 0 => {
                let i = pick(rng, len);
                input[i] = rng.next_u64() as u8;
            }
            3 | 4 if !dict.is_empty() => {
                let tok = dict[pick(rng, dict.len())].as_bytes();
                let at = pick(rng, len + 1);
                if rng.next_u64().is_multiple_of(2) || len == 0 {
                    input.splice(at..at, tok.iter().copied());
                } else {
                    // Overwrite a token-sized range.
                    let end = (at + tok.len()).min(len);
                    input.splice(at..end, tok.iter().copied());
                }
            }
            5 if len > 0 => {
                let a = pick(rng, len);
                let n = 1 + pick(rng, (len - a).min(64));
                input.drain(a..a + n);
            }
            6 if len > 0 => {
                let a = pick(rng, len);
                let n = 1 + pick(rng, (len - a).min(256));
                let chunk: Vec<u8> = input[a..a + n].to_vec();
                let at = pick(rng, len + 1);
                input.splice(at..at, chunk);
            }
            7 if !others.is_empty() => {
                // Splice: a prefix of this input and a suffix of another.
                let o = &others[pick(rng, others.len())];
                let cut = pick(rng, len + 1);
                let from = pick(rng, o.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&o[from..]);
            }
            8 => {
                let at = pick(rng, len + 1);
                let n = 1 + pick(rng, 8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                input.splice(at..at, bytes);
            }
            _ if len > 1 => {
                // Swap two bytes (reorders digits, brackets, quotes).
                let (a, b) = (pick(rng, len), pick(rng, len));
                input.swap(a, b);
            }
            _ => input.push(INTERESTING[pick(rng, INTERESTING.len())]),
        }
        if input.len() > max_len {
            input.truncate(max_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_under_the_cap_and_change_the_input() {
        let mut rng = SplitMix64::new(7);
        let corpus = vec![b"fc:M=8,K=8,N=4".to_vec(), b"hello".to_vec()];
        let mut changed = 0;
        for _ in 0..10_000 {
            let mut x = corpus[0].clone();
            mutate(&mut rng, &mut x, &corpus, &["for", "=>"], 32);
            assert!(x.len() <= 32);
            changed += usize::from(x != corpus[0]);
        }
        assert!(changed > 8_000, "{changed}");
    }
}
