//! zoo-prune-web: SmolVLM (HF Idefics3) in burn, natively and on WebGPU, with ZOO-Prune visual
//! token pruning. The same library backs the web page (through `web`), the CLI and the tests.

pub mod accuracy;
#[cfg(feature = "tooling")]
pub mod builtin;
pub mod config;
pub mod cpu;
pub mod device;
pub mod error;
#[cfg(all(feature = "tooling", not(target_family = "wasm")))]
pub mod evaluate;
pub mod generate;
pub mod model;
#[cfg(feature = "tooling")]
pub mod overlay;
pub mod pipeline;
pub mod preprocess;
pub mod prune;
#[cfg(feature = "tooling")]
pub mod random_weights;
#[cfg(feature = "tooling")]
pub mod scenes;
pub mod prompt;
pub mod readback;
pub mod rng;
pub mod session;
pub mod stats;
pub mod weights;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use config::Idefics3Config;
pub use error::{Error, Result};
pub use model::LoadOptions;
pub use pipeline::{ModelFiles, Vlm};
