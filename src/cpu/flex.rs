//! The bridge between burn tensors on the flex device and the kernels of this module: a float
//! tensor's f32 storage and strides, read in place, and a result handed back without a copy.
//! Anything else (wgpu, the autodiff device of training, a non-f32 dtype) gets `None`, and the
//! caller takes burn's own path.

use burn::tensor::{Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

use super::attention::{self, Problem, Strides, View};
use super::gemm;

/// The flex primitive of `t` (sharing its storage), when `t` is an f32 tensor on flex.
pub fn primitive<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let p = t.clone().try_into_primitive::<Flex>().ok()?;
    (p.dtype() == burn::tensor::DType::F32).then_some(p)
}

/// Whether tensors made on `device` are f32 flex tensors our kernels read (not the autodiff device).
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    primitive(&Tensor::<1>::zeros([1], device)).is_some()
}

/// A 4D tensor's storage and its (batch, head, row) strides, when its last dimension is contiguous
/// and no stride is negative; the slice starts at the tensor's first element.
pub fn view4(p: &FlexTensor) -> Option<View<'_>> {
    let l = p.layout();
    let s = l.strides();
    if s.len() != 4 || s[3] != 1 || s.iter().any(|&x| x < 0) {
        return None;
    }
    let data: &[f32] = p.storage();
    let data = data.get(l.start_offset()..)?;
    Some(View { data, strides: Strides { batch: s[0] as usize, head: s[1] as usize, row: s[2] as usize } })
}

/// The flex primitive of `t` with its values contiguous (copied into place when `t` is a strided
/// view), when `t` is an f32 tensor on flex; [`contiguous`] reads it.
pub fn dense<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let p = primitive(t)?;
    Some(if p.layout().is_contiguous() { p } else { p.to_contiguous() })
}

/// A contiguous tensor's values, from its first element (None when it is strided).
pub fn contiguous(p: &FlexTensor) -> Option<&[f32]> {
    let data: &[f32] = p.storage();
    p.layout().is_contiguous().then(|| &data[p.layout().start_offset()..])
}

/// A flex tensor of `shape` holding `values` (moved, not copied).
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &burn::tensor::Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// x W (+ b) for a torch-style Linear `l` with our product ([`super::gemm`]), in the builds that
/// use it (wasm with SIMD); the bias is added as C is written. `Err(x)` otherwise (natively, not
/// f32 on flex, a non-contiguous input): the caller takes burn's path.
pub fn linear<const D: usize>(l: &burn::nn::Linear, x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    product(l, x, true)
}

/// [`linear`], with the bias added when `with_bias` (else left to the caller).
fn product<const D: usize>(l: &burn::nn::Linear, x: Tensor<D>, with_bias: bool) -> Result<Tensor<D>, Tensor<D>> {
    if !gemm::IN_USE {
        return Err(x);
    }
    let dims = x.dims();
    let k = dims[D - 1];
    let m = dims[..D - 1].iter().product::<usize>();
    let w = l.weight.val();
    let [wk, n] = w.dims();
    if m == 0 || wk != k {
        return Err(x);
    }
    let (Some(xp), Some(wp)) = (primitive(&x), primitive(&w)) else { return Err(x) };
    let bp = match (with_bias, l.bias.as_ref()) {
        (true, Some(b)) => match primitive(&b.val()) {
            Some(bp) => Some(bp),
            None => return Err(x),
        },
        _ => None,
    };
    let (Some(xs), Some(ws)) = (contiguous(&xp), contiguous(&wp)) else { return Err(x) };
    let bs = match &bp {
        Some(bp) => match contiguous(bp) {
            Some(b) => Some(&b[..n]),
            None => return Err(x),
        },
        None => None,
    };
    let mut out = vec![0f32; m * n];
    gemm::matmul(m, n, k, gemm::Mat::rows(xs, k), gemm::Mat::rows(ws, n), &mut out, n, bs, true);
    let mut shape = dims;
    shape[D - 1] = n;
    Ok(tensor(out, shape, &x.device()))
}

/// h E^T for h [n, d] and a contiguous E [v, d] (the logits from a vocabulary matrix) with our
/// product, where this build uses it; `Err(h)` otherwise.
pub fn matmul_t(h: Tensor<2>, e: &Tensor<2>) -> Result<Tensor<2>, Tensor<2>> {
    let ([m, k], [n, ek]) = (h.dims(), e.dims());
    if !gemm::IN_USE || m == 0 || ek != k {
        return Err(h);
    }
    let (Some(hp), Some(ep)) = (primitive(&h), primitive(e)) else { return Err(h) };
    let (Some(hs), Some(es)) = (contiguous(&hp), contiguous(&ep)) else { return Err(h) };
    let mut out = vec![0f32; m * n];
    // E^T: element (p, j) is E[j, p]
    gemm::matmul(m, n, k, gemm::Mat::rows(hs, k), gemm::Mat { data: es, rs: 1, cs: k }, &mut out, n, None, true);
    Ok(tensor(out, [m, n], &h.device()))
}

