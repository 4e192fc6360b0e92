//! The templated questions about a scene, with one-word answers: the templates ([`QaKind`]),
//! every question a scene allows ([`Scene::questions`]), the sampling, and the vocabulary.

use super::*;

impl Scene {
    /// Indices of the objects matching every given attribute.
    fn matching(
        &self,
        size: Option<Size>,
        colour: Option<Colour>,
        shape: Option<Shape>,
    ) -> Vec<usize> {
        (0..self.objects.len())
            .filter(|&i| {
                let o = &self.objects[i];
                size.is_none_or(|s| o.size == s)
                    && colour.is_none_or(|c| o.colour == c)
                    && shape.is_none_or(|s| o.shape == s)
            })
            .collect()
    }

    /// A unique referring phrase (without "the") for object `i` using its colour and / or
    /// shape ("object" stands in for a missing shape), adding the size if `allow_size` and
    /// that is needed to make it unique. `None` if it cannot be made unique.
    fn refer(
        &self,
        i: usize,
        use_colour: bool,
        use_shape: bool,
        allow_size: bool,
    ) -> Option<String> {
        let o = &self.objects[i];
        let colour = use_colour.then_some(o.colour);
        let shape = use_shape.then_some(o.shape);
        let noun = if use_shape { o.shape.name() } else { "object" };
        let colour_word = if use_colour {
            format!("{} ", o.colour.name())
        } else {
            String::new()
        };
        if self.matching(None, colour, shape).len() == 1 {
            Some(format!("{colour_word}{noun}"))
        } else if allow_size && self.matching(Some(o.size), colour, shape).len() == 1 {
            Some(format!("{} {colour_word}{noun}", o.size.name()))
        } else {
            None
        }
    }

    /// Every question the templates can ask about this scene, grouped by kind in
    /// [`QaKind::ALL`] order. `seed` picks the absent colour of one count question and the
    /// negatives of the existence questions (as many "no" as "yes", at least one each way
    /// when possible). See [`QaKind`] for the templates and the `about` convention.
    pub fn questions(&self, seed: u64) -> Vec<Qa> {
        let mut rng = rng_for(seed, QUESTIONS_SALT);
        let objs = &self.objects;
        let mut out = Vec::new();
        let qa = |question: String, answer: &str, kind: QaKind, about: Vec<usize>| Qa {
            question,
            answer: answer.to_string(),
            kind,
            about,
        };

        // ColourOfShape.
        for (i, o) in objs.iter().enumerate() {
            if let Some(r) = self.refer(i, false, true, true) {
                out.push(qa(
                    format!("what colour is the {r}?"),
                    o.colour.name(),
                    QaKind::ColourOfShape,
                    vec![i],
                ));
            }
        }

        // ShapeOfColour.
        for (i, o) in objs.iter().enumerate() {
            if let Some(r) = self.refer(i, true, false, true) {
                out.push(qa(
                    format!("what shape is the {r}?"),
                    o.shape.name(),
                    QaKind::ShapeOfColour,
                    vec![i],
                ));
            }
        }

        // Count: every shape, every present colour plus one absent colour, all objects.
        for s in Shape::ALL {
            let m = self.matching(None, None, Some(s));
            out.push(qa(
                format!("how many {} are there?", s.plural()),
                NUMBERS[m.len()],
                QaKind::Count,
                m,
            ));
        }
        let absent: Vec<Colour> = Colour::ALL
            .into_iter()
            .filter(|c| self.matching(None, Some(*c), None).is_empty())
            .collect();
        let absent_pick = if absent.is_empty() {
            None
        } else {
            Some(absent[rng.index(absent.len())])
        };
        for c in Colour::ALL {
            let m = self.matching(None, Some(c), None);
            if !m.is_empty() || Some(c) == absent_pick {
                out.push(qa(
                    format!("how many {} objects are there?", c.name()),
                    NUMBERS[m.len()],
                    QaKind::Count,
                    m,
                ));
            }
        }
        out.push(qa(
            "how many objects are there?".to_string(),
            NUMBERS[objs.len()],
            QaKind::Count,
            (0..objs.len()).collect(),
        ));

        // Exists: every present (colour, shape) pair, and as many absent ones, preferring
        // near misses (the colour or the shape is present, on another object).
        let mut present = Vec::new();
        let mut near_miss = Vec::new();
        let mut far = Vec::new();
        for c in Colour::ALL {
            for s in Shape::ALL {
                if !self.matching(None, Some(c), Some(s)).is_empty() {
                    present.push((c, s));
                } else if objs.iter().any(|o| o.colour == c || o.shape == s) {
                    near_miss.push((c, s));
                } else {
                    far.push((c, s));
                }
            }
        }
        rng.shuffle(&mut near_miss);
        rng.shuffle(&mut far);
        let negatives: Vec<(Colour, Shape)> = near_miss
            .into_iter()
            .chain(far)
            .take(present.len().max(1))
            .collect();
        for (c, s) in present {
            let m = self.matching(None, Some(c), Some(s));
            out.push(qa(
                format!("is there {} {} {}?", article(c.name()), c.name(), s.name()),
                "yes",
                QaKind::Exists,
                m,
            ));
        }
        for (c, s) in negatives {
            out.push(qa(
                format!("is there {} {} {}?", article(c.name()), c.name(), s.name()),
                "no",
                QaKind::Exists,
                vec![],
            ));
        }

        // Side: only objects lying entirely in one half, at least `margin_px` from the middle.
        let (w, h, m) = (self.width, self.height, self.config.margin_px);
        for (i, o) in objs.iter().enumerate() {
            let Some(r) = self.refer(i, true, true, true) else {
                continue;
            };
            let (x0, y0, x1, y1) = o.bbox;
            if 2 * (x1 + m) <= w {
                out.push(qa(
                    format!("is the {r} on the left or the right?"),
                    "left",
                    QaKind::Side,
                    vec![i],
                ));
            } else if 2 * x0 >= w + 2 * m {
                out.push(qa(
                    format!("is the {r} on the left or the right?"),
                    "right",
                    QaKind::Side,
                    vec![i],
                ));
            }
            if 2 * (y1 + m) <= h {
                out.push(qa(
                    format!("is the {r} at the top or the bottom?"),
                    "top",
                    QaKind::Side,
                    vec![i],
                ));
            } else if 2 * y0 >= h + 2 * m {
                out.push(qa(
                    format!("is the {r} at the top or the bottom?"),
                    "bottom",
                    QaKind::Side,
                    vec![i],
                ));
            }
        }

        // Size: referred to by colour and shape only (the size would give the answer away).
        for (i, o) in objs.iter().enumerate() {
            if let Some(r) = self.refer(i, true, true, false) {
                out.push(qa(
                    format!("is the {r} small or large?"),
                    o.size.name(),
                    QaKind::Size,
                    vec![i],
                ));
            }
        }

        // Relation: the single object entirely on one side of an anchor, asked only when no
        // other object's centre is on that side of the anchor's centre.
        for a in 0..objs.len() {
            let Some(r) = self.refer(a, true, true, true) else {
                continue;
            };
            for dir in Direction::ALL {
                if let Some(t) = self.relation_target(a, dir) {
                    let d = dir.phrase();
                    out.push(qa(
                        format!("what colour is the shape {d} the {r}?"),
                        objs[t].colour.name(),
                        QaKind::Relation,
                        vec![t, a],
                    ));
                    out.push(qa(
                        format!("what shape is the object {d} the {r}?"),
                        objs[t].shape.name(),
                        QaKind::Relation,
                        vec![t, a],
                    ));
                }
            }
        }

        out
    }

