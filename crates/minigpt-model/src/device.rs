//! Device names on the command line → Burn devices.

use burn::tensor::Device;

use crate::error::ModelError;
use minigpt_native::DType;

/// The devices minigpt knows by name, in the order `--help` lists them: `cpu` is minigpt's own
/// CPU engine (inference only; training on `cpu` means Burn's flex), the others Burn backends.
pub const DEVICE_NAMES: &[&str] = &["cpu", "flex", "ndarray", "wgpu"];

/// Maps a device name to a Burn device (`cpu` → flex, for training).
pub fn parse_device(name: &str) -> Result<Device, ModelError> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[allow(deprecated)] // our users ask for ndarray; Burn keeps it behind a deprecation
        "ndarray" => Ok(Device::ndarray()),
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        other => Err(ModelError::UnknownDevice(other.to_string())),
    }
}

/// Where a model runs for inference: minigpt's native CPU engine, or a Burn device.
#[derive(Debug, Clone)]
pub enum Target {
    /// `cpu`: the native engine with weights stored in this type.
    Native(DType),
    /// `flex`, `ndarray` or `wgpu`.
    Burn(Device),
}

/// Maps `--device` and `--dtype` to a target: `cpu` (the native engine, any dtype), or a Burn
/// device (`flex`, `ndarray`, `wgpu`; f32 only).
pub fn parse_target(device: &str, dtype: &str) -> Result<Target, ModelError> {
    let Some(dt) = DType::parse(dtype) else {
        return Err(ModelError::Input(format!(
            "unknown dtype {dtype:?}: use f32, f16 or bf16"
        )));
    };
    match device {
        "cpu" => Ok(Target::Native(dt)),
        other => {
            let d = parse_device(other)?;
            if dt != DType::F32 {
                return Err(ModelError::Input(format!(
                    "--dtype {dtype} runs on --device cpu only (Burn's {other} path is f32)"
                )));
            }
            Ok(Target::Burn(d))
        }
    }
}

/// The adapter a `wgpu` device runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// As the driver names it: `NVIDIA H200`, `llvmpipe (LLVM 15.0.7, 256 bits)`.
    pub name: String,
    /// A CPU software rasteriser (lavapipe, llvmpipe, SwiftShader, WARP) rather than a GPU:
    /// the driver reports a CPU device type, so there is no card behind it.
    pub software: bool,
}

/// The adapter behind a Burn `device` (opening it), or `None` for a device that is not `wgpu`.
pub fn adapter(device: &Device) -> Option<Adapter> {
    // cubecl-wgpu fills `physical` for every adapter but those wgpu types `DeviceType::Cpu`.
    let id = device.identity()?;
    Some(Adapter {
        name: id.name,
        software: id.physical.is_none(),
    })
}
