//! Device names on the command line → Burn devices.

use burn::tensor::Device;

use crate::error::ModelError;

/// The devices minigpt knows by name, in the order `--help` lists them.
pub const DEVICE_NAMES: &[&str] = &["flex", "ndarray", "wgpu"];

/// Maps `flex`, `ndarray` or `wgpu` to a Burn device.
pub fn parse_device(name: &str) -> Result<Device, ModelError> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[allow(deprecated)] // our users ask for ndarray; Burn keeps it behind a deprecation
        "ndarray" => Ok(Device::ndarray()),
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        other => Err(ModelError::UnknownDevice(other.to_string())),
    }
}
