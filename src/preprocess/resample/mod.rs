//! Bit-exact, dependency-free ports of the Pillow routines the HF image processors run on
//! 8-bit RGB images:
//!
//! * [`resize_rgb8`]: `Image.resize(size, resample)` on an `RGB` image, mirroring
//!   `libImaging/Resample.c` (convolution filters, 22-bit fixed point, two separable passes)
//!   and, for [`Filter::Nearest`], `libImaging/Geometry.c::ImagingScaleAffine`.
//! * [`alpha_over_white_rgba8`]: transformers' `convert_to_rgb`, i.e.
//!   `Image.alpha_composite(Image.new("RGBA", size, (255, 255, 255)), img).convert("RGB")`,
//!   mirroring `libImaging/AlphaComposite.c`.
//!
//! Images are tightly packed, row-major, 3 (RGB) or 4 (RGBA) bytes per pixel.
//!
//! Checked byte-for-byte against Pillow 13.0.0 by the golden tests in `tests.rs` (data made by
//! `tests/fixtures/make_resample_golden.py`). Pillow details that matter for exactness:
//!
//! * the filter weights are computed in `f64` with the very same expressions (including
//!   Hamming's `float` constants), normalised by their sum, then rounded to 22-bit integers
//!   (`int(w * 2^22 ± 0.5)`, truncating toward zero);
//! * each pass rounds/clamps its result to `u8`, so the *order* of the passes matters.
//!   Pillow >= 13 runs the vertical pass first when the height shrinks by more than twice as
//!   many pixels as the width (see [`PassOrder`]); Pillow <= 12 always runs horizontal first;
//! * a pass is skipped when its dimension does not change (no-op passes would still round);
//! * `sin`/`cos` come from the platform libm as in Pillow (glibc on Linux for both). A 1-ulp
//!   libm difference could in principle flip a rounding, but after normalisation and
//!   rounding to 22 bits that is practically never observable.

use std::f64::consts::PI;

/// Pillow's fixed-point precision for 8-bit images: `32 - 8 - 2` (8 bits of result, 2 bits of
/// headroom for filters with negative lobes).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow resampling filters (`PIL.Image.Resampling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `NEAREST` (0). Not a convolution in Pillow: an affine nearest-neighbour scale.
    Nearest,
    /// `LANCZOS` (1): `sinc(x) * sinc(x / 3)` on `[-3, 3)`.
    Lanczos,
    /// `BILINEAR` (2): triangle, support 1.
    Bilinear,
    /// `BICUBIC` (3): cubic convolution with `a = -0.5`, support 2.
    Bicubic,
    /// `BOX` (4), support 0.5.
    Box,
    /// `HAMMING` (5), support 1.
    Hamming,
}

impl Filter {
    /// The filter for a `PIL.Image.Resampling` integer (as found in HF
    /// `preprocessor_config.json` files, e.g. `"resample": 1` for LANCZOS).
    pub fn from_pil(code: u32) -> Option<Filter> {
        Some(match code {
            0 => Filter::Nearest,
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            _ => return None,
        })
    }

    /// The `PIL.Image.Resampling` integer of this filter.
    pub fn pil_code(self) -> u32 {
        match self {
            Filter::Nearest => 0,
            Filter::Lanczos => 1,
            Filter::Bilinear => 2,
            Filter::Bicubic => 3,
            Filter::Box => 4,
            Filter::Hamming => 5,
        }
    }

    /// `struct filter.support` in Resample.c (unused for `Nearest`).
    fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.0,
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    /// `struct filter.filter` in Resample.c: the same `double` expressions, same order.
    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Nearest => unreachable!("nearest is not a convolution filter"),
            Filter::Box => box_filter(x),
            Filter::Bilinear => bilinear_filter(x),
            Filter::Hamming => hamming_filter(x),
            Filter::Bicubic => bicubic_filter(x),
            Filter::Lanczos => lanczos_filter(x),
        }
    }
}

fn box_filter(x: f64) -> f64 {
    if x > -0.5 && x <= 0.5 {
        1.0
    } else {
        0.0
    }
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn hamming_filter(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let x = x * PI;
    // Pillow writes `0.54f + 0.46f * cos(x)`: the constants are C `float`s widened to double.
    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
}

fn bicubic_filter(x: f64) -> f64 {
    // Pillow: `#define a -0.5`; `a + 2.0` and `a + 3.0` are exact (1.5 and 2.5).
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    }
    if x < 2.0 {
        return (((x - 5.0) * x + 8.0) * x - 4.0) * A;
    }
    0.0
}

