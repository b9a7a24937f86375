//! Seeded random arrays: [`random()`], [`uniform`], [`normal`].
//!
//! Every block draws from its own generator, seeded from `(seed, block index)`
//! with SplitMix64, so a block's values depend only on the seed, the chunking
//! and its position: never on the scheduler, the number of threads or the order
//! in which blocks run. The generator is xoshiro256** (no dependency needed).

use dask_core::{tokenize, Arg, BoxError, Op, Task, Value};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::array::{new_layer, op, value_arg, Array};
use crate::chunks::{ChunkSpec, Chunks};
use crate::error::{Error, Result};

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256**: a small, fast generator with a 2^256 period.
struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn for_block(seed: u64, index: &[usize]) -> Xoshiro {
        let mut sm = seed;
        let mut mix = splitmix64(&mut sm);
        for &i in index {
            let mut s = mix ^ (i as u64).wrapping_mul(0xd6e8_feb8_6659_fd93);
            mix = splitmix64(&mut s);
        }
        let mut s = mix;
        Xoshiro([
            splitmix64(&mut s),
            splitmix64(&mut s),
            splitmix64(&mut s),
            splitmix64(&mut s),
        ])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[derive(Clone, Copy, Serialize, Deserialize)]
enum Dist {
    Uniform { low: f64, high: f64 },
    Normal { mean: f64, std: f64 },
}

impl Dist {
    fn sample(self, rng: &mut Xoshiro) -> f64 {
        match self {
            Dist::Uniform { low, high } => low + (high - low) * rng.next_f64(),
            Dist::Normal { mean, std } => {
                // Box-Muller; 1 - u lies in (0, 1], so the log is finite.
                let u1 = 1.0 - rng.next_f64();
                let u2 = rng.next_f64();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                mean + std * z
            }
        }
    }
}

/// The op of a random block: draws the block at the index it gets from the
/// generator of `(seed, index)`.
#[derive(Serialize, Deserialize)]
struct RandomBlock {
    dist: Dist,
    seed: u64,
}

impl Op for RandomBlock {
    fn name(&self) -> &str {
        match self.dist {
            Dist::Uniform { .. } => "dask_array::uniform",
            Dist::Normal { .. } => "dask_array::normal",
        }
    }
    fn call(&self, args: &[Value]) -> Result<Value, BoxError> {
        let (index, shape) = value_arg::<(Vec<usize>, Vec<usize>)>(args, 0)?;
        let mut rng = Xoshiro::for_block(self.seed, index);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| self.dist.sample(&mut rng)).collect();
        Ok(Value::new(ArrayD::from_shape_vec(IxDyn(shape), v)?))
    }
}
dask_core::register_op_type!(RandomBlock);

/// Whether `op` is the op of a random block (see [`crate::optimize`]).
pub(crate) fn is_random_op(op: &dyn std::any::Any) -> bool {
    op.is::<RandomBlock>()
}

fn build(
    kind: &str,
    dist: Dist,
    params: (f64, f64),
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    seed: u64,
) -> Result<Array<f64>> {
    let chunks = Chunks::new(shape, chunks)?;
    let name = format!("{kind}-{}", tokenize(&(kind, params, seed, &chunks)));
    let op = op(RandomBlock { dist, seed });
    let c = chunks.clone();
    Ok(new_layer::<f64>(name, chunks, &[], false, |idx| {
        Task::new(
            op.clone(),
            vec![Arg::value((idx.to_vec(), c.block_shape(idx)))],
        )
    }))
}

fn check_finite(op: &'static str, param: &'static str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            param,
            value: v.to_string(),
            hint: "use a finite number",
        })
    }
}

/// Uniform samples in `[0, 1)`, like `dask.array.random.random`.
///
/// ```
/// use dask_array::{random, Collection};
/// let x = random::random(&[100, 100], 25, 42).unwrap();
/// let y = random::random(&[100, 100], 25, 42).unwrap();
/// assert_eq!(x.name(), y.name()); // same seed, same keys
/// ```
pub fn random(shape: &[usize], chunks: impl Into<ChunkSpec>, seed: u64) -> Result<Array<f64>> {
    uniform(0.0, 1.0, shape, chunks, seed)
}

/// Uniform samples in `[low, high)`. Errors unless `low <= high`, both finite.
pub fn uniform(
    low: f64,
    high: f64,
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    seed: u64,
) -> Result<Array<f64>> {
    check_finite("uniform", "low", low)?;
    check_finite("uniform", "high", high)?;
    if low > high {
        return Err(Error::InvalidArgument {
            op: "uniform",
            param: "low",
            value: format!("{low} (high = {high})"),
            hint: "low must not exceed high",
        });
    }
    build(
        "uniform",
        Dist::Uniform { low, high },
        (low, high),
        shape,
        chunks,
        seed,
    )
}

/// Normal samples with the given mean and standard deviation (Box-Muller).
/// Errors unless both are finite and `std >= 0`.
pub fn normal(
    mean: f64,
    std: f64,
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    seed: u64,
) -> Result<Array<f64>> {
    check_finite("normal", "mean", mean)?;
    check_finite("normal", "std", std)?;
    if std < 0.0 {
        return Err(Error::InvalidArgument {
            op: "normal",
            param: "std",
            value: std.to_string(),
            hint: "the standard deviation must be >= 0",
        });
    }
    build(
        "normal",
        Dist::Normal { mean, std },
        (mean, std),
        shape,
        chunks,
        seed,
    )
}
