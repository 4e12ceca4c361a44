//! Keeps a note honest about its sources: a ticket id, link, address or host
//! name the model cites that is not in the gathered context (or the ticket
//! itself) is marked as unverified, and a link is removed; raw HTML from the
//! model is dropped. Code (fenced blocks, inline spans) is left exactly as
//! written — a copied command must run — and what it cites that nothing
//! backs is named after it.

use std::collections::HashSet;
use std::sync::LazyLock;

use aia_events::ContextGathered;

use crate::labels::Labels;
use regex::{Captures, Regex};

/// A script, style, frame or object element with what it holds.
static SCRIPT_OR_STYLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?is)<(?:script|style|iframe|object)(?:\s[^<>]*)?>.*?</\s*(?:script|style|iframe|object)\s*>",
    )
    .expect("regex")
});
/// A tag of an HTML element, and only that: `<b>`, `</div>`, `<img …/>`.
/// A placeholder in a command (`<user>`, `<object-id>`, `<Strg>`) or an
/// autolink (`<https://…>`) is no tag and stays.
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)</?(?:a|abbr|audio|b|base|blockquote|body|br|button|center|code|del|details|div|em|embed|font|form|frame|frameset|h[1-6]|head|hr|html|i|iframe|img|input|ins|kbd|label|li|link|marquee|math|meta|object|ol|p|pre|q|s|script|select|small|source|span|strike|strong|style|sub|summary|sup|svg|table|tbody|td|textarea|tfoot|th|thead|tr|u|ul|video)(?:\s[^<>]*)?/?>",
    )
    .expect("regex")
});
/// A link, its balanced parentheses included (`…/cc754820(v=ws.10)`), a
/// closing one that is Markdown's left out.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)https?://[^\s()\]<>"']+(?:\([^\s()<>"']*\)[^\s()\]<>"']*)*"#).expect("regex")
});
static TICKET_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z][A-Z0-9]{1,9}-\d{1,9}\b").expect("regex"));
/// Names of standards, encodings and parts written like a ticket key
/// (`UTF-8`, `SHA-256`, `ISO-27001`, `CVE-2024`, `DDR4-3200`): not checked
/// as tickets unless the tenant's own keys use the prefix.
const NOT_TICKETS: &[&str] = &[
    "AES", "ANSI", "CRC", "CVE", "DDR", "DDR2", "DDR3", "DDR4", "DDR5", "DIN", "EN", "GDDR5",
    "GDDR6", "HMAC", "IEC", "IEEE", "ISO", "LPDDR4", "LPDDR5", "MD", "PCI", "RFC", "RSA", "SHA",
    "SSL", "TLS", "USB", "UTF", "WPA", "X",
];
/// A numbered ticket as help desks that number them are cited (ServiceDesk
/// Plus, Zendesk, Freshservice, HaloPSA, ConnectWise, Autotask): a keyword
/// of the notes' languages, then the number (`ticket #48213`, `request
/// 4711`, `Anfrage Nr. 4711`, `Ticketnummer 4711`, `Ticket-Nr. 4711`,
/// `solicitud nº 4711`, `incidencia 4711`, `aanvraag 4711`); the number is
/// what is checked. Four digits at least, so HTTP statuses and counts are
/// not ids.
static NUMBERED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:ticket|request|incident|case|anfrage|vorgang|störung|stoerung|demande|requête|requete|incidencia|solicitud|petición|peticion|melding|verzoek|aanvraag)(?:nummer)?[ \t-]*(?:#|nr\.?|no\.?|n°|nº|n\.º|núm\.?|num\.?|nummer)?[ \t]*(?P<id>\d{4,12})\b",
    )
    .expect("regex")
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d{1,3}\.){3}\d{1,3}\b").expect("regex"));
static FQDN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        // Internal suffixes, the generic ones, and the country domains of
        // the languages tickets arrive in (DE, AT, CH, FR, BE, LU, NL, ES).
        r"(?i)\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:local|lan|corp|internal|intra|intern|com|net|org|io|eu|de|at|ch|fr|be|lu|nl|es)\b",
    )
    .expect("regex")
});

