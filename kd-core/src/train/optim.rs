//! SGD and Adam whose state can be saved and restored, so a resumed run continues exactly as
//! an uninterrupted one.
//!
//! dfdx 0.13 keeps the momentum and moment buffers of its `Sgd` and `Adam` private. These
//! optimisers keep the buffers themselves and update through dfdx's own kernels
//! ([`SgdConfig::try_update`], [`AdamConfig::try_update`]), so a step is bit-identical to
//! dfdx's. The state file is safetensors: one tensor per buffer and parameter, in the model's
//! visiting order, plus the step count as metadata.

use std::collections::HashMap;
use std::path::Path;

use dfdx::nn::{RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorRef};
use dfdx::optim::{Optimizer, OptimizerUpdateError};
use dfdx::prelude::{Cpu, Dtype, Gradients, Shape, Tensor};
use dfdx::tensor::safetensors::SafeDtype;
use dfdx::tensor_ops::{AdamConfig, Device, SgdConfig};

use super::checkpoint::CheckpointError;

pub use dfdx::optim::{Momentum, WeightDecay};

/// An optimiser whose state can be written to a file and read back.
pub trait Resumable<M> {
    /// Writes the optimiser's state for `model`'s parameters to `path` (atomically).
    fn save_state(&mut self, model: &M, path: &Path) -> Result<(), CheckpointError>;
    /// Reads the state written by [`Resumable::save_state`] for the same architecture.
    fn load_state(&mut self, model: &M, path: &Path) -> Result<(), CheckpointError>;
}

/// An optimiser whose learning rate a schedule sets each epoch.
pub trait LearningRate {
    /// Sets the learning rate.
    fn set_learning_rate(&mut self, learning_rate: f64);
}

/// A float type whose optimiser state can be saved: `f32` or `f64`.
pub trait StateDtype: Dtype + SafeDtype {
    /// The values of a CPU buffer (dfdx hides the buffer type behind `Storage::Vec`).
    fn values(buffer: &mut <Cpu as dfdx::tensor::Storage<Self>>::Vec) -> &mut Vec<Self>;
}

impl StateDtype for f32 {
    fn values(buffer: &mut <Cpu as dfdx::tensor::Storage<Self>>::Vec) -> &mut Vec<Self> {
        buffer
    }
}

impl StateDtype for f64 {
    fn values(buffer: &mut <Cpu as dfdx::tensor::Storage<Self>>::Vec) -> &mut Vec<Self> {
        buffer
    }
}

/// One buffer per parameter and slot (SGD: velocity; Adam: first and second moments), kept in
/// dfdx `Gradients` keyed by the parameters' ids, as dfdx's optimisers do.
#[derive(Debug)]
struct Buffers<E: Dtype> {
    slots: Vec<Gradients<E, Cpu>>,
}

impl<E: Dtype> Buffers<E> {
    fn new(slots: usize) -> Self {
        Buffers {
            slots: (0..slots).map(|_| Gradients::leaky()).collect(),
        }
    }
}

/// Visits `model`'s trainable tensors in order, giving each one's buffers as slices.
struct BufferVisitor<'a, E: Dtype, F> {
    buffers: &'a mut Buffers<E>,
    visit: F,
    index: usize,
}

impl<E: StateDtype, F: FnMut(usize, &mut [&mut Vec<E>]) -> Result<(), CheckpointError>> TensorVisitor<E, Cpu> for BufferVisitor<'_, E, F>
where
    Cpu: Device<E>,
{
    type Viewer = ViewTensorRef;
    type Err = CheckpointError;
    type E2 = E;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, Cpu>,
        tensor: &Tensor<S, E, Cpu>,
    ) -> Result<Option<Tensor<S, E, Cpu>>, CheckpointError> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let mut views = Vec::with_capacity(self.buffers.slots.len());
        for slot in &mut self.buffers.slots {
            let buffer = slot.get_or_alloc_mut(tensor).map_err(|e| CheckpointError::Corrupt {
                path: Default::default(),
                problem: format!("could not allocate optimiser state: {e:?}"),
            })?;
            views.push(E::values(buffer));
        }
        (self.visit)(self.index, &mut views)?;
        self.index += 1;
        Ok(None)
    }
}

