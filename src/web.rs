//! The browser face: thin wasm-bindgen glue between a Web Worker and the library. No model math
//! lives here; everything goes through `Vlm`, `Generation` and `TextStream`.
//!
//! Only asynchronous readback is used (`Generation::next_token`, `read_floats`): a synchronous
//! readback panics on wasm.

use std::cell::RefCell;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::Device;
use wasm_bindgen::prelude::*;

use crate::generate::{read_floats, Generation};
use crate::model::ForwardOptions;
use crate::preprocess::RgbImage;
use crate::prompt::TextStream;
use crate::{Error, ModelFiles, Vlm};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: exists on the page and in Workers.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn perf_now() -> f64;
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// The message of the last Rust panic. With `panic = "abort"` a panic traps the wasm instance;
/// the Worker reads this to tell the person what happened instead of "unreachable".
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs once when the module is instantiated.
#[wasm_bindgen(start)]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        console_error(&format!("zoo-prune-web panicked: {msg}"));
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some(msg);
        }
    }));
}

/// The message of the last panic, if any (taken: a second call returns None).
#[wasm_bindgen]
pub fn take_panic_message() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|mut p| p.take())
}

thread_local! {
    /// burn initialises WebGPU once; later loads in the same Worker reuse the device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

#[derive(Default, Clone, serde::Serialize)]
struct Timings {
    tiles: usize,
    prompt_tokens: usize,
    visual_tokens: usize,
    /// decode + preprocess + tokenise, on the CPU
    preprocess_ms: f64,
    /// vision encoder + connector, until the features are on the device
    encode_ms: f64,
    /// from the call to `ask` until the first answer token was read back
    first_token_ms: Option<f64>,
    tokens: usize,
    /// decoding speed after the first token: (tokens - 1) / time since the first token
    tokens_per_s: Option<f64>,
    total_ms: Option<f64>,
    finished: bool,
}

#[wasm_bindgen]
pub struct WebModel {
    vlm: Vlm,
    backend: String,
    fallback_reason: Option<String>,
    file_bytes: usize,
    gen: Option<Generation>,
    stream: TextStream,
    timings: Timings,
    t_ask: f64,
    t_first: f64,
}

#[wasm_bindgen]
impl WebModel {
    /// Loads a model from its files' bytes. With `prefer_webgpu` it tries WebGPU and falls back to
    /// burn's CPU backend (flex) when WebGPU cannot start; `backend()` says which one it got.
    pub async fn load(
        config: Vec<u8>,
        safetensors: Vec<u8>,
        tokenizer: Vec<u8>,
        preprocessor: Option<Vec<u8>>,
        generation: Option<Vec<u8>>,
        prefer_webgpu: bool,
    ) -> Result<WebModel, JsError> {
        let mut fallback_reason = None;
        let mut device = None;
        if prefer_webgpu {
            let cached = WEBGPU.with(|d| d.borrow().clone());
            match cached {
                Some(d) => device = Some(d),
                None => match crate::device::webgpu_device().await {
                    Ok(d) => {
                        WEBGPU.with(|c| *c.borrow_mut() = Some(d.clone()));
                        device = Some(d);
                    }
                    Err(e) => fallback_reason = Some(e.to_string()),
                },
            }
        } else {
            fallback_reason = Some("WebGPU not requested".into());
        }
        let backend = if device.is_some() { "webgpu" } else { "cpu (flex)" }.to_string();
        let device = device.unwrap_or_else(Device::flex);
        let file_bytes = safetensors.len();
        let files = ModelFiles { config, safetensors, tokenizer, preprocessor, generation };
        let vlm = Vlm::load(&files, &device).map_err(js)?;
        Ok(WebModel {
            vlm,
            backend,
            fallback_reason,
            file_bytes,
            gen: None,
            stream: TextStream::default(),
            timings: Timings::default(),
            t_ask: 0.0,
            t_first: 0.0,
        })
    }

    /// "webgpu" or "cpu (flex)".
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Why the CPU backend is used, when it is.
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// JSON: backend, tokens per tile, tile size, layers, parameter count, weight file size.
    pub fn info(&self) -> String {
        let c = &self.vlm.config;
        serde_json::json!({
            "backend": self.backend,
            "fallback_reason": self.fallback_reason,
            "tokens_per_tile": self.vlm.image_seq_len(),
            "tile_size": c.vision_config.image_size,
            "vision_layers": c.vision_config.num_hidden_layers,
            "text_layers": c.text_config.num_hidden_layers,
            "text_hidden": c.text_config.hidden_size,
            "vocab_size": c.text_config.vocab_size,
            "params": self.vlm.model.num_params(),
            "safetensors_bytes": self.file_bytes,
        })
        .to_string()
    }

    /// Decodes the image, builds the prompt, encodes the image and queues the prefill; the answer
    /// then comes from `next_piece`. `max_grid` 0 keeps the model's own tiling. Any previous answer
    /// is dropped.
    pub async fn ask(
        &mut self,
        image: Vec<u8>,
        question: String,
        max_grid: u32,
        max_new_tokens: u32,
    ) -> Result<(), JsError> {
        self.gen = None;
        self.stream = TextStream::default();
        self.timings = Timings::default();
        let t0 = perf_now();
        self.t_ask = t0;
        let img = RgbImage::decode(&image).map_err(js)?;
        let grid = if max_grid == 0 { None } else { Some(max_grid as usize) };
        let processed = self.vlm.preprocess(&img, grid).map_err(js)?;
        let ids = self.vlm.prompt_ids(&question, &processed).map_err(js)?;
        let tiles = processed.num_tiles;
        let t1 = perf_now();
        let encoded = self.vlm.encode(processed, 1, &[], |_, _| {});
        let features = encoded.features();
        // Wait for the device so that encode_ms covers the encoder's work (async readback of one row).
        read_floats(features.clone().narrow(0, 0, 1)).await.map_err(js)?;
        let t2 = perf_now();
        let visual_tokens = features.dims()[0];
        let gen = self
            .vlm
            .start_answer(&ids, features, &ForwardOptions::default(), max_new_tokens as usize)
            .map_err(js)?;
        self.timings = Timings {
            tiles,
            prompt_tokens: ids.len(),
            visual_tokens,
            preprocess_ms: t1 - t0,
            encode_ms: t2 - t1,
            ..Timings::default()
        };
        self.gen = Some(gen);
        Ok(())
    }

    /// The next piece of the answer's text, or None when the answer is complete (end of utterance
    /// or `max_new_tokens`). Pieces are never empty.
    pub async fn next_piece(&mut self) -> Result<Option<String>, JsError> {
        let WebModel { vlm, gen, stream, timings, t_ask, t_first, .. } = self;
        let Some(g) = gen.as_mut() else {
            return Ok(None);
        };
        loop {
            let tok = match g.next_token(&vlm.model).await {
                Ok(t) => t,
                Err(e) => {
                    *gen = None;
                    return Err(js(e));
                }
            };
            let now = perf_now();
            let Some(tok) = tok else {
                timings.finished = true;
                timings.total_ms = Some(now - *t_ask);
                *gen = None;
                return Ok(None);
            };
            timings.tokens += 1;
            if timings.tokens == 1 {
                *t_first = now;
                timings.first_token_ms = Some(now - *t_ask);
            } else if now > *t_first {
                timings.tokens_per_s = Some((timings.tokens - 1) as f64 * 1e3 / (now - *t_first));
            }
            let piece = stream.push(&vlm.tokenizer, tok).map_err(js)?;
            if !piece.is_empty() {
                return Ok(Some(piece));
            }
        }
    }

    /// Drops the answer in progress (the Stop button).
    pub fn stop(&mut self) {
        if self.gen.take().is_some() {
            self.timings.total_ms = Some(perf_now() - self.t_ask);
        }
    }

    /// The whole answer text so far.
    pub fn answer_text(&self) -> String {
        self.stream.text().to_string()
    }

    /// JSON timings of the last `ask`: tiles, prompt_tokens, visual_tokens, preprocess_ms,
    /// encode_ms, first_token_ms, tokens, tokens_per_s, total_ms, finished.
    pub fn timings(&self) -> String {
        serde_json::to_string(&self.timings).unwrap_or_default()
    }
}
