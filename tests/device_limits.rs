//! A model's tensors against a WebGPU device's limits: SmolVLM-500M's f32 vocabulary matrices
//! (49 280 x 960 x 4 = 189 MB each) are larger than WebGPU's default maxStorageBufferBindingSize
//! (128 MiB) that many devices report. The loader splits them into blocks of vocabulary rows; here
//! on wgpu (lavapipe on a machine without a GPU) with a device whose two buffer limits are lowered
//! to WebGPU's defaults, against the same matrices unsplit on burn's CPU backend (flex). (lavapipe's
//! own limits are no higher: it cannot hold them unsplit either, which the test shows.)
//!
//! Tolerances: the embedding lookup is a copy, so identical. The logits: f32 dot products of 960
//! terms, summed in a different order by the GPU kernel and by the CPU's gemm: ~1e-7 relative per
//! term, so max |diff| <= 1e-5 x max |logit| (measured: printed with --nocapture).

use burn::tensor::wgpu::{wgpu, WgpuSetup};
use burn::tensor::{Device, Tensor};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use zoo_prune_web::config::Idefics3Config;
use zoo_prune_web::model::tensors::device_fit;
use zoo_prune_web::model::vocab::VocabMatrix;
use zoo_prune_web::rng::SplitMix64;
use zoo_prune_web::weights::WeightMap;

fn read_floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    pollster::block_on(zoo_prune_web::readback::read_floats(t)).unwrap()
}

const VOCAB: usize = 49_280;
const HIDDEN: usize = 960; // SmolVLM-500M's decoder (SmolLM2-360M)
/// WebGPU's default limits (https://www.w3.org/TR/webgpu/#limits).
const WEBGPU_MAX_BINDING: u64 = 128 << 20;
const WEBGPU_MAX_BUFFER: u64 = 256 << 20;