fn for_each_buffer<M: TensorCollection<E, Cpu>, E: StateDtype>(
    model: &M,
    buffers: &mut Buffers<E>,
    visit: impl FnMut(usize, &mut [&mut Vec<E>]) -> Result<(), CheckpointError>,
) -> Result<usize, CheckpointError>
where
    Cpu: Device<E>,
{
    let mut visitor = BufferVisitor { buffers, visit, index: 0 };
    M::iter_tensors(&mut RecursiveWalker { m: model, f: &mut visitor })?;
    Ok(visitor.index)
}

fn save_buffers<M: TensorCollection<E, Cpu>, E: StateDtype>(
    model: &M,
    buffers: &mut Buffers<E>,
    step: i32,
    path: &Path,
) -> Result<(), CheckpointError>
where
    Cpu: Device<E>,
{
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for_each_buffer(model, buffers, |index, slots| {
        for (slot, buffer) in slots.iter().enumerate() {
            let data: Vec<u8> = buffer.iter().flat_map(|&v| v.to_le_bytes()).collect();
            bytes.push((format!("{index}.{slot}"), vec![buffer.len()], data));
        }
        Ok(())
    })?;
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(E::safe_dtype(), shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| corrupt(path, format!("could not describe the optimiser state: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([("step".to_string(), step.to_string())]);
    let serialized = safetensors::tensor::serialize(views, &Some(metadata))
        .map_err(|e| corrupt(path, format!("could not serialise the optimiser state: {e:?}")))?;
    Ok(crate::files::write_atomically(path, &serialized)?)
}

fn load_buffers<M: TensorCollection<E, Cpu>, E: StateDtype>(
    model: &M,
    buffers: &mut Buffers<E>,
    path: &Path,
) -> Result<i32, CheckpointError>
where
    Cpu: Device<E>,
{
    let bytes = std::fs::read(path).map_err(|source| crate::files::FileError::at(path, "read the optimiser state")(source))?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(path, format!("not a safetensors file: {e:?}")))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(path, format!("not a safetensors file: {e:?}")))?;
    let step = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("step"))
        .and_then(|s| s.parse::<i32>().ok())
        .ok_or_else(|| corrupt(path, "the metadata has no integer `step`".into()))?;
    let size = std::mem::size_of::<E>();
    let visited = for_each_buffer(model, buffers, |index, slots| {
        for (slot, buffer) in slots.iter_mut().enumerate() {
            let name = format!("{index}.{slot}");
            let view = file.tensor(&name).map_err(|_| {
                corrupt(
                    path,
                    format!("tensor `{name}` is missing: the state is of another model or optimiser"),
                )
            })?;
            if view.dtype() != E::safe_dtype() || view.data().len() != buffer.len() * size {
                return Err(corrupt(
                    path,
                    format!(
                        "tensor `{name}` is {:?} × {} bytes, but the model's parameter {index} needs {:?} × {}",
                        view.dtype(),
                        view.data().len(),
                        E::safe_dtype(),
                        buffer.len() * size
                    ),
                ));
            }
            for (i, value) in buffer.iter_mut().enumerate() {
                *value = E::from_le_bytes(view.data(), i * size);
            }
        }
        Ok(())
    })?;
    let stored = file.len() / buffers.slots.len().max(1);
    if stored != visited {
        return Err(corrupt(
            path,
            format!("it holds state for {stored} parameters, but the model has {visited}"),
        ));
    }
    Ok(step)
}

fn corrupt(path: &Path, problem: String) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        problem,
    }
}

