//! The browser face: thin wasm-bindgen glue between a Web Worker and the library. No model math
//! lives here; everything goes through `Vlm`, `prune::rank`, `Generation` and `TextStream`.
//!
//! The flow is split so that a keep-ratio slider never recomputes anything:
//! `encode` (image + question, once per image) -> `rank` (once per method / parameters / budget
//! mode; returns the full keep order) -> `answer(k)` (a pruned answer keeping the first k of the
//! order) -> `next_piece` (streams). `set_question` changes the question without re-encoding the
//! image. `ask` is the old one-call path (encode + unpruned answer).
//!
//! Only asynchronous readback is used (`Generation::next_token`, `read_floats`, `prune::rank`): a
//! synchronous readback panics on wasm.

use std::cell::RefCell;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::Device;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use crate::generate::{read_floats, Generation};
use crate::model::ForwardOptions;
use crate::pipeline::EncodedImage;
use crate::preprocess::RgbImage;
use crate::prompt::TextStream;
use crate::prune::{self, BudgetMode, Fusion, Method, Proxy, PruneInputs, Ranking};
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

/// The pruning methods' names, as JSON (`prune::Method::NAMES`).
#[wasm_bindgen]
pub fn method_names() -> String {
    serde_json::to_string(Method::NAMES).unwrap_or_default()
}

/// Decodes `image` as `WebModel::encode` will, only to tell whether it can, before the page lets
/// it replace the current image: `{"width", "height"}`, or an error saying why not (too large,
/// truncated, a format this build does not read), without the "image: " prefix.
#[wasm_bindgen]
pub fn check_image(image: Vec<u8>) -> Result<String, JsError> {
    match RgbImage::decode(&image) {
        Ok(img) => Ok(json!({ "width": img.width, "height": img.height }).to_string()),
        Err(Error::Image(m)) => Err(err(m)),
        Err(e) => Err(js(e)),
    }
}

