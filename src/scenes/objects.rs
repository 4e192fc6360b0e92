//! The objects of a scene: four shapes, eight colours, two sizes, each drawn inside its square
//! slot (exact arithmetic, no libm).


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

    pub(super) fn centre_x2(&self) -> usize {
        self.bbox.0 + self.bbox.2
    }

    pub(super) fn centre_y2(&self) -> usize {
        self.bbox.1 + self.bbox.3
    }
}
