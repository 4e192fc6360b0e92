//! A scene's background: muted, low-contrast stripes, checks, gradients or noise.

use super::*;

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

    pub(super) fn random(rng: &mut SplitMix64, cfg: &SceneConfig) -> Background {
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

    pub(super) fn pixel(&self, x: usize, y: usize, w: usize, h: usize) -> [u8; 3] {
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
