//! Shared helpers for the parity tests: fixture paths, reference tensors, devices.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::Device;
use safetensors::SafeTensors;
use zoo_prune_web::{ModelFiles, Vlm};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub struct Reference {
    pub json: serde_json::Value,
    bytes: Vec<u8>,
}

impl Reference {
    pub fn load(model: &str) -> Self {
        let dir = fixtures().join(model);
        let json = serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
        Self { json, bytes }
    }

    /// (values, shape)
    pub fn tensor(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        read_f32(&self.bytes, name)
    }

    pub fn ids(&self, key: &str) -> Vec<u32> {
        self.json[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
    }
}

pub fn read_f32(bytes: &[u8], name: &str) -> (Vec<f32>, Vec<usize>) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (v, t.shape().to_vec())
}

pub fn device(backend: &str) -> Device {
    zoo_prune_web::device::native_device(backend).unwrap_or_else(|e| {
        panic!("backend {backend} unavailable ({e}); on Debian install mesa-vulkan-drivers for wgpu")
    })
}

pub fn load_vlm(model: &str, backend: &str) -> Vlm {
    let files = ModelFiles::from_dir(&fixtures().join(model)).unwrap();
    Vlm::load(&files, &device(backend)).unwrap()
}

/// max |a - b|, after checking the lengths agree.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
