//! The Idefics3 image processor (transformers' `Idefics3ImageProcessorPil`, the PIL/LANCZOS path
//! SmolVLM was trained with), bit-exact on the resampling, plus the geometry that maps every visual
//! token back to its rectangle in the original image.
//!
//! Steps: RGB (alpha composited over white), resize so the longest edge is `longest_edge` (small
//! images are upscaled; the short side uses int() and is rounded up to even), then either
//! (split) resize both sides up to multiples of the tile size and cut row-major tiles plus one
//! global image resized to a tile, or (no split) resize to one square tile; rescale 1/255 and
//! normalise with mean = std = 0.5.

pub mod resample;

use serde::Deserialize;

use crate::error::{Error, Result};
pub use resample::Filter;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Largest image we agree to decode (pixels); bigger ones must be downscaled by the caller first.
pub const MAX_DECODE_PIXELS: u64 = 64 * 1024 * 1024;

/// Width and height from a PNG's IHDR chunk (the first chunk, right after the signature).
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

impl RgbImage {
    /// Decodes PNG / JPEG (/ whatever the `image` crate was built with) bytes. Alpha is composited
    /// over white exactly as HF's `convert_to_rgb`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        use image::ImageReader;
        let reader = ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Image(format!("cannot read the image: {e}")))?;
        match reader.format() {
            None => {
                return Err(Error::Image("not an image file this page can read (use PNG or JPEG)".into()))
            }
            Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
            Some(other) => {
                let name = other.extensions_str().first().map_or("this", |e| e).to_uppercase();
                return Err(Error::Image(format!(
                    "{name} images are not supported: convert it to PNG or JPEG (the web page converts \
                     the formats the browser reads by itself)"
                )));
            }
        }
        // A PNG's size is read from its header first: on wasm32 the decoder's own buffer-size
        // arithmetic overflows for a 40000 x 40000 image and it reports another error.
        let (w, h) = match png_header_size(bytes) {
            Some(wh) => wh,
            None => reader
                .into_dimensions()
                .map_err(|e| Error::Image(format!("the image is broken or truncated: {e}")))?,
        };
        if (w as u64) * (h as u64) > MAX_DECODE_PIXELS {
            return Err(Error::Image(format!(
                "the image is too large ({w}x{h}); downscale it below {} megapixels",
                MAX_DECODE_PIXELS / (1024 * 1024)
            )));
        }
        let reader = ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Image(format!("cannot read the image: {e}")))?;
        let img = reader
            .decode()
            .map_err(|e| Error::Image(format!("the image is broken or truncated: {e}")))?;
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::Image("the image is empty (0 pixels)".into()));
        }
        Ok(if img.color().has_alpha() {
            let rgba = img.to_rgba8();
            Self {
                width: rgba.width() as usize,
                height: rgba.height() as usize,
                data: resample::alpha_over_white_rgba8(rgba.as_raw()),
            }
        } else {
            let rgb = img.to_rgb8();
            Self { width: rgb.width() as usize, height: rgb.height() as usize, data: rgb.into_raw() }
        })
    }

    pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Result<Self> {
        if rgba.len() != width * height * 4 || width == 0 || height == 0 {
            return Err(Error::Image("RGBA buffer does not match its size".into()));
        }
        Ok(Self { width, height, data: resample::alpha_over_white_rgba8(rgba) })
    }

    pub fn resize(&self, width: usize, height: usize, filter: Filter) -> RgbImage {
        RgbImage {
            width,
            height,
            data: resample::resize_rgb8(&self.data, self.width, self.height, width, height, filter),
        }
    }

    fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for row in y..y + h {
            let start = (row * self.width + x) * 3;
            data.extend_from_slice(&self.data[start..start + w * 3]);
        }
        RgbImage { width: w, height: h, data }
    }
}

/// The processor settings (`preprocessor_config.json`), with the caller's tiling choice.
#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// `size.longest_edge`: the image is first resized so its longest edge is this.
    pub longest_edge: usize,
    /// `max_image_size.longest_edge`: the tile side (= the vision encoder's image_size).
    pub tile: usize,
    pub do_image_splitting: bool,
    pub resample: Filter,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    pub rescale_factor: f64,
}

#[derive(Deserialize)]
struct Edge {
    longest_edge: usize,
}

#[derive(Deserialize)]
struct RawProcessorConfig {
    size: Option<Edge>,
    max_image_size: Option<Edge>,
    do_image_splitting: Option<bool>,
    resample: Option<u32>,
    image_mean: Option<Vec<f32>>,
    image_std: Option<Vec<f32>>,
    rescale_factor: Option<f64>,
}