/// gelu_tanh(x W + b) for a torch-style Linear `l` with a bias (SigLIP's fc1): the product (ours
/// where [`linear`] takes it, else burn's matmul), then the bias and the activation in one pass in
/// place on its output ([`super::activation`]). `Err(x)` when x or the bias is not f32 on flex
/// (the caller takes burn's path).
pub fn linear_gelu_tanh<const D: usize>(l: &burn::nn::Linear, x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let Some(bias) = l.bias.as_ref().map(|b| b.val()) else { return Err(x) };
    let Some(bp) = primitive(&bias) else { return Err(x) };
    let Some(b) = contiguous(&bp) else { return Err(x) };
    if primitive(&x).is_none() {
        return Err(x);
    }
    let b = &b[..bias.dims()[0]];
    let h = match product(l, x, false) {
        Ok(h) => h,
        Err(x) => x.matmul(l.weight.val().unsqueeze()),
    };
    let mut hp = primitive(&h).expect("a product of flex tensors is on flex");
    drop(h); // hp is then the only owner: storage_mut writes in place, no copy
    if !(hp.layout().is_contiguous() && hp.layout().start_offset() == 0) {
        hp = hp.to_contiguous();
    }
    super::activation::bias_gelu_tanh(hp.storage_mut::<f32>(), b);
    Ok(Tensor::from_primitive::<Flex>(hp))
}

/// silu(gate) up for the Llama MLP in one pass in place on `gate` ([`super::activation::silu_mul`]),
/// when both are f32 on flex with one shape; `Err` gives them back (the caller takes burn's path).
#[allow(clippy::result_large_err)]
pub fn silu_mul<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Result<Tensor<D>, (Tensor<D>, Tensor<D>)> {
    if gate.dims() != up.dims() {
        return Err((gate, up));
    }
    let (Some(mut gp), Some(upp)) = (primitive(&gate), dense(&up)) else { return Err((gate, up)) };
    let n = gate.dims().iter().product::<usize>();
    drop(gate); // gp is then the only owner: storage_mut writes in place, no copy
    if !(gp.layout().is_contiguous() && gp.layout().start_offset() == 0) {
        gp = gp.to_contiguous();
    }
    let u = &contiguous(&upp).expect("dense is contiguous")[..n];
    super::activation::silu_mul(&mut gp.storage_mut::<f32>()[..n], u);
    Ok(Tensor::from_primitive::<Flex>(gp))
}

/// softmax(Q K^T / sqrt(d) + mask) V with q [b, q_heads, s, d] and k, v [b, kv_heads, l, d] (any
/// strides with a contiguous last dimension, as burn's `attention` takes them): the output as
/// [b, s, q_heads * d] (ready for the output projection) and, with `head_mean`, the probabilities
/// averaged over heads [b, s, l]. None when the tensors are not f32 on flex.
pub fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    causal: bool,
    head_mean: bool,
) -> Option<(Tensor<3>, Option<Tensor<3>>)> {
    let (qp, kp, vp) = (primitive(q)?, primitive(k)?, primitive(v)?);
    let (qv, kv, vv) = (view4(&qp)?, view4(&kp)?, view4(&vp)?);
    let [b, h, s, d] = q.dims();
    let [_, kvh, l, _] = k.dims();
    attention_views(b, h, kvh, s, l, d, causal, qv, kv, vv, head_mean, &q.device())
}

/// [`attention`] on views already at hand (a KV cache's buffers).
#[allow(clippy::too_many_arguments)]
pub fn attention_views(
    batch: usize,
    q_heads: usize,
    kv_heads: usize,
    q_len: usize,
    kv_len: usize,
    head_dim: usize,
    causal: bool,
    q: View,
    k: View,
    v: View,
    head_mean: bool,
    device: &burn::tensor::Device,
) -> Option<(Tensor<3>, Option<Tensor<3>>)> {
    let p = Problem { batch, q_heads, kv_heads, q_len, kv_len, head_dim, causal, scale: (head_dim as f32).powf(-0.5) };
    let os = Strides::rows_major(q_heads, q_len, head_dim);
    let mut out = vec![0f32; batch * q_len * q_heads * head_dim];
    let mut mean = head_mean.then(|| vec![0f32; batch * q_len * kv_len]);
    attention::attention(&p, q, k, v, &mut out, os, mean.as_deref_mut());
    Some((
        tensor(out, [batch, q_len, q_heads * head_dim], device),
        mean.map(|m| tensor(m, [batch, q_len, kv_len], device)),
    ))
}