thread_local! {
    /// burn initialises WebGPU once; later loads in the same Worker reuse the device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

fn err(msg: impl Into<String>) -> JsError {
    JsError::new(&msg.into())
}

/// NaN and infinities have no JSON form: null.
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

#[derive(Default, Clone, serde::Serialize)]
struct Timings {
    tiles: usize,
    /// prompt length the LLM saw (after pruning)
    prompt_tokens: usize,
    visual_tokens: usize,
    /// visual tokens the answer saw, and the method that chose them (None: all, unpruned)
    kept_tokens: usize,
    method: Option<String>,
    /// decode + preprocess + tokenise, on the CPU
    preprocess_ms: f64,
    /// vision encoder + connector, until the features are on the device
    encode_ms: f64,
    /// the last ranking (one readback, greedy loops on the CPU)
    rank_ms: Option<f64>,
    /// from the call to `answer` until the first answer token was read back
    first_token_ms: Option<f64>,
    tokens: usize,
    /// decoding speed after the first token: (tokens - 1) / time since the first token
    tokens_per_s: Option<f64>,
    total_ms: Option<f64>,
    /// the KV cache's size after the last token (`Generation::kv_cache_bytes`)
    kv_cache_bytes: Option<usize>,
    finished: bool,
}

/// The encoded image and the prompt built for it: what every ranking and answer starts from.
struct Session {
    encoded: EncodedImage,
    /// full prompt ids (every `<image>` position)
    ids: Vec<u32>,
    /// the question's own ids (prompt-aware relevance)
    question_ids: Vec<u32>,
    preprocess_ms: f64,
    encode_ms: f64,
}

struct Ranked {
    method: Method,
    ranking: Ranking,
    rank_ms: f64,
}

#[wasm_bindgen]
pub struct WebModel {
    vlm: Vlm,
    backend: String,
    fallback_reason: Option<String>,
    file_bytes: usize,
    session: Option<Session>,
    ranked: Option<Ranked>,
    gen: Option<Generation>,
    stream: TextStream,
    timings: Timings,
    t_ask: f64,
    t_first: f64,
}

fn budget_mode(s: &str) -> Result<BudgetMode, JsError> {
    match s {
        "per-tile" | "" => Ok(BudgetMode::PerTile),
        "global" => Ok(BudgetMode::Global),
        other => Err(err(format!("unknown budget mode {other:?}: choose \"per-tile\" or \"global\""))),
    }
}

/// `Method::by_name` with the parameters of `params_json` applied. `seed` is accepted for every
/// method (as the CLI's --seed: methods without randomness ignore it); every other key must be one
/// of the method's own parameters.
fn build_method(name: &str, params_json: &str, vlm: &Vlm) -> Result<Method, JsError> {
    let params: serde_json::Map<String, Value> = if params_json.trim().is_empty() {
        Default::default()
    } else {
        match serde_json::from_str::<Value>(params_json) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(err("the method parameters must be a JSON object, e.g. {\"seed\": 3}")),
            Err(e) => return Err(err(format!("the method parameters are not valid JSON: {e}"))),
        }
    };
    const KNOWN: &[&str] =
        &["seed", "m", "h", "fusion", "proxy", "core_share", "layer", "deep_layer", "deep_keep"];
    for k in params.keys() {
        if !KNOWN.contains(&k.as_str()) {
            return Err(err(format!("unknown method parameter {k:?}; the parameters are {KNOWN:?}")));
        }
    }
    let uint = |k: &str, v: &Value| {
        v.as_u64().ok_or_else(|| err(format!("parameter {k} must be a non-negative integer, got {v}")))
    };
    let real = |k: &str, v: &Value| {
        v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| err(format!("parameter {k} must be a number, got {v}")))
    };
    // an index below `n` layers of `what`
    let layer_of = |k: &str, v: &Value, n: usize, what: &str| -> Result<usize, JsError> {
        let l = uint(k, v)? as usize;
        if l >= n {
            return Err(err(format!("parameter {k}: {what} has {n} layers (0..{}), got {l}", n - 1)));
        }
        Ok(l)
    };
    let fraction = |k: &str, v: &Value| -> Result<f64, JsError> {
        let x = real(k, v)?;
        if !(0.0..=1.0).contains(&x) {
            return Err(err(format!("parameter {k} must be between 0 and 1, got {x}")));
        }
        Ok(x)
    };
    let seed = match params.get("seed") {
        Some(v) => uint("seed", v)?,
        None => 0,
    };
    let mut method = Method::by_name(name, seed).map_err(js)?;
    let text_layers = vlm.config.text_config.num_hidden_layers;
    let vision_layers = vlm.config.vision_config.num_hidden_layers;
    for (k, v) in params.iter().filter(|(k, _)| k.as_str() != "seed") {
        let applied = match (&mut method, k.as_str()) {
            (Method::Zoo { params, .. }, "m") => {
                let m = uint(k, v)?;
                if m == 0 {
                    return Err(err("parameter m (ZOO's number of directions) must be at least 1"));
                }
                params.m = m as usize;
                true
            }
            (Method::Zoo { params, .. }, "h") => {
                let h = real(k, v)?;
                if h <= 0.0 {
                    return Err(err(format!("parameter h (ZOO's step) must be > 0, got {h}")));
                }
                params.h = h;
                true
            }
            (Method::Zoo { fusion, .. }, "fusion") => {
                let s = v.as_str().unwrap_or_default();
                *fusion = Fusion::parse(s).ok_or_else(|| {
                    err(format!("parameter fusion must be \"multiply\", \"sum\" or \"none\", got {v}"))
                })?;
                true
            }
            (Method::Zoo { params, .. }, "proxy") => {
                // the CLI's --proxy names
                params.proxy = Proxy::parse(v.as_str().unwrap_or_default()).ok_or_else(|| {
                    err(format!("parameter proxy must be one of {:?}, got {v}", Proxy::NAMES))
                })?;
                true
            }
            (Method::PromptAware { core_share }, "core_share") => {
                *core_share = fraction(k, v)?;
                true
            }
            (Method::VisionZip { layer }, "layer") => {
                *layer = layer_of(k, v, vision_layers, "the vision encoder")?;
                true
            }
            (Method::FastV { layer }, "layer") => {
                *layer = layer_of(k, v, text_layers, "the language model")?;
                true
            }
            (Method::InfoHorizon { deep_layer, .. }, "deep_layer") => {
                *deep_layer = layer_of(k, v, text_layers, "the language model")?;
                true
            }
            (Method::InfoHorizon { deep_keep, .. }, "deep_keep") => {
                *deep_keep = fraction(k, v)?;
                true
            }
            _ => false,
        };
        if !applied {
            return Err(err(format!("parameter {k} does not apply to the method {}", method.name())));
        }
    }
    // VisionZip's default ("the last layer provided") made explicit: the session may hold the maps
    // of several layers.
    if let Method::VisionZip { layer } = &mut method {
        if *layer == usize::MAX {
            *layer = vision_layers - 1;
        }
    }
    Ok(method)
}

