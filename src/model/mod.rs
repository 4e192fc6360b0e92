//! Idefics3ForConditionalGeneration (SmolVLM): vision encoder, connector, Llama decoder, and the
//! merge of image features into the `<image>` positions of the prompt.

pub mod connector;
pub mod kv_cache;
pub mod layers;
mod rope;
pub mod tensors;
pub mod text;
pub mod vision;
pub mod vocab;
pub mod walk;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::Idefics3Config;
use crate::error::{Error, Result};
use crate::weights::WeightMap;
pub use connector::{pixel_shuffle, Connector};
pub use kv_cache::{HostKv, KvCache, LayerKv};
pub use text::{ForwardOptions, ForwardOutput, LayerDrop, TextModel};
pub use vision::{VisionOutput, VisionTransformer};

#[derive(Module, Debug)]
pub struct Idefics3 {
    pub vision: VisionTransformer,
    pub connector: Connector,
    pub text: TextModel,
}

/// How to load a model onto a device.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The largest tensor the device holds in one buffer, in bytes (a WebGPU adapter's
    /// min(maxStorageBufferBindingSize, maxBufferSize)); None: no limit.
    pub max_tensor_bytes: Option<u64>,
}

impl LoadOptions {
    /// Errors when a tensor of `config` cannot fit the device (see [`tensors::device_fit`]).
    pub fn check_fit(&self, config: &Idefics3Config) -> Result<()> {
        match self.max_tensor_bytes {
            Some(m) => tensors::device_fit(config, m).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// A batch of encoded tiles.
pub struct EncodedTiles {
    /// Last encoder block output, before post_layernorm: [tiles, patches, d_v].
    pub pre_ln: Tensor<3>,
    /// Connector output, the LLM input embeddings of the visual tokens: [tiles, tokens, d_t].
    pub features: Tensor<3>,
    pub attentions: Vec<(usize, Tensor<3>)>,
    /// The last encoder block's residual before its MLP: [tiles, patches, d_v].
    pub pre_mlp: Tensor<3>,
}

impl Idefics3 {
    /// Loads `config.json` + `model.safetensors` bytes (the hub's files, unchanged), no device limit.
    pub fn load(config: &Idefics3Config, safetensors: &[u8], device: &Device) -> Result<Self> {
        Self::load_from(config, WeightMap::new(safetensors)?, device, &LoadOptions::default())
    }

    /// The model from `w` (a whole file's bytes, or a reader of its byte ranges), checked against
    /// the tensors `config` describes first; every tensor read must be used. With
    /// `opts.max_tensor_bytes` the vocabulary matrices are split (see [`vocab`]); whether every
    /// other tensor fits is the caller's check, before the weights are read (`LoadOptions::check_fit`).
    pub fn load_from(config: &Idefics3Config, w: WeightMap, device: &Device, opts: &LoadOptions) -> Result<Self> {
        let expected = tensors::checkpoint_tensors(config);
        Self::check_kind(&w, &expected)?;
        w.check(&expected)?;
        let model = Self::from_weights(config, &w, device, opts)?;
        w.finish()?;
        Ok(model)
    }

    /// A file that holds none of the tensors the config describes is not an Idefics3 checkpoint
    /// (or not of this layout): say so before listing all it lacks.
    fn check_kind(w: &WeightMap, expected: &[(String, Vec<usize>)]) -> Result<()> {
        if expected.iter().any(|(name, _)| w.contains(name)) {
            return Ok(());
        }
        let names = w.names();
        let shown: Vec<&str> = names.iter().take(5).map(|s| s.as_str()).collect();
        Err(Error::Checkpoint(format!(
            "this does not look like an Idefics3/SmolVLM checkpoint: it holds none of the {} tensors \
             config.json describes (`{}`, …); its first tensors: {}",
            expected.len(),
            expected.first().map_or("", |(n, _)| n.as_str()),
            shown.join(", ")
        )))
    }

    fn from_weights(config: &Idefics3Config, w: &WeightMap, device: &Device, opts: &LoadOptions) -> Result<Self> {
        let mut load = walk::Load { weights: w, device, max_tensor_bytes: opts.max_tensor_bytes };
        Self::walk(&mut load, config, None)
    }

    /// The one description of the checkpoint's tensors ([`walk`]): `model.vision_model`,
    /// `model.connector`, `model.text_model` and `lm_head`.
    pub fn walk<V: walk::Visitor>(v: &mut V, config: &Idefics3Config, this: Option<&Self>) -> Result<Self> {
        let root = walk::Prefix::root();
        let model = root.pp("model");
        Ok(Self {
            vision: VisionTransformer::walk(v, &model.pp("vision_model"), &config.vision_config, this.map(|s| &s.vision))?,
            connector: Connector::walk(v, &model.pp("connector"), config, this.map(|s| &s.connector))?,
            text: TextModel::walk(
                v,
                &model.pp("text_model"),
                &root.pp("lm_head"),
                &config.text_config,
                config.tied_embeddings(),
                this.map(|s| &s.text),
            )?,
        })
    }

    pub fn device(&self) -> Device {
        self.text.embed_tokens.device()
    }

    /// Encodes tiles [tiles, 3, H, W] to visual-token embeddings.
    pub fn encode(&self, pixels: Tensor<4>, attention_layers: &[usize]) -> EncodedTiles {
        let out = self.vision.forward(pixels, attention_layers);
        // post_layernorm's output feeds the connector only: not kept (an image of 17 tiles would
        // hold 53 MB more at 256M)
        let features = self.connector.forward(self.vision.post_layernorm.forward(out.last_hidden.clone()));
        EncodedTiles {
            pre_ln: out.last_hidden,
            features,
            attentions: out.attentions,
            pre_mlp: out.last_pre_mlp,
        }
    }

    /// Input embeddings [1, n, d_t] for `ids`, with the rows of `image_features` [k, d_t] placed at
    /// the k positions holding `image_token_id`, in order.
    pub fn merge_embeds(&self, ids: &[u32], image_token_id: u32, image_features: Option<Tensor<2>>) -> Result<Tensor<3>> {
        let text = self.text.embed(ids);
        let n = ids.len();
        let n_img = ids.iter().filter(|&&t| t == image_token_id).count();
        let have = image_features.as_ref().map(|f| f.dims()[0]).unwrap_or(0);
        if n_img != have {
            return Err(Error::Prompt(format!(
                "the prompt has {n_img} <image> tokens but {have} image features were given"
            )));
        }
        let merged = match image_features {
            Some(f) if n_img > 0 => {
                let mut k = 0;
                let idx: Vec<i64> = ids
                    .iter()
                    .enumerate()
                    .map(|(p, &t)| {
                        if t == image_token_id {
                            k += 1;
                            (n + k - 1) as i64
                        } else {
                            p as i64
                        }
                    })
                    .collect();
                let device = text.device();
                let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &device);
                Tensor::cat(vec![text, f], 0).select(0, idx)
            }
            _ => text,
        };
        Ok(merged.unsqueeze::<3>())
    }
}
