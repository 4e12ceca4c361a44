//! What each method scores on a data set, and the table it is shown in.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::dataset::DataSet;

/// One method's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub method: String,
    pub recall_at_k: f64,
    pub mrr: f64,
    pub cross_tenant_hits: usize,
    /// Queries without a relevant ticket that got an empty answer.
    pub silent_on_no_match: usize,
    /// Queries without a relevant ticket whose answer held no likely match
    /// (score 0.5 or more; every hit of the original's method counts).
    pub nothing_likely_on_no_match: usize,
    pub no_match_queries: usize,
    pub queries_with_relevant: usize,
    /// Queries with a relevant ticket that found one in the top k and
    /// called it likely.
    pub relevant_and_likely: usize,
    /// The highest confidence any query without a relevant ticket got for
    /// its best hit (methods that score hits): how close "nothing
    /// relevant" came to being called likely.
    pub highest_no_match_confidence: Option<f32>,
    /// Hits in the top k that are not a relevant ticket of their query,
    /// over every query (a no-match query's every hit counts): what a
    /// technician reads for nothing.
    pub others_shown: usize,
    pub queries: usize,
    /// The same recall and MRR over the queries of each language the set
    /// names, and over those whose relevant ticket is in another language
    /// than the query ("across languages") or in the same one.
    pub groups: Vec<Group>,
}

/// Recall@k and MRR over one group of a set's queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: String,
    pub queries: usize,
    pub recall_at_k: f64,
    pub mrr: f64,
}

/// One hit of a method.
#[derive(Debug, Clone)]
pub struct Hit {
    pub tenant: String,
    pub id: String,
    /// Whether the method calls it a likely match.
    pub likely: bool,
    /// Its calibrated confidence, where the method has one.
    pub confidence: Option<f32>,
}

/// Scores `answers` (one list of hits per query of `data`, best first) at
/// `k`.
pub fn score(method: String, data: &DataSet, answers: &[Vec<Hit>], k: usize) -> Scores {
    let mut recall_sum = 0.0;
    let mut rr_sum = 0.0;
    let mut cross_tenant_hits = 0;
    let mut silent = 0;
    let mut nothing_likely = 0;
    let mut with_relevant = 0;
    let mut no_match = 0;
    let mut highest_no_match: Option<f32> = None;
    let mut relevant_likely = 0;
    let mut others_shown = 0;
    let written_in: HashMap<(&str, &str), &str> = data
        .resolved
        .iter()
        .filter_map(|ticket| {
            let language = ticket.language.as_deref()?;
            Some((
                (ticket.tenant_id.as_str(), ticket.ticket_id.as_str()),
                language,
            ))
        })
        .collect();
    let mut groups: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for (query, answer) in data.queries.iter().zip(answers) {
        cross_tenant_hits += answer
            .iter()
            .filter(|hit| hit.tenant != query.tenant_id)
            .count();
        let ids: Vec<&str> = answer.iter().take(k).map(|hit| hit.id.as_str()).collect();
        others_shown += ids
            .iter()
            .filter(|id| !query.relevant.iter().any(|relevant| relevant == *id))
            .count();
        if query.relevant.is_empty() {
            no_match += 1;
            if ids.is_empty() {
                silent += 1;
            }
            if !answer.iter().take(k).any(|hit| hit.likely) {
                nothing_likely += 1;
            }
            if let Some(best) = answer
                .iter()
                .filter_map(|hit| hit.confidence)
                .reduce(f32::max)
            {
                highest_no_match = Some(highest_no_match.map_or(best, |seen| seen.max(best)));
            }
            continue;
        }
        with_relevant += 1;
        let relevant: HashSet<&str> = query.relevant.iter().map(String::as_str).collect();
        let found = ids.iter().filter(|id| relevant.contains(*id)).count();
        let recall = found as f64 / relevant.len() as f64;
        let rr = ids
            .iter()
            .position(|id| relevant.contains(id))
            .map_or(0.0, |rank| 1.0 / (rank as f64 + 1.0));
        recall_sum += recall;
        rr_sum += rr;
        for label in group_labels(query, &written_in) {
            let group = groups.entry(label).or_default();
            group.0 += 1;
            group.1 += recall;
            group.2 += rr;
        }
        if answer
            .iter()
            .take(k)
            .any(|hit| hit.likely && relevant.contains(hit.id.as_str()))
        {
            relevant_likely += 1;
        }
    }
    Scores {
        method,
        recall_at_k: recall_sum / with_relevant.max(1) as f64,
        mrr: rr_sum / with_relevant.max(1) as f64,
        cross_tenant_hits,
        silent_on_no_match: silent,
        nothing_likely_on_no_match: nothing_likely,
        no_match_queries: no_match,
        queries_with_relevant: with_relevant,
        relevant_and_likely: relevant_likely,
        highest_no_match_confidence: highest_no_match,
        others_shown,
        queries: data.queries.len(),
        groups: groups
            .into_iter()
            .map(|(label, (queries, recall, rr))| Group {
                label,
                queries,
                recall_at_k: recall / queries as f64,
                mrr: rr / queries as f64,
            })
            .collect(),
    }
}

