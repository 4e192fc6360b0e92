//! Seeded synthetic scenes and templated questions with one-word answers, for training and
//! testing a small VLM of the SmolVLM / Idefics3 architecture.
//!
//! Everything here is pure Rust with no dependencies, and exactly reproducible: a scene is a
//! function of `(seed, SceneConfig)` only, rendered with integer / IEEE `+ - * /` arithmetic (no
//! transcendental functions, no platform RNG), so native and wasm builds give identical pixels.
//!
//! * [`Scene::generate`] places 2..=5 (configurable) non-overlapping objects (4 shapes x 8
//!   colours x 2 sizes) on a muted, low-contrast textured background with a little grey
//!   clutter, and renders them into an RGB8 buffer (`width * height * 3`, row-major).
//! * [`Scene::questions`] lists every question the templates can ask about a scene (answers
//!   are one word, always correct and never ambiguous); [`Scene::sample_qa`] picks a
//!   [`QaKind`] uniformly, then an instance (existence questions balanced yes/no).
//! * [`scene_seed`] maps `(Split, index)` to a seed; the three splits never share a seed.
//! * [`vocabulary`] lists every word of every question and answer (`?` is its own token; see
//!   [`tokenize`]), for building a word-level tokenizer.

use std::ops::RangeInclusive;

// ---------------------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------------------

pub use crate::rng::{mix64, SplitMix64};

// Salts so that the scene, its question list and the sampling draw independent streams.
const SCENE_SALT: u64 = 0x5CE4_E000_0000_0001;
const QUESTIONS_SALT: u64 = 0x0A5C_0000_0000_0002;
const SAMPLE_SALT: u64 = 0x5A4D_0000_0000_0003;

fn rng_for(seed: u64, salt: u64) -> SplitMix64 {
    SplitMix64::new(mix64(seed ^ salt))
}

// ---------------------------------------------------------------------------------------------
// Splits
// ---------------------------------------------------------------------------------------------

/// Dataset split. Each split owns a disjoint set of scene seeds (see [`scene_seed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    fn tag(self) -> u64 {
        match self {
            Split::Train => 1,
            Split::Validation => 2,
            Split::Test => 3,
        }
    }
}

/// Indices passed to [`scene_seed`] must be below this (2^62).
pub const MAX_SPLIT_INDEX: u64 = 1 << 62;

/// The seed of scene number `index` of `split`: `mix64((tag << 62) | index)` with tags
/// Train = 1, Validation = 2, Test = 3.
///
/// The input `(tag << 62) | index` is distinct for every `(split, index)` with
/// `index < 2^62`, and [`mix64`] is a bijection, so the three splits can never share a seed
/// (and no two indices of one split share one). The mixing makes neighbouring indices give
/// unrelated seeds. Panics if `index >= MAX_SPLIT_INDEX`.
pub fn scene_seed(split: Split, index: u64) -> u64 {
    assert!(index < MAX_SPLIT_INDEX, "scene index {index} >= 2^62");
    mix64((split.tag() << 62) | index)
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// How scenes are generated. Build with [`SceneConfig::sized`] (or `default()`, 64x64) and
/// adjust the public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneConfig {
    pub width: usize,
    pub height: usize,
    /// Number of objects, drawn uniformly from this range. At most 10 (count answers go up to
    /// "ten"). If an object cannot be placed (after trying a small one), it is dropped, so a
    /// very crowded configuration can give fewer objects than asked for.
    pub objects: RangeInclusive<usize>,
    /// Slot side of small / large objects in pixels.
    pub small_px: usize,
    pub large_px: usize,
    /// Minimum gap in pixels between two object slots, and between a slot and the image border.
    /// Also the dead band around the image's middle lines for left/right/top/bottom questions.
    pub margin_px: usize,
    /// Low-contrast stripes / checker / noise / gradient backgrounds instead of a plain one.
    pub textured_background: bool,
    /// Small grey dots and line segments that are not objects.
    pub clutter: bool,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self::sized(64, 64)
    }
}

