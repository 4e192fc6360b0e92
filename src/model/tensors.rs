//! The checkpoint's tensor names, written once: HF transformers' names and torch shapes for an
//! Idefics3 config (tests/loader.rs checks the list against transformers' save_pretrained). The
//! loader checks a file against it before reading anything (every missing or mis-shaped tensor is
//! named at once), random checkpoints are written from it, and the built-in model's save takes its
//! names from it.

use crate::config::Idefics3Config;

/// Every tensor an Idefics3 checkpoint of this config holds: its HF name and torch shape, in the
/// order the loader reads them.
pub fn checkpoint_tensors(c: &Idefics3Config) -> Vec<(String, Vec<usize>)> {
    let v = &c.vision_config;
    let t = &c.text_config;
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |n: String, s: Vec<usize>| out.push((n, s));
    let (dv, p) = (v.hidden_size, v.patch_size);
    let vp = "model.vision_model";
    add(format!("{vp}.embeddings.patch_embedding.weight"), vec![dv, v.num_channels, p, p]);
    add(format!("{vp}.embeddings.patch_embedding.bias"), vec![dv]);
    add(format!("{vp}.embeddings.position_embedding.weight"), vec![v.num_patches(), dv]);
    for i in 0..v.num_hidden_layers {
        let l = format!("{vp}.encoder.layers.{i}");
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            add(format!("{l}.self_attn.{n}.weight"), vec![dv, dv]);
            add(format!("{l}.self_attn.{n}.bias"), vec![dv]);
        }
        for n in ["layer_norm1", "layer_norm2"] {
            add(format!("{l}.{n}.weight"), vec![dv]);
            add(format!("{l}.{n}.bias"), vec![dv]);
        }
        add(format!("{l}.mlp.fc1.weight"), vec![v.intermediate_size, dv]);
        add(format!("{l}.mlp.fc1.bias"), vec![v.intermediate_size]);
        add(format!("{l}.mlp.fc2.weight"), vec![dv, v.intermediate_size]);
        add(format!("{l}.mlp.fc2.bias"), vec![dv]);
    }
    add(format!("{vp}.post_layernorm.weight"), vec![dv]);
    add(format!("{vp}.post_layernorm.bias"), vec![dv]);
    let s2 = c.scale_factor * c.scale_factor;
    add("model.connector.modality_projection.proj.weight".into(), vec![t.hidden_size, dv * s2]);
    let (d, hd) = (t.hidden_size, t.head_dim());
    let tp = "model.text_model";
    add(format!("{tp}.embed_tokens.weight"), vec![t.vocab_size, d]);
    for i in 0..t.num_hidden_layers {
        let l = format!("{tp}.layers.{i}");
        add(format!("{l}.input_layernorm.weight"), vec![d]);
        add(format!("{l}.post_attention_layernorm.weight"), vec![d]);
        let (q, kv) = (t.num_attention_heads * hd, t.num_kv_heads() * hd);
        for (n, out, inp, bias) in [
            ("self_attn.q_proj", q, d, t.attention_bias),
            ("self_attn.k_proj", kv, d, t.attention_bias),
            ("self_attn.v_proj", kv, d, t.attention_bias),
            ("self_attn.o_proj", d, q, t.attention_bias),
            ("mlp.gate_proj", t.intermediate_size, d, t.mlp_bias),
            ("mlp.up_proj", t.intermediate_size, d, t.mlp_bias),
            ("mlp.down_proj", d, t.intermediate_size, t.mlp_bias),
        ] {
            add(format!("{l}.{n}.weight"), vec![out, inp]);
            if bias {
                add(format!("{l}.{n}.bias"), vec![out]);
            }
        }
    }
    add(format!("{tp}.norm.weight"), vec![d]);
    if !c.tied_embeddings() {
        add("lm_head.weight".into(), vec![t.vocab_size, d]);
    }
    out
}

/// The vocabulary matrices, which the loader can split into blocks of rows (`vocab`).
fn splittable(name: &str) -> bool {
    name == "model.text_model.embed_tokens.weight" || name == "lm_head.weight"
}

fn size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{bytes} bytes")
    }
}

/// A tensor that is split to fit a device: its name, its f32 size and the blocks it becomes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Split {
    pub name: String,
    pub bytes: u64,
    pub blocks: usize,
}

/// Whether the model of config `c` fits a device whose buffers hold at most `max_bytes` each,
/// from the config alone (before downloading the weights): the f32 tensors larger than that which
/// get split (the vocabulary matrices), or an error naming the first tensor that cannot be.
pub fn device_fit(c: &Idefics3Config, max_bytes: u64) -> crate::error::Result<Vec<Split>> {
    let mut splits = Vec::new();
    for (name, shape) in checkpoint_tensors(c) {
        let bytes = shape.iter().map(|&d| d as u64).product::<u64>() * 4;
        if bytes <= max_bytes {
            continue;
        }
        if !splittable(&name) {
            return Err(crate::error::Error::Device(format!(
                "`{name}` ({shape:?}, {} in f32) is larger than this device's largest buffer \
                 ({}: min(maxStorageBufferBindingSize, maxBufferSize)); this model cannot run \
                 on it: choose the CPU backend or a smaller model",
                size(bytes),
                size(max_bytes)
            )));
        }
        let per = super::vocab::rows_per_block(&name, shape[0], shape[1], Some(max_bytes))?;
        splits.push(Split { name, bytes, blocks: shape[0].div_ceil(per) });
    }
    Ok(splits)
}