/// Applies `update` to every trainable parameter of `module` with its gradient and buffers.
fn update_parameters<M: TensorCollection<E, Cpu>, E: Dtype>(
    module: &mut M,
    gradients: &Gradients<E, Cpu>,
    buffers: &mut Buffers<E>,
    update: impl FnMut(&mut dyn UpdateParameter<E>) -> Result<(), dfdx::tensor::CpuError>,
) -> Result<(), OptimizerUpdateError<dfdx::tensor::CpuError>>
where
    Cpu: Device<E>,
{
    // dfdx exposes a gradient's buffer only mutably (`get_or_alloc_mut`), so work on a copy of
    // the gradients; the copy reuses dfdx's allocation cache.
    let mut gradients = gradients.clone();
    let mut visitor = UpdateVisitor {
        gradients: &mut gradients,
        buffers,
        update,
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: module,
        f: &mut visitor,
    })
    .map_err(OptimizerUpdateError::DeviceError)?;
    Ok(())
}

/// A parameter, its gradient and its buffers, for one update kernel call.
trait UpdateParameter<E: Dtype> {
    fn sgd(&mut self, cfg: &SgdConfig) -> Result<(), dfdx::tensor::CpuError>;
    fn adam(&mut self, cfg: &AdamConfig, step: i32) -> Result<(), dfdx::tensor::CpuError>;
}

struct Parameter<'a, S: Shape, E: Dtype> {
    tensor: &'a mut Tensor<S, E, Cpu>,
    gradient: &'a <Cpu as dfdx::tensor::Storage<E>>::Vec,
    buffers: Vec<&'a mut <Cpu as dfdx::tensor::Storage<E>>::Vec>,
}

impl<S: Shape, E: Dtype> UpdateParameter<E> for Parameter<'_, S, E>
where
    Cpu: Device<E>,
{
    fn sgd(&mut self, cfg: &SgdConfig) -> Result<(), dfdx::tensor::CpuError> {
        let [velocity] = self.buffers.as_mut_slice() else {
            unreachable!("SGD keeps one buffer per parameter")
        };
        cfg.try_update(self.tensor, velocity, self.gradient)
    }

    fn adam(&mut self, cfg: &AdamConfig, step: i32) -> Result<(), dfdx::tensor::CpuError> {
        let [moment1, moment2] = self.buffers.as_mut_slice() else {
            unreachable!("Adam keeps two buffers per parameter")
        };
        cfg.try_update(step, self.tensor, moment1, moment2, self.gradient)
    }
}

struct UpdateVisitor<'a, E: Dtype, F> {
    gradients: &'a mut Gradients<E, Cpu>,
    buffers: &'a mut Buffers<E>,
    update: F,
}

impl<E: Dtype, F> TensorVisitor<E, Cpu> for UpdateVisitor<'_, E, F>
where
    F: FnMut(&mut dyn UpdateParameter<E>) -> Result<(), dfdx::tensor::CpuError>,
    Cpu: Device<E>,
{
    type Viewer = ViewTensorMut;
    type Err = dfdx::tensor::CpuError;
    type E2 = E;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, Cpu>,
        tensor: &mut Tensor<S, E, Cpu>,
    ) -> Result<Option<Tensor<S, E, Cpu>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let gradient = &*self.gradients.get_or_alloc_mut(tensor)?;
        let mut buffers = Vec::with_capacity(self.buffers.slots.len());
        for slot in &mut self.buffers.slots {
            buffers.push(slot.get_or_alloc_mut(tensor)?);
        }
        // `slots` are distinct maps, so the borrows above are disjoint.
        let mut parameter = Parameter { tensor, gradient, buffers };
        (self.update)(&mut parameter)?;
        Ok(None)
    }
}

/// SGD (optionally with momentum and weight decay) with savable state; the maths is dfdx's.
#[derive(Debug)]
pub struct Sgd<E: Dtype = f32> {
    /// Learning rate, momentum and weight decay.
    pub cfg: SgdConfig,
    buffers: Buffers<E>,
}

