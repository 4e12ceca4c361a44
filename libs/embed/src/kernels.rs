//! The encoder's element-wise passes — GELU and the attention's softmax —
//! written as plain loops with no library call inside, and run through
//! [`pulp::Arch::dispatch`], which compiles them for the vector
//! instructions this CPU has (AVX-512, or AVX2 with FMA) and picks one at
//! run time, in safe code. Each instruction then takes 8 or 16 values;
//! with the C library's `expf` in the loop (what candle's ops and the
//! first GELU called) each value was a call. Measured in docs/benchmarks.md
//! ("The encoder's element-wise passes vectorized").

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};

/// GELU with the exact erf: `x/2 · (1 + erf(x/√2))`, in one pass.
pub struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let values = contiguous(self.name(), storage, layout)?;
        let mut out = vec![0.0f32; values.len()];
        pulp::Arch::new().dispatch(|| {
            for (out, &x) in out.iter_mut().zip(values) {
                *out = gelu(x);
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Softmax over the last dimension (each row: `e^(x − max)`, over their
/// sum). The attention's padding, the lowest float added to its scores,
/// gets exactly 0.
pub struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let values = contiguous(self.name(), storage, layout)?;
        let mut out = values.to_vec();
        // An empty last dimension has no rows to normalise.
        if let Some(&row) = layout.shape().dims().last().filter(|&&row| row > 0) {
            pulp::Arch::new().dispatch(|| {
                for row in out.chunks_exact_mut(row) {
                    softmax(row);
                }
            });
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

fn contiguous<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input only");
    };
    Ok(&values[start..end])
}

#[inline(always)]
fn softmax(row: &mut [f32]) {
    // Each pass is its own loop, and the reductions run over 16 lanes:
    // a running sum in the exponentials' loop would order the additions
    // and keep the whole loop one value at a time.
    let max = lanes(row, f32::MIN, f32::max);
    for x in row.iter_mut() {
        *x = exp_nonpositive(*x - max);
    }
    // With finite scores the largest contributes e⁰ = 1, so the sum is at
    // least 1 (a row of NaN or −∞ stays NaN, as in candle's softmax).
    let scale = 1.0 / lanes(row, 0.0, |a, b| a + b);
    for x in row.iter_mut() {
        *x *= scale;
    }
}

/// `values` folded by `op` in 16 lanes, then the lanes folded.
#[inline(always)]
fn lanes(values: &[f32], start: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut acc = [start; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (acc, &x) in acc.iter_mut().zip(chunk) {
            *acc = op(*acc, x);
        }
    }
    for (acc, &x) in acc.iter_mut().zip(rest) {
        *acc = op(*acc, x);
    }
    acc.into_iter().fold(start, op)
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5·10⁻⁷, about
/// what f32 holds near 1).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    (1.0 - poly * exp_nonpositive(-z * z)).copysign(x)
}

/// eˣ for x ≤ 0, without a library call (so a loop of it vectorizes):
/// x = n·ln 2 + r with |r| ≤ ln 2 / 2, eʳ by its Taylor series to r⁶
/// (relative error below 2·10⁻⁷), 2ⁿ built in the exponent bits. Below
/// −87 (where eˣ < 1.7·10⁻³⁸ nears the subnormals) it is 0.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    // ln 2 in two parts, so that n·ln 2 is subtracted without rounding.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const LOWEST: f32 = -87.0;
    let clamped = x.clamp(LOWEST, 0.0);
    let n = (clamped * std::f32::consts::LOG2_E).round_ties_even();
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let er = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n is in −126..=0, so the biased exponent n + 127 is in 1..=127.
    let two_n = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < LOWEST { 0.0 } else { er * two_n }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn erf_agrees_with_the_reference_to_float_precision() {
        // Reference values of erf (to 10 digits).
        let known = [
            (0.0, 0.0),
            (0.1, 0.112_462_916_0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (1.5, 0.966_105_146_5),
            (2.0, 0.995_322_265_0),
            (3.0, 0.999_977_909_5),
            (-0.7, -0.677_801_193_8),
            (-2.5, -0.999_593_047_9),
        ];
        for (x, expected) in known {
            let got = erf(x as f32);
            assert!(
                (f64::from(got) - expected).abs() < 5e-7,
                "erf({x}) = {got}, expected {expected}"
            );
        }
    }

    #[test]
    fn exp_nonpositive_agrees_with_the_library_to_float_precision() {
        let mut x = 0.0f32;
        while x > -87.0 {
            let (got, expected) = (exp_nonpositive(x), x.exp());
            assert!(
                ((got - expected) / expected).abs() < 5e-7,
                "e^{x} = {got}, expected {expected}"
            );
            x -= 0.013_7;
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-1000.0), 0.0);
        assert_eq!(exp_nonpositive(f32::MIN), 0.0);
    }

    #[test]
    fn gelu_is_the_identity_far_right_and_zero_far_left() {
        assert!((gelu(6.0) - 6.0).abs() < 1e-6);
        assert!(gelu(-6.0).abs() < 1e-6);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
    }

    /// Through the op, as the encoder runs it: rows of the attention's
    /// scores, padding (the lowest float added) included, against the
    /// softmax computed in f64.
    #[test]
    fn softmax_matches_the_f64_softmax_and_gives_padding_nothing() {
        let rows: Vec<Vec<f32>> = vec![
            vec![0.3, -1.2, 4.0, 2.5, 0.0],
            vec![-50.0, -50.5, -49.0, -80.0, -51.0],
            vec![1.0, 2.0, 3.0, f32::MIN + 1.0, f32::MIN + 2.0],
            vec![7.0; 5],
        ];
        let flat: Vec<f32> = rows.concat();
        let scores = Tensor::from_vec(flat, (2, 2, 5), &Device::Cpu).unwrap();
        let got: Vec<Vec<f32>> = scores
            .apply_op1_no_bwd(&Softmax)
            .unwrap()
            .reshape((4, 5))
            .unwrap()
            .to_vec2()
            .unwrap();
        for (row, got) in rows.iter().zip(&got) {
            let max = row
                .iter()
                .copied()
                .fold(f64::MIN, |m, x| m.max(f64::from(x)));
            let exps: Vec<f64> = row.iter().map(|&x| (f64::from(x) - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            for (expected, &got) in exps.iter().map(|e| e / sum).zip(got) {
                assert!(
                    (f64::from(got) - expected).abs() < 1e-6,
                    "{row:?}: {got} against {expected}"
                );
            }
        }
        assert_eq!(&got[2][3..], &[0.0, 0.0]);
        assert!(got[3].iter().all(|&p| (p - 0.2).abs() < 1e-7));
    }

    #[test]
    fn gelu_through_the_op_matches_it_one_value_at_a_time() {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 50.0).collect();
        let out: Vec<f32> = Tensor::from_vec(values.clone(), 1000, &Device::Cpu)
            .unwrap()
            .apply_op1_no_bwd(&Gelu)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (x, got) in values.into_iter().zip(out) {
            assert!(
                (got - gelu(x)).abs() <= 1e-6 * x.abs().max(1.0),
                "{x}: {got}"
            );
        }
    }
}