/// SmolVLM-500M's architecture: the SigLIP encoder of the 256M model, SmolLM2-360M's decoder.
fn config_500m(connector_scale: usize) -> Idefics3Config {
    Idefics3Config::from_json(
        format!(
            r#"{{"model_type": "idefics3", "image_token_id": 49190, "scale_factor": {connector_scale},
  "tie_word_embeddings": false,
  "vision_config": {{"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 512, "patch_size": 16}},
  "text_config": {{"vocab_size": {VOCAB}, "hidden_size": {HIDDEN}, "intermediate_size": 2560,
    "num_hidden_layers": 32, "num_attention_heads": 15, "num_key_value_heads": 5,
    "rope_theta": 100000.0, "tie_word_embeddings": false}}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

#[test]
fn the_config_alone_says_what_is_split_and_what_cannot_fit() {
    let max = WEBGPU_MAX_BINDING.min(WEBGPU_MAX_BUFFER);
    let splits = device_fit(&config_500m(4), max).unwrap();
    let names: Vec<&str> = splits.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["model.text_model.embed_tokens.weight", "lm_head.weight"]);
    for s in &splits {
        assert_eq!(s.bytes, (VOCAB * HIDDEN * 4) as u64);
        assert_eq!(s.blocks, 2, "189 MB in blocks of at most 128 MiB");
    }
    // no limit that matters: nothing split
    assert!(device_fit(&config_500m(4), 1 << 31).unwrap().is_empty());
    // a connector of 768 * 64 * 960 * 4 = 189 MB (scale factor 8) cannot be split: named, with the limit
    let err = device_fit(&config_500m(8), max).unwrap_err().to_string();
    assert!(err.contains("model.connector.modality_projection.proj.weight") && err.contains("134.2 MB"), "{err}");
}

fn random_bf16(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    (0..n).flat_map(|_| half::bf16::from_f64((rng.uniform() * 2.0 - 1.0) * 0.05).to_le_bytes()).collect()
}

/// A wgpu device on the default adapter with maxStorageBufferBindingSize and maxBufferSize lowered
/// to WebGPU's defaults (what cubecl caps its buffers at).
fn limited_wgpu_device() -> (Device, u64) {
    let (_, setup) = Device::wgpu_options().init_with_setup().expect("a wgpu adapter (lavapipe here)");
    println!(
        "adapter {:?}: shader-f16 {}",
        setup.adapter.get_info().name,
        setup.adapter.features().contains(wgpu::Features::SHADER_F16)
    );
    let mut limits = setup.adapter.limits();
    limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(WEBGPU_MAX_BINDING);
    limits.max_buffer_size = limits.max_buffer_size.min(WEBGPU_MAX_BUFFER);
    let max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let (device, queue) = pollster::block_on(setup.adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("webgpu-default-limits"),
        required_features: setup.adapter.features().difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
        required_limits: limits,
        ..Default::default()
    }))
    .expect("a second device with lower limits");
    let limited = Device::wgpu_options()
        .setup(WgpuSetup { instance: setup.instance.clone(), adapter: setup.adapter.clone(), device, queue, backend: setup.backend })
        .init()
        .expect("registering the limited device");
    (limited, max)
}

#[test]
fn vocabulary_matrices_split_under_webgpu_default_limits_give_the_unsplit_numbers() {
    let embed = random_bf16(VOCAB * HIDDEN, 1);
    let head = random_bf16(VOCAB * HIDDEN, 2);
    let bytes = safetensors::serialize(
        [
            ("embed", TensorView::new(Dtype::BF16, vec![VOCAB, HIDDEN], &embed).unwrap()),
            ("head", TensorView::new(Dtype::BF16, vec![VOCAB, HIDDEN], &head).unwrap()),
        ],
        None,
    )
    .unwrap();
    drop((embed, head));
    let w = WeightMap::new(&bytes).unwrap();
    let (limited, max) = limited_wgpu_device();
    let full = Device::flex();
    println!("limited device: largest buffer {max} bytes; each matrix is {} bytes", VOCAB * HIDDEN * 4);

    let load = |name: &str, max: Option<u64>, device: &Device| VocabMatrix::load(&w, name, VOCAB, HIDDEN, max, device).unwrap();
    let (e_one, h_one) = (load("embed", None, &full), load("head", None, &full));
    let (e_split, h_split) = (load("embed", Some(max), &limited), load("head", Some(max), &limited));
    assert_eq!((e_one.blocks.len(), e_split.blocks.len(), h_split.blocks.len()), (1, 2, 2));
    for b in e_split.blocks.iter().chain(&h_split.blocks) {
        assert!((b.val().dims()[0] * HIDDEN * 4) as u64 <= max);
    }
    assert_eq!(e_split.vocab(), VOCAB);

    // ids from both blocks, out of order, repeated, the first and the last row
    // unsplit, the device cannot hold a matrix: the failure the split avoids
    let unsplit = load("embed", None, &limited);
    let err = pollster::block_on(zoo_prune_web::readback::read_floats(unsplit.rows(&[0]))).unwrap_err().to_string();
    assert!(err.contains("can't allocate buffer of size: 189235200"), "{err}");
    drop(unsplit);

    let ids = [49_279u32, 0, 24_000, 30_000, 5, 49_279, 24_639, 24_640, 12];
    let rows_one = read_floats(e_one.rows(&ids));
    let rows_split = read_floats(e_split.rows(&ids));
    assert_eq!(rows_one, rows_split, "the lookup is a copy: identical");
    // and they are the file's rows
    assert_eq!(rows_one[HIDDEN..2 * HIDDEN], w.f32_rows("embed", &[VOCAB, HIDDEN], 0..1).unwrap()[..]);

    let hidden_for = |device: &Device| {
        let v: Vec<f32> = (0..3 * HIDDEN).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        Tensor::<2>::from_data(burn::tensor::TensorData::new(v, [3, HIDDEN]), device)
    };
    let logits_one = read_floats(h_one.project(hidden_for(&full)));
    let logits_split = read_floats(h_split.project(hidden_for(&limited)));
    assert_eq!(logits_one.len(), 3 * VOCAB);
    let scale = logits_one.iter().fold(0f32, |a, x| a.max(x.abs()));
    let diff = logits_one.iter().zip(&logits_split).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    println!("logits: max |diff| {diff:e}, max |logit| {scale}");
    assert!(scale > 0.1, "the logits are not all ~0");
    assert!(diff <= 1e-5 * scale, "max |diff| {diff} > 1e-5 x {scale}");
}
