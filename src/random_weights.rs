//! Random Idefics3 checkpoints of any shape, written as HF-layout safetensors bytes: the benchmark
//! measures SmolVLM-256M shapes without the real weights (which no machine here can download), and
//! loads them through the same loader as a hub checkpoint.

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::config::Idefics3Config;
use crate::model::tensors::checkpoint_tensors;
use crate::rng::SplitMix64;

/// A random checkpoint (bf16, like the hub's SmolVLM files): matrices uniform with std
/// 1/sqrt(fan_in), norm gains around 1, small biases. Deterministic for a seed. The file's
/// `__metadata__` says `weights: random` (the page tells its accuracy means nothing).
pub fn random_checkpoint(c: &Idefics3Config, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let shapes = checkpoint_tensors(c);
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let fan_in: usize = if shape.len() >= 2 { shape[1..].iter().product() } else { 1 };
            let is_norm_gain = shape.len() == 1 && name.contains("norm") && name.ends_with("weight");
            let scale = if shape.len() >= 2 { (3.0 / fan_in as f64).sqrt() } else { 0.1 };
            let mut bytes = Vec::with_capacity(n * 2);
            for _ in 0..n {
                let u = rng.uniform() * 2.0 - 1.0;
                let v = if is_norm_gain { 1.0 + 0.1 * u } else { scale * u };
                bytes.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes());
            }
            bytes
        })
        .collect();
    let views: Vec<(String, TensorView)> = shapes
        .iter()
        .zip(&data)
        .map(|((n, s), b)| (n.clone(), TensorView::new(Dtype::BF16, s.clone(), b).expect("valid view")))
        .collect();
    let metadata = [("format", "pt"), ("weights", "random")].map(|(k, v)| (k.to_string(), v.to_string()));
    safetensors::serialize(views, Some(metadata.into_iter().collect())).expect("serialise")
}

/// SmolVLM-256M-Instruct's architecture (notes/smolvlm.md), with `image_token_id` of the
/// tokenizer it will be used with.
pub fn smolvlm_256m_config(image_token_id: u32) -> String {
    format!(
        r#"{{"model_type": "idefics3", "image_token_id": {image_token_id}, "scale_factor": 4,
  "tie_word_embeddings": false,
  "vision_config": {{"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 512, "patch_size": 16, "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh"}},
  "text_config": {{"model_type": "llama", "vocab_size": 49280, "hidden_size": 576,
    "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
    "num_key_value_heads": 3, "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
    "max_position_embeddings": 8192, "tie_word_embeddings": false}}}}"#
    )
}