fn sinc_filter(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * PI;
    x.sin() / x
}

fn lanczos_filter(x: f64) -> f64 {
    // Truncated sinc; note the half-open interval [-3, 3).
    if (-3.0..3.0).contains(&x) {
        sinc_filter(x) * sinc_filter(x / 3.0)
    } else {
        0.0
    }
}

/// Which pass runs first when both dimensions change. The intermediate image is rounded to
/// `u8`, so this changes the result bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PassOrder {
    /// Pillow >= 13.0 (`ImagingResampleInner`): vertical first iff
    /// `in_h - out_h > 0 && in_h - out_h > (in_w - out_w) * 2`, otherwise horizontal first.
    #[default]
    Auto,
    /// Pillow <= 12.x: always horizontal first.
    HorizontalFirst,
}

/// Resize a packed RGB8 image exactly like Pillow (>= 13) `Image.resize((new_w, new_h),
/// filter)` on an `RGB` image with the default `box` and no `reducing_gap`.
///
/// Panics if `src.len() != w * h * 3` or any size is zero (Pillow raises for those).
pub fn resize_rgb8(
    src: &[u8],
    w: usize,
    h: usize,
    new_w: usize,
    new_h: usize,
    filter: Filter,
) -> Vec<u8> {
    resize_rgb8_with_order(src, w, h, new_w, new_h, filter, PassOrder::Auto)
}

/// [`resize_rgb8`] with an explicit [`PassOrder`] (use [`PassOrder::HorizontalFirst`] to
/// reproduce Pillow <= 12.x).
pub fn resize_rgb8_with_order(
    src: &[u8],
    w: usize,
    h: usize,
    new_w: usize,
    new_h: usize,
    filter: Filter,
    order: PassOrder,
) -> Vec<u8> {
    const C: usize = 3;
    assert!(w > 0 && h > 0, "source image must not be empty ({w}x{h})");
    assert!(
        new_w > 0 && new_h > 0,
        "height and width must be > 0 ({new_w}x{new_h})"
    );
    assert_eq!(src.len(), w * h * C, "source buffer is not {w}x{h} RGB8");
    // Sizes must fit Pillow's `int` arithmetic (and `float` box coordinates, exact < 2^24).
    assert!(
        w.max(h).max(new_w).max(new_h) < (1 << 24),
        "image too large"
    );

    // Image.resize: `if self.size == size and box == (0, 0) + self.size: return self.copy()`.
    if (w, h) == (new_w, new_h) {
        return src.to_vec();
    }
    if filter == Filter::Nearest {
        return scale_nearest(src, w, h, new_w, new_h, C);
    }

    // ImagingResampleInner with box = (0, 0, w, h).
    let need_horizontal = new_w != w;
    let need_vertical = new_h != h;
    let horizontal_first = match order {
        PassOrder::HorizontalFirst => true,
        PassOrder::Auto => {
            let (dh, dw) = (h as i64 - new_h as i64, w as i64 - new_w as i64);
            !(dh > 0 && dh > dw * 2)
        }
    };

    match (need_horizontal, need_vertical) {
        (false, false) => src.to_vec(),
        (true, false) => {
            let kh = Coeffs::new(w, new_w, filter);
            resample_horizontal(src, w, 0, h, &kh, C)
        }
        (false, true) => {
            let kv = Coeffs::new(h, new_h, filter);
            resample_vertical(src, w, &kv, C)
        }
        (true, true) if horizontal_first => {
            let mut kv = Coeffs::new(h, new_h, filter);
            let kh = Coeffs::new(w, new_w, filter);
            // Pillow only resamples horizontally the source rows the vertical pass reads,
            // then shifts the vertical bounds by the first of them. Same result as a full
            // horizontal pass, less work.
            let ybox_first = kv.bounds[0].0;
            let (last_min, last_len) = kv.bounds[new_h - 1];
            let ybox_last = last_min + last_len;
            for b in &mut kv.bounds {
                b.0 -= ybox_first;
            }
            let tmp = resample_horizontal(src, w, ybox_first, ybox_last - ybox_first, &kh, C);
            resample_vertical(&tmp, new_w, &kv, C)
        }
        (true, true) => {
            let kv = Coeffs::new(h, new_h, filter);
            let kh = Coeffs::new(w, new_w, filter);
            let tmp = resample_vertical(src, w, &kv, C);
            resample_horizontal(&tmp, w, 0, new_h, &kh, C)
        }
    }
}

