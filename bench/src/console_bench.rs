//! `aia-bench console`: the admin console's pages on a large history —
//! `runs` enhancement rows across `tenants` tenants over the last 30 days
//! (a tenth of them in the last 24 hours, one in fifty failed) — served
//! over HTTP as a browser asks for them, signed in: the dashboard, the
//! history's first page, a page 200 pages deep (keyset), one tenant's
//! history, a search by ticket id, and a tenant's CSV export.
//!
//! The dashboard and a tenant's page draw their charts (the day or the
//! week against the one before) from the same rows and from 14 days of
//! every stage's minute lag samples; every run carries the note as posted,
//! which the history renders for its tenant's help desk.

use std::sync::Arc;
use std::time::Instant;

use admin::console::auth::{self, Role};
use aia_store::Keyring;
use aia_testkit::TestDatabase;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

pub fn run(runs: u64, tenants: u64, samples: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = TestDatabase::create().await;
        let started = Instant::now();
        let owner = db.admin_client().await;
        owner
            .batch_execute(&format!(
                "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, source, subject, priority,
                        received_at, context_gathered_at, enhanced_at, written_back_at, failed_at, processing_ms,
                        context_ms, llm_ms, writeback_ms, context_summary, note_markdown, provider, model,
                        tokens_in, tokens_out, cost_usd, degraded, failed_stage, error, last_event_id, posted_markdown)
                 select 'tenant-' || lpad((n % {tenants})::text, 4, '0'), gen_random_uuid(), 'T-' || n,
                        case when n % 50 = 0 then 'failed' else 'completed' end, 'servicedesk_plus',
                        'Outlook asks for the password again ' || n, 'medium',
                        at, at, at, case when n % 50 = 0 then null else at + interval '2 seconds' end,
                        case when n % 50 = 0 then at + interval '1 second' end, 500 + n % 2000,
                        100, 1500, 200, '3 similar tickets, 1 article', repeat('A note line. ', 40), 'openai', 'gpt-4o-mini',
                        800, 300, 0.0004, false,
                        case when n % 50 = 0 then 'writeback' end,
                        case when n % 50 = 0 then 'ServiceDesk Plus answered 503' end, gen_random_uuid(),
                        case when n % 50 = 0 then null
                             else repeat('A note line. ', 40) || E'\n\n---\n\n_ai-agents-ref:' || gen_random_uuid() || E'_\n' end
                   from (select n, now() - (n::float8 / {runs} * interval '30 days') as at
                           from generate_series(1, {runs}) n) s;
                 insert into tenant_daily_stats (tenant_id, day, received, completed, failed, cost_usd)
                 select 'tenant-' || lpad(t::text, 4, '0'), current_date - d, 30, 29, 1, 0.012 * (t % 7 + 1)
                   from generate_series(0, {tenants} - 1) t, generate_series(0, 29) d;
                 insert into stage_lag_samples (consumer, sampled_at, pending, in_flight)
                 select c, date_trunc('minute', now()) - m * interval '1 minute', (m * 7919) % 500, 2
                   from unnest(array['context-gatherer', 'llm-enhancer', 'writeback', 'history-projector',
                                     'embedding-indexer', 'incident-correlator', 'incident-notifier']) c,
                        generate_series(0, 14 * 24 * 60 - 1) m;
                 analyze enhancement_history; analyze tenant_daily_stats; analyze stage_lag_samples;"
            ))
            .await?;
        println!(
            "loaded {runs} runs across {tenants} tenants in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let tenant_admin = admin::tenant_admin(
            &db.app_url,
            &db.admin_read_url,
            Keyring::parse(&Keyring::generate_spec("bench"))?,
            "https://hooks.example.com".into(),
        )?;
        auth::create_user(&tenant_admin.admin, "bench", "a long bench password", Role::Viewer).await?;
        // The tenants themselves: the history renders each run's note for
        // its tenant's help desk.
        for t in 0..tenants {
            tenant_admin
                .create(aia_ops::tenants::CreateTenant {
                    tenant_id: format!("tenant-{t:04}"),
                    name: format!("Tenant {t}"),
                    itsm_kind: aia_events::ItsmKind::ServicedeskPlus,
                    itsm_base_url: "https://sdp.example.com".into(),
                    itsm_credentials: serde_json::json!({"authtoken": "bench"}),
                    settings: None,
                })
                .await
                .map_err(|err| anyhow::anyhow!("creating tenant {t}: {err}"))?;
        }
        let state = admin::AppState {
            tenants: Arc::new(tenant_admin),
            token: "bench-token-0123456789abcdef".into(),
            jetstream: None,
            console: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let service = admin::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let signed = http
            .post(format!("{base}/console/sign-in"))
            .form(&[("username", "bench"), ("password", "a long bench password")])
            .send()
            .await?;
        let cookie = signed
            .headers()
            .get("set-cookie")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .ok_or_else(|| anyhow::anyhow!("sign-in failed"))?
            .to_owned();

        // The cursor of a page 200 pages (10,000 runs) deep.
        let deep = owner
            .query_one(
                "select to_char(received_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '_' || correlation_id
                   from enhancement_history order by received_at desc, correlation_id desc offset 10000 limit 1",
                &[],
            )
            .await?
            .get::<_, String>(0);
        let pages = [
            ("dashboard (charts of 24 h)", "/console".to_owned()),
            ("dashboard (charts of 7 days)", "/console?period=7d".to_owned()),
            ("tenant page (24 h)", "/console/tenants/tenant-0042".to_owned()),
            ("tenant page (7 days)", "/console/tenants/tenant-0042?period=7d".to_owned()),
            ("history, first page", "/console/history".to_owned()),
            ("history, 200 pages deep", format!("/console/history?after={deep}")),
            ("history of one tenant", "/console/history?tenant=tenant-0042".to_owned()),
            ("history, failed only", "/console/history?status=failed".to_owned()),
            ("search by ticket id", format!("/console/history?ticket=T-{}", runs / 2)),
            ("CSV export of one tenant", "/console/history.csv?tenant=tenant-0042".to_owned()),
        ];
        for (name, path) in pages {
            let mut latencies = Vec::with_capacity(samples);
            let mut bytes = 0;
            for _ in 0..samples {
                let started = Instant::now();
                let response = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await?;
                anyhow::ensure!(response.status().is_success(), "{name}: {}", response.status());
                bytes = response.bytes().await?.len();
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            latencies.sort_by(f64::total_cmp);
            println!(
                "{name:<28} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  ({} KB)",
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.95),
                latencies[latencies.len() - 1],
                bytes / 1024
            );
        }
        Ok(())
    })
}