impl SceneConfig {
    /// A config for `width x height` images, with object sizes scaled from the 64x64 ones
    /// (small 13 px, large 21 px, margin 3 px; odd sides keep shapes symmetric on the pixel grid), 2..=5 objects, texture and clutter on.
    pub fn sized(width: usize, height: usize) -> Self {
        let s = width.min(height);
        Self {
            width,
            height,
            objects: 2..=5,
            small_px: ((13 * s + 32) / 64).max(6),
            large_px: ((21 * s + 32) / 64).max(8),
            margin_px: ((3 * s + 32) / 64).max(2),
            textured_background: true,
            clutter: true,
        }
    }

    /// Plain background, no clutter.
    pub fn plain(mut self) -> Self {
        self.textured_background = false;
        self.clutter = false;
        self
    }

    pub fn with_objects(mut self, objects: RangeInclusive<usize>) -> Self {
        self.objects = objects;
        self
    }

    fn validate(&self) {
        assert!(
            self.objects.start() <= self.objects.end(),
            "empty object range {:?}",
            self.objects
        );
        assert!(
            *self.objects.end() <= 10,
            "at most 10 objects (count answers stop at ten)"
        );
        assert!(
            self.small_px >= 6 && self.small_px <= self.large_px,
            "bad object sizes"
        );
        assert!(
            self.large_px + 2 * self.margin_px <= self.width.min(self.height),
            "objects of {} px with margin {} do not fit a {}x{} image",
            self.large_px,
            self.margin_px,
            self.width,
            self.height
        );
    }

