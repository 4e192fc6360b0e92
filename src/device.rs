//! Choosing a burn device by name: "flex" (pure-Rust CPU), "ndarray" (CPU, deprecated upstream),
//! "wgpu" (Vulkan natively, lavapipe on a machine without a GPU; WebGPU in the browser).

use burn::tensor::Device;

use crate::error::{Error, Result};

pub const NATIVE_BACKENDS: &[&str] = &["flex", "wgpu"];

/// A native device. wgpu is initialised once per process (burn refuses a second init).
#[cfg(not(target_family = "wasm"))]
pub fn native_device(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        "wgpu" => {
            use std::sync::OnceLock;
            static WGPU: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
            WGPU.get_or_init(|| Device::wgpu_options().init().map_err(|e| format!("{e:?}")))
                .clone()
                .map_err(|e| Error::Device(format!("no wgpu adapter: {e}")))
        }
        other => Err(Error::Device(format!(
            "unknown backend {other:?}; choose one of {NATIVE_BACKENDS:?}"
        ))),
    }
}

/// The WebGPU device in a browser (or a Worker).
pub async fn webgpu_device() -> Result<Device> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| Error::Device(format!("WebGPU is not available: {e:?}")))
}

/// The device a page's model runs on: WebGPU when asked for and it starts (initialised once per
/// Worker and reused by later loads), else burn's CPU backend. Returns the device, "webgpu" or
/// "cpu (flex)", and why the CPU is used when it is.
#[cfg(target_family = "wasm")]
pub async fn browser_device(prefer_webgpu: bool) -> (Device, &'static str, Option<String>) {
    use std::cell::RefCell;
    thread_local! {
        static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
    }
    if !prefer_webgpu {
        return (Device::flex(), "cpu (flex)", Some("WebGPU not requested".into()));
    }
    if let Some(d) = WEBGPU.with(|d| d.borrow().clone()) {
        return (d, "webgpu", None);
    }
    match webgpu_device().await {
        Ok(d) => {
            WEBGPU.with(|c| *c.borrow_mut() = Some(d.clone()));
            (d, "webgpu", None)
        }
        Err(e) => (Device::flex(), "cpu (flex)", Some(e.to_string())),
    }
}
