//! Seeded random arrays: [`random()`], [`uniform`], [`normal`].
//!
//! Every block draws from its own generator, seeded from `(seed, block index)`
//! with SplitMix64, so a block's values depend only on the seed, the chunking
//! and its position: never on the scheduler, the number of threads or the order
//! in which blocks run. The generator is eight interleaved xoshiro256++
//! streams (no dependency needed), compiled for AVX-512 as well when the CPU
//! has it: the values are the same either way.

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

/// The number of interleaved generators of a block.
const LANES: usize = 8;

/// Eight interleaved xoshiro256++ generators, stored word by word (struct of
/// arrays) so that one step of all eight is a handful of vector instructions.
/// Output `k` of a block comes from lane `k % 8`.
struct Lanes([[u64; LANES]; 4]);

impl Lanes {
    fn for_block(seed: u64, index: &[usize]) -> Lanes {
        let mut sm = seed;
        let mut mix = splitmix64(&mut sm);
        for &i in index {
            let mut s = mix ^ (i as u64).wrapping_mul(0xd6e8_feb8_6659_fd93);
            mix = splitmix64(&mut s);
        }
        let mut s = mix;
        let mut state = [[0u64; LANES]; 4];
        for lane in 0..LANES {
            for word in &mut state {
                word[lane] = splitmix64(&mut s);
            }
        }
        Lanes(state)
    }

    /// The next output of every lane.
    #[inline(always)]
    fn next(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.0;
        let mut out = [0u64; LANES];
        for l in 0..LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }
}

/// Uniform in [0, 1) on a grid of 2^-52: the top 52 bits as the mantissa of
/// a number in [1, 2), minus one.
#[inline(always)]
fn unit(x: u64) -> f64 {
    f64::from_bits(0x3ff0_0000_0000_0000 | (x >> 12)) - 1.0
}

/// `out` filled with `f` of consecutive uniforms, eight at a time.
#[inline(always)]
fn fill_with(rng: &mut Lanes, out: &mut [f64], f: impl Fn(f64) -> f64) {
    let mut chunks = out.chunks_exact_mut(LANES);
    for c in &mut chunks {
        let v = rng.next();
        for (o, &x) in c.iter_mut().zip(&v) {
            *o = f(unit(x));
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let v = rng.next();
        for (o, &x) in rest.iter_mut().zip(&v) {
            *o = f(unit(x));
        }
    }
}

/// [`fill_with`] for a uniform in `[low, high)`.
#[inline(always)]
fn fill_uniform_body(rng: &mut Lanes, out: &mut [f64], low: f64, high: f64) {
    let span = high - low;
    fill_with(rng, out, |u| low + span * u);
}

/// The same, compiled for AVX-512 (64-bit lanes, rotates): about three times
/// the speed; used only when the CPU has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
fn fill_uniform_avx512(rng: &mut Lanes, out: &mut [f64], low: f64, high: f64) {
    fill_uniform_body(rng, out, low, high)
}

/// `out` filled with uniforms in `[low, high)`.
fn fill_uniform(rng: &mut Lanes, out: &mut [f64], low: f64, high: f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        // SAFETY: the CPU has the features the function is compiled for.
        #[allow(unsafe_code)]
        unsafe {
            fill_uniform_avx512(rng, out, low, high)
        };
        return;
    }
    fill_uniform_body(rng, out, low, high)
}

/// Normal samples drawn per stretch of this many (a multiple of [`LANES`],
/// so the uniforms continue the same stream as one long draw would).
const STRETCH: usize = 64 * LANES;

#[derive(Clone, Copy, Serialize, Deserialize)]
enum Dist {
    Uniform { low: f64, high: f64 },
    Normal { mean: f64, std: f64 },
}

impl Dist {
    /// `out` filled with samples, in order.
    fn fill(self, rng: &mut Lanes, out: &mut [f64]) {
        match self {
            Dist::Uniform { low, high } => fill_uniform(rng, out, low, high),
            Dist::Normal { mean, std } => {
                // Box-Muller on pairs of uniforms, drawn a stretch at a time;
                // 1 - u lies in (0, 1], so the log is finite.
                let mut u = [0.0; 2 * STRETCH];
                for stretch in out.chunks_mut(STRETCH) {
                    let u = &mut u[..2 * stretch.len()];
                    fill_uniform(rng, u, 0.0, 1.0);
                    for (o, p) in stretch.iter_mut().zip(u.chunks_exact(2)) {
                        let r = (-2.0 * (1.0 - p[0]).ln()).sqrt();
                        *o = mean + std * r * (std::f64::consts::TAU * p[1]).cos();
                    }
                }
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
        let mut rng = Lanes::for_block(self.seed, index);
        let mut v = vec![0.0; shape.iter().product()];
        self.dist.fill(&mut rng, &mut v);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched fill (AVX-512 where the CPU has it) gives the portable
    /// loop's values, bit for bit, across the 8-lane remainder.
    #[test]
    fn every_code_path_draws_the_same_values() {
        for n in [0, 1, 7, 8, 9, 1000] {
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            fill_uniform(&mut Lanes::for_block(5, &[1, 2]), &mut a, -1.0, 3.0);
            fill_uniform_body(&mut Lanes::for_block(5, &[1, 2]), &mut b, -1.0, 3.0);
            assert_eq!(a, b);
            assert!(a.iter().all(|v| (-1.0..3.0).contains(v)));
        }
    }
}
