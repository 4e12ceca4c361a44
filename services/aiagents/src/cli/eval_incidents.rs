//! `aiagents eval-incidents`: incident correlation scored on labelled
//! ticket streams.

use std::path::PathBuf;

use aia_store::IncidentSettings;
use incident_correlator::decide::{Closeness, DEFAULT_CLOSENESS};

use super::eval::EmbeddingsArgs;

#[derive(clap::Args)]
pub struct Args {
    /// JSON streams: `{"tickets": [{"tenant", "ticket_id", "minute",
    /// "subject", "description", "incident"}]}`; each scored on its own.
    #[arg(required = true)]
    streams: Vec<PathBuf>,
    #[command(flatten)]
    embeddings: EmbeddingsArgs,
    /// Least cosine of a ticket to a new one for a burst; repeat to sweep.
    #[arg(long, default_values_t = [DEFAULT_CLOSENESS.link])]
    link: Vec<f32>,
    /// Least cosine of a ticket to the centroid of the rest of its group;
    /// repeat to sweep.
    #[arg(long, default_values_t = [DEFAULT_CLOSENESS.centroid])]
    centroid: Vec<f32>,
    /// Least cosine of a ticket to a live incident's centroid to join it;
    /// repeat to sweep.
    #[arg(long, default_values_t = [DEFAULT_CLOSENESS.join])]
    join: Vec<f32>,
    /// How much less for each ticket an incident has fewer than five;
    /// repeat to sweep.
    #[arg(long, default_values_t = [DEFAULT_CLOSENESS.join_step])]
    join_step: Vec<f32>,
    /// How much closer a ticket must be per minute an incident has gone
    /// without a ticket (past ten) to join it; repeat to sweep.
    #[arg(long, default_values_t = [DEFAULT_CLOSENESS.join_decay])]
    join_decay: Vec<f32>,
    /// Also score each stream as if its tenants were this many times as
    /// busy (every N tenants' tickets, in name order, as one tenant's; a
    /// last group of fewer stays smaller); repeat for several.
    #[arg(long)]
    busier: Vec<usize>,
    /// What naming a host, address or site in common adds to a cosine
    /// (an endpoint calibration's `entity_bonus`).
    #[arg(long, default_value_t = DEFAULT_CLOSENESS.entity_bonus)]
    entity_bonus: f32,
    /// Related tickets that make an incident (the tenant setting).
    #[arg(long, default_value_t = IncidentSettings::default().threshold)]
    threshold: u32,
    /// Print, for the first setting, how each labelled outage fared.
    #[arg(long)]
    details: bool,
    /// …within this many minutes.
    #[arg(long, default_value_t = IncidentSettings::default().threshold_window_minutes)]
    window_minutes: u32,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let embedder = args.embeddings.embedder()?;
    eprintln!("embedding with {}", embedder.model());
    let settings = IncidentSettings {
        threshold: args.threshold,
        threshold_window_minutes: args.window_minutes,
        ..IncidentSettings::default()
    };
    settings.check().map_err(anyhow::Error::msg)?;
    let mut busier = vec![1];
    busier.extend(args.busier.iter().copied().filter(|n| *n > 1));
    let closenesses: Vec<Closeness> = args
        .link
        .iter()
        .flat_map(|link| args.centroid.iter().map(move |centroid| (*link, *centroid)))
        .flat_map(|(link, centroid)| args.join.iter().map(move |join| (link, centroid, *join)))
        .flat_map(|(link, centroid, join)| {
            args.join_step
                .iter()
                .map(move |join_step| (link, centroid, join, *join_step))
        })
        .flat_map(|(link, centroid, join, join_step)| {
            args.join_decay.iter().map(move |join_decay| Closeness {
                link,
                centroid,
                join,
                join_step,
                entity_bonus: args.entity_bonus,
                join_decay: *join_decay,
            })
        })
        .collect();
    for path in &args.streams {
        let stream = crate::eval::incidents::load(path)?;
        let embedded = crate::eval::incidents::embed(stream, &embedder).await?;
        for &n in &busier {
            let busy = (n > 1).then(|| crate::eval::incidents::Embedded {
                tickets: crate::eval::incidents::busier(embedded.tickets.clone(), n),
                vectors: embedded.vectors.clone(),
            });
            let stream = busy.as_ref().unwrap_or(&embedded);
            let scores: Vec<_> = closenesses
                .iter()
                .map(|closeness| crate::eval::incidents::replay(stream, *closeness, &settings))
                .collect();
            let busy_note = if n == 1 {
                String::new()
            } else {
                format!(", tenants {n} times as busy")
            };
            println!(
                "\n{}: {} tickets, threshold {} in {} min{busy_note}",
                path.display(),
                stream.tickets.len(),
                settings.threshold,
                settings.threshold_window_minutes
            );
            print!("{}", crate::eval::incidents::table(&scores));
            if args.details {
                print!("{}", crate::eval::incidents::outage_table(&scores[0]));
            }
            if n == 1 {
                print!(
                    "{}",
                    crate::eval::incidents::pair_report(
                        stream,
                        f64::from(settings.threshold_window_minutes)
                    )
                );
            }
        }
    }
    Ok(())
}
