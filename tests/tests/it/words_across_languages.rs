//! Search by meaning with words as a bonus, in a tenant whose history
//! mixes languages, on PostgreSQL: shared words lift a near miss written in
//! the query's language over the right ticket in another language unless
//! the fusion holds words back where the candidates' languages differ —
//! and within one language words still break ties.

use aia_events::{Language, TenantId};
use aia_store::{Keyring, Pool};
use aia_testkit::TestDatabase;
use context_gatherer::sources::fusion::{self, Fusion};
use context_gatherer::sources::similar::{self, Semantic};

use crate::ranking_signals::store_vector;
use crate::vectors_support;

const MODEL: &str = "multilingual-test";
const DIM: usize = 8;

/// A unit vector with cosine `cosine` to the query (`e0`), the rest of it
/// on its own axis `axis`, so candidates are apart from each other.
fn at(cosine: f32, axis: usize) -> Vec<f32> {
    vectors_support::along(cosine, axis, DIM)
}

fn query_vector() -> Vec<f32> {
    at(1.0, 1)
}

/// The German query: it shares "Drucker", "druckt", "Fach" with the German
/// near miss and no word with the English ticket about the same fault.
const QUERY: &str = "Der Drucker im zweiten Stock druckt nur leere Seiten aus dem Fach zwei";

/// (id, language, subject, description, resolution, cosine to the query)
type Ticket = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    f32,
);

async fn tenant_with(db: &TestDatabase, tickets: &[Ticket]) -> (Pool, TenantId) {
    let stored: Vec<(Ticket, Vec<f32>)> = tickets
        .iter()
        .enumerate()
        .map(|(axis, ticket)| (*ticket, at(ticket.5, axis + 2)))
        .collect();
    tenant_with_vectors(db, &stored).await
}

/// The tenant `alpen` with these resolved tickets, each with its vector.
async fn tenant_with_vectors(
    db: &TestDatabase,
    tickets: &[(Ticket, Vec<f32>)],
) -> (Pool, TenantId) {
    let keyring = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    aiagents::ops::add_tenant(
        &db.app_url,
        &keyring,
        "alpen",
        "alpen",
        aia_events::ItsmKind::ServicedeskPlus,
        "https://sdp.example.com",
        r#"{"authtoken":"t"}"#,
    )
    .await
    .unwrap();
    let admin = db.admin_client().await;
    for ((id, language, subject, description, resolution, _), _) in tickets {
        admin
            .execute(
                "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution,
                                             priority, resolved_at, last_event_id, language)
                 values ('alpen', $1, $2, $3, $4, 'medium', now(), gen_random_uuid(), $5)",
                &[id, subject, description, resolution, language],
            )
            .await
            .unwrap();
    }
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let tenant = TenantId::parse("alpen").unwrap();
    let mut client = pool.get().await.unwrap();
    for ((id, ..), vector) in tickets {
        store_vector(&mut client, &tenant, id, MODEL, vector)
            .await
            .unwrap();
    }
    (pool, tenant)
}

async fn search(pool: &Pool, tenant: &TenantId) -> Vec<String> {
    let vector = query_vector();
    let semantic = Semantic {
        model: MODEL,
        vector: &vector,
        rewrite: None,
        fusion: Fusion {
            threshold: 0.5,
            likely: 0.8,
            lexical_weight: 0.10,
            ..fusion::DEFAULT
        },
    };
    similar::similar_tickets_by_meaning(pool, tenant, QUERY, Language::German, semantic, 5)
        .await
        .unwrap()
        .into_iter()
        .map(|ticket| ticket.ticket_id.to_string())
        .collect()
}

const ENGLISH_FIX: Ticket = (
    "EN-1",
    "en",
    "Blank pages from the second floor printer",
    "Every job comes out empty from tray two.",
    "The toner cartridge still had its sealing tape; removed it.",
    0.90,
);

const GERMAN_NEAR_MISS: Ticket = (
    "DE-1",
    "de",
    "Drucker druckt nicht aus Fach zwei",
    "Der Drucker zieht aus Fach zwei kein Papier ein.",
    "Die Einzugsrolle im Fach zwei getauscht.",
    0.85,
);

#[tokio::test]
async fn words_do_not_lift_a_near_miss_in_the_querys_language_over_the_fix_in_another() {
    let db = TestDatabase::create().await;
    let (pool, tenant) = tenant_with(&db, &[ENGLISH_FIX, GERMAN_NEAR_MISS]).await;

    // By cosine plus the bonus the German near miss (0.85 + up to 0.10)
    // would pass the English fix (0.90, no shared word); held back, meaning
    // orders them.
    assert_eq!(search(&pool, &tenant).await, ["EN-1", "DE-1"]);
}

#[tokio::test]
async fn within_one_language_shared_words_still_break_ties() {
    let db = TestDatabase::create().await;
    let german_fix = (
        "DE-2",
        "de",
        "Nur weiße Blätter vom Gerät im Flur",
        "Alles kommt weiß heraus.",
        "Das Siegelband der Tonerkartusche entfernt.",
        0.90,
    );
    let (pool, tenant) = tenant_with(&db, &[german_fix, GERMAN_NEAR_MISS]).await;

    // Every candidate is German: the words the near miss shares with the
    // query lift it over a ticket that is 0.05 nearer by meaning.
    assert_eq!(search(&pool, &tenant).await, ["DE-1", "DE-2"]);
}

/// A unit vector along `parts` (the first axes; the rest zero).
fn unit(parts: &[f32]) -> Vec<f32> {
    let norm = parts.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut vector = vec![0.0; DIM];
    for (slot, part) in vector.iter_mut().zip(parts) {
        *slot = part / norm;
    }
    vector
}

