//! The browser face: wasm-bindgen forwarding to [`Session`], no logic of its own. Structured values
//! cross the boundary as JS objects (serde-wasm-bindgen, JSON-compatible: None is null); errors
//! as JS `Error`s whose message is the library's.

use std::sync::Mutex;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::preprocess::RgbImage;
use crate::prune::{MethodParams, Positions};
use crate::session::Session;
use crate::{Error, LoadOptions, ModelFiles, Vlm};

thread_local! {
    /// The global scope's `performance` (the page's window or a Worker's scope: both have one).
    static PERFORMANCE: web_sys::Performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .expect("the global scope has `performance`")
        .unchecked_into();
}

/// `performance.now()`: milliseconds since the page or Worker started.
fn perf_now() -> f64 {
    PERFORMANCE.with(|p| p.now())
}

/// The message of the last Rust panic. With `panic = "abort"` a panic traps the wasm instance;
/// the Worker reads this to tell the person what happened instead of "unreachable".
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs once when the module is instantiated: console_error_panic_hook logs the panic with its JS
/// stack; the message is kept for `take_panic_message`.
#[wasm_bindgen(start)]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some(info.to_string());
        }
    }));
}

/// The message of the last panic, if any (taken: a second call returns None).
#[wasm_bindgen]
pub fn take_panic_message() -> Option<String> {
    LAST_PANIC.lock().ok().and_then(|mut p| p.take())
}

/// The threaded build's `initThreadPool(n)` (wasm-bindgen-rayon): starts n Web Workers sharing this
/// module's memory as rayon's pool, so flex's kernels run on n threads. Only in the build made with
/// the `wasm-threads` feature, which needs a cross-origin isolated page (SharedArrayBuffer).
#[cfg(feature = "wasm-threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}

/// A JS progress callback as the library's `go_on(done, total)`: called after each step and, when
/// it returns a Promise, awaited; `false` (or a Promise of it) says stop. No callback: go on.
fn go_on(
    on_progress: Option<js_sys::Function>,
) -> impl FnMut(usize, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>> {
    move |done: usize, total: usize| {
        let r = on_progress.as_ref().map(|f| f.call2(&JsValue::NULL, &JsValue::from(done), &JsValue::from(total)));
        Box::pin(async move {
            match r {
                Some(Ok(v)) if v.is_instance_of::<js_sys::Promise>() => {
                    match wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(v)).await {
                        Ok(v) => v != JsValue::FALSE,
                        Err(_) => true,
                    }
                }
                Some(Ok(v)) => v != JsValue::FALSE,
                _ => true,
            }
        })
    }
}

/// Decodes `image` as `WebModel::encode` will, only to tell whether it can, before the page lets
/// it replace the current image: `{width, height}`, or an error saying why not (too large,
/// truncated, a format this build does not read), without the "image: " prefix.
#[wasm_bindgen]
pub fn check_image(image: Vec<u8>) -> Result<JsValue, JsError> {
    match RgbImage::decode(&image) {
        Ok(img) => to_js(&serde_json::json!({ "width": img.width, "height": img.height })),
        Err(Error::Image(m)) => Err(JsError::new(&m)),
        Err(e) => Err(js(e)),
    }
}

/// Whether the model of `config` (config.json's bytes) fits a WebGPU device whose buffers hold at
/// most `max_tensor_bytes` each, before its weights are downloaded: the tensors that will be split
/// ([{name, bytes, blocks}]), or an error naming the tensor that cannot be.
#[wasm_bindgen]
pub fn check_fit(config: Vec<u8>, max_tensor_bytes: f64) -> Result<JsValue, JsError> {
    let c = crate::Idefics3Config::from_json(&config).map_err(js)?;
    to_js(&crate::model::tensors::device_fit(&c, max_tensor_bytes as u64).map_err(js)?)
}

