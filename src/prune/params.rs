//! A method's parameters as a person gives them (the page's JSON object, the CLI's flags) and as a
//! ranking reports them. One parser for both faces: every key is checked against the method it is
//! given for and the model's sizes, with a message that names the key.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Fusion, Method, Proxy, RelevanceSign};
use crate::config::Idefics3Config;
use crate::error::{Error, Result};

/// Parameters given for a method; None keeps the method's default. `seed` applies to every method
/// (as the CLI's --seed: methods without randomness ignore it); every other key must be one of
/// the method's own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodParams {
    pub seed: Option<u64>,
    /// ZOO: number of random directions
    pub m: Option<u64>,
    /// ZOO: finite-difference step
    pub h: Option<f64>,
    /// ZOO: "multiply", "sum" or "none"
    pub fusion: Option<String>,
    /// ZOO: the perturbed map (`Proxy::NAMES`)
    pub proxy: Option<String>,
    /// prompt-aware: share of the budget chosen by relevance
    pub core_share: Option<f64>,
    /// VisionZip: vision encoder layer; FastV: language model layer
    pub layer: Option<u64>,
    /// info-horizon: the LLM layer of the random drop, and the share it keeps
    pub deep_layer: Option<u64>,
    pub deep_keep: Option<f64>,
    /// cdpruner: the relevance's sign, "negated" (the official code) or "plain"
    pub relevance: Option<String>,
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Other(msg.into())
}

impl MethodParams {
    pub const KEYS: &'static [&'static str] =
        &["seed", "m", "h", "fusion", "proxy", "core_share", "layer", "deep_layer", "deep_keep", "relevance"];

    /// Parses a JSON object such as `{"m": 8, "fusion": "sum"}`; "" is the defaults.
    pub fn from_json(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Self::from_map(&m),
            Ok(_) => Err(usage("the method parameters must be a JSON object, e.g. {\"seed\": 3}")),
            Err(e) => Err(usage(format!("the method parameters are not valid JSON: {e}"))),
        }
    }

    pub fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let uint = |k: &str, v: &Value| {
            v.as_u64().ok_or_else(|| usage(format!("parameter {k} must be a non-negative integer, got {v}")))
        };
        let real = |k: &str, v: &Value| {
            v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| usage(format!("parameter {k} must be a number, got {v}")))
        };
        let text = |k: &str, v: &Value| {
            v.as_str().map(str::to_string).ok_or_else(|| usage(format!("parameter {k} must be a string, got {v}")))
        };
        let mut p = Self::default();
        for (k, v) in map {
            match k.as_str() {
                "seed" => p.seed = Some(uint(k, v)?),
                "m" => p.m = Some(uint(k, v)?),
                "h" => p.h = Some(real(k, v)?),
                "fusion" => p.fusion = Some(text(k, v)?),
                "proxy" => p.proxy = Some(text(k, v)?),
                "core_share" => p.core_share = Some(real(k, v)?),
                "layer" => p.layer = Some(uint(k, v)?),
                "deep_layer" => p.deep_layer = Some(uint(k, v)?),
                "deep_keep" => p.deep_keep = Some(real(k, v)?),
                "relevance" => p.relevance = Some(text(k, v)?),
                _ => {
                    return Err(usage(format!(
                        "unknown method parameter {k:?}; the parameters are {:?}",
                        Self::KEYS
                    )))
                }
            }
        }
        Ok(p)
    }

    /// The names of the parameters given, `seed` aside.
    fn given(&self) -> Vec<&'static str> {
        let MethodParams { seed: _, m, h, fusion, proxy, core_share, layer, deep_layer, deep_keep, relevance } = self;
        [
            ("m", m.is_some()),
            ("h", h.is_some()),
            ("fusion", fusion.is_some()),
            ("proxy", proxy.is_some()),
            ("core_share", core_share.is_some()),
            ("layer", layer.is_some()),
            ("deep_layer", deep_layer.is_some()),
            ("deep_keep", deep_keep.is_some()),
            ("relevance", relevance.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, given)| given.then_some(k))
        .collect()
    }

    /// `Method::by_name(name)` with these parameters applied, checked against the model's sizes.
    /// VisionZip's default layer ("the last layer provided") is made explicit.
    pub fn build(&self, name: &str, config: &Idefics3Config) -> Result<Method> {
        let mut method = Method::by_name(name, self.seed.unwrap_or(0))?;
        let text_layers = config.text_config.num_hidden_layers;
        let vision_layers = config.vision_config.num_hidden_layers;
        let layer_of = |k: &str, l: u64, n: usize, what: &str| -> Result<usize> {
            if l >= n as u64 {
                return Err(usage(format!("parameter {k}: {what} has {n} layers (0..{}), got {l}", n - 1)));
            }
            Ok(l as usize)
        };
        let fraction = |k: &str, x: f64| -> Result<f64> {
            if !(0.0..=1.0).contains(&x) {
                return Err(usage(format!("parameter {k} must be between 0 and 1, got {x}")));
            }
            Ok(x)
        };
        for key in self.given() {
            let applied = match (&mut method, key) {
                (Method::Zoo { params, .. }, "m") => {
                    let m = self.m.expect("given");
                    if m == 0 {
                        return Err(usage("parameter m (ZOO's number of directions) must be at least 1"));
                    }
                    params.m = m as usize;
                    true
                }
                (Method::Zoo { params, .. }, "h") => {
                    let h = self.h.expect("given");
                    if !(h > 0.0) {
                        return Err(usage(format!("parameter h (ZOO's step) must be > 0, got {h}")));
                    }
                    params.h = h;
                    true
                }
                (Method::Zoo { fusion, .. }, "fusion") => {
                    let s = self.fusion.as_deref().expect("given");
                    *fusion = Fusion::parse(s).ok_or_else(|| {
                        usage(format!("parameter fusion must be one of {:?}, got {s:?}", Fusion::NAMES))
                    })?;
                    true
                }
                (Method::Zoo { params, .. }, "proxy") => {
                    let s = self.proxy.as_deref().expect("given");
                    params.proxy = Proxy::parse(s).ok_or_else(|| {
                        usage(format!("parameter proxy must be one of {:?}, got {s:?}", Proxy::NAMES))
                    })?;
                    true
                }
                (Method::PromptAware { core_share }, "core_share") => {
                    *core_share = fraction(key, self.core_share.expect("given"))?;
                    true
                }
                (Method::VisionZip { layer }, "layer") => {
                    *layer = Some(layer_of(key, self.layer.expect("given"), vision_layers, "the vision encoder")?);
                    true
                }
                (Method::FastV { layer }, "layer") => {
                    *layer = layer_of(key, self.layer.expect("given"), text_layers, "the language model")?;
                    true
                }
                (Method::InfoHorizon { deep_layer, .. }, "deep_layer") => {
                    *deep_layer =
                        Some(layer_of(key, self.deep_layer.expect("given"), text_layers, "the language model")?);
                    true
                }
                (Method::InfoHorizon { deep_keep, .. }, "deep_keep") => {
                    *deep_keep = fraction(key, self.deep_keep.expect("given"))?;
                    true
                }
                (Method::CdPruner { sign }, "relevance") => {
                    let s = self.relevance.as_deref().expect("given");
                    *sign = RelevanceSign::parse(s).ok_or_else(|| {
                        usage(format!("parameter relevance must be one of {:?}, got {s:?}", RelevanceSign::NAMES))
                    })?;
                    true
                }
                _ => false,
            };
            if !applied {
                return Err(usage(format!("parameter {key} does not apply to the method {}", method.name())));
            }
        }
        if let Method::VisionZip { layer } = &mut method {
            layer.get_or_insert(vision_layers - 1);
        }
        Ok(method)
    }
}

