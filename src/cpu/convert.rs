//! Checkpoint bytes to f32: bf16 and f16 (and little-endian f32) widened in bulk, vectorisable
//! loops over fixed-size pieces, in parallel where the build has threads; and the transpose of a
//! Linear weight from the checkpoint's [out, in] to burn's [in, out], blocked and in parallel.

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

/// The values of `src` (elements of `from`, little-endian) written into `dst` (as many as it has
/// room for), in parallel pieces where the build has threads: a fresh buffer's pages are then
/// faulted in by every thread, not by one.
pub fn widen_into(src: &[u8], from: Source, dst: &mut [f32]) {
    let n = dst.len().min(src.len() / from.width());
    let (src, dst) = (&src[..n * from.width()], &mut dst[..n]);
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if n > PIECE {
        use rayon::prelude::*;
        dst.par_chunks_mut(PIECE)
            .zip(src.par_chunks(PIECE * from.width()))
            .for_each(|(d, s)| widen(s, d, from));
        return;
    }
    let _ = PIECE;
    widen(src, dst, from);
}

/// Whole rows r0.. of a [rows, cols] matrix of `from` elements (`src`, little-endian) widened
/// straight into their places in its transpose `dst` [cols, rows] (dst[c * rows + r]): a Linear
/// weight from the checkpoint's [out, in] to burn's [in, out] without an f32 copy in between. In
/// 32 x 32 blocks, bands of output rows in parallel where the build has threads.
pub fn widen_transposed(src: &[u8], from: Source, r0: usize, rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 32;
    let w = from.width();
    if cols == 0 || rows == 0 {
        return;
    }
    let n = src.len() / (w * cols);
    assert!(src.len() == n * w * cols && r0 + n <= rows, "widen_transposed: {} bytes are not whole rows {r0}.. of {rows} x {cols}", src.len());
    assert_eq!(dst.len(), rows * cols, "widen_transposed: the transpose of {rows} x {cols} has {} values", dst.len());
    // one band: output rows c0..c0 + B (input columns) of this piece's input rows
    let band = |c0: usize, out: &mut [f32]| {
        let cn = B.min(cols - c0);
        let mut row = [0f32; B];
        for r in 0..n {
            let at = (r * cols + c0) * w;
            widen(&src[at..at + cn * w], &mut row[..cn], from);
            for (c, &x) in row[..cn].iter().enumerate() {
                out[c * rows + r0 + r] = x;
            }
        }
    };
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if n * cols > PIECE {
        use rayon::prelude::*;
        dst.par_chunks_mut(B * rows).enumerate().for_each(|(i, d)| band(i * B, d));
        return;
    }
    for (i, d) in dst.chunks_mut(B * rows).enumerate() {
        band(i * B, d);
    }
}

/// `src` [rows, cols] row-major, transposed into a new [cols, rows]: in 32 x 32 blocks (both sides
/// stay in cache), bands of output rows in parallel where the build has threads.
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(src.len(), rows * cols, "transpose: {} values for {rows} x {cols}", src.len());
    const B: usize = 32;
    let mut out = vec![0f32; src.len()];
    // one band: output rows c0..c0 + B (input columns), every input row
    let band = |c0: usize, dst: &mut [f32]| {
        let cn = B.min(cols - c0);
        for r0 in (0..rows).step_by(B) {
            let rn = B.min(rows - r0);
            for c in 0..cn {
                let o = &mut dst[c * rows + r0..c * rows + r0 + rn];
                for (r, x) in o.iter_mut().enumerate() {
                    *x = src[(r0 + r) * cols + c0 + c];
                }
            }
        }
    };
    if rows == 0 || cols == 0 {
        return out;
    }
    #[cfg(any(not(target_family = "wasm"), feature = "wasm-threads"))]
    if src.len() > PIECE {
        use rayon::prelude::*;
        out.par_chunks_mut(B * rows).enumerate().for_each(|(i, dst)| band(i * B, dst));
        return out;
    }
    for (i, dst) in out.chunks_mut(B * rows).enumerate() {
        band(i * B, dst);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends the values of `src` to `out` through [`widen_into`] (what the loader did before it
    /// wrote into its own buffer).
    fn extend_f32(out: &mut Vec<f32>, src: &[u8], from: Source) {
        let at = out.len();
        out.resize(at + src.len() / from.width(), 0.0);
        widen_into(src, from, &mut out[at..]);
    }

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

    /// Rows given in pieces of every size (one row, a few, all), each element type: the same
    /// values as widening then transposing, bit for bit.
    #[test]
    fn widen_transposed_equals_widen_then_transpose() {
        for (rows, cols) in [(1, 1), (3, 70), (70, 3), (33, 65), (576, 1536)] {
            for from in [Source::F32, Source::BF16, Source::F16] {
                let w = from.width();
                // finite values of every type: small integers' bit patterns scaled
                let src: Vec<u8> = (0..rows * cols)
                    .flat_map(|i| {
                        let v = (i % 977) as f32 * 0.25 - 100.0;
                        match from {
                            Source::F32 => v.to_le_bytes().to_vec(),
                            Source::BF16 => half::bf16::from_f32(v).to_le_bytes().to_vec(),
                            Source::F16 => half::f16::from_f32(v).to_le_bytes().to_vec(),
                        }
                    })
                    .collect();
                let mut flat = Vec::new();
                extend_f32(&mut flat, &src, from);
                let want = transpose(&flat, rows, cols);
                for piece in [1, 7, rows] {
                    let mut got = vec![f32::NAN; rows * cols];
                    let mut r = 0;
                    while r < rows {
                        let next = (r + piece).min(rows);
                        widen_transposed(&src[r * cols * w..next * cols * w], from, r, rows, cols, &mut got);
                        r = next;
                    }
                    assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{rows} x {cols} {from:?} in pieces of {piece}");
                }
            }
        }
    }

    /// Shapes off the 32-block and past one parallel piece: every element lands at (c, r).
    #[test]
    fn transpose_blocks() {
        for (rows, cols) in [(1, 1), (3, 70), (70, 3), (33, 65), (576, 1536), (0, 5)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose(&src, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], src[r * cols + c], "{rows} x {cols} at ({r}, {c})");
                }
            }
        }
    }
}