impl<E: Dtype> Sgd<E> {
    /// A fresh optimiser (zero velocity).
    pub fn new(cfg: SgdConfig) -> Self {
        Sgd {
            cfg,
            buffers: Buffers::new(1),
        }
    }
}

impl<M: TensorCollection<E, Cpu>, E: Dtype> Optimizer<M, Cpu, E> for Sgd<E>
where
    Cpu: Device<E>,
{
    fn update(&mut self, module: &mut M, gradients: &Gradients<E, Cpu>) -> Result<(), OptimizerUpdateError<dfdx::tensor::CpuError>> {
        let cfg = self.cfg;
        update_parameters(module, gradients, &mut self.buffers, |parameter| parameter.sgd(&cfg))
    }
}

impl<M: TensorCollection<E, Cpu>, E: StateDtype> Resumable<M> for Sgd<E>
where
    Cpu: Device<E>,
{
    fn save_state(&mut self, model: &M, path: &Path) -> Result<(), CheckpointError> {
        save_buffers(model, &mut self.buffers, 0, path)
    }

    fn load_state(&mut self, model: &M, path: &Path) -> Result<(), CheckpointError> {
        load_buffers(model, &mut self.buffers, path).map(|_| ())
    }
}

impl<E: Dtype> LearningRate for Sgd<E> {
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.cfg.lr = learning_rate;
    }
}

impl<E: Dtype> LearningRate for Adam<E> {
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.cfg.lr = learning_rate;
    }
}

/// Adam (Kingma & Ba, 2015) with savable moments and step count; the maths is dfdx's.
#[derive(Debug)]
pub struct Adam<E: Dtype = f32> {
    /// Learning rate, betas, epsilon and weight decay.
    pub cfg: AdamConfig,
    step: i32,
    buffers: Buffers<E>,
}

impl<E: Dtype> Adam<E> {
    /// A fresh optimiser (zero moments, step 0).
    pub fn new(cfg: AdamConfig) -> Self {
        Adam {
            cfg,
            step: 0,
            buffers: Buffers::new(2),
        }
    }
}

impl<M: TensorCollection<E, Cpu>, E: Dtype> Optimizer<M, Cpu, E> for Adam<E>
where
    Cpu: Device<E>,
{
    fn update(&mut self, module: &mut M, gradients: &Gradients<E, Cpu>) -> Result<(), OptimizerUpdateError<dfdx::tensor::CpuError>> {
        self.step += 1;
        let (cfg, step) = (self.cfg, self.step);
        update_parameters(module, gradients, &mut self.buffers, |parameter| parameter.adam(&cfg, step))
    }
}

impl<M: TensorCollection<E, Cpu>, E: StateDtype> Resumable<M> for Adam<E>
where
    Cpu: Device<E>,
{
    fn save_state(&mut self, model: &M, path: &Path) -> Result<(), CheckpointError> {
        save_buffers(model, &mut self.buffers, self.step, path)
    }

    fn load_state(&mut self, model: &M, path: &Path) -> Result<(), CheckpointError> {
        self.step = load_buffers(model, &mut self.buffers, path)?;
        Ok(())
    }
}

/// Two optimisers of a model pair `(A, B)` (mutual peers, a generator and its discriminator):
/// each keeps the state of its own model, the second in a file beside the first's.
impl<A, B, OA: Resumable<A>, OB: Resumable<B>> Resumable<(A, B)> for (OA, OB) {
    fn save_state(&mut self, model: &(A, B), path: &Path) -> Result<(), CheckpointError> {
        self.0.save_state(&model.0, path)?;
        self.1.save_state(&model.1, &second_state_path(path))
    }

    fn load_state(&mut self, model: &(A, B), path: &Path) -> Result<(), CheckpointError> {
        self.0.load_state(&model.0, path)?;
        self.1.load_state(&model.1, &second_state_path(path))
    }
}

impl<OA: LearningRate, OB: LearningRate> LearningRate for (OA, OB) {
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.0.set_learning_rate(learning_rate);
        self.1.set_learning_rate(learning_rate);
    }
}