/// A multilingual model leans each language to one side: here axes 0 and
/// 1 are English and French, 2–4 mail, printing and the VPN. By the plain
/// cosine an English question about the VPN is nearest to English tickets
/// about mail and printing; with each language's mean taken out the French
/// ticket about the VPN comes first, and every hit keeps the confidence of
/// its plain cosine.
#[tokio::test]
async fn in_a_tenant_of_two_languages_the_cause_outranks_the_querys_language() {
    let db = TestDatabase::create().await;
    let ticket = |id, language, subject| (id, language, subject, "", "", 0.0);
    let tickets = [
        (
            ticket("EN-MAIL", "en", "Mail stuck"),
            unit(&[1.0, 0.0, 0.3]),
        ),
        (
            ticket("EN-PRINT", "en", "Printer jam"),
            unit(&[1.0, 0.0, 0.0, 0.3]),
        ),
        (
            ticket("EN-SCAN", "en", "Scan to mail"),
            unit(&[1.0, 0.0, 0.2, 0.2]),
        ),
        (
            ticket("FR-VPN", "fr", "Le VPN coupe"),
            unit(&[0.0, 1.0, 0.0, 0.0, 0.9]),
        ),
        (
            ticket("FR-MAIL", "fr", "Courrier bloqué"),
            unit(&[0.0, 1.0, 0.3]),
        ),
        (
            ticket("FR-PRINT", "fr", "Imprimante"),
            unit(&[0.0, 1.0, 0.0, 0.3]),
        ),
    ];
    let (pool, tenant) = tenant_with_vectors(&db, &tickets).await;
    let query = unit(&[1.0, 0.0, 0.0, 0.0, 0.6]);
    let cosine = |id: &str| {
        let (_, vector) = tickets.iter().find(|(t, _)| t.0 == id).unwrap();
        vector.iter().zip(&query).map(|(a, b)| a * b).sum::<f32>()
    };
    assert!(
        cosine("EN-MAIL") > cosine("FR-VPN"),
        "plain cosine prefers English"
    );
    let fusion = Fusion {
        threshold: 0.2,
        likely: 0.8,
        lexical_weight: 0.0,
        ..fusion::DEFAULT
    };
    let semantic = Semantic {
        model: MODEL,
        vector: &query,
        rewrite: None,
        fusion,
    };
    let found = similar::similar_tickets_by_meaning(
        &pool,
        &tenant,
        "The VPN keeps dropping",
        Language::English,
        semantic,
        5,
    )
    .await
    .unwrap();
    assert_eq!(found[0].ticket_id.as_str(), "FR-VPN", "{found:?}");
    for hit in &found {
        let expected = f64::from(fusion.confidence(cosine(hit.ticket_id.as_str())));
        assert!(
            (hit.score - expected).abs() < 1e-3,
            "{}: score {} is not its plain cosine's confidence {expected}",
            hit.ticket_id,
            hit.score
        );
    }
}

/// Words may reorder only candidates of the query's language — judged on
/// the order the centred search gives. Here the English fix is first by
/// the centred cosine but far down by the plain one, behind three German
/// tickets; judged by the plain cosine the contest would be all German,
/// words would lift the German near miss (it shares "Drucker", "Fach",
/// "zwei" with the query) over the fix.
#[tokio::test]
async fn in_a_centred_tenant_words_do_not_lift_a_near_miss_over_the_fix_in_another_language() {
    let db = TestDatabase::create().await;
    let ticket = |id, language, subject, description| (id, language, subject, description, "", 0.0);
    // Axes: 0 English, 1 German, 2 blank pages, 3 paper feed, 4 mail, 5 screens.
    let tickets = [
        (
            ticket(
                "EN-FIX",
                "en",
                "Blank pages from the second floor printer",
                "Every job comes out empty.",
            ),
            unit(&[1.0, 0.0, 0.9]),
        ),
        (
            ticket(
                "EN-MAIL",
                "en",
                "Mail stuck in the outbox",
                "Nothing leaves.",
            ),
            unit(&[1.0, 0.0, 0.0, 0.0, 0.3]),
        ),
        (
            ticket("EN-SCREEN", "en", "Screen flickers", "The monitor blinks."),
            unit(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.3]),
        ),
        (
            ticket(
                "DE-NEAR",
                "de",
                "Drucker druckt nicht aus Fach zwei",
                "Der Drucker zieht aus Fach zwei kein Papier ein.",
            ),
            unit(&[0.0, 1.0, 0.3, 0.5]),
        ),
        (
            ticket(
                "DE-MAIL",
                "de",
                "E-Mails kommen nicht an",
                "Postfach bleibt leer.",
            ),
            unit(&[0.0, 1.0, 0.0, 0.0, 0.3]),
        ),
        (
            ticket(
                "DE-SCREEN",
                "de",
                "Bildschirm flackert",
                "Der Monitor blinkt.",
            ),
            unit(&[0.0, 1.0, 0.0, 0.0, 0.0, 0.3]),
        ),
    ];
    let (pool, tenant) = tenant_with_vectors(&db, &tickets).await;
    let query = unit(&[0.0, 1.0, 0.6]);
    let semantic = Semantic {
        model: MODEL,
        vector: &query,
        rewrite: None,
        fusion: Fusion {
            threshold: 0.2,
            likely: 0.8,
            lexical_weight: 0.10,
            ..fusion::DEFAULT
        },
    };
    let found: Vec<String> =
        similar::similar_tickets_by_meaning(&pool, &tenant, QUERY, Language::German, semantic, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|ticket| ticket.ticket_id.to_string())
            .collect();
    assert_eq!(found, ["EN-FIX", "DE-NEAR"]);
}
