//! Choosing a burn device by name: "flex" (also "cpu": the pure-Rust CPU backend) or "wgpu"
//! (Vulkan natively, lavapipe on a machine without a GPU; WebGPU in the browser).

use burn::tensor::Device;

#[cfg(any(not(target_family = "wasm"), feature = "webgpu"))]
use crate::error::{Error, Result};

#[cfg(feature = "webgpu")]
pub const NATIVE_BACKENDS: &[&str] = &["flex", "wgpu"];
#[cfg(not(feature = "webgpu"))]
pub const NATIVE_BACKENDS: &[&str] = &["flex"];

/// The native wgpu device and its largest buffer (min(max_storage_buffer_binding_size,
/// max_buffer_size): what cubecl caps a buffer at), initialised once per process (burn refuses a
/// second init).
#[cfg(all(not(target_family = "wasm"), feature = "webgpu"))]
fn native_wgpu() -> Result<(Device, u64)> {
    use std::sync::OnceLock;
    static WGPU: OnceLock<std::result::Result<(Device, u64), String>> = OnceLock::new();
    WGPU.get_or_init(|| {
        let (device, setup) = Device::wgpu_options().init_with_setup().map_err(|e| format!("{e:?}"))?;
        let l = setup.device.limits();
        Ok((device, l.max_storage_buffer_binding_size.min(l.max_buffer_size)))
    })
    .clone()
    .map_err(|e| Error::Device(format!("no wgpu adapter: {e}")))
}

/// A native device.
#[cfg(not(target_family = "wasm"))]
pub fn native_device(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "webgpu")]
        "wgpu" => native_wgpu().map(|(d, _)| d),
        other => Err(Error::Device(format!(
            "unknown backend {other:?}; choose one of {NATIVE_BACKENDS:?}"
        ))),
    }
}

/// How to load a model on the native device `name`: on wgpu, within its largest buffer (lavapipe
/// cannot hold SmolVLM-500M's vocabulary matrices in one).
#[cfg(not(target_family = "wasm"))]
pub fn native_load_options(name: &str) -> Result<crate::LoadOptions> {
    #[cfg(feature = "webgpu")]
    if name == "wgpu" {
        return Ok(crate::LoadOptions { max_tensor_bytes: Some(native_wgpu()?.1) });
    }
    let _ = name;
    Ok(crate::LoadOptions { max_tensor_bytes: None })
}

/// The WebGPU device in a browser (or a Worker).
#[cfg(feature = "webgpu")]
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
    if !prefer_webgpu {
        return (Device::flex(), "cpu (flex)", Some("WebGPU not requested".into()));
    }
    #[cfg(feature = "webgpu")]
    {
        use std::cell::RefCell;
        thread_local! {
            static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
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
    // the plain and threaded builds (scripts/build-web.sh) are CPU-only
    #[cfg(not(feature = "webgpu"))]
    (Device::flex(), "cpu (flex)", Some("this wasm build has no WebGPU".into()))
}