/// The groups a query with relevant tickets counts in: its language,
/// whether its relevant tickets are written in another language, and each
/// pair of languages it crosses (`de → en`).
fn group_labels(
    query: &crate::dataset::Query,
    written_in: &HashMap<(&str, &str), &str>,
) -> Vec<String> {
    let Some(language) = query.language.as_deref() else {
        return Vec::new();
    };
    let mut labels = vec![language.to_owned()];
    let theirs: Vec<&str> = query
        .relevant
        .iter()
        .filter_map(|id| {
            written_in
                .get(&(query.tenant_id.as_str(), id.as_str()))
                .copied()
        })
        .collect();
    if !theirs.is_empty() {
        labels.push(if theirs.iter().any(|theirs| *theirs != language) {
            "across languages".to_owned()
        } else {
            "same language".to_owned()
        });
    }
    let mut pairs: Vec<String> = theirs
        .iter()
        .filter(|theirs| **theirs != language)
        .map(|theirs| format!("{language}{PAIR}{theirs}"))
        .collect();
    pairs.sort();
    pairs.dedup();
    labels.extend(pairs);
    labels
}

/// What joins the two languages of a pair group's label.
const PAIR: &str = " → ";

/// The scores as a Markdown table.
pub fn table(scores: &[Scores], k: usize) -> String {
    let mut out = format!(
        "| method | recall@{k} | MRR | other tickets shown per query | relevant found and called likely | cross-tenant hits | no-match queries answered with nothing | … with no likely match |\n|---|---|---|---|---|---|---|---|\n"
    );
    for s in scores {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {} of {} | {} | {} of {} | {} of {} |\n",
            s.method,
            s.recall_at_k,
            s.mrr,
            s.others_shown as f64 / s.queries.max(1) as f64,
            s.relevant_and_likely,
            s.queries_with_relevant,
            s.cross_tenant_hits,
            s.silent_on_no_match,
            s.no_match_queries,
            s.nothing_likely_on_no_match,
            s.no_match_queries
        ));
    }
    for s in scores {
        if let Some(highest) = s.highest_no_match_confidence {
            out.push_str(&format!(
                "\n{}: the best hit of a no-match query scored {highest:.2}; likely starts at 0.50 (margin {:+.2})",
                s.method,
                0.5 - highest
            ));
        }
    }
    out.push('\n');
    out
}

/// One method's recall / MRR in the group `label`, as a table cell.
fn cell(scores: &Scores, label: &str) -> String {
    match scores.groups.iter().find(|group| group.label == label) {
        Some(group) => format!(" {:.2} / {:.2} |", group.recall_at_k, group.mrr),
        None => " – |".to_owned(),
    }
}

/// Recall@k and MRR per language and across languages, one row per
/// method, when the set names its queries' languages (empty otherwise).
pub fn group_table(scores: &[Scores], k: usize) -> String {
    let Some(first) = scores.iter().find(|s| !s.groups.is_empty()) else {
        return String::new();
    };
    let overall = |group: &&Group| !group.label.contains(PAIR);
    let mut out = String::from("| method |");
    let mut rule = String::from("|---|");
    for group in first.groups.iter().filter(overall) {
        out.push_str(&format!(" {} ({}) |", group.label, group.queries));
        rule.push_str("---|");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for s in scores.iter().filter(|s| !s.groups.is_empty()) {
        out.push_str(&format!("| {} |", s.method));
        for column in first.groups.iter().filter(overall) {
            out.push_str(&cell(s, &column.label));
        }
        out.push('\n');
    }
    let pairs: Vec<&Group> = first
        .groups
        .iter()
        .filter(|group| group.label.contains(PAIR))
        .collect();
    if !pairs.is_empty() {
        // One row per pair of languages, one column per method.
        out.push_str("\n| query → relevant ticket |");
        let mut rule = String::from("|---|");
        for s in scores {
            out.push_str(&format!(" {} |", s.method));
            rule.push_str("---|");
        }
        out.push('\n');
        out.push_str(&rule);
        out.push('\n');
        for pair in pairs {
            out.push_str(&format!("| {} ({}) |", pair.label, pair.queries));
            for s in scores {
                out.push_str(&cell(s, &pair.label));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\n(recall@{k} / MRR over the queries with a relevant ticket)\n"
    ));
    out
}
