//! The whole question-answering path from the checkpoint's files: load, preprocess, encode the
//! image, build the prompt, and start a streamed greedy answer.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::Idefics3Config;
use crate::error::{Error, Result};
use crate::generate::Generation;
use crate::model::{EncodedTiles, ForwardOptions, Idefics3, LoadOptions};
use crate::prune::apply::{deep_layer_drop, kept_positions, prune_prompt, Positions};
use crate::prune::DeepDrop;
use crate::preprocess::{ProcessedImage, ProcessorConfig, Rect, RgbImage};
use crate::prompt::PromptTokenizer;
use crate::readback::read_floats;
use crate::weights::WeightMap;

/// The hub's files, as bytes (the browser has no filesystem).
pub struct ModelFiles {
    pub config: Vec<u8>,
    pub safetensors: Vec<u8>,
    pub tokenizer: Vec<u8>,
    pub preprocessor: Option<Vec<u8>>,
    pub generation: Option<Vec<u8>>,
}

#[cfg(not(target_family = "wasm"))]
impl ModelFiles {
    /// Reads an HF model folder (config.json, model.safetensors, tokenizer.json, and if present
    /// preprocessor_config.json and generation_config.json).
    pub fn from_dir(dir: &std::path::Path) -> Result<Self> {
        let mut files = Self::from_dir_but_weights(dir)?;
        files.safetensors = read_file(&dir.join("model.safetensors"))?;
        Ok(files)
    }

    /// [`Self::from_dir`] without model.safetensors (left empty): [`Vlm::open`] maps it instead.
    pub fn from_dir_but_weights(dir: &std::path::Path) -> Result<Self> {
        let opt = |name: &str| std::fs::read(dir.join(name)).ok();
        Ok(Self {
            config: read_file(&dir.join("config.json"))?,
            safetensors: Vec::new(),
            tokenizer: read_file(&dir.join("tokenizer.json"))?,
            preprocessor: opt("preprocessor_config.json"),
            generation: opt("generation_config.json"),
        })
    }
}

#[cfg(not(target_family = "wasm"))]
fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| cannot_read(path, e))
}

#[cfg(not(target_family = "wasm"))]
fn cannot_read(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::Checkpoint(format!("cannot read {}: {e}", path.display()))
}

pub struct Vlm {
    pub config: Idefics3Config,
    pub model: Idefics3,
    pub tokenizer: PromptTokenizer,
    pub processor: ProcessorConfig,
    pub device: Device,
}

/// An encoded image: every visual token's LLM embedding and what pruning methods need.
pub struct EncodedImage {
    pub processed: ProcessedImage,
    pub tiles: EncodedTiles,
    pub token_rects: Vec<Rect>,
}

fn eos_from_generation_config(bytes: &[u8]) -> Vec<u32> {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match &v["eos_token_id"] {
        serde_json::Value::Number(n) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => vec![],
    }
}

impl Vlm {
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self> {
        Self::load_with(files, device, &LoadOptions::default())
    }

    /// [`Self::load`] with the device's limits (see [`LoadOptions`]).
    pub fn load_with(files: &ModelFiles, device: &Device, opts: &LoadOptions) -> Result<Self> {
        Self::load_weights(files, || WeightMap::new(&files.safetensors), device, opts)
    }

    /// Loads an HF model folder natively, model.safetensors mapped into memory rather than read
    /// into a buffer: the weights are widened to f32 straight from the page cache (no 500 MB copy of
    /// the file and none of its page faults: the CLI's load 2026-12-04). Same checks and messages
    /// as [`ModelFiles::from_dir`] + [`Self::load_with`].
    #[cfg(not(target_family = "wasm"))]
    pub fn open(dir: &std::path::Path, device: &Device, opts: &LoadOptions) -> Result<Self> {
        let files = ModelFiles::from_dir_but_weights(dir)?;
        let path = dir.join("model.safetensors");
        let cannot = |e| cannot_read(&path, e);
        let file = std::fs::File::open(&path).map_err(cannot)?;
        // SAFETY: the map is only read, and only during this call. Another process truncating the
        // file meanwhile would fault the read (SIGBUS): the contract of every mapping loader
        // (safetensors' own, PyTorch's), accepted for a file the user points the CLI at.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(cannot)?;
        Self::load_weights(&files, || WeightMap::new(&map), device, opts)
    }

