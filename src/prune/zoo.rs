//! ZOO-Prune's zeroth-order sensitivity (seed 000, Algorithm 1) on SmolVLM.
//!
//! A visual token of SmolVLM is the s x s block of vision patches that the pixel shuffle
//! concatenates ([dh][dw][c], s*s*d_v values). Algorithm 1 perturbs it along m unit-norm Gaussian
//! directions u_j shared by all tokens and measures S(i) = mean_j ||M(x_i + h u_j) - M(x_i - h u_j)|| / 2h.
//!
//! The connector alone (shuffle + one Linear) is linear, so with M = connector every token gets the
//! same S = mean_j ||W u_j||: the literal method is degenerate here ([`Proxy::Linear`], kept only to
//! show this, and flagged). The default proxy puts the encoder's post_layernorm inside M
//! ([`Proxy::PostLayerNorm`]), which the connector receives anyway.
//!
//! Cost: finite differences through the 12288 x 576 Linear for 1088 tokens x 64 directions would
//! cost more than the whole vision encoder. Central differences of a smooth map equal its
//! Jacobian-vector product up to O(h^2), and LayerNorm's JVP has a closed form
//!   J u = gamma * (u - mean(u) - xhat * mean(xhat * u)) / sigma,
//! so with G_q = diag(gamma) W_q (the rows of W that patch q of the block feeds) the response is
//!   W J u_j = sum_q (1/sigma_iq) [ G_q^T (u_jq - mean u_jq) - mean(xhat_iq * u_jq) G_q^T xhat_iq ],
//! where G_q^T (u_jq - mean) does not depend on the token and G_q^T xhat_iq does not depend on the
//! direction: about 1 % of the encoder's FLOPs on SmolVLM-256M instead of several times it.
//! [`Estimator::FiniteDifference`] runs the literal central differences (tests compare the two).

use burn::tensor::{Device, Tensor, TensorData};

use super::rng::gaussian_directions;
use crate::model::layers::LayerNorm;
use crate::model::vision::VisionLayer;
use crate::model::{pixel_shuffle, Idefics3};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// post_layernorm + pixel shuffle + Linear (default).
    PostLayerNorm,
    /// pixel shuffle + Linear only: the literal connector, degenerate (constant sensitivity).
    Linear,
    /// The last encoder block's MLP (with its residual), post_layernorm, shuffle and Linear,
    /// perturbing the residual stream before that MLP. Always literal central differences, and
    /// costly: each direction is one more MLP pass over every patch (m = 64 costs several encoder
    /// passes; use m = 4 to 8).
    LastMlp,
}