/// What grounding changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    pub note: String,
    /// Citations marked or removed.
    pub unverified: usize,
}

/// Everything the note may cite: the context's ids, links and hosts, and
/// whatever the ticket itself says.
fn known(context: &ContextGathered, ticket_id: &str) -> (HashSet<String>, String) {
    let mut known: HashSet<String> = HashSet::new();
    known.insert(ticket_id.to_ascii_lowercase());
    for ticket in &context.similar_tickets {
        known.insert(ticket.ticket_id.as_str().to_ascii_lowercase());
    }
    for article in &context.knowledge_articles {
        if let Some(url) = &article.url {
            known.insert(url.trim_end_matches('/').to_ascii_lowercase());
        }
    }
    for system in &context.systems {
        for value in [
            Some(&system.matched),
            system.hostname.as_ref(),
            system.address.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            known.insert(value.to_ascii_lowercase());
            known.insert(
                value
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            );
        }
    }
    for finding in &context.monitoring {
        known.insert(finding.host.to_ascii_lowercase());
    }
    // The ticket's own words (and the similar tickets' text) may be repeated.
    let mut corpus = format!(
        "{} {}",
        context.ticket.subject.clone().unwrap_or_default(),
        context.ticket.description
    );
    for ticket in &context.similar_tickets {
        corpus.push_str(&format!(
            " {} {} {}",
            ticket.subject, ticket.description, ticket.resolution
        ));
    }
    (known, corpus.to_ascii_lowercase())
}

/// A piece of a note: prose, or code (a fenced block with its fences, or
/// an inline span with its backticks).
enum Piece<'a> {
    Prose(&'a str),
    Code(&'a str),
}

/// `note` cut into prose and code: fenced blocks and inline code spans
/// (backticks paired in order; an unpaired last one is text), prose being
/// everything between them — several lines at once, so an element written
/// over lines is seen whole.
fn pieces(note: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut prose_from = 0;
    let mut fence: Option<(char, usize)> = None;
    let mut at = 0;
    for line in note.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let fence_char = ['`', '~']
            .into_iter()
            .find(|c| trimmed.starts_with(&c.to_string().repeat(3)));
        match (fence, fence_char) {
            (None, Some(c)) => {
                spans(&note[prose_from..at], &mut out);
                fence = Some((c, at));
            }
            (Some((open, from)), Some(c)) if open == c => {
                out.push(Piece::Code(&note[from..at + line.len()]));
                fence = None;
                prose_from = at + line.len();
            }
            _ => {}
        }
        at += line.len();
    }
    match fence {
        // A block never closed is code to the end.
        Some((_, from)) => {
            out.push(Piece::Code(&note[from..]));
        }
        None => spans(&note[prose_from..], &mut out),
    }
    out
}

/// `text`'s prose and inline code spans, in order.
fn spans<'a>(text: &'a str, out: &mut Vec<Piece<'a>>) {
    // An escaped backtick (`\``) opens no span: Markdown shows it as text,
    // and its contents are prose to be grounded.
    let ticks: Vec<usize> = text
        .match_indices('`')
        .map(|(at, _)| at)
        .filter(|at| !text[..*at].ends_with('\\'))
        .collect();
    let mut from = 0;
    for pair in ticks.chunks_exact(2) {
        out.push(Piece::Prose(&text[from..pair[0]]));
        out.push(Piece::Code(&text[pair[0]..=pair[1]]));
        from = pair[1] + 1;
    }
    out.push(Piece::Prose(&text[from..]));
}

/// What a note may cite, and the checks of one citation.
struct Sources {
    known: HashSet<String>,
    corpus: String,
    /// The prefixes of the tenant's own ticket keys (`SUP` of `SUP-1`).
    prefixes: HashSet<String>,
}

