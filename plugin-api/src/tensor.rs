//! Tensors crossing the host/plugin boundary.
//!
//! Host and plugin link the same libtorch, so a tensor crosses as tch's raw `C_tensor`
//! pointer: a heap-allocated `at::Tensor`, i.e. one reference to a shared `TensorImpl`.
//!
//! **Ownership rule: a [`TensorHandle`] owns exactly one such reference, and whoever holds
//! the handle owns it.** Passing a handle by value (an argument or a return value) hands the
//! reference over. The only ways out are [`TensorHandle::into_tensor`] (the receiver's
//! `tch::Tensor` now owns it) and `Drop` (frees it). There is no way to copy a handle, so
//! neither a double free nor a leak can be written without `unsafe`.
//!
//! Handles made by [`TensorHandle::share`] (e.g. a backbone's parameters) point to the same
//! storage and autograd state as the original: the host's optimiser updating them in place
//! updates the plugin's model, and gradients computed through the plugin land on them.

use abi_stable::StableAbi;
use std::ffi::c_void;
use tch::Tensor;

/// One owned reference to a libtorch tensor; see the module docs.
#[repr(transparent)]
#[derive(StableAbi)]
pub struct TensorHandle {
    raw: *mut c_void,
}

impl TensorHandle {
    /// Gives the tensor's reference to a handle.
    pub fn new(mut tensor: Tensor) -> Self {
        let raw = tensor.as_mut_ptr().cast::<c_void>();
        // The handle now owns what `tensor` owned: do not run its destructor.
        std::mem::forget(tensor);
        TensorHandle { raw }
    }

    /// A handle to a second reference of the same tensor (same storage, same autograd leaf).
    pub fn share(tensor: &Tensor) -> Self {
        Self::new(tensor.shallow_clone())
    }

    /// Takes the reference back into a `tch::Tensor`.
    pub fn into_tensor(self) -> Tensor {
        let raw = self.raw;
        std::mem::forget(self);
        // SAFETY: `raw` came from `Tensor::as_mut_ptr` in `new` and was owned by `self`,
        // which is forgotten, so exactly one `Tensor` owns it from here on.
        unsafe { Tensor::from_ptr(raw.cast()) }
    }
}

impl Drop for TensorHandle {
    fn drop(&mut self) {
        // SAFETY: as in `into_tensor`; dropping the Tensor frees this one reference.
        drop(unsafe { Tensor::from_ptr(self.raw.cast()) });
    }
}

impl std::fmt::Debug for TensorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorHandle({:p})", self.raw)
    }
}

impl From<Tensor> for TensorHandle {
    fn from(tensor: Tensor) -> Self {
        TensorHandle::new(tensor)
    }
}