impl Proxy {
    /// The names the CLI (`--proxy`) and the page use.
    pub const NAMES: &'static [&'static str] = &["post-ln", "last-mlp", "linear"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "post-ln" => Some(Self::PostLayerNorm),
            "last-mlp" => Some(Self::LastMlp),
            "linear" => Some(Self::Linear),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::PostLayerNorm => "post-ln",
            Self::LastMlp => "last-mlp",
            Self::Linear => "linear",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimator {
    /// Closed-form LayerNorm Jacobian-vector product (the limit h -> 0 of the central difference).
    Jvp,
    /// Literal central differences with step h (slow; the reference).
    FiniteDifference,
}

#[derive(Clone, Debug)]
pub struct ZooParams {
    pub m: usize,
    pub h: f64,
    pub seed: u64,
    pub proxy: Proxy,
    pub estimator: Estimator,
}

impl Default for ZooParams {
    fn default() -> Self {
        Self { m: 64, h: 0.01, seed: 0, proxy: Proxy::PostLayerNorm, estimator: Estimator::Jvp }
    }
}

/// Relative spread (max - min) / mean below which a sensitivity is called constant: then min-max
/// normalisation would turn rounding noise into a ranking. f32 central differences with h = 0.01
/// leave ~1.5e-4 of noise on a constant; the LayerNorm proxy spreads by 10 % and more.
pub const DEGENERATE_SPREAD: f64 = 1e-3;

pub fn is_degenerate(s: &[f64]) -> bool {
    let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = s.iter().sum::<f64>() / s.len().max(1) as f64;
    !(hi - lo > DEGENERATE_SPREAD * mean.abs())
}

/// The m directions as a device tensor [m, s*s, d_v].
pub fn directions(p: &ZooParams, s2: usize, dv: usize, device: &Device) -> Tensor<3> {
    let u: Vec<f32> = gaussian_directions(p.seed, p.m, s2 * dv).into_iter().map(|x| x as f32).collect();
    Tensor::from_data(TensorData::new(u, [p.m, s2, dv]), device)
}

/// The JVP's plan of the last ranking, kept for the next one: it depends on the model's connector
/// and post_layernorm weights and on (seed, m), not on the image, and costs most of a one-tile
/// ranking in the page (drawing 786 k Gaussian directions in f64, then P). One per loaded model
/// (a [`crate::session::Session`] holds it); keyed by (seed, m, s^2, d_v).
#[derive(Default)]
pub struct PlanCache(std::cell::RefCell<Option<(PlanKey, JvpPlan)>>);

/// (seed, m, s^2, d_v): what a plan depends on besides the model.
type PlanKey = (u64, usize, usize, usize);

impl PlanCache {
    /// The plan for these parameters and shapes: the kept one when its key matches, else a new one
    /// (kept in its place).
    fn get(&self, p: &ZooParams, s2: usize, dv: usize, make: impl FnOnce() -> JvpPlan) -> JvpPlan {
        let key = (p.seed, p.m, s2, dv);
        let mut kept = self.0.borrow_mut();
        match kept.as_ref() {
            Some((k, plan)) if *k == key => plan.clone(),
            _ => {
                let plan = make();
                *kept = Some((key, plan.clone()));
                plan
            }
        }
    }

    /// Whether a plan for (seed, m) is kept (for tests).
    pub fn holds(&self, seed: u64, m: usize) -> bool {
        self.0.borrow().as_ref().is_some_and(|((s, mm, _, _), _)| (*s, *mm) == (seed, m))
    }
}

/// Sensitivity of every visual token (device tensor [tiles * tokens]). `input` [tiles, patches,
/// d_v] is the proxy's input: the last encoder states before post_layernorm, or for
/// [`Proxy::LastMlp`] the last block's residual before its MLP. Tiles are processed one at a time
/// to bound memory.
pub fn sensitivity(model: &Idefics3, input: &Tensor<3>, p: &ZooParams) -> Tensor<1> {
    sensitivity_with(model, input, p, None)
}

/// [`sensitivity`], the JVP's plan taken from `plans` when it holds one for these parameters (and
/// left there for the next ranking).
pub fn sensitivity_with(model: &Idefics3, input: &Tensor<3>, p: &ZooParams, plans: Option<&PlanCache>) -> Tensor<1> {
    let pre_ln = input;
    let [t, _, dv] = pre_ln.dims();
    let s = model.connector.scale_factor;
    let w = model.connector.proj.weight.val(); // [s2*dv, dt]
    let ln = &model.vision.post_layernorm;
    let jvp = p.proxy == Proxy::PostLayerNorm && p.estimator == Estimator::Jvp;
    let make = || JvpPlan::new(&directions(p, s * s, dv, &pre_ln.device()), &w, &ln.weight.val(), ln.eps);
    let plan = jvp.then(|| match plans {
        Some(c) => c.get(p, s * s, dv, make),
        None => make(),
    });
    // the other proxies and estimators draw the directions themselves
    let u = plan.is_none().then(|| directions(p, s * s, dv, &pre_ln.device()));
    let per_tile: Vec<Tensor<1>> = (0..t)
        .map(|i| {
            // [1, patches, dv] -> tokens [n, s2, dv] in the connector's [dh][dw][c] order
            let x = pixel_shuffle(pre_ln.clone().narrow(0, i, 1), s);
            let n = x.dims()[1];
            let x = x.reshape([n, s * s, dv]);
            if let Some(plan) = &plan {
                plan.sensitivity(x)
            } else if p.proxy == Proxy::LastMlp {
                let last = model.vision.layers.last().expect("a vision layer");
                last_mlp_fd(x, u.as_ref().expect("drawn above"), &w, last, ln, p.h)
            } else {
                token_sensitivity(x, u.as_ref().expect("drawn above"), &w, ln, p)
            }
        })
        .collect();
    Tensor::cat(per_tile, 0)
}

/// Sensitivity of tokens x [n, s2, d_v] (each token's patches, pre-LN) under the proxy
/// LN (per patch) -> flatten [dh][dw][c] -> x W, with W [s2*d_v, d_t] and directions u [m, s2, d_v].
pub fn token_sensitivity(x: Tensor<3>, u: &Tensor<3>, w: &Tensor<2>, ln: &LayerNorm, p: &ZooParams) -> Tensor<1> {
    let [n, s2, dv] = x.dims();
    let dt = w.dims()[1];
    match (p.proxy, p.estimator) {
        (Proxy::Linear, _) => linear_fd(x, u, w, p.h),
        (Proxy::LastMlp, _) => panic!("the last-MLP proxy needs the model's last block: use `sensitivity`"),
        (Proxy::PostLayerNorm, Estimator::FiniteDifference) => {
            let f = |x: Tensor<4>| {
                let [a, b, _, _] = x.dims();
                ln.forward(x).reshape([a * b, s2 * dv]).matmul(w.clone()).reshape([a, b, dt])
            };
            let xs = x.unsqueeze_dim::<4>(1); // [n, 1, s2, dv]
            let hu = (u.clone() * p.h).unsqueeze::<4>(); // [1, m, s2, dv]
            let delta = (f(xs.clone() + hu.clone()) - f(xs - hu)) / (2.0 * p.h);
            delta.square().sum_dim(2).sqrt().mean_dim(1).reshape([n])
        }
        (Proxy::PostLayerNorm, Estimator::Jvp) => JvpPlan::new(u, w, &ln.weight.val(), ln.eps).sensitivity(x),
    }
}

/// Central differences through the last block's MLP, post_layernorm and the connector, a chunk of
/// directions at a time. x [n, s2, dv] is the residual before the MLP.
fn last_mlp_fd(x: Tensor<3>, u: &Tensor<3>, w: &Tensor<2>, last: &VisionLayer, ln: &LayerNorm, h: f64) -> Tensor<1> {
    let [n, s2, dv] = x.dims();
    let m = u.dims()[0];
    let dt = w.dims()[1];
    let f = |x: Tensor<4>| {
        let [a, b, _, _] = x.dims();
        ln.forward(last.mlp_block(x)).reshape([a * b, s2 * dv]).matmul(w.clone()).reshape([a, b, dt])
    };
    let xs = x.unsqueeze_dim::<4>(1); // [n, 1, s2, dv]
    let chunk = 8;
    let mut sums: Option<Tensor<1>> = None;
    let mut start = 0;
    while start < m {
        let len = chunk.min(m - start);
        let hu = (u.clone().narrow(0, start, len) * h).unsqueeze::<4>(); // [1, len, s2, dv]
        let delta = (f(xs.clone() + hu.clone()) - f(xs.clone() - hu)) / (2.0 * h);
        let part = delta.square().sum_dim(2).sqrt().sum_dim(1).reshape([n]);
        sums = Some(match sums {
            Some(s) => s + part,
            None => part,
        });
        start += len;
    }
    sums.expect("m > 0") / m as f64
}

/// Central differences through shuffle + Linear only: (W(x+hu) - W(x-hu)) / 2h = W u for every
/// token, computed literally.
fn linear_fd(x: Tensor<3>, u: &Tensor<3>, w: &Tensor<2>, h: f64) -> Tensor<1> {
    let [n, s2, dv] = x.dims();
    let m = u.dims()[0];
    let dt = w.dims()[1];
    let flat = x.reshape([n, 1, s2 * dv]);
    let hu = (u.clone() * h).reshape([1, m, s2 * dv]);
    let plus = (flat.clone() + hu.clone()).reshape([n * m, s2 * dv]).matmul(w.clone());
    let minus = (flat - hu).reshape([n * m, s2 * dv]).matmul(w.clone());
    ((plus - minus) / (2.0 * h)).reshape([n, m, dt]).square().sum_dim(2).sqrt().mean_dim(1).reshape([n])
}

/// The token-independent half of the closed-form JVP of post_layernorm + Linear (see the module
/// doc), computed once per image rather than once per tile (and kept across images by a
/// [`PlanCache`]).
#[derive(Clone)]
pub struct JvpPlan {
    /// G_q = diag(gamma) W_q : [s2, dv, dt]
    g: Tensor<3>,
    /// P_q = (u_q - mean u_q) G_q, flattened : [s2, m * dt]
    pq: Tensor<2>,
    /// the directions per patch slot, transposed for c_iqj : [s2, dv, m]
    uq_t: Tensor<3>,
    /// the directions as drawn : [m, s2, dv] (what the CPU kernel reads)
    u: Tensor<3>,
    m: usize,
    dt: usize,
    eps: f64,
}

impl JvpPlan {
    /// u [m, s2, dv] directions, w [s2*dv, dt] connector weight, gamma [dv] post_layernorm weight.
    pub fn new(u: &Tensor<3>, w: &Tensor<2>, gamma: &Tensor<1>, eps: f64) -> Self {
        let [m, s2, dv] = u.dims();
        let dt = w.dims()[1];
        let g = w.clone().reshape([s2, dv, dt]) * gamma.clone().reshape([1, dv, 1]);
        let uq = u.clone().swap_dims(0, 1); // [s2, m, dv]
        let pq = Self::p_on_cpu(&g, u).unwrap_or_else(|| {
            let ut = uq.clone() - uq.clone().mean_dim(2);
            ut.matmul(g.clone()).reshape([s2, m * dt])
        });
        Self { g, pq, uq_t: uq.swap_dims(1, 2), u: u.clone(), m, dt, eps }
    }

    /// P by `crate::cpu::jvp::plan_p` when G and u are f32 on flex (None elsewhere).
    fn p_on_cpu(g: &Tensor<3>, u: &Tensor<3>) -> Option<Tensor<2>> {
        use crate::cpu::flex::{contiguous, dense, tensor};
        let ([s2, dv, dt], m) = (g.dims(), u.dims()[0]);
        let (gp, up) = (dense(g)?, dense(u)?);
        let (gs, us) = (contiguous(&gp)?.get(..s2 * dv * dt)?, contiguous(&up)?.get(..m * s2 * dv)?);
        Some(tensor(crate::cpu::jvp::plan_p(gs, us, s2, dv, dt, m), [s2, m * dt], &g.device()))
    }

    /// The sensitivity by `crate::cpu::jvp` when everything is f32 on flex (None elsewhere).
    fn on_cpu(&self, x: &Tensor<3>) -> Option<Tensor<1>> {
        use crate::cpu::flex::{contiguous, dense, tensor};
        let [n, s2, dv] = x.dims();
        let (xp, gp, pp, up) = (dense(x)?, dense(&self.g)?, dense(&self.pq)?, dense(&self.u)?);
        let (m, dt) = (self.m, self.dt);
        let plan = crate::cpu::jvp::Plan {
            g: contiguous(&gp)?.get(..s2 * dv * dt)?,
            p: contiguous(&pp)?.get(..s2 * m * dt)?,
            u: contiguous(&up)?.get(..m * s2 * dv)?,
            s2,
            dv,
            dt,
            m,
            eps: self.eps as f32,
        };
        let xs = contiguous(&xp)?.get(..n * s2 * dv)?;
        Some(tensor(crate::cpu::jvp::sensitivity(&plan, xs, n), [n], &x.device()))
    }

    /// Sensitivity of tokens x [n, s2, dv] (pre-LN patches): on flex by `crate::cpu::jvp` (the
    /// same algebra on slices), elsewhere in tensor ops.
    pub fn sensitivity(&self, x: Tensor<3>) -> Tensor<1> {
        if let Some(s) = self.on_cpu(&x) {
            return s;
        }
        self.sensitivity_in_tensor_ops(x)
    }

    /// [`Self::sensitivity`] in burn's tensor ops, on any backend.
    fn sensitivity_in_tensor_ops(&self, x: Tensor<3>) -> Tensor<1> {
        let [n, s2, dv] = x.dims();
        let (m, dt) = (self.m, self.dt);
        // per-patch normalisation
        let mean = x.clone().mean_dim(2);
        let c = x - mean;
        let inv_sigma = (c.clone().square().mean_dim(2) + self.eps).sqrt().recip(); // [n, s2, 1]
        let xhat = c * inv_sigma.clone(); // [n, s2, dv]
        // direction-independent part: B_iq = xhat_iq G_q -> [s2, n, dt]
        let xq = xhat.swap_dims(0, 1); // [s2, n, dv]
        let bq = xq.clone().matmul(self.g.clone()); // [s2, n, dt]
        // c_iqj = mean_c(xhat_iq * u_jq) -> [s2, n, m]
        let cq = xq.matmul(self.uq_t.clone()) / dv as f64;
        let alpha = inv_sigma.reshape([n, s2]); // [n, s2]
        // first term: sum_q alpha_iq P_qj -> [n, m, dt]
        let first = alpha.clone().matmul(self.pq.clone()).reshape([n, m, dt]);
        // second term: sum_q (alpha_iq c_iqj) B_iq -> [n, m, dt]
        let beta = cq.swap_dims(0, 1) * alpha.reshape([n, s2, 1]); // [n, s2, m]
        let second = beta.swap_dims(1, 2).matmul(bq.swap_dims(0, 1)); // [n, m, s2] x [n, s2, dt]
        (first - second).square().sum_dim(2).sqrt().mean_dim(1).reshape([n])
    }
}