/// A JS object of `MethodParams` keys (undefined or null: the defaults).
fn method_params(params: &JsValue) -> Result<MethodParams, JsError> {
    if params.is_undefined() || params.is_null() {
        return Ok(MethodParams::default());
    }
    if !params.is_object() || js_sys::Array::is_array(params) {
        return Err(JsError::new("the method parameters must be an object, e.g. {seed: 3}"));
    }
    let text = js_sys::JSON::stringify(params).map(String::from).unwrap_or_default();
    MethodParams::from_json(&text).map_err(js)
}

#[wasm_bindgen]
pub struct WebModel {
    session: Session,
    backend: String,
    fallback_reason: Option<String>,
    file_bytes: usize,
    file_metadata: std::collections::BTreeMap<String, String>,
}

#[wasm_bindgen]
impl WebModel {
    /// Loads a model from its files' bytes, the weights read through `read(offset, length)` (a
    /// `Uint8Array` of the file's bytes there: the file stays in JavaScript and only the tensor being
    /// converted is copied into the wasm memory); `head` is the file's beginning (at least the
    /// 8-byte length and the header), `file_len` its size. With `prefer_webgpu` it tries WebGPU
    /// and falls back to burn's CPU backend (flex) when WebGPU cannot start; `backend()` says which
    /// one it got. `max_tensor_bytes`: the WebGPU adapter's largest buffer (see `check_fit`), used
    /// on WebGPU only.
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        config: Vec<u8>,
        head: Vec<u8>,
        file_len: f64,
        read: js_sys::Function,
        tokenizer: Vec<u8>,
        preprocessor: Option<Vec<u8>>,
        generation: Option<Vec<u8>>,
        prefer_webgpu: bool,
        max_tensor_bytes: Option<f64>,
    ) -> Result<WebModel, JsError> {
        let (device, backend, fallback_reason) = crate::device::browser_device(prefer_webgpu).await;
        let file_bytes = file_len as usize;
        let files = ModelFiles { config, safetensors: Vec::new(), tokenizer, preprocessor, generation };
        let opts = LoadOptions {
            max_tensor_bytes: if backend == "webgpu" { max_tensor_bytes.map(|m| m as u64) } else { None },
        };
        let reader = move |offset: usize, len: usize| -> crate::Result<Vec<u8>> {
            let v = read
                .call2(&JsValue::NULL, &JsValue::from(offset as f64), &JsValue::from(len as f64))
                .map_err(|e| Error::Checkpoint(format!("reading the weights failed: {e:?}")))?;
            let bytes: js_sys::Uint8Array =
                v.dyn_into().map_err(|_| Error::Checkpoint("the weights' reader gave no Uint8Array".into()))?;
            Ok(bytes.to_vec())
        };
        let file_metadata = crate::weights::file_metadata(&head);
        let weights = || crate::weights::WeightMap::from_reader(&head, file_bytes, Box::new(reader));
        let vlm = Vlm::load_weights(&files, weights, &device, &opts).map_err(js)?;
        Ok(WebModel { session: Session::new(vlm, perf_now), backend: backend.into(), fallback_reason, file_bytes, file_metadata })
    }

    /// "webgpu" or "cpu (flex)".
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Why the CPU backend is used, when it is.
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// `ModelInfo` plus backend, fallback_reason, safetensors_bytes and safetensors_metadata (the
    /// file's `__metadata__`: `weights: random` for a checkpoint of random weights).
    pub fn info(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Info<'a> {
            backend: &'a str,
            fallback_reason: &'a Option<String>,
            safetensors_bytes: usize,
            safetensors_metadata: &'a std::collections::BTreeMap<String, String>,
            #[serde(flatten)]
            model: crate::session::ModelInfo,
        }
        to_js(&Info {
            backend: &self.backend,
            fallback_reason: &self.fallback_reason,
            safetensors_bytes: self.file_bytes,
            safetensors_metadata: &self.file_metadata,
            model: self.session.info(),
        })
    }

    /// `Session::tiling`: [{max_grid, rows, cols, tiles, visual_tokens}].
    pub fn tiling(&self, width: u32, height: u32) -> Result<JsValue, JsError> {
        to_js(&self.session.tiling(width, height).map_err(js)?)
    }

    /// `Session::encode_until`; after each tile `on_progress(done, total)` is called and, when it
    /// returns a Promise, awaited: it resolving to `false` stops the encode there (an error whose
    /// message starts with "interrupted:"). Returns the `Encoding`.
    pub async fn encode(
        &mut self,
        image: Vec<u8>,
        question: String,
        max_grid: u32,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let encoding = self.session.encode_until(&image, &question, max_grid, go_on(on_progress)).await.map_err(js)?;
        to_js(&encoding)
    }

    /// `Session::evaluate_scene`: one held-out scene (tiled at most `max_grid` x `max_grid`, 0: the
    /// model's own tiling) and its answers for each of `specs` (evaluate's row
    /// names, e.g. "zoo", "cdpruner:plain") x `positions` ("renumber", "keep") x `ratios`, judged
    /// by `rule` ("exact" or "word"). After each answer `on_progress(done, total)` as in `encode`:
    /// `false` stops the scene (then undefined is returned). Returns the `SceneAnswers`.
    #[allow(clippy::too_many_arguments)]
    pub async fn evaluate_scene(
        &mut self,
        image: Vec<u8>,
        max_grid: u32,
        question: String,
        expected: String,
        rule: String,
        specs: Vec<String>,
        positions: Vec<String>,
        ratios: Vec<f64>,
        max_new_tokens: u32,
        on_progress: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let scene = self
            .session
            .evaluate_scene(&image, max_grid, &question, &expected, &rule, &specs, &positions, &ratios, max_new_tokens as usize, go_on(on_progress))
            .await
            .map_err(js)?;
        match scene {
            Some(s) => to_js(&s),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// `Session::set_question`: the new prompt length.
    pub fn set_question(&mut self, question: String) -> Result<u32, JsError> {
        self.session.set_question(&question).map(|n| n as u32).map_err(js)
    }

    pub fn has_encoding(&self) -> bool {
        self.session.has_encoding()
    }
    pub fn has_ranking(&self) -> bool {
        self.session.has_ranking()
    }

    /// `Session::rank` with `params` a JS object of `MethodParams` keys (undefined or null: the
    /// defaults). Returns the `RankReport`.
    pub async fn rank(&mut self, method: String, params: JsValue, budget: String) -> Result<JsValue, JsError> {
        let params = method_params(&params)?;
        to_js(&self.session.rank(&method, &params, &budget).await.map_err(js)?)
    }

    /// `Session::compare`: how `method` (with `params`) agrees with the current ranking.
    pub async fn compare(&mut self, method: String, params: JsValue) -> Result<JsValue, JsError> {
        let params = method_params(&params)?;
        to_js(&self.session.compare(&method, &params).await.map_err(js)?)
    }

    /// `Session::answer`: starts an answer over the first `k` tokens of the ranking; `positions`
    /// "renumber" (also "" or undefined) or "keep".
    pub fn answer(&mut self, k: u32, max_new_tokens: u32, positions: Option<String>) -> Result<(), JsError> {
        let positions = Positions::parse(positions.as_deref().unwrap_or("")).map_err(js)?;
        self.session.answer(k as usize, max_new_tokens as usize, positions).map_err(js)
    }

    /// `Session::next_piece`: the next non-empty piece, or undefined at the end.
    pub async fn next_piece(&mut self) -> Result<Option<String>, JsError> {
        self.session.next_piece().await.map_err(js)
    }

    /// Drops the answer in progress (the Stop button).
    pub fn stop(&mut self) {
        self.session.stop()
    }

    /// The last answer's `Timings`.
    pub fn timings(&self) -> Result<JsValue, JsError> {
        to_js(self.session.timings())
    }
}