impl Sources {
    fn new(context: &ContextGathered, ticket_id: &str) -> Self {
        let (known, corpus) = known(context, ticket_id);
        let prefixes = std::iter::once(ticket_id)
            .chain(context.similar_tickets.iter().map(|t| t.ticket_id.as_str()))
            .filter_map(|id| {
                id.split_once('-')
                    .map(|(prefix, _)| prefix.to_ascii_uppercase())
            })
            .collect();
        Self {
            known,
            corpus,
            prefixes,
        }
    }

    fn is_known(&self, value: &str) -> bool {
        let value = value.to_ascii_lowercase();
        self.known.contains(&value) || self.corpus.contains(&value)
    }

    fn link_known(&self, url: &str) -> bool {
        let url = url.trim_end_matches(['.', ',', ';']);
        self.known
            .contains(&url.trim_end_matches('/').to_ascii_lowercase())
    }

    /// A number is known as a whole: "4711" is not in "47110".
    fn number_known(&self, number: &str) -> bool {
        self.known.contains(number)
            || self.corpus.match_indices(number).any(|(at, _)| {
                let before = self.corpus[..at].chars().next_back();
                let after = self.corpus[at + number.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_digit())
                    && !after.is_some_and(|c| c.is_ascii_digit())
            })
    }

    /// Whether the citation `re` found at `caps` in `text` is backed.
    fn backed(&self, re: &Regex, caps: &Captures, text: &str) -> bool {
        let whole = caps.get(0).expect("the match");
        match caps.name("id") {
            // A numbered ticket: checked by its number, unless the words
            // around it say it is no ticket at all.
            Some(id) => {
                let number = id.as_str();
                let year =
                    number.len() == 4 && (number.starts_with("19") || number.starts_with("20"));
                let mut after = text[whole.end()..].chars();
                let date_or_version = after.next().is_some_and(|c| "-./:".contains(c))
                    && after.next().is_some_and(|c| c.is_ascii_digit());
                let in_case = text[..whole.start()].to_ascii_lowercase().ends_with("in ");
                year || date_or_version || in_case || self.number_known(number)
            }
            None if re.as_str() == TICKET_ID.as_str() => {
                let key = whole.as_str();
                let prefix = key.split_once('-').map_or(key, |(prefix, _)| prefix);
                let a_ticket = self.prefixes.contains(prefix) || !NOT_TICKETS.contains(&prefix);
                !a_ticket || self.is_known(key)
            }
            None => self.is_known(whole.as_str()),
        }
    }
}

/// Citations it cannot back get `labels`' "unverified" mark. In prose the
/// mark follows the citation and an unknown link is removed; code is left
/// exactly as written (a copied command must run) and the citations in it
/// that nothing backs are named after it.
pub fn ground(note: &str, context: &ContextGathered, ticket_id: &str, labels: &Labels) -> Grounded {
    let sources = Sources::new(context, ticket_id);
    let mut unverified = 0;
    let mut out = String::with_capacity(note.len());
    for piece in pieces(note) {
        match piece {
            Piece::Prose(prose) => {
                out.push_str(&ground_prose(prose, &sources, labels, &mut unverified));
            }
            Piece::Code(code) => {
                out.push_str(code);
                let unbacked = unbacked_in_code(code, &sources);
                if !unbacked.is_empty() {
                    unverified += unbacked.len();
                    let named = format!("({}: {})", labels.unverified, unbacked.join(", "));
                    if code.ends_with('\n') {
                        out.push_str(&named);
                        out.push('\n');
                    } else {
                        out.push(' ');
                        out.push_str(&named);
                    }
                }
            }
        }
    }
    Grounded {
        note: out,
        unverified,
    }
}