    fn side(&self, size: Size) -> usize {
        match size {
            Size::Small => self.small_px,
            Size::Large => self.large_px,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenes
// ---------------------------------------------------------------------------------------------

/// A rendered scene.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scene {
    pub seed: u64,
    pub config: SceneConfig,
    pub width: usize,
    pub height: usize,
    pub background: Background,
    pub objects: Vec<Object>,
    /// RGB8, row-major, `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// Attempts at a random position per object and size before giving up on it.
const PLACE_ATTEMPTS: usize = 200;

fn slots_apart(
    a: (usize, usize, usize, usize),
    b: (usize, usize, usize, usize),
    gap: usize,
) -> bool {
    a.2 + gap <= b.0 || b.2 + gap <= a.0 || a.3 + gap <= b.1 || b.3 + gap <= a.1
}

impl Scene {
    /// Generates and renders the scene of `seed`. Deterministic: the same `(seed, cfg)` gives
    /// the same objects and the same pixels on every platform.
    pub fn generate(seed: u64, cfg: &SceneConfig) -> Scene {
        cfg.validate();
        let (w, h) = (cfg.width, cfg.height);
        let m = cfg.margin_px;
        let mut rng = rng_for(seed, SCENE_SALT);

        let background = Background::random(&mut rng, cfg);

        // Objects: draw attributes, then rejection-sample a slot that keeps `margin_px` from
        // the border and from every earlier slot; fall back to small, else drop the object.
        let n = rng.range_incl(*cfg.objects.start(), *cfg.objects.end());
        let mut objects: Vec<Object> = Vec::with_capacity(n);
        for _ in 0..n {
            let shape = Shape::ALL[rng.index(Shape::ALL.len())];
            let colour = Colour::ALL[rng.index(Colour::ALL.len())];
            let mut size = Size::ALL[rng.index(Size::ALL.len())];
            let mut placed = None;
            'sizes: loop {
                let side = cfg.side(size);
                for _ in 0..PLACE_ATTEMPTS {
                    let x0 = rng.range_incl(m, w - m - side);
                    let y0 = rng.range_incl(m, h - m - side);
                    let slot = (x0, y0, x0 + side, y0 + side);
                    if objects.iter().all(|o| slots_apart(o.slot(), slot, m)) {
                        placed = Some((x0, y0, side));
                        break 'sizes;
                    }
                }
                if size == Size::Large {
                    size = Size::Small;
                } else {
                    break;
                }
            }
            if let Some((x0, y0, side)) = placed {
                let mut o = Object {
                    shape,
                    colour,
                    size,
                    side,
                    cx: x0 + side / 2,
                    cy: y0 + side / 2,
                    bbox: (0, 0, 0, 0),
                };
                let (mut bx0, mut by0, mut bx1, mut by1) = (usize::MAX, usize::MAX, 0, 0);
                for y in y0..y0 + side {
                    for x in x0..x0 + side {
                        if o.covers(x, y) {
                            bx0 = bx0.min(x);
                            by0 = by0.min(y);
                            bx1 = bx1.max(x + 1);
                            by1 = by1.max(y + 1);
                        }
                    }
                }
                o.bbox = (bx0, by0, bx1, by1);
                objects.push(o);
            }
        }

        // Background.
        let mut pixels = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let p = background.pixel(x, y, w, h);
                pixels[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&p);
            }
        }

        // Clutter: grey dots and short lines, 55 grey levels from the local background, kept
        // one pixel away from every object slot so silhouettes stay clean.
        if cfg.clutter {
            let k = (w.min(h) / 64).max(1);
            let blocked = |x: usize, y: usize| {
                objects.iter().any(|o| {
                    let (x0, y0, x1, y1) = o.slot();
                    x + 1 >= x0 && x <= x1 && y + 1 >= y0 && y <= y1
                })
            };
            let count = rng.range_incl(w * h / 700, w * h / 350);
            for _ in 0..count {
                let x = rng.index(w);
                let y = rng.index(h);
                let i = (y * w + x) * 3;
                let lum = (pixels[i] as i32 + pixels[i + 1] as i32 + pixels[i + 2] as i32) / 3;
                let mut g = if rng.coin() { lum + 55 } else { lum - 55 };
                if g > 200 {
                    g = lum - 55;
                } else if g < 55 {
                    g = lum + 55;
                }
                let g = g.clamp(55, 200) as u8;
                let mut cells: Vec<(usize, usize)> = Vec::new();
                if rng.index(3) == 0 {
                    let s = k * rng.range_incl(1, 2);
                    for dy in 0..s {
                        for dx in 0..s {
                            cells.push((x + dx, y + dy));
                        }
                    }
                } else {
                    let len = k * rng.range_incl(3, 5);
                    let dir = rng.index(4);
                    for t in 0..len {
                        for th in 0..k {
                            let (px, py) = match dir {
                                0 => (x as isize + t as isize, y as isize + th as isize),
                                1 => (x as isize + th as isize, y as isize + t as isize),
                                2 => (
                                    x as isize + t as isize + th as isize,
                                    y as isize + t as isize,
                                ),
                                _ => (
                                    x as isize - t as isize + th as isize,
                                    y as isize + t as isize,
                                ),
                            };
                            if px >= 0 && py >= 0 {
                                cells.push((px as usize, py as usize));
                            }
                        }
                    }
                }
                for (px, py) in cells {
                    if px < w && py < h && !blocked(px, py) {
                        let j = (py * w + px) * 3;
                        pixels[j..j + 3].copy_from_slice(&[g, g, g]);
                    }
                }
            }
        }

        // Objects (slots never overlap, so the order does not matter).
        for o in &objects {
            let rgb = o.colour.rgb();
            let (x0, y0, x1, y1) = o.slot();
            for y in y0..y1 {
                for x in x0..x1 {
                    if o.covers(x, y) {
                        let j = (y * w + x) * 3;
                        pixels[j..j + 3].copy_from_slice(&rgb);
                    }
                }
            }
        }

        Scene {
            seed,
            config: cfg.clone(),
            width: w,
            height: h,
            background,
            objects,
            pixels,
        }
    }

    /// The RGB value of pixel `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }
}

mod background;
mod objects;
mod questions;
pub use background::*;
pub use objects::*;
pub use questions::*;

#[cfg(test)]
mod tests;
