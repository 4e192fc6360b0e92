//! An overlay of kept and pruned visual tokens over the original image (PNG), for the CLI.
//! Pruned areas are dimmed, kept tokens outlined. The global image's tokens cover the whole
//! picture at a coarser grid, so only the tiles' tokens are drawn when the image was split.

use crate::error::{Error, Result};
use crate::preprocess::{Rect, RgbImage};

/// `rects`: every visual token's rectangle; `kept[i]`: whether token i is kept;
/// `grid_tokens`: how many leading tokens belong to the tile grid (all tokens if not split).
pub fn overlay_png(img: &RgbImage, rects: &[Rect], kept: &[bool], grid_tokens: usize) -> Result<Vec<u8>> {
    let (w, h) = (img.width, img.height);
    let mut out = img.data.clone();
    let mut keep_px = vec![false; w * h];
    let mut edge_px = vec![false; w * h];
    for (r, &k) in rects.iter().zip(kept).take(grid_tokens) {
        let x0 = r.x.round().max(0.0) as usize;
        let y0 = r.y.round().max(0.0) as usize;
        let x1 = ((r.x + r.w).round() as usize).min(w);
        let y1 = ((r.y + r.h).round() as usize).min(h);
        if !k {
            continue;
        }
        for y in y0..y1 {
            for x in x0..x1 {
                keep_px[y * w + x] = true;
                if y == y0 || x == x0 || y + 1 == y1 || x + 1 == x1 {
                    edge_px[y * w + x] = true;
                }
            }
        }
    }
    for p in 0..w * h {
        let px = &mut out[p * 3..p * 3 + 3];
        if edge_px[p] {
            px.copy_from_slice(&[255, 200, 0]);
        } else if !keep_px[p] {
            for c in px.iter_mut() {
                *c = (*c as u32 * 30 / 100) as u8;
            }
        }
    }
    png_rgb(&out, w, h)
}

/// RGB8 pixels (row-major) as PNG bytes.
pub fn png_rgb(rgb: &[u8], w: usize, h: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut buf);
    image::ImageEncoder::write_image(enc, rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::Image(format!("cannot encode a PNG: {e}")))?;
    Ok(buf)
}