impl ProcessorConfig {
    /// SmolVLM's settings for a vision encoder with tiles of `tile` pixels: up to a 4x4 grid.
    pub fn smolvlm(tile: usize) -> Self {
        Self {
            longest_edge: 4 * tile,
            tile,
            do_image_splitting: true,
            resample: Filter::Lanczos,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            rescale_factor: 1.0 / 255.0,
        }
    }

    /// Reads `preprocessor_config.json`; missing fields take SmolVLM's values.
    pub fn from_json(bytes: &[u8], tile: usize) -> Result<Self> {
        let raw: RawProcessorConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::Config(format!("preprocessor_config.json: {e}")))?;
        let mut c = Self::smolvlm(tile);
        if let Some(s) = raw.size {
            c.longest_edge = s.longest_edge;
        }
        if let Some(m) = raw.max_image_size {
            c.tile = m.longest_edge;
        }
        if let Some(v) = raw.do_image_splitting {
            c.do_image_splitting = v;
        }
        if let Some(r) = raw.resample {
            c.resample = Filter::from_pil(r)
                .ok_or_else(|| Error::Config(format!("unsupported resample filter {r}")))?;
        }
        if let Some(m) = raw.image_mean {
            c.image_mean = three(&m, "image_mean")?;
        }
        if let Some(s) = raw.image_std {
            c.image_std = three(&s, "image_std")?;
        }
        if let Some(r) = raw.rescale_factor {
            c.rescale_factor = r;
        }
        if c.tile != tile {
            return Err(Error::Config(format!(
                "preprocessor max_image_size {} differs from the vision image_size {tile}",
                c.tile
            )));
        }
        Ok(c)
    }

    /// The tiling a person picks: `grid` = 1 means one tile (no split), n means up to n x n tiles
    /// plus the global image (SmolVLM's own setting is 4).
    pub fn with_max_grid(mut self, grid: usize) -> Self {
        let grid = grid.max(1);
        self.do_image_splitting = grid > 1;
        self.longest_edge = grid * self.tile;
        self
    }
}

