//! The thread pool kd's kernels share.
//!
//! kd's fused layers and the gemm kernels parallelise on rayon's global pool. By default rayon
//! starts one worker per core *besides* the thread that calls in: during a training step's
//! serial parts (dfdx's single-threaded ops, the optimiser, the loss bookkeeping) the caller and
//! the workers still spinning before they sleep share the cores, three threads on two. PyTorch's
//! OpenMP pool counts its caller as one of its threads; [`use_calling_thread`] does the same for
//! rayon.

/// Makes the calling thread worker 0 of rayon's global pool, which then has one thread per core
/// in all (or `RAYON_NUM_THREADS`). Call it first thing in `main`, before anything runs in
/// parallel, and keep doing the training on that thread. Returns the pool's thread count.
///
/// # Errors
/// When rayon's global pool already exists: some parallel work ran first.
pub fn use_calling_thread() -> Result<usize, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new().use_current_thread().build_global()?;
    Ok(rayon::current_num_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once anything has used rayon's pool, the call says so instead of building a second one.
    /// (The success path would make a short-lived test thread a worker of the shared pool; the
    /// `kd` binary takes it on every run.)
    #[test]
    fn after_parallel_work_the_pool_exists() {
        assert!(rayon::current_num_threads() >= 1);
        assert!(use_calling_thread().is_err());
    }
}
