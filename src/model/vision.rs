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
use burn::tensor::Tensor;

use super::layers::{gelu_tanh, linear, LayerNorm};
use super::walk::{Prefix, Visitor};
use crate::config::VisionConfig;
use crate::error::Result;

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
    /// `{at}.patch_embedding` (a conv [d, channels, p, p] with bias) and
    /// `{at}.position_embedding.weight` [patches, d].
    fn walk<V: Visitor>(v: &mut V, at: &Prefix, c: &VisionConfig, this: Option<&Self>) -> Result<Self> {
        let (d, p, ch) = (c.hidden_size, c.patch_size, c.num_channels);
        Ok(Self {
            patch_embedding: v.patch_conv(&at.pp("patch_embedding"), d, ch, p, this.map(|s| &s.patch_embedding))?,
            position_embedding: v.tensor(
                &at.pp("position_embedding").pp("weight"),
                [c.num_patches(), d],
                this.map(|s| &s.position_embedding),
            )?,
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
        let x = linear(&self.patch_embedding, patches);
        x + self.position_embedding.val().unsqueeze::<3>()
    }
}

impl VisionAttention {
    /// `{at}.{q,k,v,out}_proj`, Linear [d -> d] with biases.
    fn walk<V: Visitor>(v: &mut V, at: &Prefix, c: &VisionConfig, this: Option<&Self>) -> Result<Self> {
        let d = c.hidden_size;
        Ok(Self {
            q_proj: v.linear(&at.pp("q_proj"), d, d, true, this.map(|s| &s.q_proj))?,
            k_proj: v.linear(&at.pp("k_proj"), d, d, true, this.map(|s| &s.k_proj))?,
            v_proj: v.linear(&at.pp("v_proj"), d, d, true, this.map(|s| &s.v_proj))?,
            out_proj: v.linear(&at.pp("out_proj"), d, d, true, this.map(|s| &s.out_proj))?,
            heads: c.num_attention_heads,
        })
    }

    /// Returns the output and, if asked, the head-averaged attention probabilities.
    pub fn forward(&self, x: Tensor<3>, want_probs: bool) -> (Tensor<3>, Option<Tensor<3>>) {
        let [b, s, d] = x.dims();
        let hd = d / self.heads;
        let split = |t: Tensor<3>| t.reshape([b, s, self.heads, hd]).swap_dims(1, 2);
        let q = split(linear(&self.q_proj, x.clone()));
        let k = split(linear(&self.k_proj, x.clone()));
        let v = split(linear(&self.v_proj, x));
        // on flex, our kernel (src/cpu/attention.rs): the projections read in place, the
        // probabilities averaged over heads from the same softmax when asked
        if let Some((out, mean)) = crate::cpu::flex::attention(&q, &k, &v, false, want_probs) {
            return (linear(&self.out_proj, out), mean);
        }
        if !want_probs {
            // the backend's fused kernel (flex: tiled online softmax, no [s, s] matrix per head)
            let opts = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
            let out = attention(q, k, v, None, None, opts).swap_dims(1, 2).reshape([b, s, d]);
            return (linear(&self.out_proj, out), None);
        }
        let scores = q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let probs = softmax(scores, 3);
        let mean_probs = Some(probs.clone().mean_dim(1).reshape([b, s, s]));
        let out = probs.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
        (linear(&self.out_proj, out), mean_probs)
    }
}

impl VisionMlp {
    /// `{at}.fc1` [d -> intermediate] and `{at}.fc2` [intermediate -> d], with biases.
    fn walk<V: Visitor>(v: &mut V, at: &Prefix, c: &VisionConfig, this: Option<&Self>) -> Result<Self> {
        let (d, i) = (c.hidden_size, c.intermediate_size);
        Ok(Self {
            fc1: v.linear(&at.pp("fc1"), d, i, true, this.map(|s| &s.fc1))?,
            fc2: v.linear(&at.pp("fc2"), i, d, true, this.map(|s| &s.fc2))?,
            tanh_gelu: c.hidden_act == "gelu_pytorch_tanh",
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = if !self.tanh_gelu {
            gelu(linear(&self.fc1, x))
        } else {
            // on flex, our kernel (src/cpu/activation.rs): the bias and gelu in one parallel pass
            match crate::cpu::flex::linear_gelu_tanh(&self.fc1, x) {
                Ok(h) => h,
                Err(x) => gelu_tanh(linear(&self.fc1, x)),
            }
        };
        linear(&self.fc2, h)
    }
}

impl VisionLayer {
    fn walk<V: Visitor>(v: &mut V, at: &Prefix, c: &VisionConfig, this: Option<&Self>) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.layer_norm_eps);
        // in the order of HF's state dict (random checkpoints draw their values in this order)
        let self_attn = VisionAttention::walk(v, &at.pp("self_attn"), c, this.map(|s| &s.self_attn))?;
        let layer_norm1 = LayerNorm::walk(v, &at.pp("layer_norm1"), d, eps, this.map(|s| &s.layer_norm1))?;
        let layer_norm2 = LayerNorm::walk(v, &at.pp("layer_norm2"), d, eps, this.map(|s| &s.layer_norm2))?;
        let mlp = VisionMlp::walk(v, &at.pp("mlp"), c, this.map(|s| &s.mlp))?;
        Ok(Self { layer_norm1, self_attn, layer_norm2, mlp })
    }

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
    /// `{at}.embeddings`, `{at}.encoder.layers.{i}`, `{at}.post_layernorm`.
    pub fn walk<V: Visitor>(v: &mut V, at: &Prefix, c: &VisionConfig, this: Option<&Self>) -> Result<Self> {
        let embeddings = VisionEmbeddings::walk(v, &at.pp("embeddings"), c, this.map(|s| &s.embeddings))?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| VisionLayer::walk(v, &at.pp("encoder.layers").pp(i), c, this.map(|s| &s.layers[i])))
            .collect::<Result<Vec<_>>>()?;
        let post_layernorm =
            LayerNorm::walk(v, &at.pp("post_layernorm"), c.hidden_size, c.layer_norm_eps, this.map(|s| &s.post_layernorm))?;
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