/// A method's parameters as a ranking used them: only the method's own keys are present.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct EffectiveParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// info-horizon: Some(None) (null) = 2/3 of the LLM's depth, chosen when ranking
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep_layer: Option<Option<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep_keep: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<&'static str>,
}

impl Method {
    pub fn effective_params(&self) -> EffectiveParams {
        let none = EffectiveParams::default();
        match self {
            Method::Zoo { params, fusion } => EffectiveParams {
                seed: Some(params.seed),
                m: Some(params.m),
                h: Some(params.h),
                fusion: Some(fusion.name()),
                proxy: Some(params.proxy.name()),
                estimator: Some(format!("{:?}", params.estimator)),
                ..none
            },
            Method::DivPrune | Method::FeatureNorm => none,
            Method::CdPruner { sign } => EffectiveParams { relevance: Some(sign.name()), ..none },
            Method::PromptAware { core_share } => EffectiveParams { core_share: Some(*core_share), ..none },
            Method::Random { seed } => EffectiveParams { seed: Some(*seed), ..none },
            Method::VisionZip { layer } => EffectiveParams { layer: *layer, ..none },
            Method::FastV { layer } => EffectiveParams { layer: Some(*layer), ..none },
            Method::InfoHorizon { deep_layer, deep_keep, seed } => EffectiveParams {
                deep_layer: Some(*deep_layer),
                deep_keep: Some(*deep_keep),
                seed: Some(*seed),
                ..none
            },
        }
    }
}