/// Prose with raw HTML dropped, unknown links removed and unbacked
/// citations marked.
fn ground_prose(prose: &str, sources: &Sources, labels: &Labels, unverified: &mut usize) -> String {
    let prose = SCRIPT_OR_STYLE.replace_all(prose, "");
    let prose = TAG.replace_all(&prose, "");
    let prose = URL.replace_all(&prose, |caps: &Captures| {
        if sources.link_known(&caps[0]) {
            caps[0].to_owned()
        } else {
            *unverified += 1;
            labels.link_removed.to_owned()
        }
    });
    let mut mark = |re: &Regex, text: &str| -> String {
        re.replace_all(text, |caps: &Captures| {
            if sources.backed(re, caps, text) {
                caps[0].to_owned()
            } else {
                *unverified += 1;
                format!("{} ({})", &caps[0], labels.unverified)
            }
        })
        .into_owned()
    };
    // Marks go into the prose between links, never inside a kept link.
    let mut out = String::with_capacity(prose.len());
    let mut rest_start = 0;
    for link in URL.find_iter(&prose) {
        let between = &prose[rest_start..link.start()];
        let between = mark(&TICKET_ID, between);
        let between = mark(&NUMBERED, &between);
        let between = mark(&IPV4, &between);
        out.push_str(&mark(&FQDN, &between));
        out.push_str(link.as_str());
        rest_start = link.end();
    }
    let rest = mark(&TICKET_ID, &prose[rest_start..]);
    let rest = mark(&NUMBERED, &rest);
    let rest = mark(&IPV4, &rest);
    out.push_str(&mark(&FQDN, &rest));
    out
}

/// The citations in `code` nothing backs, each once, in order.
fn unbacked_in_code(code: &str, sources: &Sources) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |value: &str| {
        if !found.iter().any(|seen| seen == value) {
            found.push(value.to_owned());
        }
    };
    for link in URL.find_iter(code) {
        if !sources.link_known(link.as_str()) {
            add(&defanged(link.as_str().trim_end_matches(['.', ',', ';'])));
        }
    }
    // Hosts and addresses inside a link are the link's.
    let without_links = URL.replace_all(code, " ");
    for re in [&*TICKET_ID, &*IPV4, &*FQDN] {
        for caps in re.captures_iter(&without_links) {
            if !sources.backed(re, &caps, &without_links) {
                add(&caps[0]);
            }
        }
    }
    found
}

