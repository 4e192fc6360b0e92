//! Reading tensors back from the device. Only the asynchronous path is used: a synchronous
//! readback panics on wasm (WebGPU maps buffers asynchronously), and natively the futures are
//! driven by `pollster::block_on`.

use burn::tensor::{Int, Tensor};

use crate::error::{Error, Result};

/// Reads int values back without a synchronous readback (works on wasm and natively).
pub async fn read_ints<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| Error::Device(format!("reading back from the device failed: {e:?}")))?;
    Ok(data.iter::<i64>().collect())
}

pub async fn read_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| Error::Device(format!("reading back from the device failed: {e:?}")))?;
    Ok(data.iter::<f32>().collect())
}
