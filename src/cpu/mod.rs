//! Kernels of our own for burn's CPU backend (flex), natively and in every wasm build: the parts
//! where flex's generic kernels left time on the table (README, "Measured figures").
//!
//! - [`attention`]: blocked scaled dot-product attention on f32 slices, grouped-query heads, causal
//!   masks, optional head-averaged probabilities (self-contained: gemm + rayon + [`exp`]);
//! - [`exp`]: a vectorised exp and the softmax row reductions;
//! - [`convert`]: checkpoint bf16 / f16 / f32 bytes to f32, in bulk and in parallel;
//! - [`activation`]: the SigLIP MLP's bias + gelu(tanh) and the Llama MLP's silu(gate) x up, each in one
//!   parallel pass;
//! - [`gemm`]: C = A B (+ bias) for the browser's SIMD builds (a 4 x 8 register tile, relaxed
//!   SIMD's fused multiply-add in the threaded build);
//! - [`jvp`]: ZOO's closed-form JVP sensitivity (the per-token terms in one pass in cache);
//! - [`flex`]: reading flex tensors in place and handing results back.
//!
//! The element-wise kernels are written as plain loops over 16 lanes that LLVM vectorises:
//! `multiversion!` compiles such a function for AVX-512F and for AVX2 + FMA natively and picks,
//! once, the widest the CPU has (else the SSE2 baseline); in wasm the SIMD build compiles them
//! with simd128.

/// `pub fn name(args) -> ret => generic`: `name` calls `generic` compiled for the widest x86
/// level the CPU has (see the module's notes).
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $generic:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn v4($($arg: $ty),*) -> $ret { $generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) -> $ret { $generic($($arg),*) }
                match $crate::cpu::level() {
                    // SAFETY: level() saw the CPU report these features
                    $crate::cpu::Level::V4 => return unsafe { v4($($arg),*) },
                    $crate::cpu::Level::V3 => return unsafe { v3($($arg),*) },
                    $crate::cpu::Level::Base => {}
                }
            }
            $generic($($arg),*)
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) enum Level {
    Base,
    V3,
    V4,
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<u8> = OnceLock::new();
    match *LEVEL.get_or_init(|| {
        if std::is_x86_feature_detected!("avx512f") {
            2
        } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            1
        } else {
            0
        }
    }) {
        2 => Level::V4,
        1 => Level::V3,
        _ => Level::Base,
    }
}

pub mod activation;

pub mod attention;
pub mod convert;
pub mod exp;
pub mod flex;
pub mod gemm;
pub mod jvp;

/// A small deterministic generator for the kernels' tests: n values in [-amp, amp).
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}
