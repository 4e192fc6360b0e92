//! SigLIP vision encoder as in HF `modeling_idefics3.py` (Idefics3VisionTransformer):
//! patch embedding (a stride-p conv, computed as an unfold + matmul), learned position embeddings,
//! pre-LN transformer blocks with gelu-tanh MLPs, and `post_layernorm`.
//!
//! Tiles are always full `image_size` squares here (the image processor never pads a single image),
//! so every patch is valid and position ids are 0..num_patches.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Tensor};

use super::layers::{gelu_tanh, load_linear, LayerNorm};
use crate::config::VisionConfig;
use crate::error::Result;
use crate::weights::WeightMap;

#[derive(Module, Debug)]
pub struct VisionEmbeddings {
    /// conv weight [hidden, channels * patch * patch]^T, i.e. [c*p*p, hidden] ordered (c, ky, kx).
    pub patch_embedding: Linear,
    pub position_embedding: Param<Tensor<2>>,
    #[module(skip)]
    pub patch: usize,
    #[module(skip)]
    pub channels: usize,
}

#[derive(Module, Debug)]
pub struct VisionAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

#[derive(Module, Debug)]
pub struct VisionMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub tanh_gelu: bool,
}

#[derive(Module, Debug)]
pub struct VisionLayer {
    pub layer_norm1: LayerNorm,
    pub self_attn: VisionAttention,
    pub layer_norm2: LayerNorm,
    pub mlp: VisionMlp,
}

#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub embeddings: VisionEmbeddings,
    pub layers: Vec<VisionLayer>,
    pub post_layernorm: LayerNorm,
}

/// What the encoder returns for a batch of tiles.
pub struct VisionOutput {
    /// Hidden states after the last block, BEFORE post_layernorm: [tiles, patches, hidden].
    pub last_hidden: Tensor<3>,
    /// For each requested layer index, the head-averaged attention probabilities
    /// [tiles, query patch, key patch].
    pub attentions: Vec<(usize, Tensor<3>)>,
    /// The last block's residual stream after its attention, before its MLP: [tiles, patches, d_v]
    /// (the input of ZOO's optional last-MLP proxy).
    pub last_pre_mlp: Tensor<3>,
}

impl VisionEmbeddings {
    fn load(w: &WeightMap, prefix: &str, c: &VisionConfig, device: &Device) -> Result<Self> {
        let (d, p, ch) = (c.hidden_size, c.patch_size, c.num_channels);
        // [hidden, c, p, p] in the file; flatten the kernel to (c, ky, kx) and transpose.
        let name = format!("{prefix}.patch_embedding.weight");
        let conv = w.f32_values(&name, &[d, ch, p, p])?;
        let k = ch * p * p;
        let mut t = vec![0f32; conv.len()];
        for o in 0..d {
            for i in 0..k {
                t[i * d + o] = conv[o * k + i];
            }
        }
        let weight = Tensor::from_data(burn::tensor::TensorData::new(t, [k, d]), device);
        let bias = w.tensor(&format!("{prefix}.patch_embedding.bias"), [d], device)?;
        Ok(Self {
            patch_embedding: Linear {
                weight: Param::from_tensor(weight),
                bias: Some(Param::from_tensor(bias)),
            },
            position_embedding: Param::from_tensor(w.tensor(
                &format!("{prefix}.position_embedding.weight"),
                [c.num_patches(), d],
                device,
            )?),
            patch: p,
            channels: ch,
        })
    }

    /// pixels [tiles, channels, H, W] -> [tiles, patches, hidden]
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let [t, ch, h, w] = pixels.dims();
        let p = self.patch;
        let (nh, nw) = (h / p, w / p);
        let patches = pixels
            .reshape([t, ch, nh, p, nw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([t, nh * nw, ch * p * p]);
        let x = self.patch_embedding.forward(patches);
        x + self.position_embedding.val().unsqueeze::<3>()
    }
}

impl VisionAttention {
    fn load(w: &WeightMap, prefix: &str, c: &VisionConfig, device: &Device) -> Result<Self> {
        let d = c.hidden_size;
        Ok(Self {
            q_proj: load_linear(w, &format!("{prefix}.q_proj"), d, d, true, device)?,
            k_proj: load_linear(w, &format!("{prefix}.k_proj"), d, d, true, device)?,
            v_proj: load_linear(w, &format!("{prefix}.v_proj"), d, d, true, device)?,
            out_proj: load_linear(w, &format!("{prefix}.out_proj"), d, d, true, device)?,
            heads: c.num_attention_heads,
        })
    }

