//! A unit-length vector and its storage form.

/// An L2-normalised embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(Vec<f32>);

impl Vector {
    /// Normalises `values`; `None` when they are empty, zero or not finite.
    pub fn normalised(mut values: Vec<f32>) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm <= f32::EPSILON {
            return None;
        }
        for value in &mut values {
            *value /= norm;
        }
        Some(Self(values))
    }

    pub fn dim(&self) -> usize {
        self.0.len()
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity with another unit vector of the same dimension.
    pub fn cosine(&self, other: &[f32]) -> f32 {
        debug_assert_eq!(self.0.len(), other.len());
        self.0.iter().zip(other).map(|(a, b)| a * b).sum()
    }

    /// Little-endian `f32`s, as stored in Postgres (`bytea`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Reads a stored vector back; `None` when the bytes do not hold `dim`
    /// floats.
    pub fn floats_from_bytes(bytes: &[u8], dim: usize) -> Option<Vec<f32>> {
        if bytes.len() != dim * 4 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_round_trips_through_bytes() {
        let v = Vector::normalised(vec![3.0, 4.0]).unwrap();
        assert_eq!(v.as_slice(), &[0.6, 0.8]);
        let back = Vector::floats_from_bytes(&v.to_bytes(), 2).unwrap();
        assert!((v.cosine(&back) - 1.0).abs() < 1e-6);
        assert!(Vector::floats_from_bytes(&v.to_bytes(), 3).is_none());
    }

    #[test]
    fn refuses_vectors_that_cannot_be_normalised() {
        assert!(Vector::normalised(vec![]).is_none());
        assert!(Vector::normalised(vec![0.0, 0.0]).is_none());
        assert!(Vector::normalised(vec![f32::NAN, 1.0]).is_none());
    }
}
