//! The valid starting files every case mutates: a small config, its random checkpoint, the
//! tokenizer, the preprocessor settings, and images in each format.

use super::*;

// ---- the valid starting files

/// A small Idefics3 (tiles of 32 px, 4 visual tokens per tile) on the tiny test tokenizer.
pub(crate) const FUZZ_CONFIG: &str = r#"{"model_type": "idefics3", "image_token_id": 4, "scale_factor": 2,
  "tie_word_embeddings": false,
  "vision_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "image_size": 32, "patch_size": 8, "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh"},
  "text_config": {"model_type": "llama", "vocab_size": 360, "hidden_size": 8,
    "intermediate_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2,
    "num_key_value_heads": 1, "head_dim": 4, "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
    "max_position_embeddings": 2048, "tie_word_embeddings": false}}"#;

pub(crate) const FUZZ_PREPROCESSOR: &str = r#"{"do_convert_rgb": true, "do_image_splitting": true, "do_normalize": true,
  "do_pad": true, "do_rescale": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5],
  "image_processor_type": "Idefics3ImageProcessor", "image_std": [0.5, 0.5, 0.5],
  "max_image_size": {"longest_edge": 32}, "resample": 1, "rescale_factor": 0.00392156862745098,
  "size": {"longest_edge": 96}}"#;

pub(crate) const FUZZ_GENERATION: &str = r#"{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}"#;

/// GIF89a, 1 x 1, one white pixel.
pub(crate) const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0, 0x21, 0xf9, 4, 0, 0, 0, 0,
    0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b,
];
/// A lossless WebP header of a 1 x 1 image (VP8L).
pub(crate) const WEBP: &[u8] = &[
    b'R', b'I', b'F', b'F', 26, 0, 0, 0, b'W', b'E', b'B', b'P', b'V', b'P', b'8', b'L', 13, 0, 0, 0, 0x2f, 0, 0, 0,
    0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0,
];

pub(crate) struct Base {
    pub(crate) config: Vec<u8>,
    pub(crate) config_json: Value,
    pub(crate) safetensors: Vec<u8>,
    pub(crate) tokenizer: Vec<u8>,
    pub(crate) tokenizer_json: Value,
    pub(crate) preprocessor: Vec<u8>,
    pub(crate) preprocessor_json: Value,
    pub(crate) generation_json: Value,
    pub(crate) images: Vec<Vec<u8>>,
    pub(crate) image: RgbImage,
}

pub(crate) fn encode_png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub(crate) fn base_files() -> Base {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("cannot read {p}: {e}"));
    let cfg = Idefics3Config::from_json(FUZZ_CONFIG.as_bytes()).expect("the fuzz config is valid");
    let tokenizer = read("tests/fixtures/tokenizer/tokenizer.json");
    let photo = read("tests/fixtures/photo.png");
    let image = RgbImage::decode(&photo).unwrap();
    let rgb = image::RgbImage::from_raw(image.width as u32, image.height as u32, image.data.clone()).unwrap();
    let small = image::DynamicImage::ImageRgb8(rgb).resize_exact(24, 16, image::imageops::FilterType::Triangle);
    let mut jpeg = std::io::Cursor::new(Vec::new());
    small.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let images = vec![
        encode_png(small.clone()),
        encode_png(image::DynamicImage::ImageLuma8(small.to_luma8())),
        encode_png(image::DynamicImage::ImageLumaA8(small.to_luma_alpha8())),
        encode_png(image::DynamicImage::ImageRgba8(small.to_rgba8())),
        encode_png(image::DynamicImage::ImageRgb16(small.to_rgb16())),
        jpeg.into_inner(),
        read("tests/e2e/exif-orientation-6.jpg"),
        read("tests/fixtures/photo_rgba.png"),
        GIF.to_vec(),
        WEBP.to_vec(),
    ];
    Base {
        config: FUZZ_CONFIG.as_bytes().to_vec(),
        config_json: serde_json::from_str(FUZZ_CONFIG).unwrap(),
        safetensors: random_checkpoint(&cfg, 1),
        tokenizer_json: serde_json::from_slice(&tokenizer).unwrap(),
        tokenizer,
        preprocessor: FUZZ_PREPROCESSOR.as_bytes().to_vec(),
        preprocessor_json: serde_json::from_str(FUZZ_PREPROCESSOR).unwrap(),
        generation_json: serde_json::from_str(FUZZ_GENERATION).unwrap(),
        images,
        image,
    }
}
