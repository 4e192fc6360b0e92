//! The decoder's attention takes different code paths by shape: a prefill longer than one causal
//! block (256 query rows) is split into blocks that each see only their visible keys; a prefill
//! after a cache is bottom-right aligned; one new token uses grouped query heads without repeating
//! K and V. The parity tests' prompts are shorter than one block, so this checks the paths against
//! each other on a 600-token input (3 blocks): every position's final hidden state must agree
//! within 1e-4 (absolute; the values are RMS-normalised, O(1)).

use crate::common;

use burn::tensor::{Distribution, Tensor};
use zoo_prune_web::readback::read_floats;
use zoo_prune_web::model::ForwardOptions;

const TOL: f32 = 1e-4;

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let n = t.shape().num_elements();
    pollster::block_on(read_floats(t.reshape([n]))).unwrap()
}

#[test]
fn blocked_prefill_matches_split_prefill_and_token_by_token_decoding() {
    let vlm = common::load_vlm("tiny_tiles", "flex");
    let text = &vlm.model.text;
    let d = vlm.config.text_config.hidden_size;
    let n = 600;
    let emb = Tensor::<3>::random([1, n, d], Distribution::Normal(0.0, 1.0), &vlm.device);
    let opts = ForwardOptions::default();

    let mut cache = text.new_cache();
    let full = floats(text.forward(emb.clone(), &mut cache, &opts).hidden); // [n * d]

    // 300 then 300 more on the cache: the second call is causal with an offset of 300
    let mut cache = text.new_cache();
    let a = floats(text.forward(emb.clone().narrow(1, 0, 300), &mut cache, &opts).hidden);
    let b = floats(text.forward(emb.clone().narrow(1, 300, 300), &mut cache, &opts).hidden);
    let split: Vec<f32> = a.into_iter().chain(b).collect();
    let e = common::max_abs_diff(&full, &split);
    assert!(e <= TOL, "600-token prefill vs 300 + 300 with a cache: max |diff| {e}");

    // one token at a time
    let mut cache = text.new_cache();
    let mut step = Vec::with_capacity(n * d);
    for i in 0..n {
        step.extend(floats(text.forward(emb.clone().narrow(1, i, 1), &mut cache, &opts).hidden));
    }
    let e = common::max_abs_diff(&full, &step);
    assert!(e <= TOL, "600-token prefill vs token-by-token decoding: max |diff| {e}");
}

#[test]
fn blocked_prefill_agrees_between_flex_and_wgpu() {
    let cpu = common::load_vlm("tiny_tiles", "flex");
    let gpu = common::load_vlm("tiny_tiles", "wgpu");
    let d = cpu.config.text_config.hidden_size;
    let emb = Tensor::<3>::random([1, 600, d], Distribution::Normal(0.0, 1.0), &cpu.device);
    let values = floats(emb.clone());
    let emb_gpu = Tensor::<3>::from_data(burn::tensor::TensorData::new(values, [1, 600, d]), &gpu.device);
    let opts = ForwardOptions::default();
    let a = floats(cpu.model.text.forward(emb, &mut cpu.model.text.new_cache(), &opts).hidden);
    let b = floats(gpu.model.text.forward(emb_gpu, &mut gpu.model.text.new_cache(), &opts).hidden);
    let e = common::max_abs_diff(&a, &b);
    assert!(e <= TOL, "600-token prefill, flex vs wgpu: max |diff| {e}");
}