fn three(v: &[f32], what: &str) -> Result<[f32; 3]> {
    match v {
        [a] => Ok([*a; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(Error::Config(format!("{what} must have 1 or 3 values"))),
    }
}

/// Where one tile came from, in original-image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

#[derive(Clone, Debug)]
pub struct ProcessedImage {
    /// [tiles, 3, tile, tile] normalised pixels, tiles row-major then the global image.
    pub pixels: Vec<f32>,
    pub num_tiles: usize,
    pub tile: usize,
    /// Grid rows and cols (0 and 0 when the image was not split).
    pub rows: usize,
    pub cols: usize,
    /// Each tile's area in the original image.
    pub tile_rects: Vec<Rect>,
    pub original_width: usize,
    pub original_height: usize,
}

/// `_resize_output_size_rescale_to_max_len` then `_resize_output_size_scale_below_upper_bound`
/// (MAX_IMAGE_SIZE 4096), with Python's int() truncation. Returns (height, width).
pub fn longest_edge_size(height: usize, width: usize, max_len: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let (mut h, mut w) = (height, width);
    if w >= h {
        w = max_len;
        h = (w as f64 / aspect) as usize;
        if h % 2 != 0 {
            h += 1;
        }
    } else {
        h = max_len;
        w = (h as f64 * aspect) as usize;
        if w % 2 != 0 {
            w += 1;
        }
    }
    let (mut h, mut w) = (h.max(1), w.max(1));
    const MAX_IMAGE_SIZE: usize = 4096;
    let aspect = w as f64 / h as f64;
    if w >= h && w > MAX_IMAGE_SIZE {
        w = MAX_IMAGE_SIZE;
        h = (w as f64 / aspect) as usize;
    } else if h > w && h > MAX_IMAGE_SIZE {
        h = MAX_IMAGE_SIZE;
        w = (h as f64 * aspect) as usize;
    }
    (h.max(1), w.max(1))
}

/// `resize_for_vision_encoder`: both sides up to multiples of `tile`. Returns (height, width).
pub fn vision_encoder_size(height: usize, width: usize, tile: usize) -> (usize, usize) {
    let aspect = width as f64 / height as f64;
    let ceil_to = |v: usize| v.div_ceil(tile) * tile;
    if width >= height {
        let w = ceil_to(width);
        let h = (w as f64 / aspect) as usize;
        (ceil_to(h), w)
    } else {
        let h = ceil_to(height);
        let w = (h as f64 * aspect) as usize;
        (h, ceil_to(w))
    }
}

/// The sizes and tile grid the processor gives an image: what `ProcessedImage::new` does, without
/// the pixels (the page shows each tiling choice's token count before encoding anything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// (height, width) after the longest-edge resize.
    pub resized: (usize, usize),
    /// (height, width) of the image the tiles are cut from (multiples of the tile side), when split.
    pub split: Option<(usize, usize)>,
    /// Grid rows and cols (0 and 0 when the image was not split).
    pub rows: usize,
    pub cols: usize,
    /// rows x cols tiles + the global image, or 1.
    pub num_tiles: usize,
}

impl ProcessorConfig {
    /// The layout of a `width` x `height` image (both > 0).
    pub fn layout(&self, width: usize, height: usize) -> Layout {
        let t = self.tile;
        let (h1, w1) = longest_edge_size(height, width, self.longest_edge);
        if !self.do_image_splitting {
            return Layout { resized: (h1, w1), split: None, rows: 0, cols: 0, num_tiles: 1 };
        }
        let (h2, w2) = vision_encoder_size(h1, w1, t);
        let (rows, cols) = if h2 > t || w2 > t { ((h2 - t) / t + 1, (w2 - t) / t + 1) } else { (0, 0) };
        let num_tiles = if rows * cols > 0 { rows * cols + 1 } else { 1 };
        Layout { resized: (h1, w1), split: Some((h2, w2)), rows, cols, num_tiles }
    }
}

impl ProcessedImage {
    pub fn new(img: &RgbImage, cfg: &ProcessorConfig) -> Result<Self> {
        if img.width == 0 || img.height == 0 {
            return Err(Error::Image("the image is empty (0 pixels)".into()));
        }
        let t = cfg.tile;
        let layout = cfg.layout(img.width, img.height);
        let (h1, w1) = layout.resized;
        let (rows, cols) = (layout.rows, layout.cols);
        let resized = img.resize(w1, h1, cfg.resample);
        let (ow, oh) = (img.width as f32, img.height as f32);
        let whole = Rect { x: 0.0, y: 0.0, w: ow, h: oh };
        let mut frames: Vec<RgbImage> = Vec::new();
        let mut rects = Vec::new();
        if let Some((h2, w2)) = layout.split {
            let big = resized.resize(w2, h2, cfg.resample);
            if rows * cols > 0 {
                let (sx, sy) = (ow / w2 as f32, oh / h2 as f32);
                for r in 0..rows {
                    for c in 0..cols {
                        frames.push(big.crop(c * t, r * t, t, t));
                        rects.push(Rect {
                            x: (c * t) as f32 * sx,
                            y: (r * t) as f32 * sy,
                            w: t as f32 * sx,
                            h: t as f32 * sy,
                        });
                    }
                }
                frames.push(big.resize(t, t, cfg.resample));
            } else {
                frames.push(big);
            }
        } else {
            frames.push(resized.resize(t, t, cfg.resample));
        }
        rects.push(whole);
        let mut pixels = Vec::with_capacity(frames.len() * 3 * t * t);
        for f in &frames {
            for ch in 0..3 {
                let (mean, std) = (cfg.image_mean[ch], cfg.image_std[ch]);
                for i in 0..t * t {
                    // numpy: uint8 -> float64 * scale -> float32, then (x - mean) / std in float32
                    let x = (f.data[i * 3 + ch] as f64 * cfg.rescale_factor) as f32;
                    pixels.push((x - mean) / std);
                }
            }
        }
        Ok(Self {
            pixels,
            num_tiles: frames.len(),
            tile: t,
            rows,
            cols,
            tile_rects: rects,
            original_width: img.width,
            original_height: img.height,
        })
    }

    /// The rectangle (original-image pixels) of every visual token, in the order the model sees
    /// them: tiles in order, then within a tile the pixel-shuffle order t = hb * side + wb, each
    /// covering `scale * patch` tile pixels square.
    pub fn token_rects(&self, patch: usize, scale: usize) -> Vec<Rect> {
        let block = patch * scale;
        let side = self.tile / block;
        let mut out = Vec::with_capacity(self.num_tiles * side * side);
        for r in &self.tile_rects {
            let (sx, sy) = (r.w / self.tile as f32, r.h / self.tile as f32);
            for hb in 0..side {
                for wb in 0..side {
                    out.push(Rect {
                        x: r.x + (wb * block) as f32 * sx,
                        y: r.y + (hb * block) as f32 * sy,
                        w: block as f32 * sx,
                        h: block as f32 * sy,
                    });
                }
            }
        }
        out
    }
}