    /// [`Self::load_with`] with the weights from `weights` instead of `files.safetensors` (which
    /// is not read): the browser reads them through [`WeightMap::from_reader`], the file staying
    /// outside the wasm memory. The other files are checked first, then whether the model fits the
    /// device, then the weights.
    pub fn load_weights<'a>(
        files: &ModelFiles,
        weights: impl FnOnce() -> Result<WeightMap<'a>>,
        device: &Device,
        opts: &LoadOptions,
    ) -> Result<Self> {
        let config = Idefics3Config::from_json(&files.config)?;
        let tile = config.vision_config.image_size;
        let processor = match &files.preprocessor {
            Some(b) => ProcessorConfig::from_json(b, tile)?,
            None => ProcessorConfig::smolvlm(tile),
        };
        let eos = files.generation.as_deref().map(eos_from_generation_config).unwrap_or_default();
        let tokenizer = PromptTokenizer::from_bytes(&files.tokenizer, config.image_token_id, &eos)?;
        let vocab = tokenizer.tokenizer.get_vocab_size(true);
        if vocab > config.text_config.vocab_size {
            return Err(Error::Tokenizer(format!(
                "tokenizer.json has {vocab} tokens but the model only {}: files of different models?",
                config.text_config.vocab_size
            )));
        }
        opts.check_fit(&config)?;
        let model = Idefics3::load_from(&config, weights()?, device, opts)?;
        Ok(Self { config, model, tokenizer, processor, device: device.clone() })
    }

    /// Visual tokens per tile.
    pub fn image_seq_len(&self) -> usize {
        self.config.tokens_per_tile()
    }

    pub fn preprocess(&self, img: &RgbImage, max_grid: Option<usize>) -> Result<ProcessedImage> {
        let cfg = match max_grid {
            Some(g) => self.processor.clone().with_max_grid(g),
            None => self.processor.clone(),
        };
        ProcessedImage::new(img, &cfg)
    }

    /// Tiles `range` of `img` as a [n, 3, tile, tile] tensor.
    pub fn pixels(&self, img: &ProcessedImage, range: std::ops::Range<usize>) -> Tensor<4> {
        let t = img.tile;
        let per = 3 * t * t;
        let data = img.pixels[range.start * per..range.end * per].to_vec();
        Tensor::from_data(TensorData::new(data, [range.len(), 3, t, t]), &self.device)
    }

    /// Encodes every tile of `img` (vision encoder + connector), `chunk` tiles per vision forward
    /// (bounds memory), with the head-averaged attention maps of `attention_layers`. After each
    /// chunk it waits for the device (one value read back, asynchronously: timers and progress
    /// then follow the encoder's work rather than the queueing of it) and asks `go_on(done, total)`
    /// whether to continue; when it answers false before the last tile the encode stops there
    /// with [`Error::Interrupted`]. The one tile loop: the page's Session, the CLI (through
    /// Session), evaluation and the tools all encode through it.
    pub async fn encode_until<F: std::future::Future<Output = bool>>(
        &self,
        img: ProcessedImage,
        chunk: usize,
        attention_layers: &[usize],
        mut go_on: impl FnMut(usize, usize) -> F,
    ) -> Result<EncodedImage> {
        let n = img.num_tiles;
        let chunk = chunk.max(1);
        let mut parts: Vec<EncodedTiles> = Vec::with_capacity(n.div_ceil(chunk));
        let mut start = 0;
        while start < n {
            let end = (start + chunk).min(n);
            let part = self.model.encode(self.pixels(&img, start..end), attention_layers);
            read_floats(part.features.clone().reshape([-1]).narrow(0, 0, 1)).await?;
            parts.push(part);
            if !go_on(end, n).await && end < n {
                return Err(Error::Interrupted(format!("the encode stopped after tile {end} of {n}")));
            }
            start = end;
        }
        Ok(self.assemble(img, parts))
    }

    /// [`Self::encode_until`] to the last tile, one tile per forward.
    pub async fn encode(&self, img: ProcessedImage, attention_layers: &[usize]) -> Result<EncodedImage> {
        self.encode_until(img, 1, attention_layers, |_, _| std::future::ready(true)).await
    }

    /// Joins the encoded chunks of `img`'s tiles (in tile order) into one [`EncodedImage`].
    fn assemble(&self, img: ProcessedImage, mut parts: Vec<EncodedTiles>) -> EncodedImage {
        let tiles = if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            let cat = |f: &dyn Fn(&EncodedTiles) -> Tensor<3>| {
                Tensor::cat(parts.iter().map(f).collect(), 0)
            };
            let attentions = (0..parts[0].attentions.len())
                .map(|i| (parts[0].attentions[i].0, cat(&|p: &EncodedTiles| p.attentions[i].1.clone())))
                .collect();
            EncodedTiles {
                pre_ln: cat(&|p| p.pre_ln.clone()),
                features: cat(&|p| p.features.clone()),
                pre_mlp: cat(&|p| p.pre_mlp.clone()),
                attentions,
            }
        };
        let vc = &self.config.vision_config;
        let token_rects = img.token_rects(vc.patch_size, self.config.scale_factor);
        EncodedImage { processed: img, tiles, token_rects }
    }

    /// The prompt's ids; an error when they are more than the model's `max_position_embeddings`
    /// (the attention of a longer prompt is also what would exhaust the page's memory).
    pub fn prompt_ids(&self, question: &str, img: &ProcessedImage) -> Result<Vec<u32>> {
        let ids = self.tokenizer.prompt_ids(question, img.rows, img.cols, self.image_seq_len())?;
        let max = self.config.text_config.max_position_embeddings;
        if ids.len() > max {
            let visual = ids.iter().filter(|&&i| i == self.config.image_token_id).count();
            return Err(Error::Prompt(format!(
                "the prompt is {} tokens ({visual} for the image, {} for the question and the chat \
                 template), more than the {max} this model reads: shorten the question or choose \
                 fewer tiles",
                ids.len(),
                ids.len() - visual
            )));
        }
        Ok(ids)
    }

    /// Starts a greedy answer from the prompt `ids` (all `<image>` positions) and `features`
    /// [visual tokens, d_t] of the whole image.
    pub fn start_answer(
        &self,
        ids: &[u32],
        features: Tensor<2>,
        opts: &ForwardOptions,
        max_new_tokens: usize,
    ) -> Result<Generation> {
        let embeds = self.model.merge_embeds(ids, self.config.image_token_id, Some(features))?;
        Ok(Generation::start(&self.model, embeds, opts, max_new_tokens, self.tokenizer.eos_ids.clone()))
    }

    /// Starts a greedy answer that sees only the visual tokens `keep` (ascending indices into
    /// `features` [all visual tokens, d_t]); the prefill really is shorter.
    pub fn start_answer_pruned(
        &self,
        ids: &[u32],
        features: Tensor<2>,
        keep: &[usize],
        deep: Option<&DeepDrop>,
        positions: Positions,
        max_new_tokens: usize,
    ) -> Result<Generation> {
        let p = self.pruned_prefill(ids, features, keep, deep, positions)?;
        Ok(Generation::start(&self.model, p.embeds, &p.opts, max_new_tokens, self.tokenizer.eos_ids.clone()))
    }

    /// What the pruned prefill runs on: the prompt with only the kept `<image>` positions, its input
    /// embeddings (kept visual tokens merged in order), and the deep drop if any. Positions are
    /// contiguous (0..L-1), as the seeds' code does, or with `Positions::Keep` each token's
    /// position in the full prompt (`ForwardOptions::positions`).
    pub fn pruned_prefill(
        &self,
        ids: &[u32],
        features: Tensor<2>,
        keep: &[usize],
        deep: Option<&DeepDrop>,
        positions: Positions,
    ) -> Result<PrunedPrefill> {
        let n = features.dims()[0];
        if keep.is_empty() || keep.iter().any(|&k| k >= n) || keep.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Other(format!(
                "kept tokens must be ascending indices below {n} and at least one"
            )));
        }
        let image = self.config.image_token_id;
        let kept_at = (positions == Positions::Keep).then(|| kept_positions(ids, image, keep));
        let ids = prune_prompt(ids, image, keep);
        let idx: Vec<i64> = keep.iter().map(|&k| k as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [keep.len()]), &self.device);
        let kept = if keep.len() == n { features } else { features.select(0, idx) };
        let opts = ForwardOptions {
            drop: deep.map(|d| deep_layer_drop(&ids, image, d)),
            positions: kept_at,
            ..Default::default()
        };
        let embeds = self.model.merge_embeds(&ids, image, Some(kept))?;
        Ok(PrunedPrefill { ids, embeds, opts })
    }
}