/// Fixed-point coefficients of one pass (`precompute_coeffs` + `normalize_coeffs_8bpc`).
struct Coeffs {
    /// Maximum number of taps; row `i` of `k` starts at `i * ksize`.
    ksize: usize,
    /// Per output index: (first input index, number of taps).
    bounds: Vec<(usize, usize)>,
    /// Weights scaled by `2^PRECISION_BITS`; unused taps are 0.
    k: Vec<i32>,
}

impl Coeffs {
    /// `precompute_coeffs(in_size, 0.0, in_size, out_size, filter)` then
    /// `normalize_coeffs_8bpc`.
    fn new(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
        // The box is `float box[4]` in Pillow: `(double)(in1 - in0) / outSize`.
        let in0 = 0.0f32;
        let in1 = in_size as f32;
        let scale = (in1 - in0) as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        // Determine support size (length of resampling filter).
        let support = filter.support() * filterscale;
        // Maximum number of coeffs.
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;

        let mut bounds = Vec::with_capacity(out_size);
        let mut k = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = in0 as f64 + (xx as f64 + 0.5) * scale;
            // `(int)` casts truncate toward zero, like Rust's `as`.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = (xmax - xmin).max(0) as usize;
            debug_assert!(n <= ksize);

            let mut ww = 0.0f64;
            for (x, wx) in w[..n].iter_mut().enumerate() {
                // `(x + xmin - center + 0.5) * ss` with `x + xmin` an int.
                *wx = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * ss);
                ww += *wx;
            }
            let row = &mut k[xx * ksize..xx * ksize + n];
            for (kx, &wx) in row.iter_mut().zip(&w[..n]) {
                let wx = if ww != 0.0 { wx / ww } else { wx };
                // normalize_coeffs_8bpc: round half away from zero, then truncate.
                *kx = if wx < 0.0 {
                    (-0.5 + wx * (1i64 << PRECISION_BITS) as f64) as i32
                } else {
                    (0.5 + wx * (1i64 << PRECISION_BITS) as f64) as i32
                };
            }
            bounds.push((xmin as usize, n));
        }
        Coeffs { ksize, bounds, k }
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (min, n) = self.bounds[i];
        (min, &self.k[i * self.ksize..i * self.ksize + n])
    }
}

/// Pillow's `clip8`: `in >> PRECISION_BITS` (arithmetic shift, i.e. floor) clamped to 0..255
/// (done with a lookup table there).
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's accumulator start value: one half, for rounding.
const ACC_INIT: i32 = 1 << (PRECISION_BITS - 1);

/// `ImagingResampleHorizontal_8bpc`: rows `row_offset..row_offset + rows` of `src` (width
/// `w`, `c` channels) to an image `coeffs.bounds.len()` wide and `rows` high.
fn resample_horizontal(
    src: &[u8],
    w: usize,
    row_offset: usize,
    rows: usize,
    coeffs: &Coeffs,
    c: usize,
) -> Vec<u8> {
    let out_w = coeffs.bounds.len();
    let mut out = vec![0u8; out_w * rows * c];
    for yy in 0..rows {
        let in_row = &src[(yy + row_offset) * w * c..(yy + row_offset + 1) * w * c];
        let out_row = &mut out[yy * out_w * c..(yy + 1) * out_w * c];
        for xx in 0..out_w {
            let (xmin, k) = coeffs.taps(xx);
            for ch in 0..c {
                let mut acc = ACC_INIT;
                for (x, &kx) in k.iter().enumerate() {
                    // C `int` arithmetic; cannot overflow for 8-bit input (2 spare bits).
                    acc = acc.wrapping_add(in_row[(xmin + x) * c + ch] as i32 * kx);
                }
                out_row[xx * c + ch] = clip8(acc);
            }
        }
    }
    out
}

/// `ImagingResampleVertical_8bpc`: `src` (width `w`, `c` channels, as many rows as the
/// bounds reach) to an image `w` wide and `coeffs.bounds.len()` high.
fn resample_vertical(src: &[u8], w: usize, coeffs: &Coeffs, c: usize) -> Vec<u8> {
    let out_h = coeffs.bounds.len();
    let stride = w * c;
    let mut out = vec![0u8; stride * out_h];
    for yy in 0..out_h {
        let (ymin, k) = coeffs.taps(yy);
        let out_row = &mut out[yy * stride..(yy + 1) * stride];
        for (i, o) in out_row.iter_mut().enumerate() {
            let mut acc = ACC_INIT;
            for (y, &ky) in k.iter().enumerate() {
                acc = acc.wrapping_add(src[(ymin + y) * stride + i] as i32 * ky);
            }
            *o = clip8(acc);
        }
    }
    out
}

