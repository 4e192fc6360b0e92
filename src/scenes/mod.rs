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
// Objects
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
}

impl Shape {
    pub const ALL: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Star => "stars",
        }
    }
}

/// Object colours: saturated, or (white, black) far outside the muted background range, so
/// that every object colour is far (RGB distance > 60) from every background / clutter pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    Purple,
    Orange,
    White,
    Black,
}

impl Colour {
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Orange,
        Colour::White,
        Colour::Black,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Purple => "purple",
            Colour::Orange => "orange",
            Colour::White => "white",
            Colour::Black => "black",
        }
    }

    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [215, 25, 35],
            Colour::Green => [30, 170, 50],
            Colour::Blue => [40, 80, 235],
            Colour::Yellow => [245, 235, 40],
            Colour::Purple => [150, 50, 210],
            Colour::Orange => [255, 130, 0],
            Colour::White => [250, 250, 250],
            Colour::Black => [15, 15, 15],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Size {
    Small,
    Large,
}

impl Size {
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }
}

/// One object of a scene.
///
/// The object is drawn inside its square *slot* of `side` pixels,
/// `x in slot_x0..slot_x0 + side` with `slot_x0 = cx - side / 2` (same for y). `(cx, cy)` is a
/// pixel that always has the object's colour. `bbox = (x0, y0, x1, y1)` is the tight box of the
/// rendered pixels, with exclusive ends: every object pixel has `x0 <= x < x1, y0 <= y < y1`,
/// and each of the four edges of the box touches an object pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub shape: Shape,
    pub colour: Colour,
    pub size: Size,
    /// Side of the square slot in pixels.
    pub side: usize,
    pub cx: usize,
    pub cy: usize,
    pub bbox: (usize, usize, usize, usize),
}

// Unit 5-pointed star, point up, image coordinates (y down): outer vertices at angles k*72
// degrees from the top, inner ones in between. sin/cos are tabulated so no libm is involved.
const STAR_OUTER: [(f64, f64); 5] = [
    (0.0, -1.0),
    (0.951_056_516_3, -0.309_016_994_4),
    (0.587_785_252_3, 0.809_016_994_4),
    (-0.587_785_252_3, 0.809_016_994_4),
    (-0.951_056_516_3, -0.309_016_994_4),
];
const STAR_INNER: [(f64, f64); 5] = [
    (0.587_785_252_3, -0.809_016_994_4),
    (0.951_056_516_3, 0.309_016_994_4),
    (0.0, 1.0),
    (-0.951_056_516_3, 0.309_016_994_4),
    (-0.587_785_252_3, -0.809_016_994_4),
];
/// Inner / outer radius. 0.382 is the regular star; fatter points stay visible at 13 px.
const STAR_INNER_RATIO: f64 = 0.52;
/// Half side of the drawn square relative to the slot, so squares do not look bigger than
/// circles of the same size class.
const SQUARE_FILL: f64 = 0.85;