    /// Returns the output and, if asked, the head-averaged attention probabilities.
    pub fn forward(&self, x: Tensor<3>, want_probs: bool) -> (Tensor<3>, Option<Tensor<3>>) {
        let [b, s, d] = x.dims();
        let hd = d / self.heads;
        let split = |t: Tensor<3>| t.reshape([b, s, self.heads, hd]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        // on flex, our kernel (src/cpu/attention.rs): the projections read in place, the
        // probabilities averaged over heads from the same softmax when asked
        if let Some((out, mean)) = crate::cpu::flex::attention(&q, &k, &v, false, want_probs) {
            return (self.out_proj.forward(out), mean);
        }
        if !want_probs {
            // the backend's fused kernel (flex: tiled online softmax, no [s, s] matrix per head)
            let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
            let out = attention(q, k, v, None, None, opts).swap_dims(1, 2).reshape([b, s, d]);
            return (self.out_proj.forward(out), None);
        }
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let probs = softmax(scores, 3);
        let mean_probs = Some(probs.clone().mean_dim(1).reshape([b, s, s]));
        let out = probs.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
        (self.out_proj.forward(out), mean_probs)
    }
}

impl VisionMlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = if self.tanh_gelu { gelu_tanh(h) } else { gelu(h) };
        self.fc2.forward(h)
    }
}

impl VisionLayer {
    /// Returns (output, the residual after attention, attention probabilities if asked).
    pub fn forward(&self, x: Tensor<3>, want_probs: bool) -> (Tensor<3>, Tensor<3>, Option<Tensor<3>>) {
        let (a, probs) = self.self_attn.forward(self.layer_norm1.forward(x.clone()), want_probs);
        let h = x + a;
        (self.mlp_block(h.clone()), h, probs)
    }

    /// The second half of the block: h + MLP(LN2(h)).
    pub fn mlp_block<const D: usize>(&self, h: Tensor<D>) -> Tensor<D> {
        let y = self.layer_norm2.forward(h.clone());
        let d = y.dims();
        let flat = y.reshape([-1, d[D - 1] as i32]).unsqueeze::<3>();
        let out = self.mlp.forward(flat);
        h + out.reshape(d)
    }
}

impl VisionTransformer {
    pub fn load(w: &WeightMap, prefix: &str, c: &VisionConfig, device: &Device) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.layer_norm_eps);
        let embeddings = VisionEmbeddings::load(w, &format!("{prefix}.embeddings"), c, device)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("{prefix}.encoder.layers.{i}");
            layers.push(VisionLayer {
                layer_norm1: LayerNorm::load(w, &format!("{p}.layer_norm1"), d, eps, device)?,
                self_attn: VisionAttention::load(w, &format!("{p}.self_attn"), c, device)?,
                layer_norm2: LayerNorm::load(w, &format!("{p}.layer_norm2"), d, eps, device)?,
                mlp: VisionMlp {
                    fc1: load_linear(w, &format!("{p}.mlp.fc1"), d, c.intermediate_size, true, device)?,
                    fc2: load_linear(w, &format!("{p}.mlp.fc2"), c.intermediate_size, d, true, device)?,
                    tanh_gelu: c.hidden_act == "gelu_pytorch_tanh",
                },
            });
        }
        let post_layernorm = LayerNorm::load(w, &format!("{prefix}.post_layernorm"), d, eps, device)?;
        Ok(Self { embeddings, layers, post_layernorm })
    }

    /// Encodes tiles [tiles, channels, H, W]. `attention_layers` lists the blocks whose
    /// head-averaged attention maps are returned (negative-free indices, 0-based).
    pub fn forward(&self, pixels: Tensor<4>, attention_layers: &[usize]) -> VisionOutput {
        let mut x = self.embeddings.forward(pixels);
        let mut attentions = Vec::new();
        let mut last_pre_mlp = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let want = attention_layers.contains(&i);
            let (nx, h, probs) = layer.forward(x, want);
            x = nx;
            last_pre_mlp = h;
            if let Some(p) = probs {
                attentions.push((i, p));
            }
        }
        VisionOutput { last_hidden: x, attentions, last_pre_mlp }
    }
}
