//! The local model against reference vectors computed once by an
//! independent implementation (`scripts/embedding_reference.py`: numpy, no
//! candle), and known pairs in the expected order.
#![cfg(feature = "local")]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use aia_embed::local::{MiniLm, Precision};
use aia_embed::{Embedder, LOCAL_DIM, LOCAL_MODEL};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    token_ids: Vec<u32>,
    vector: Vec<f32>,
}

fn model_dir() -> PathBuf {
    PathBuf::from(std::env::var("AI_AGENTS_MODEL_DIR").expect(
        "AI_AGENTS_MODEL_DIR is not set: run the tests through `./dev test` (or source the stack's env file), which obtains the model",
    ))
}

fn model() -> Arc<MiniLm> {
    static MODEL: OnceLock<Arc<MiniLm>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Arc::new(MiniLm::load_with(&model_dir(), Precision::F32).expect("loading the model"))
        })
        .clone()
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("reference_vectors.json")).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn tokens_match_the_reference_tokenizer_including_truncation() {
    let model = model();
    for sentence in reference().sentences {
        assert_eq!(
            model.token_ids(&sentence.text).unwrap(),
            sentence.token_ids,
            "tokens of {:?}",
            sentence.text
        );
    }
}

/// The lowest cosine between `model`'s vectors and the reference's, the
/// texts embedded in one request (passed in groups of similar length, so
/// short texts share a pass and its padding).
fn lowest_cosine_with_the_reference(model: &MiniLm) -> f32 {
    let reference = reference();
    let texts: Vec<String> = reference.sentences.iter().map(|s| s.text.clone()).collect();
    let vectors = model.embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    vectors
        .iter()
        .zip(&reference.sentences)
        .map(|(vector, sentence)| {
            assert_eq!(vector.dim(), LOCAL_DIM);
            cosine(vector.as_slice(), &sentence.vector)
        })
        .fold(f32::INFINITY, f32::min)
}

#[test]
fn vectors_match_the_independent_reference() {
    let lowest = lowest_cosine_with_the_reference(&model());
    assert!(
        lowest >= 0.9999,
        "lowest cosine with the reference {lowest}"
    );
}

#[test]
fn eight_bit_weights_stay_close_to_the_reference() {
    let model = MiniLm::load_with(&model_dir(), Precision::Int8).unwrap();
    let lowest = lowest_cosine_with_the_reference(&model);
    println!("int8: lowest cosine with the reference {lowest}");
    assert!(lowest >= 0.99, "lowest cosine with the reference {lowest}");
}

#[test]
fn every_text_of_a_mixed_batch_gets_the_vector_it_gets_alone_in_its_place() {
    // Long and short texts interleaved: the model passes texts of similar
    // length together, and each vector must still come back in its place.
    let long = "The printer on the second floor is jammed again and nobody can print the quarterly report; ".repeat(12);
    let texts = vec![
        long.clone(),
        "VPN disconnects every few minutes".to_owned(),
        format!("{long} The toner light is on too."),
        "Outlook asks for my password".to_owned(),
        "VPN disconnects every few minutes since Monday".to_owned(),
    ];
    let model = model();
    let batch = model.embed(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, in_batch) in texts.iter().zip(&batch) {
        let alone = model.embed(std::slice::from_ref(text)).unwrap();
        let similarity = cosine(in_batch.as_slice(), alone[0].as_slice());
        assert!(similarity > 0.9999, "cosine {similarity} for {text:.40}");
    }
}

#[tokio::test]
async fn known_pairs_rank_in_the_expected_order() {
    let embedder = Embedder::Local(model());
    assert_eq!(embedder.model(), LOCAL_MODEL);
    let query = "the yellow bar in my mail says sign in but nothing opens";
    let candidates = [
        "Outlook Need Password, WAM prompt never renders; re-registered the AAD broker plugin",
        "Printer queue stuck on the second floor; restarted the spooler",
        "Excel crashes when opening large spreadsheets; disabled the COM add-in",
    ];
    let mut texts = vec![query.to_owned()];
    texts.extend(candidates.iter().map(|c| (*c).to_owned()));
    let vectors = embedder.embed(&texts).await.unwrap();
    let scores: Vec<f32> = vectors[1..]
        .iter()
        .map(|v| vectors[0].cosine(v.as_slice()))
        .collect();
    assert!(
        scores[0] > scores[1] && scores[0] > scores[2],
        "the mail sign-in ticket should rank first: {scores:?}"
    );
}

#[test]
fn a_missing_model_is_refused_with_a_clear_message() {
    let empty = tempfile::tempdir().unwrap();
    let err = MiniLm::load(empty.path()).unwrap_err().to_string();
    assert!(err.contains("embedding model is missing"), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn a_tampered_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["model.safetensors", "tokenizer.json", "config.json"] {
        std::fs::copy(model_dir().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
    let err = MiniLm::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("does not match its expected SHA-256"), "{err}");
}