fn in_polygon(px: f64, py: f64, verts: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let mut j = verts.len() - 1;
    for i in 0..verts.len() {
        let (xi, yi) = verts[i];
        let (xj, yj) = verts[j];
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

impl Object {
    /// The square slot `(x0, y0, x1, y1)` (exclusive ends) the shape is drawn in.
    pub fn slot(&self) -> (usize, usize, usize, usize) {
        let x0 = self.cx - self.side / 2;
        let y0 = self.cy - self.side / 2;
        (x0, y0, x0 + self.side, y0 + self.side)
    }

    /// Whether pixel `(x, y)` belongs to the object (point-in-shape test at the pixel centre).
    pub fn covers(&self, x: usize, y: usize) -> bool {
        let (sx0, sy0, sx1, sy1) = self.slot();
        if x < sx0 || x >= sx1 || y < sy0 || y >= sy1 {
            return false;
        }
        let h = self.side as f64 / 2.0;
        let u = (x - sx0) as f64 + 0.5 - h;
        let v = (y - sy0) as f64 + 0.5 - h;
        match self.shape {
            Shape::Circle => u * u + v * v <= h * h,
            Shape::Square => u.abs() <= h * SQUARE_FILL && v.abs() <= h * SQUARE_FILL,
            // Apex up; base = full slot width at the bottom.
            Shape::Triangle => v >= -h && v <= h && u.abs() <= (v + h) / 2.0,
            Shape::Star => {
                // Outer radius so that the star is exactly as wide as the slot; shift it down
                // so that its vertical extent [-r, 0.809 r] is centred in the slot.
                let r = 2.0 * h / (2.0 * 0.951_056_516_3);
                let v = v - r * (1.0 - 0.809_016_994_4) / 2.0;
                let mut verts = [(0.0, 0.0); 10];
                for k in 0..5 {
                    verts[2 * k] = (STAR_OUTER[k].0 * r, STAR_OUTER[k].1 * r);
                    let ri = r * STAR_INNER_RATIO;
                    verts[2 * k + 1] = (STAR_INNER[k].0 * ri, STAR_INNER[k].1 * ri);
                }
                in_polygon(u, v, &verts)
            }
        }
    }

    /// Row-major indices of the `patch x patch` cells of an image `image_width` pixels wide
    /// that intersect the object's bbox (in this scene's own pixel grid: any resizing,
    /// tiling or pixel shuffle of the vision encoder is the caller's business).
    pub fn patches_covered(&self, patch: usize, image_width: usize) -> Vec<usize> {
        assert!(patch > 0);
        let cols = image_width.div_ceil(patch);
        let (x0, y0, x1, y1) = self.bbox;
        let mut out = Vec::new();
        for py in y0 / patch..=(y1 - 1) / patch {
            for px in x0 / patch..=(x1 - 1) / patch {
                out.push(py * cols + px);
            }
        }
        out
    }

    fn centre_x2(&self) -> usize {
        self.bbox.0 + self.bbox.2
    }

    fn centre_y2(&self) -> usize {
        self.bbox.1 + self.bbox.3
    }
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
// Backgrounds
// ---------------------------------------------------------------------------------------------

/// Muted base tones of backgrounds (all channels within 96..=142, low saturation).
const BACKGROUND_BASES: [[u8; 3]; 7] = [
    [118, 118, 118],
    [134, 126, 112],
    [108, 120, 132],
    [114, 128, 110],
    [128, 112, 122],
    [142, 138, 128],
    [98, 104, 110],
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    Horizontal,
    Vertical,
    Diagonal,
    AntiDiagonal,
}

impl Orientation {
    const ALL: [Orientation; 4] = [
        Orientation::Horizontal,
        Orientation::Vertical,
        Orientation::Diagonal,
        Orientation::AntiDiagonal,
    ];

    /// Position along the orientation's axis, and its largest value.
    fn coord(self, x: usize, y: usize, w: usize, h: usize) -> (usize, usize) {
        match self {
            Orientation::Horizontal => (y, h - 1),
            Orientation::Vertical => (x, w - 1),
            Orientation::Diagonal => (x + y, w + h - 2),
            Orientation::AntiDiagonal => (x + (h - 1 - y), w + h - 2),
        }
    }
}

/// The background of a scene (all low contrast, muted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    Plain {
        base: [u8; 3],
    },
    /// Bands `period / 2` pixels wide alternating between `base + delta` and `base - delta`.
    Stripes {
        base: [u8; 3],
        delta: i32,
        period: usize,
        phase: usize,
        orientation: Orientation,
    },
    /// `cell`-pixel squares alternating between `base + delta` and `base - delta`.
    Checker {
        base: [u8; 3],
        delta: i32,
        cell: usize,
        phase: (usize, usize),
    },
    /// Blocky value noise (`cell`-pixel cells, +-`amplitude`) plus +-2 per-pixel grain.
    Noise {
        base: [u8; 3],
        amplitude: i32,
        cell: usize,
        salt: u64,
    },
    /// Linear ramp between two muted tones.
    Gradient {
        from: [u8; 3],
        to: [u8; 3],
        orientation: Orientation,
    },
}

fn shade(base: [u8; 3], d: i32) -> [u8; 3] {
    base.map(|c| (c as i32 + d).clamp(0, 255) as u8)
}

impl Background {
    pub fn name(&self) -> &'static str {
        match self {
            Background::Plain { .. } => "plain",
            Background::Stripes { .. } => "stripes",
            Background::Checker { .. } => "checker",
            Background::Noise { .. } => "noise",
            Background::Gradient { .. } => "gradient",
        }
    }

    fn random(rng: &mut SplitMix64, cfg: &SceneConfig) -> Background {
        let k = (cfg.width.min(cfg.height) / 64).max(1);
        let base = BACKGROUND_BASES[rng.index(BACKGROUND_BASES.len())];
        if !cfg.textured_background {
            return Background::Plain { base };
        }
        match rng.index(4) {
            // Periods / cells that do not divide 8 (or 16), so patch-aligned tokens of the
            // background still differ from one another; random phase.
            0 => {
                let period = k * [6, 10, 12, 14][rng.index(4)];
                Background::Stripes {
                    base,
                    delta: rng.range_incl(8, 14) as i32,
                    period,
                    phase: rng.index(period),
                    orientation: Orientation::ALL[rng.index(4)],
                }
            }
            1 => {
                let cell = k * [3, 5, 6, 7][rng.index(4)];
                Background::Checker {
                    base,
                    delta: rng.range_incl(7, 12) as i32,
                    cell,
                    phase: (rng.index(2 * cell), rng.index(2 * cell)),
                }
            }
            2 => Background::Noise {
                base,
                amplitude: rng.range_incl(8, 14) as i32,
                cell: k * rng.range_incl(2, 4),
                salt: rng.next_u64(),
            },
            _ => {
                let mut to = BACKGROUND_BASES[rng.index(BACKGROUND_BASES.len())];
                if to == base {
                    to = shade(base, 24);
                }
                Background::Gradient {
                    from: base,
                    to,
                    orientation: Orientation::ALL[rng.index(4)],
                }
            }
        }
    }

    fn pixel(&self, x: usize, y: usize, w: usize, h: usize) -> [u8; 3] {
        match *self {
            Background::Plain { base } => base,
            Background::Stripes {
                base,
                delta,
                period,
                phase,
                orientation,
            } => {
                let (t, _) = orientation.coord(x, y, w, h);
                let band = ((t + phase) / (period / 2).max(1)) % 2;
                shade(base, if band == 0 { delta } else { -delta })
            }
            Background::Checker {
                base,
                delta,
                cell,
                phase,
            } => {
                let c = ((x + phase.0) / cell + (y + phase.1) / cell) % 2;
                shade(base, if c == 0 { delta } else { -delta })
            }
            Background::Noise {
                base,
                amplitude,
                cell,
                salt,
            } => {
                let cellv = mix64(salt ^ (((x / cell) as u64) << 32) ^ (y / cell) as u64);
                let coarse = (cellv % (2 * amplitude as u64 + 1)) as i32 - amplitude;
                let grain =
                    (mix64(salt.rotate_left(29) ^ ((x as u64) << 32) ^ y as u64) % 5) as i32 - 2;
                shade(base, coarse + grain)
            }
            Background::Gradient {
                from,
                to,
                orientation,
            } => {
                let (t, tmax) = orientation.coord(x, y, w, h);
                let mut out = [0u8; 3];
                for c in 0..3 {
                    let a = from[c] as i64;
                    let b = to[c] as i64;
                    out[c] = (a + (b - a) * t as i64 / tmax.max(1) as i64) as u8;
                }
                out
            }
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

mod questions;
pub use questions::*;

#[cfg(test)]
mod tests;
