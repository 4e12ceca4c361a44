//! A technician rates a note from the links at its end; the rating is an
//! event, projected onto the run, and counted in the tenant's statistics.

use crate::pipeline_support;

use std::sync::Arc;
use std::time::Duration;

use aia_store::Keyring;
use aia_testkit::eventually;
use pipeline_support::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_the_note_record_ratings_that_reach_the_history_and_the_stats() {
    let stack = Stack::start("token", None).await;
    let secret = stack.add_tenant("acme", "token").await;
    for ticket in ["SUP-1", "SUP-2"] {
        let ticket = serde_json::json!({"tenant_id": "acme", "ticket_id": ticket, "description": "Printer offline", "priority": "low"});
        assert_eq!(stack.send(&secret, ticket).await.0, 202);
    }
    let (sdp, db, http, spec) = (&stack.sdp, &stack.db, &stack.http, &stack.keyring_spec);
    let link = |ticket: &'static str, rating: &'static str| {
        let sdp = sdp.clone();
        async move {
            let note = sdp.notes(ticket).first()?.description.clone();
            let start = note.find("href=\"")? + 6;
            let href = &note[start..start + note[start..].find('"')?];
            Some(
                href.replace("rating=up", &format!("rating={rating}"))
                    .replace("&amp;", "&"),
            )
        }
    };
    let up = eventually("the note with its links", Duration::from_secs(30), || {
        link("SUP-1", "up")
    })
    .await;
    assert!(up.contains("/feedback/acme/SUP-1/"), "{up}");

    // The link opens a page with its choice selected; the page's form
    // records it (a GET records nothing: see feedback_security).
    let page = http.get(&up).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"value="up" checked"#));
    let down = eventually("the second note", Duration::from_secs(30), || {
        link("SUP-2", "down")
    })
    .await;
    let page = http.get(&down).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(r#"value="down" checked"#)
    );
    let sent = http
        .post(down.split('?').next().unwrap())
        .form(&[
            ("rating", "down"),
            ("comment", ""),
            ("submission", "form0001"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert!(sent.text().await.unwrap().contains("Recorded: not helpful"));
    let form = up.split('?').next().unwrap().to_owned();
    let posted = http
        .post(&form)
        .json(&serde_json::json!({"stars": 4, "comment": "Right fix"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    // A link edited to point at another ticket, or with a bad rating, is refused.
    let forged = up.replace("/SUP-1/", "/SUP-2/");
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 404);
    assert_eq!(
        http.get(up.replace("rating=up", "rating=9"))
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    let empty = http
        .post(&form)
        .json(&serde_json::json!({"comment": "no rating"}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 422);

    let admin = db.admin_client().await;
    let row = eventually("the rating in the history", Duration::from_secs(30), || async {
        let row = admin
            .query_one("select rating_stars, rating_comment from enhancement_history where ticket_id = 'SUP-1'", &[])
            .await
            .ok()?;
        row.get::<_, Option<i16>>(0).is_some().then_some(row)
    })
    .await;
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("Right fix")
    );
    let tenants = admin::tenant_admin(
        &db.app_url,
        &db.admin_read_url,
        Keyring::parse(spec).unwrap(),
        String::new(),
    )
    .unwrap();
    let stats = Arc::new(tenants).feedback_stats("acme").await.unwrap();
    assert_eq!(
        (stats.rated, stats.with_stars, stats.with_thumbs),
        (2, 1, 1)
    );
    assert_eq!(stats.average_stars, Some(4.0));
    assert_eq!(stats.thumbs_up_share, Some(0.0));
    // A hundred ratings of one note sent at once: only the note's few a
    // minute are taken (its first rating above among them), the rest told
    // to wait.
    let burst = futures::future::join_all((0..100).map(|n| {
        http.post(&form)
            .json(&serde_json::json!({"stars": 1 + n % 5}))
            .send()
    }))
    .await;
    let statuses: Vec<u16> = burst
        .into_iter()
        .map(|answer| answer.unwrap().status().as_u16())
        .collect();
    let taken = statuses.iter().filter(|status| **status == 202).count();
    let limit = usize::try_from(ingress::feedback::RATINGS_PER_MINUTE).unwrap();
    assert!((1..limit).contains(&taken), "{taken} taken: {statuses:?}");
    assert_eq!(
        statuses.iter().filter(|status| **status == 429).count(),
        100 - taken
    );
    stack.stop().await;
}