/// Blocking answers (native: tests, evaluation, the built-in model's tooling).
#[cfg(not(target_family = "wasm"))]
impl Vlm {
    /// The greedy answer (decoded, trimmed) from the visual tokens `keep` (ascending indices) of an
    /// encoded image, with the information horizon's deep drop if given.
    pub fn answer_kept(
        &self,
        ids: &[u32],
        encoded: &EncodedImage,
        keep: &[usize],
        deep: Option<&DeepDrop>,
        positions: Positions,
        max_new_tokens: usize,
    ) -> Result<String> {
        let gen = self.start_answer_pruned(ids, encoded.features(), keep, deep, positions, max_new_tokens)?;
        self.finish(gen)
    }

    /// The greedy answer (decoded, trimmed) from all visual tokens.
    pub fn answer_all(&self, ids: &[u32], encoded: &EncodedImage, max_new_tokens: usize) -> Result<String> {
        let gen = self.start_answer(ids, encoded.features(), &ForwardOptions::default(), max_new_tokens)?;
        self.finish(gen)
    }

    fn finish(&self, mut gen: Generation) -> Result<String> {
        while pollster::block_on(gen.next_token(&self.model))?.is_some() {}
        Ok(self.tokenizer.decode(&gen.produced)?.trim().to_string())
    }
}

/// See [`Vlm::pruned_prefill`].
pub struct PrunedPrefill {
    pub ids: Vec<u32>,
    /// [1, ids.len(), d_t]
    pub embeds: Tensor<3>,
    pub opts: ForwardOptions,
}

impl EncodedImage {
    /// All visual-token embeddings in prompt order: [tiles * tokens, d_t].
    pub fn features(&self) -> Tensor<2> {
        let [t, n, d] = self.tiles.features.dims();
        self.tiles.features.clone().reshape([t * n, d])
    }
}
