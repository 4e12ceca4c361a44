//! What the searches by words share: how much of the text is searched, the
//! query (its lexemes OR'd), and what a full-text rank is worth as a score.

/// Longest query text considered; longer descriptions add noise, not recall.
const MAX_QUERY_CHARS: usize = 1000;

use aia_events::Language;

/// The text a search by words (or an external knowledge base) is given.
pub fn query_text(text: &str) -> String {
    text.chars().take(MAX_QUERY_CHARS).collect()
}

/// A `FROM` item giving `q`: the lexemes of the query text (`$2`) OR'd, or
/// null when it has none. Any one shared word is a match; `ts_rank` orders
/// by how much is shared.
///
/// The text is stemmed, and its stop words dropped, by the configuration
/// of the language it is written in; each stored item was by its own. So
/// words match across languages only where both stemmers leave the same
/// token — error codes, host names, product names — and a German "die" is
/// never an English match. (The configuration is a literal of a closed
/// set, not input.)
pub fn or_query(language: Language) -> String {
    format!(
        "(select nullif(replace(plainto_tsquery('{}', $2)::text, ' & ', ' | '), '')::tsquery as q) query",
        language.text_search_config()
    )
}

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
    fn each_language_is_stemmed_by_its_own_configuration() {
        assert!(or_query(Language::German).contains("plainto_tsquery('german', $2)"));
        assert!(or_query(Language::English).contains("plainto_tsquery('english', $2)"));
    }

    #[test]
    fn a_hit_by_words_is_never_likely() {
        assert!(score(1.0) < 0.5);
        assert!(score(7.3) < 0.5);
        assert_eq!(score(0.2), 0.1);
    }
}
