//! Llama's rotary position embedding, rotate-half form, with HF's f32 cos / sin tables.

use burn::tensor::{Device, Tensor, TensorData};

/// cos and sin tables [seq, head_dim] for positions start..start+seq, as HF computes them (f32).
pub(super) fn rope_tables(start: usize, seq: usize, head_dim: usize, theta: f64, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let positions: Vec<usize> = (start..start + seq).collect();
    rope_tables_at(&positions, head_dim, theta, device)
}

/// cos and sin tables [positions, head_dim] for the given positions.
pub(super) fn rope_tables_at(positions: &[usize], head_dim: usize, theta: f64, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let seq = positions.len();
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0f32 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(seq * head_dim);
    let mut sin = Vec::with_capacity(seq * head_dim);
    for &p in positions {
        // emb = cat(freqs, freqs): the same half repeated
        let angles: Vec<f32> = inv_freq.iter().map(|f| p as f32 * f).collect();
        for a in angles.iter().chain(&angles) {
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (
        Tensor::from_data(TensorData::new(cos, [seq, head_dim]), device),
        Tensor::from_data(TensorData::new(sin, [seq, head_dim]), device),
    )
}

pub(super) fn apply_rope(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
    let hd = x.dims()[3];
    let half = hd / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone().unsqueeze::<4>() + rotated * sin.clone().unsqueeze::<4>()
}
