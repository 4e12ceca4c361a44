//! Unit vectors built so the cosines between them are known in advance.

/// A unit vector of `dimensions` with `first` on axis 0 and the rest on
/// `axis`: two such vectors on different axes have the cosine
/// `first_a · first_b`, and one with `first` = 1 is axis 0 itself.
pub fn along(first: f32, axis: usize, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0.0; dimensions];
    vector[0] = first;
    vector[axis] = (1.0 - first * first).sqrt();
    vector
}