/// `Image.resize` with NEAREST: `_resize` in `_imaging.c` calls `ImagingTransform` with the
/// affine matrix `[w / new_w, 0, 0, 0, h / new_h, 0]`, which lands in
/// `ImagingScaleAffine` (Geometry.c). Positions are accumulated by repeated `f64` addition
/// starting from the pixel centre, and truncated (`COORD`).
fn scale_nearest(src: &[u8], w: usize, h: usize, new_w: usize, new_h: usize, c: usize) -> Vec<u8> {
    // a[0] = (double)(box[2] - box[0]) / xsize, with a float box.
    let a0 = (w as f32 - 0.0f32) as f64 / new_w as f64;
    let a4 = (h as f32 - 0.0f32) as f64 / new_h as f64;
    let coord = |v: f64| -> i64 {
        if v < 0.0 {
            -1
        } else {
            v as i64
        }
    };

    // Pretabulate horizontal pixel positions; only [xmin, xmax) is copied, the rest stays 0
    // (the output is zero-filled, `fill = 1`).
    let mut xintab = vec![0usize; new_w];
    let (mut xmin, mut xmax) = (new_w, 0usize);
    let mut xo = 0.0 + a0 * 0.5;
    for (x, xin_slot) in xintab.iter_mut().enumerate() {
        let xin = coord(xo);
        if xin >= 0 && (xin as usize) < w {
            xmax = x + 1;
            xmin = xmin.min(x);
            *xin_slot = xin as usize;
        }
        xo += a0;
    }

    let mut out = vec![0u8; new_w * new_h * c];
    let mut yo = 0.0 + a4 * 0.5;
    for y in 0..new_h {
        let yi = coord(yo);
        if yi >= 0 && (yi as usize) < h {
            let in_row = &src[yi as usize * w * c..(yi as usize + 1) * w * c];
            let out_row = &mut out[y * new_w * c..(y + 1) * new_w * c];
            for x in xmin..xmax {
                let s = xintab[x] * c;
                out_row[x * c..x * c + c].copy_from_slice(&in_row[s..s + c]);
            }
        }
        yo += a4;
    }
    out
}

/// Pillow's `SHIFTFORDIV255`: `((a >> 8) + a) >> 8`, a division by 255 for the ranges used.
#[inline]
fn shift_for_div255(a: u32) -> u32 {
    ((a >> 8) + a) >> 8
}

/// Packed RGBA8 -> RGB8 composited over opaque white, bit-exactly as transformers'
/// `convert_to_rgb`: `Image.alpha_composite(Image.new("RGBA", size, (255, 255, 255)),
/// img.convert("RGBA")).convert("RGB")` (`ImagingAlphaComposite`, 7 extra bits of
/// precision, rounded divisions by 255).
///
/// Panics if `src.len()` is not a multiple of 4.
pub fn alpha_over_white_rgba8(src: &[u8]) -> Vec<u8> {
    const PREC: u32 = 7;
    assert_eq!(
        src.len() % 4,
        0,
        "RGBA8 buffer length must be a multiple of 4"
    );
    // The destination: `Image.new("RGBA", size, (255, 255, 255))` has alpha 255.
    let (dst_rgb, dst_a) = (255u32, 255u32);
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    for p in src.chunks_exact(4) {
        let sa = p[3] as u32;
        if sa == 0 {
            // Fully transparent source: the destination pixel is copied as is.
            out.extend_from_slice(&[dst_rgb as u8; 3]);
            continue;
        }
        let blend = dst_a * (255 - sa);
        let outa255 = sa * 255 + blend;
        let coef1 = sa * 255 * 255 * (1 << PREC) / outa255;
        let coef2 = 255 * (1 << PREC) - coef1;
        for &s in &p[..3] {
            let tmp = s as u32 * coef1 + dst_rgb * coef2;
            out.push((shift_for_div255(tmp + (0x80 << PREC)) >> PREC) as u8);
        }
        // (The output alpha, SHIFTFORDIV255(outa255 + 0x80) = 255, is dropped by
        // `.convert("RGB")`.)
    }
    out
}

#[cfg(test)]
mod tests;