/// An unbacked link named outside its code, so that no renderer makes it
/// a link (Jira's wiki links any bare URL): its host with the dots broken,
/// `evil[.]example[.]net/…`, which says where it points and goes nowhere.
fn defanged(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let mut named = host.replace('.', "[.]");
    if !path.is_empty() {
        named.push_str("/…");
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use aia_events::{Payload, examples};

    fn en() -> &'static Labels {
        Labels::of(aia_events::Language::English)
    }

    fn context() -> ContextGathered {
        examples::all()
            .into_iter()
            .find_map(|event| match event.payload {
                Payload::ContextGathered(context) if !context.similar_tickets.is_empty() => {
                    Some(context)
                }
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn citations_from_the_context_stay_and_invented_ones_are_flagged() {
        let note = "Similar ticket SUP-977 fixed it; see https://kb.example.com/a/17 and host PC-0231 at 10.20.1.31.\n\
                    Also SUP-4242 and https://evil.example.net/x and 10.9.9.9 and db01.corp.local.";
        let grounded = ground(note, &context(), "SUP-1042", en());
        assert!(grounded.note.contains("SUP-977 fixed"), "{}", grounded.note);
        assert!(grounded.note.contains("https://kb.example.com/a/17"));
        assert!(grounded.note.contains("10.20.1.31 ") || grounded.note.contains("10.20.1.31."));
        assert!(grounded.note.contains("SUP-4242 (unverified)"));
        assert!(!grounded.note.contains("evil.example.net"));
        assert!(grounded.note.contains("10.9.9.9 (unverified)"));
        assert!(grounded.note.contains("db01.corp.local (unverified)"));
        assert_eq!(grounded.unverified, 4);
    }

    #[test]
    fn raw_html_and_script_from_the_model_are_dropped() {
        let grounded = ground(
            "Fix <b>it</b><script>alert(1)</script> now <img src=x onerror=alert(1)>",
            &context(),
            "SUP-1042",
            en(),
        );
        assert_eq!(grounded.note, "Fix it now ");
    }

    #[test]
    fn placeholders_in_commands_and_unclosed_tags_leave_the_rest_of_the_note() {
        let note = "## Steps\nRun `Get-MgUser -UserId <object-id>` and \
                    `net localgroup administrators <user> /add`, press <Strg>+<Alt>+<Entf>, \
                    `mklink /D <link> <target>`, then\n```\nrobocopy <source> <destination> /MIR\n```\n\
                    see <https://kb.example.com/a/17>.\n<script>alert(1)\n## Sources\nSUP-977";
        let grounded = ground(note, &context(), "SUP-1042", en());
        for kept in [
            "<object-id>",
            "administrators <user> /add",
            "<Strg>+<Alt>+<Entf>",
            "<https://kb.example.com/a/17>",
            "`mklink /D <link> <target>`",
            "robocopy <source> <destination> /MIR",
            "## Sources\nSUP-977",
        ] {
            assert!(grounded.note.contains(kept), "{kept}: {}", grounded.note);
        }
        assert!(!grounded.note.contains("<script>"), "{}", grounded.note);
        assert_eq!(grounded.unverified, 0);
    }

    #[test]
    fn html_written_over_several_lines_is_dropped_whole() {
        let grounded = ground(
            "Fix it.\n<script>\nalert(document.cookie)\n</script>\n<img\n src=x onerror=alert(1)>Done `a<b>c`.",
            &context(),
            "SUP-1042",
            en(),
        );
        assert_eq!(
            grounded.note, "Fix it.\n\nDone `a<b>c`.",
            "{}",
            grounded.note
        );
    }

    /// Code is left exactly as written, so a copied command runs; what it
    /// names that nothing backs is said after it.
    #[test]
    fn code_is_kept_as_written_and_its_unbacked_citations_named_after_it() {
        let note = "Run `Test-NetConnection db01.corp.local -Port 443` then\n\
                    ```\nping 10.20.1.31\ncurl https://evil.example.net/x\n```\n\
                    and `ipconfig /all`.";
        let grounded = ground(note, &context(), "SUP-1042", en());
        assert_eq!(
            grounded.note,
            "Run `Test-NetConnection db01.corp.local -Port 443` (unverified: db01.corp.local) then\n\
             ```\nping 10.20.1.31\ncurl https://evil.example.net/x\n```\n\
             (unverified: evil[.]example[.]net/…)\n\
             and `ipconfig /all`.",
        );
        assert_eq!(grounded.unverified, 2);
    }

    /// Backticks a writer escaped make no code: what is between them is
    /// prose, and an unknown link there is removed like any other.
    #[test]
    fn escaped_backticks_make_no_code_to_hide_a_link_in() {
        let note = "Open \\`https://evil.example.net/fix\\` now.";
        let grounded = ground(note, &context(), "SUP-1042", en());
        assert!(
            !grounded.note.contains("evil.example.net"),
            "{}",
            grounded.note
        );
        // An unbacked link named after real code is no link either.
        let grounded = ground(
            "Run `curl https://evil.example.net/x.sh`.",
            &context(),
            "SUP-1042",
            en(),
        );
        let mark = grounded.note.split_once("` ").unwrap().1;
        assert!(!mark.contains("https://"), "{}", grounded.note);
        assert!(mark.contains("evil[.]example[.]net/…"), "{}", grounded.note);
    }

    #[test]
    fn a_cited_link_with_parentheses_is_kept_whole() {
        let mut context = context();
        let url = "https://learn.microsoft.com/en-us/previous-versions/cc754820(v=ws.10)";
        context.knowledge_articles[0].url = Some(url.into());
        let note = format!("See {url}, or [the article]({url}).");
        let grounded = ground(&note, &context, "SUP-1042", en());
        assert_eq!(grounded.note, note);
        assert_eq!(grounded.unverified, 0);
    }

    #[test]
    fn names_of_standards_are_not_taken_for_tickets() {
        let note = "Save the CSV as UTF-8, check SHA-256 and ISO-27001; CVE-2024-3094 too. SUP-4242 and INC-77 are tickets.";
        let grounded = ground(note, &context(), "SUP-1042", en());
        assert!(
            grounded
                .note
                .contains("as UTF-8, check SHA-256 and ISO-27001;"),
            "{}",
            grounded.note
        );
        assert!(
            grounded.note.contains("SUP-4242 (unverified)"),
            "{}",
            grounded.note
        );
        assert!(
            grounded.note.contains("INC-77 (unverified)"),
            "{}",
            grounded.note
        );
        assert_eq!(grounded.unverified, 2, "{}", grounded.note);
    }

    #[test]
    fn hosts_of_the_countries_tickets_come_from_are_checked_and_marked_in_the_notes_language() {
        let note = "Prüfen Sie srv-dc01.firma.de, fs01.kunde.fr, nas.bureau.be, dc.kantoor.nl und ws.oficina.es.";
        let grounded = ground(
            note,
            &context(),
            "SUP-1042",
            Labels::of(aia_events::Language::German),
        );
        for host in [
            "srv-dc01.firma.de",
            "fs01.kunde.fr",
            "nas.bureau.be",
            "dc.kantoor.nl",
            "ws.oficina.es",
        ] {
            assert!(
                grounded.note.contains(&format!("{host} (nicht belegt)")),
                "{host}: {}",
                grounded.note
            );
        }
        assert_eq!(grounded.unverified, 5);
    }

    /// Numbered tickets are checked by their number, as the help desks
    /// that number them are cited.
    #[test]
    fn a_numbered_ticket_is_checked_by_its_number() {
        let mut context = context();
        context.similar_tickets[0].ticket_id = aia_events::TicketId::parse("48213").unwrap();
        let grounded = ground(
            "Request #48213 was fixed the same way; ticket 99999 too. Port 3389 and KB5034441 are fine.",
            &context,
            "4711",
            en(),
        );
        assert!(
            grounded.note.contains("Request #48213 was"),
            "{}",
            grounded.note
        );
        assert!(
            grounded.note.contains("ticket 99999 (unverified)"),
            "{}",
            grounded.note
        );
        assert!(
            grounded.note.contains("Port 3389 and KB5034441 are fine."),
            "{}",
            grounded.note
        );
        assert_eq!(grounded.unverified, 1);
        // As the notes' other languages cite them.
        for cited in [
            "Ticketnummer 99999",
            "Ticket-Nr. 99999",
            "Vorgang 99999",
            "Störung 99999",
            "solicitud nº 99999",
            "solicitud n.º 99999",
            "incidencia 99999",
            "petición núm. 99999",
            "requête 99999",
            "ticketnummer 99999",
            "aanvraag 99999",
        ] {
            let grounded = ground(&format!("Siehe {cited}."), &context, "4711", en());
            assert!(
                grounded.note.contains(&format!("{cited} (unverified)")),
                "{}",
                grounded.note
            );
        }
        // Ordinary words that look like a citation are left alone.
        for prose in [
            "In case 4010 responses persist, restart it.",
            "Incident 2024-05-01 was the last one.",
            "The request 200 OK came back; error #500 and KB #5034441 too.",
            "Die Anfrage 2024 war ähnlich.",
            "Event ID #4625 and &#8217; quotes.",
            "Ticket 4821 is a part of 48213's number, not it.",
            "The mailbox is storing 25000 items.",
        ] {
            let grounded = ground(prose, &context, "4711", en());
            let marked = grounded.note.contains("unverified");
            assert_eq!(
                marked,
                prose.starts_with("Ticket 4821"),
                "{}",
                grounded.note
            );
        }
    }
}
