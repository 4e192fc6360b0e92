//! Kernels of our own for burn's CPU backend (flex), natively and in every wasm build: the parts
//! where flex's generic kernels left time on the table (README, "Measured figures").
//!
//! - [`attention`]: blocked scaled dot-product attention on f32 slices, grouped-query heads, causal
//!   masks, optional head-averaged probabilities (self-contained: gemm + rayon + [`exp`]);
//! - [`exp`]: a vectorised exp and the softmax row reductions;
//! - [`convert`]: checkpoint bf16 / f16 / f32 bytes to f32, in bulk and in parallel;
//! - [`flex`]: reading flex tensors in place and handing results back.

pub mod attention;
pub mod convert;
pub mod exp;
pub mod flex;
