//! The image processor's size rules and the token -> pixel-rectangle geometry.

use crate::common;

use zoo_prune_web::model::pixel_shuffle;
use zoo_prune_web::preprocess::{longest_edge_size, vision_encoder_size, ProcessedImage, ProcessorConfig, RgbImage};

#[test]
fn resize_rules_follow_hf_int_truncation() {
    // (h, w, max) -> HF's (h, w): short side int()-truncated then bumped to even
    assert_eq!(longest_edge_size(64, 96, 192), (128, 192));
    assert_eq!(longest_edge_size(300, 451, 2048), (1362, 2048)); // int(2048 / (451/300)) = int(1362.3)
    assert_eq!(longest_edge_size(451, 300, 2048), (2048, 1362));
    assert_eq!(longest_edge_size(10, 1000, 512), (6, 512)); // int(5.12) = 5 -> 6
    assert_eq!(vision_encoder_size(1362, 2048, 512), (1536, 2048));
    assert_eq!(vision_encoder_size(2048, 1362, 512), (2048, 1536));
    assert_eq!(vision_encoder_size(128, 192, 64), (128, 192));
}

fn image(w: usize, h: usize) -> RgbImage {
    let data = (0..w * h * 3).map(|i| (i * 7 % 251) as u8 + 1).collect();
    RgbImage { width: w, height: h, data }
}

#[test]
fn tiles_and_token_rects_cover_the_image() {
    let cfg = ProcessorConfig::smolvlm(64).with_max_grid(3); // longest edge 192
    let p = ProcessedImage::new(&image(96, 64), &cfg).unwrap();
    assert_eq!((p.rows, p.cols, p.num_tiles), (2, 3, 7));
    assert_eq!(p.pixels.len(), 7 * 3 * 64 * 64);
    // patch 8, scale 4: 2x2 tokens per tile, each 32 tile pixels = 16 original pixels here
    let rects = p.token_rects(8, 4);
    assert_eq!(rects.len(), 7 * 4);
    let r = rects[1]; // tile (0,0), token hb=0, wb=1
    assert_eq!((r.x, r.y, r.w, r.h), (16.0, 0.0, 16.0, 16.0));
    let r = rects[4 * 5 + 2]; // tile (1,2), token hb=1, wb=0
    assert_eq!((r.x, r.y), (64.0, 48.0));
    // the 24 grid tokens tile the image exactly once
    let area: f32 = rects[..24].iter().map(|r| r.w * r.h).sum();
    assert_eq!(area, 96.0 * 64.0);
    // the global image's tokens cover the whole image
    let g = &rects[24..];
    assert_eq!((g[0].x, g[0].y, g[0].w, g[0].h), (0.0, 0.0, 48.0, 32.0));
    assert_eq!((g[3].x + g[3].w, g[3].y + g[3].h), (96.0, 64.0));
}

#[test]
fn one_tile_without_splitting() {
    let cfg = ProcessorConfig::smolvlm(32).with_max_grid(1);
    let p = ProcessedImage::new(&image(50, 20), &cfg).unwrap();
    assert_eq!((p.rows, p.cols, p.num_tiles), (0, 0, 1));
    let rects = p.token_rects(8, 2);
    assert_eq!(rects.len(), 4);
    assert_eq!((rects[3].x, rects[3].y, rects[3].w, rects[3].h), (25.0, 10.0, 25.0, 10.0));
}

#[test]
fn pixel_shuffle_channel_order_is_hf() {
    use burn::tensor::{Tensor, TensorData};
    // 4x4 patches of 2 channels, value = 100*row + 10*col + channel
    let mut v = Vec::new();
    for r in 0..4 {
        for c in 0..4 {
            for ch in 0..2 {
                v.push((100 * r + 10 * c + ch) as f32);
            }
        }
    }
    let x = Tensor::<3>::from_data(TensorData::new(v, [1, 16, 2]), &common::device("flex"));
    let y = pixel_shuffle(x, 2);
    assert_eq!(y.dims(), [1, 4, 8]);
    let got: Vec<f32> = y.into_data().iter::<f32>().collect();
    // token 1 = (hb 0, wb 1); channels [dh][dw][c]: (0,2),(0,3),(1,2),(1,3)
    assert_eq!(&got[8..16], &[20., 21., 30., 31., 120., 121., 130., 131.]);
}

#[test]
fn layout_predicts_the_processed_grid() {
    // the page shows each tiling choice's token count from `layout` before encoding: it must be the
    // grid `ProcessedImage::new` then cuts
    for (w, h) in [(96, 64), (64, 96), (1, 1), (64, 64), (65, 64), (300, 20), (20, 300), (129, 127), (512, 341)] {
        for grid in 1..=4 {
            let cfg = ProcessorConfig::smolvlm(32).with_max_grid(grid);
            let l = cfg.layout(w, h);
            let p = ProcessedImage::new(&image(w, h), &cfg).unwrap();
            assert_eq!((l.rows, l.cols, l.num_tiles), (p.rows, p.cols, p.num_tiles), "{w}x{h}, grid {grid}");
            assert!(l.rows <= grid && l.cols <= grid, "{w}x{h}, grid {grid}: {l:?}");
        }
    }
    let l = ProcessorConfig::smolvlm(64).with_max_grid(3).layout(96, 64);
    assert_eq!((l.rows, l.cols, l.num_tiles), (2, 3, 7));
    assert_eq!(ProcessorConfig::smolvlm(64).with_max_grid(1).layout(96, 64).num_tiles, 1);
}