fn second_state_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_stem().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".1.safetensors");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::nn::ZeroGrads;
    use dfdx::prelude::*;

    type Net = (Linear<3, 4>, ReLU, Linear<4, 2>);

    /// Runs `steps` steps of a fixed regression with `optimizer`, returning the weights.
    fn train<O: Optimizer<<Net as BuildOnDevice<Cpu, f32>>::Built, Cpu, f32>>(
        model: &mut <Net as BuildOnDevice<Cpu, f32>>::Built,
        optimizer: &mut O,
        steps: std::ops::Range<usize>,
    ) -> Vec<f32> {
        let dev = Cpu::default();
        let mut grads = model.alloc_grads();
        for step in steps {
            let x: Tensor<Rank2<5, 3>, f32, _> = dev.tensor([[step as f32 * 0.1, 1.0, -0.5]; 5]);
            let y: Tensor<Rank2<5, 2>, f32, _> = dev.tensor([[0.3, -0.2]; 5]);
            let loss = mse_loss(model.forward_mut(x.traced(grads)), y);
            grads = loss.backward();
            optimizer.update(model, &grads).expect("update");
            model.zero_grads(&mut grads);
        }
        let mut weights = model.0.weight.as_vec();
        weights.extend(model.2.bias.as_vec());
        weights
    }

    fn model() -> <Net as BuildOnDevice<Cpu, f32>>::Built {
        Cpu::seed_from_u64(3).build_module::<Net, f32>()
    }

    #[test]
    fn steps_equal_dfdx_optimisers() {
        let sgd = SgdConfig {
            lr: 0.05,
            momentum: Some(Momentum::Nesterov(0.9)),
            weight_decay: Some(WeightDecay::L2(1e-3)),
        };
        let (mut a, mut b) = (model(), model());
        let ours = train(&mut a, &mut Sgd::new(sgd), 0..20);
        let theirs = train(&mut b, &mut dfdx::optim::Sgd::new(&model(), sgd), 0..20);
        assert_eq!(ours, theirs);

        let adam = AdamConfig {
            lr: 1e-2,
            ..Default::default()
        };
        let (mut a, mut b) = (model(), model());
        let ours = train(&mut a, &mut Adam::new(adam), 0..20);
        let theirs = train(&mut b, &mut dfdx::optim::Adam::new(&model(), adam), 0..20);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn saved_state_resumes_to_the_same_weights() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = AdamConfig {
            lr: 1e-2,
            ..Default::default()
        };
        let mut straight = model();
        let expected = train(&mut straight, &mut Adam::new(cfg), 0..20);

        let mut first = model();
        let mut optimizer = Adam::new(cfg);
        train(&mut first, &mut optimizer, 0..10);
        let path = dir.path().join("adam.safetensors");
        optimizer.save_state(&first, &path).expect("save");

        let mut resumed = first.clone();
        let mut fresh = Adam::new(cfg);
        fresh.load_state(&resumed, &path).expect("load");
        assert_eq!(train(&mut resumed, &mut fresh, 10..20), expected);

        let mut without_state = first.clone();
        assert_ne!(
            train(&mut without_state, &mut Adam::new(cfg), 10..20),
            expected,
            "the state matters"
        );
    }

    #[test]
    fn state_of_another_model_is_rejected_with_the_file_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sgd.safetensors");
        let small = Cpu::default().build_module::<Linear<3, 4>, f32>();
        let mut sgd = Sgd::<f32>::new(SgdConfig::default());
        sgd.save_state(&small, &path).expect("save");
        let error = Sgd::<f32>::new(SgdConfig::default())
            .load_state(&model(), &path)
            .expect_err("another architecture");
        let message = error.to_string();
        assert!(message.contains("sgd.safetensors"), "{message}");

        std::fs::write(&path, b"not safetensors").expect("write");
        let message = sgd.load_state(&small, &path).expect_err("garbage").to_string();
        assert!(message.contains("not a safetensors file"), "{message}");
    }
}
