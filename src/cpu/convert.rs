//! Checkpoint bytes to f32: bf16 and f16 (and little-endian f32) widened in bulk, vectorisable
//! loops over fixed-size pieces, in parallel where the build has threads.

use half::f16;

/// Elements per parallel piece (256 KiB of f32 out).
const PIECE: usize = 1 << 16;

/// The element types a checkpoint tensor may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    F32,
    BF16,
    F16,
}

impl Source {
    pub fn width(self) -> usize {
        match self {
            Source::F32 => 4,
            Source::BF16 | Source::F16 => 2,
        }
    }
}

fn widen(src: &[u8], dst: &mut [f32], from: Source) {
    match from {
        Source::F32 => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        // bf16 is the top half of an f32: a shift, which LLVM vectorises
        Source::BF16 => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            }
        }
        Source::F16 => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
    }
}

/// Appends the values of `src` (elements of `from`, little-endian) to `out`.
pub fn extend_f32(out: &mut Vec<f32>, src: &[u8], from: Source) {
    let n = src.len() / from.width();
    let at = out.len();
    out.resize(at + n, 0.0);
    let dst = &mut out[at..];
    let w = from.width();
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if n > PIECE {
        use rayon::prelude::*;
        dst.par_chunks_mut(PIECE)
            .zip(src.par_chunks(PIECE * w))
            .for_each(|(d, s)| widen(s, d, from));
        return;
    }
    let _ = (PIECE, w);
    widen(src, dst, from);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bf16 and f16 bit pattern (NaNs compared as NaN), and f32 values, against `half`'s
    /// scalar conversions; lengths past one parallel piece and off it.
    #[test]
    fn every_bit_pattern() {
        let all: Vec<u8> = (0..=u16::MAX).flat_map(|x| x.to_le_bytes()).collect();
        let mut big = all.clone();
        big.extend_from_slice(&all[..2 * 1234]);
        for (from, conv) in [
            (Source::BF16, (|x: u16| half::bf16::from_bits(x).to_f32()) as fn(u16) -> f32),
            (Source::F16, |x: u16| half::f16::from_bits(x).to_f32()),
        ] {
            let mut out = vec![7.0f32];
            extend_f32(&mut out, &big, from);
            assert_eq!(out.len(), 1 + big.len() / 2);
            assert_eq!(out[0], 7.0, "existing values stay");
            for (i, b) in big.chunks_exact(2).enumerate() {
                let want = conv(u16::from_le_bytes([b[0], b[1]]));
                let got = out[1 + i];
                assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{from:?} {i}: {got} vs {want}");
            }
        }
        let xs: Vec<f32> = (0..100_003).map(|i| i as f32 * -0.37 + 1e-3).collect();
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut out = Vec::new();
        extend_f32(&mut out, &bytes, Source::F32);
        assert_eq!(out, xs);
    }
}
