//! How the local model's dense layers are held: as trained, or in 8 bits
//! where the CPU multiplies 8-bit integers in one instruction.

/// How the dense layers' weights are held (`AI_AGENTS_EMBEDDING_PRECISION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// As trained (`f32`).
    F32,
    /// 8-bit blocks (Q8_0), multiplied with 8-bit activations (`int8`):
    /// a quarter to a half less CPU per query where the CPU multiplies
    /// 8-bit integers in one instruction (AVX-512 VNNI or AVX-VNNI), and
    /// slower than f32 where it does not (candle's fallback kernel); vectors
    /// within 0.99 cosine of the reference, fused retrieval within 0.01 on
    /// every evaluation set (docs/benchmarks.md).
    Int8,
    /// `Int8` where the CPU has those instructions, else `F32` (`auto`,
    /// what the services default to).
    Auto,
}

impl Precision {
    /// What `Auto` means on this CPU; the others as they are.
    pub fn resolved(self) -> Self {
        match self {
            Self::Auto if integer_dot_products() => Self::Int8,
            Self::Auto => Self::F32,
            other => other,
        }
    }
}

/// Whether this CPU multiplies 8-bit integers in one instruction, which
/// candle's repacked 8-bit kernels need.
#[cfg(target_arch = "x86_64")]
pub(crate) fn integer_dot_products() -> bool {
    (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
        || (is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"))
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn integer_dot_products() -> bool {
    false
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(value: &str) -> std::result::Result<Self, Self::Err> {
        match value {
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            "auto" => Ok(Self::Auto),
            other => Err(format!("expected auto, f32 or int8, got {other:?}")),
        }
    }
}

/// The precision the deployment asks for (`AI_AGENTS_EMBEDDING_PRECISION`,
/// default `auto`): what every process holding the model loads it with.
pub fn configured_precision() -> Result<Precision, aia_config::ConfigError> {
    aia_config::parsed("EMBEDDING_PRECISION", Precision::Auto)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_read_from_its_setting() {
        assert_eq!("int8".parse(), Ok(Precision::Int8));
        assert_eq!("f32".parse(), Ok(Precision::F32));
        assert_eq!("auto".parse(), Ok(Precision::Auto));
        assert!("fp16".parse::<Precision>().is_err());
        assert_ne!(Precision::Auto.resolved(), Precision::Auto);
        assert_eq!(Precision::F32.resolved(), Precision::F32);
    }
}