    /// The unique object `dir` of object `a`, if the relation is unambiguous.
    fn relation_target(&self, a: usize, dir: Direction) -> Option<usize> {
        let oa = &self.objects[a];
        let mut clear = None;
        for (j, o) in self.objects.iter().enumerate() {
            if j == a {
                continue;
            }
            let (entirely, centre) = match dir {
                Direction::Left => (o.bbox.2 <= oa.bbox.0, o.centre_x2() < oa.centre_x2()),
                Direction::Right => (o.bbox.0 >= oa.bbox.2, o.centre_x2() > oa.centre_x2()),
                Direction::Above => (o.bbox.3 <= oa.bbox.1, o.centre_y2() < oa.centre_y2()),
                Direction::Below => (o.bbox.1 >= oa.bbox.3, o.centre_y2() > oa.centre_y2()),
            };
            if entirely {
                if clear.is_some() {
                    return None;
                }
                clear = Some(j);
            } else if centre {
                return None;
            }
        }
        clear
    }

    /// One question: a kind uniformly among the kinds this scene has questions of, then an
    /// instance uniformly (for [`QaKind::Exists`], first "yes" or "no" with equal odds).
    pub fn sample_qa(&self, seed: u64) -> Qa {
        let all = self.questions(seed);
        let mut rng = rng_for(seed, SAMPLE_SALT);
        let kinds: Vec<QaKind> = QaKind::ALL
            .into_iter()
            .filter(|k| all.iter().any(|q| q.kind == *k))
            .collect();
        let kind = kinds[rng.index(kinds.len())];
        pick_of_kind(&all, kind, &mut rng).expect("kind has questions")
    }

    /// One question of the given kind (as in [`Scene::sample_qa`]), or `None` if the scene
    /// has no question of that kind.
    pub fn sample_qa_of_kind(&self, kind: QaKind, seed: u64) -> Option<Qa> {
        let all = self.questions(seed);
        let mut rng = rng_for(seed, SAMPLE_SALT ^ 0xD1CE);
        pick_of_kind(&all, kind, &mut rng)
    }
}