fn method_params(m: &Method) -> Value {
    match m {
        Method::Zoo { params, fusion } => json!({
            "seed": params.seed, "m": params.m, "h": params.h,
            "fusion": format!("{fusion:?}").to_lowercase(),
            "proxy": params.proxy.name(),
            "estimator": format!("{:?}", params.estimator),
        }),
        Method::DivPrune | Method::FeatureNorm => json!({}),
        Method::PromptAware { core_share } => json!({ "core_share": core_share }),
        Method::Random { seed } => json!({ "seed": seed }),
        Method::VisionZip { layer } | Method::FastV { layer } => json!({ "layer": layer }),
        Method::InfoHorizon { deep_layer, deep_keep, seed } => {
            json!({ "deep_layer": if *deep_layer == usize::MAX { Value::Null } else { json!(deep_layer) },
                    "deep_keep": deep_keep, "seed": seed })
        }
    }
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
            session: None,
            ranked: None,
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

    /// JSON: backend, tokens per tile, tile size, layers, parameter count, weight file size, the
    /// pruning methods.
    pub fn info(&self) -> String {
        let c = &self.vlm.config;
        json!({
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
            "methods": Method::NAMES,
            // the methods whose ranking depends on the question (their ranking key includes it)
            "prompt_methods": Method::NAMES.iter().copied()
                .filter(|&n| Method::by_name(n, 0).is_ok_and(|m| m.needs_prompt()))
                .collect::<Vec<_>>(),
            "image_size": c.vision_config.image_size,
            "patch_size": c.vision_config.patch_size,
            "scale_factor": c.scale_factor,
            "longest_edge": self.vlm.processor.longest_edge,
            "image_splitting": self.vlm.processor.do_image_splitting,
            // each method's parameters with their defaults for this model (as `rank` reports them)
            "method_defaults": Method::NAMES.iter().map(|&n| {
                let m = build_method(n, "", &self.vlm).map(|m| method_params(&m)).unwrap_or(Value::Null);
                (n.to_string(), m)
            }).collect::<serde_json::Map<String, Value>>(),
            "proxies": Proxy::NAMES,
            "fusions": ["multiply", "sum", "none"],
        })
        .to_string()
    }

    /// The tile grid of a `width` x `height` image for every tiling choice the page offers
    /// (`max_grid` 0 = the model's own setting, then 1..=4), from `ProcessorConfig::layout`:
    /// JSON [{max_grid, rows, cols, tiles, visual_tokens}], without encoding anything.
    pub fn tiling(&self, width: u32, height: u32) -> Result<String, JsError> {
        if width == 0 || height == 0 {
            return Err(err("the image is empty (0 pixels)"));
        }
        let per_tile = self.vlm.image_seq_len();
        let choices = (0..=4usize)
            .map(|g| {
                let cfg = if g == 0 { self.vlm.processor.clone() } else { self.vlm.processor.clone().with_max_grid(g) };
                let l = cfg.layout(width as usize, height as usize);
                json!({ "max_grid": g, "rows": l.rows, "cols": l.cols, "tiles": l.num_tiles,
                        "visual_tokens": l.num_tiles * per_tile })
            })
            .collect::<Vec<_>>();
        Ok(Value::Array(choices).to_string())
    }

    /// Decodes and preprocesses the image, builds the prompt for `question`, and encodes every
    /// tile (vision encoder + connector). `max_grid` 0 keeps the model's own tiling. Drops any
    /// previous image, ranking and answer, also when it fails.
    ///
    /// Returns JSON: tiles, rows, cols (0 and 0 when the image was not split), tokens_per_tile,
    /// visual_tokens, grid_tokens (the leading tokens that belong to the tile grid; the rest are
    /// the global image's), image_width, image_height, token_rects ([x, y, w, h] in original-image
    /// pixels, one per visual token in prompt order), prompt_tokens, preprocess_ms, encode_ms.
    ///
    /// `on_progress(done, total)` is called after each tile has been computed (its output read
    /// back), so the page can show how far encoding is.
    pub async fn encode(
        &mut self,
        image: Vec<u8>,
        question: String,
        max_grid: u32,
        on_progress: Option<js_sys::Function>,
    ) -> Result<String, JsError> {
        self.gen = None;
        self.session = None;
        self.ranked = None;
        self.stream = TextStream::default();
        self.timings = Timings::default();
        let t0 = perf_now();
        let img = RgbImage::decode(&image).map_err(js)?;
        let grid = if max_grid == 0 { None } else { Some(max_grid as usize) };
        let processed = self.vlm.preprocess(&img, grid).map_err(js)?;
        let ids = self.vlm.prompt_ids(&question, &processed).map_err(js)?;
        let question_ids = self.vlm.tokenizer.question_ids(&question).map_err(js)?;
        let t1 = perf_now();
        let total = processed.num_tiles;
        let mut parts = Vec::with_capacity(total);
        for i in 0..total {
            let part = self.vlm.model.encode(self.vlm.pixels(&processed, i..i + 1), &[]);
            // Wait for the device (async readback of one value) so that progress and encode_ms
            // follow the encoder's work rather than the queueing of it.
            read_floats(part.features.clone().reshape([-1]).narrow(0, 0, 1)).await.map_err(js)?;
            parts.push(part);
            if let Some(f) = &on_progress {
                let _ = f.call2(&JsValue::NULL, &JsValue::from(i + 1), &JsValue::from(total));
            }
        }
        let encoded = self.vlm.assemble(processed, parts);
        let t2 = perf_now();
        self.session = Some(Session { encoded, ids, question_ids, preprocess_ms: t1 - t0, encode_ms: t2 - t1 });
        Ok(self.encoding_json())
    }

    /// Replaces the question of the encoded image (the image is not encoded again). Drops the
    /// ranking when it depended on the question (prompt-aware, FastV); `has_ranking` tells.
    /// Returns the new prompt length. On error (an empty question) nothing changes.
    pub fn set_question(&mut self, question: String) -> Result<u32, JsError> {
        let session = self.session.as_mut().ok_or_else(|| err("no image is encoded yet: call encode first"))?;
        let ids = self.vlm.prompt_ids(&question, &session.encoded.processed).map_err(js)?;
        let question_ids = self.vlm.tokenizer.question_ids(&question).map_err(js)?;
        if session.ids != ids {
            session.ids = ids;
            session.question_ids = question_ids;
            if self.ranked.as_ref().is_some_and(|r| r.method.needs_prompt()) {
                self.ranked = None;
            }
        }
        Ok(session.ids.len() as u32)
    }

    /// Whether an image is encoded.
    pub fn has_encoding(&self) -> bool {
        self.session.is_some()
    }

    /// Whether a ranking of the current image (and question, where it matters) is held.
    pub fn has_ranking(&self) -> bool {
        self.ranked.is_some()
    }

    /// Ranks the encoded image's visual tokens with `method` (one of `method_names()`), its
    /// parameters `params_json` (a JSON object with any of seed, m, h, fusion, proxy, core_share,
    /// layer, deep_layer, deep_keep, valued as the CLI's options; "" or "{}" for the defaults, seed
    /// 0) and `budget_mode` ("per-tile" or "global"). The ranking is kept for `answer`.
    ///
    /// VisionZip needs the vision encoder's attention maps: they are not computed by `encode`
    /// (about 20 % more encoder time for every image); the first VisionZip ranking of an image
    /// runs the encoder again with the maps of its layer and keeps them.
    ///
    /// Returns JSON: method, budget, params (effective), order (the full keep order), scores (null
    /// where the method has none), warnings, deep_drop ({layer, keep, seed} or null), steps
    /// ([{token, score, weight, distance}], null for NaN), rank_ms.
    pub async fn rank(&mut self, method: String, params_json: String, budget: String) -> Result<String, JsError> {
        if self.session.is_none() {
            return Err(err("no image is encoded yet: call encode before rank"));
        }
        let method = build_method(&method, &params_json, &self.vlm)?;
        let mode = budget_mode(&budget)?;
        self.ranked = None;
        if let Method::VisionZip { layer } = &method {
            let layer = *layer;
            let session = self.session.as_mut().expect("checked above");
            if !session.encoded.tiles.attentions.iter().any(|(l, _)| *l == layer) {
                let again = self.vlm.encode(session.encoded.processed.clone(), 1, &[layer], |_, _| {});
                session.encoded.tiles.attentions.extend(again.tiles.attentions);
            }
        }
        let session = self.session.as_ref().expect("checked above");
        let t0 = perf_now();
        let inputs = PruneInputs::new(
            &self.vlm.model,
            &session.encoded.tiles,
            self.vlm.config.image_token_id,
            &session.ids,
            &session.question_ids,
        );
        let ranking = prune::rank(&method, &inputs, mode).await.map_err(js)?;
        let rank_ms = perf_now() - t0;
        let out = json!({
            "method": ranking.method,
            "budget": if mode == BudgetMode::Global { "global" } else { "per-tile" },
            "params": method_params(&method),
            "order": ranking.order,
            "scores": ranking.scores.iter().map(|&v| num(v)).collect::<Vec<_>>(),
            "warnings": ranking.warnings,
            "deep_drop": ranking.deep_drop.as_ref().map(|d| json!({"layer": d.layer, "keep": d.keep, "seed": d.seed})),
            "steps": ranking.steps.iter().map(|s| json!({
                "token": s.token, "score": num(s.score), "weight": num(s.weight), "distance": num(s.distance),
            })).collect::<Vec<_>>(),
            "rank_ms": rank_ms,
        });
        self.ranked = Some(Ranked { method, ranking, rank_ms });
        Ok(out.to_string())
    }

    /// Starts an answer that sees only the first `k` visual tokens of the last ranking (a count,
    /// 1..=visual tokens; with info-horizon also its random drop deep in the LLM). The answer then
    /// comes from `next_piece`. Any previous answer is dropped.
    pub fn answer(&mut self, k: u32, max_new_tokens: u32) -> Result<(), JsError> {
        self.gen = None;
        self.stream = TextStream::default();
        let session = self.session.as_ref().ok_or_else(|| err("no image is encoded yet: call encode first"))?;
        let ranked = self.ranked.as_ref().ok_or_else(|| err("no ranking of this image yet: call rank first"))?;
        let n = ranked.ranking.order.len();
        let k = k as usize;
        if k == 0 || k > n {
            return Err(err(format!("the budget must keep between 1 and {n} visual tokens, got {k}")));
        }
        self.t_ask = perf_now();
        let keep = ranked.ranking.keep(k);
        let gen = self
            .vlm
            .start_answer_pruned(
                &session.ids,
                session.encoded.features(),
                &keep,
                ranked.ranking.deep_drop.as_ref(),
                max_new_tokens as usize,
            )
            .map_err(js)?;
        self.timings = Timings {
            tiles: session.encoded.processed.num_tiles,
            prompt_tokens: gen.prompt_len,
            visual_tokens: n,
            kept_tokens: k,
            method: Some(ranked.ranking.method.clone()),
            preprocess_ms: session.preprocess_ms,
            encode_ms: session.encode_ms,
            rank_ms: Some(ranked.rank_ms),
            ..Timings::default()
        };
        self.gen = Some(gen);
        Ok(())
    }

    /// The one-call path: `encode` then an answer over every visual token (no pruning).
    pub async fn ask(
        &mut self,
        image: Vec<u8>,
        question: String,
        max_grid: u32,
        max_new_tokens: u32,
    ) -> Result<(), JsError> {
        self.encode(image, question, max_grid, None).await?;
        let session = self.session.as_ref().expect("encode succeeded");
        self.t_ask = perf_now();
        let features = session.encoded.features();
        let n = features.dims()[0];
        let gen = self
            .vlm
            .start_answer(&session.ids, features, &ForwardOptions::default(), max_new_tokens as usize)
            .map_err(js)?;
        self.timings = Timings {
            tiles: session.encoded.processed.num_tiles,
            prompt_tokens: gen.prompt_len,
            visual_tokens: n,
            kept_tokens: n,
            preprocess_ms: session.preprocess_ms,
            encode_ms: session.encode_ms,
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
            timings.kv_cache_bytes = Some(g.kv_cache_bytes());
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

    /// JSON timings of the last answer: tiles, prompt_tokens, visual_tokens, kept_tokens, method,
    /// preprocess_ms, encode_ms, rank_ms, first_token_ms, tokens, tokens_per_s, total_ms,
    /// kv_cache_bytes, finished.
    pub fn timings(&self) -> String {
        serde_json::to_string(&self.timings).unwrap_or_default()
    }
}

impl WebModel {
    fn encoding_json(&self) -> String {
        let Some(s) = &self.session else { return "null".into() };
        let p = &s.encoded.processed;
        let n = s.encoded.token_rects.len();
        let per_tile = self.vlm.image_seq_len();
        let grid_tokens = if p.rows * p.cols > 0 { p.rows * p.cols * per_tile } else { n };
        json!({
            "tiles": p.num_tiles,
            "rows": p.rows,
            "cols": p.cols,
            "tokens_per_tile": per_tile,
            "visual_tokens": n,
            "grid_tokens": grid_tokens,
            "image_width": p.original_width,
            "image_height": p.original_height,
            "token_rects": s.encoded.token_rects.iter().map(|r| [r.x, r.y, r.w, r.h]).collect::<Vec<_>>(),
            "prompt_tokens": s.ids.len(),
            "preprocess_ms": s.preprocess_ms,
            "encode_ms": s.encode_ms,
        })
        .to_string()
    }
}
