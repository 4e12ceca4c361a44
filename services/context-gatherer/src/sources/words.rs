//! What the searches by words share: how much of the text is searched, the
//! query (its lexemes OR'd), and what a full-text rank is worth as a score.

/// Longest query text considered; longer descriptions add noise, not recall.
const MAX_QUERY_CHARS: usize = 1000;

/// The text a search by words (or an external knowledge base) is given.
pub fn query_text(text: &str) -> String {
    text.chars().take(MAX_QUERY_CHARS).collect()
}

/// A `FROM` item giving `q`: the lexemes of the query text (`$2`) OR'd, or
/// null when it has none. Any one shared word is a match; `ts_rank` orders
/// by how much is shared.
pub const OR_QUERY: &str = "(select nullif(replace(plainto_tsquery('english', $2)::text, ' & ', ' | '), '')::tsquery as q) query";

/// A hit found by words alone: its full-text rank scaled into [0, 0.5).
/// Shared words say little about whether an item holds the fix, so such a
/// hit is never called likely (0.5 and above).
pub fn score(rank: f64) -> f64 {
    0.5 * rank.min(0.999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_QUERY_CHARS + 10);
        assert_eq!(query_text(&text).chars().count(), MAX_QUERY_CHARS);
        assert_eq!(query_text("short"), "short");
    }

    #[test]
    fn a_hit_by_words_is_never_likely() {
        assert!(score(1.0) < 0.5);
        assert!(score(7.3) < 0.5);
        assert_eq!(score(0.2), 0.1);
    }
}