fn pick_of_kind(all: &[Qa], kind: QaKind, rng: &mut SplitMix64) -> Option<Qa> {
    let mut pool: Vec<&Qa> = all.iter().filter(|q| q.kind == kind).collect();
    if kind == QaKind::Exists {
        let want = if rng.coin() { "yes" } else { "no" };
        let sub: Vec<&Qa> = pool.iter().copied().filter(|q| q.answer == want).collect();
        if !sub.is_empty() {
            pool = sub;
        }
    }
    if pool.is_empty() {
        None
    } else {
        Some(pool[rng.index(pool.len())].clone())
    }
}

fn article(next_word: &str) -> &'static str {
    if next_word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Left,
    Right,
    Above,
    Below,
}

impl Direction {
    const ALL: [Direction; 4] = [
        Direction::Left,
        Direction::Right,
        Direction::Above,
        Direction::Below,
    ];

    fn phrase(self) -> &'static str {
        match self {
            Direction::Left => "left of",
            Direction::Right => "right of",
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Questions and answers
// ---------------------------------------------------------------------------------------------

/// Question kinds. `<ref>` is the shortest unique description of an object, with the size
/// added only when needed ("circle" / "large circle", "red object" / "small red object",
/// "red circle" / "large red circle").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QaKind {
    /// "what colour is the circle?" -> colour. `about = [object]`.
    ColourOfShape,
    /// "what shape is the red object?" -> shape. `about = [object]`.
    ShapeOfColour,
    /// "how many squares are there?", "how many red objects are there?", "how many objects
    /// are there?" -> "zero".."ten". `about` = the counted objects.
    Count,
    /// "is there a blue star?" -> "yes" / "no". `about` = the matching objects (empty for no).
    Exists,
    /// "is the red circle on the left or the right?" -> "left" / "right"; "is the red circle at
    /// the top or the bottom?" -> "top" / "bottom". Only for objects entirely in one half, at
    /// least `margin_px` from the middle line. `about = [object]`.
    Side,
    /// "is the red circle small or large?" -> "small" / "large". `about = [object]`.
    Size,
    /// "what colour is the shape left of the red circle?" -> colour, "what shape is the object
    /// above the red circle?" -> shape (also "right of", "below"). Asked only when exactly one
    /// object lies entirely on that side of the anchor's bbox and no other object's centre is on
    /// that side of the anchor's centre. `about = [target, anchor]`.
    Relation,
}

impl QaKind {
    pub const ALL: [QaKind; 7] = [
        QaKind::ColourOfShape,
        QaKind::ShapeOfColour,
        QaKind::Count,
        QaKind::Exists,
        QaKind::Side,
        QaKind::Size,
        QaKind::Relation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QaKind::ColourOfShape => "colour_of_shape",
            QaKind::ShapeOfColour => "shape_of_colour",
            QaKind::Count => "count",
            QaKind::Exists => "exists",
            QaKind::Side => "side",
            QaKind::Size => "size",
            QaKind::Relation => "relation",
        }
    }
}

/// A question with its one-word answer. Questions are lower case, words separated by single
/// spaces, ending in "?" attached to the last word ("what colour is the circle?"); see
/// [`tokenize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qa {
    pub question: String,
    pub answer: String,
    pub kind: QaKind,
    /// Indices into `Scene::objects` of the objects the answer depends on (see [`QaKind`]).
    pub about: Vec<usize>,
}

/// Count answers, indexed by the count.
pub const NUMBERS: [&str; 11] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

const TEMPLATE_WORDS: [&str; 25] = [
    "what", "colour", "shape", "is", "the", "object", "objects", "how", "many", "are", "there",
    "a", "an", "on", "at", "left", "right", "top", "bottom", "or", "of", "above", "below", "yes",
    "no",
];

/// Every word that can appear in a question or an answer, each once, lower case; "?" is its own
/// token. Order: template words, "?", shapes, shape plurals, colours, sizes, numbers.
pub fn vocabulary() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = TEMPLATE_WORDS.to_vec();
    v.push("?");
    v.extend(Shape::ALL.iter().map(|s| s.name()));
    v.extend(Shape::ALL.iter().map(|s| s.plural()));
    v.extend(Colour::ALL.iter().map(|c| c.name()));
    v.extend(Size::ALL.iter().map(|s| s.name()));
    v.extend(NUMBERS);
    v
}

/// Splits a question or answer into vocabulary tokens: on whitespace, with every "?" a token of
/// its own (what a `Whitespace` / `\w+|[^\w\s]+` pre-tokenizer does to these strings).
pub fn tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let mut rest = word;
        while let Some(p) = rest.find('?') {
            if p > 0 {
                out.push(&rest[..p]);
            }
            out.push("?");
            rest = &rest[p + 1..];
        }
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------
