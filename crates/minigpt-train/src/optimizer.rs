//! AdamW as the run's config sets it, with its state rebuilt on the training device when a
//! checkpoint is resumed.
//!
//! Burn's `ModuleOptimizer::load_record` (burn-optim 0.22.1, `optim/module/module_optimizer.rs`:
//! "State tensors are materialized on the default device") passes `Device::default()` to each
//! parameter's `state_unflatten`. That default is the GPU whenever wgpu is compiled in, and only
//! the `BURN_DEVICE` environment variable changes it, so a CPU run resumed on a machine without
//! a GPU driver would start the GPU runtime (and fail, or stall on a software renderer).
//! [`OnDevice`] passes the training device instead; everything else is AdamW's own code.

use burn::grad_clipping::GradientClippingConfig;
use burn::module::ParamGroup;
use burn::optim::{
    AdamW, AdamWConfig, DynOptimizer, DynState, LearningRate, ModuleOptimizer, StateSink,
    StateSource,
};
use burn::tensor::Device;
use burn::tensor::kind::BridgeTensor;

use crate::config::OptimConfig;

/// The run's optimizer: AdamW (nanoGPT's betas and epsilon, the config's weight decay and
/// gradient-norm clipping) whose saved state loads onto `device`.
pub fn optimizer(t: &OptimConfig, device: &Device) -> ModuleOptimizer {
    let config = AdamWConfig::new()
        .with_beta_2(t.beta2 as f32)
        .with_weight_decay(t.weight_decay as f32)
        .with_epsilon(1e-8);
    let clipping =
        (t.grad_clip > 0.0).then(|| GradientClippingConfig::Norm(t.grad_clip as f32).init());
    // A module optimizer needs a first group that matches every parameter; the last matching
    // group is the one used, so every parameter goes to the `OnDevice` group.
    ModuleOptimizer::from(config.build()).with_group(
        ParamGroup::all(),
        OnDevice {
            inner: config.build(),
            device: device.clone(),
        },
        clipping,
    )
}

/// AdamW with its saved state rebuilt on `device` rather than on Burn's default device.
struct OnDevice {
    inner: AdamW,
    device: Device,
}

impl DynOptimizer for OnDevice {
    fn step_dyn(
        &self,
        rank: usize,
        lr: LearningRate,
        tensor: BridgeTensor,
        grad: BridgeTensor,
        state: Option<DynState>,
    ) -> (BridgeTensor, Option<DynState>) {
        self.inner.step_dyn(rank, lr, tensor, grad, state)
    }

    fn to_device_dyn(&self, state: DynState, device: &Device) -> DynState {
        self.inner.to_device_dyn(state, device)
    }

    fn state_flatten(&self, prefix: &str, state: &DynState, out: &mut StateSink) {
        self.inner.state_flatten(prefix, state, out);
    }

    fn state_unflatten(
        &self,
        rank: usize,
        prefix: &str,
        src: &mut StateSource,
        _default_device: &Device,
    ) -> Option<DynState> {
        self.inner.state_unflatten(rank, prefix, src, &self.device)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::optim::{GradientsParams, OptimizerRecord};
    use burn::tensor::{Tensor, TensorData};

    use super::*;

    #[derive(Module, Debug)]
    struct Tiny {
        w: Param<Tensor<2>>,
        b: Param<Tensor<1>>,
    }

    fn config(grad_clip: f64) -> OptimConfig {
        toml::from_str(&format!(
            "batch_size = 1\nmax_steps = 1\nlearning_rate = 0.1\nweight_decay = 0.1\n\
             grad_clip = {grad_clip}"
        ))
        .unwrap()
    }

    fn tiny(device: &Device) -> Tiny {
        let w: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
        Tiny {
            w: Param::from_data(TensorData::new(w, [3, 4]), device),
            b: Param::from_data([0.5f32, -0.25, 1.0], device),
        }
    }

    /// A loss whose gradient differs per element and per step, with norm far above the clip.
    fn step(model: Tiny, optim: &mut ModuleOptimizer, i: usize) -> Tiny {
        let x = Tensor::<2>::from_data(
            TensorData::new((0..8).map(|k| (k + i) as f32 * 0.9).collect(), [4, 2]),
            &model.w.device(),
        );
        let y = model.w.val().matmul(x).sum_dim(1).squeeze_dim::<1>(1) + model.b.val();
        let loss = (y.clone() * y).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-2, model, grads)
    }

    fn values(model: &Tiny) -> (Vec<f32>, Vec<f32>) {
        (
            model.w.val().into_data().try_to_vec::<f32>().unwrap(),
            model.b.val().into_data().try_to_vec::<f32>().unwrap(),
        )
    }

    /// The wrapper steps exactly as Burn's own `AdamWConfig::init()` optimizer, gradient
    /// clipping included (a clip of 0.5 binds: the gradients' norm is in the hundreds).
    #[test]
    fn steps_as_burns_adamw() {
        let device = Device::flex().autodiff();
        for clip in [0.0, 0.5] {
            let t = config(clip);
            let mut burns = AdamWConfig::new()
                .with_beta_2(t.beta2 as f32)
                .with_weight_decay(t.weight_decay as f32)
                .with_epsilon(1e-8)
                .with_grad_clipping(
                    (clip > 0.0).then_some(GradientClippingConfig::Norm(clip as f32)),
                )
                .init();
            let mut ours = optimizer(&t, &Device::flex());
            let (mut a, mut b) = (tiny(&device), tiny(&device));
            for i in 0..4 {
                a = step(a, &mut burns, i);
                b = step(b, &mut ours, i);
            }
            assert_eq!(values(&a), values(&b), "clip {clip}");
            assert_ne!(
                values(&a),
                values(&tiny(&device)),
                "the steps moved nothing"
            );
        }
        // The clip changes the result, so the comparison above would see it dropped.
        let run = |clip| {
            let mut o = optimizer(&config(clip), &Device::flex());
            let mut m = tiny(&device);
            for i in 0..4 {
                m = step(m, &mut o, i);
            }
            values(&m)
        };
        assert_ne!(run(0.0), run(0.5));
    }

    /// Saving the state mid-run and loading it into a new optimizer continues exactly.
    #[test]
    fn resumes_exactly_from_a_saved_record() {
        let device = Device::flex().autodiff();
        let t = config(0.5);
        let mut whole = optimizer(&t, &Device::flex());
        let mut a = tiny(&device);
        for i in 0..2 {
            a = step(a, &mut whole, i);
        }
        let bytes = whole.into_bytes().unwrap();
        let mut resumed =
            optimizer(&t, &Device::flex()).load_record(OptimizerRecord::from_bytes(bytes).unwrap());
        let mut b = a.clone();
        for i in 2..5 {
            a = step(a, &mut whole, i);
            b = step(b, &mut resumed, i);
        }
        assert_eq!(values(&a), values(&b));
    }
}
