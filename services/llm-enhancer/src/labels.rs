//! Every word code (not the model) puts into a note, in each language a
//! note can be written in: the four section titles, the raw-context
//! fallback's labels, the related-tickets section and the truncation mark.
//! The model is asked for the same titles, so a note reads in one language
//! whether the model wrote it, code completed it, or no model answered.

use aia_events::{Language, MatchedBy};

/// The fixed words of a note in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub language: Language,
    /// Similar tickets, relevant documentation, system information,
    /// recommended next steps — in that order.
    pub sections: [&'static str; 4],
    pub no_information: &'static str,
    /// Under a section whose source did not answer.
    pub unavailable: &'static str,
    /// Below an answer the model's provider cut at its length limit.
    pub cut_short: &'static str,
    pub context_gathered: &'static str,
    pub raw_context_footer: &'static str,
    pub likely_match: &'static str,
    pub possibly_related: &'static str,
    pub resolved_by: &'static str,
    /// Matched by meaning, by words, by both.
    pub matched_by: [&'static str; 3],
    pub same_incident: &'static str,
    /// The mark after a citation the context does not back.
    pub unverified: &'static str,
    /// Put where a link to something not among the sources was.
    pub link_removed: &'static str,
    /// The monitoring source, named where it could not be checked.
    pub monitoring: &'static str,
}

const ENGLISH: Labels = Labels {
    language: Language::English,
    sections: [
        "Similar Tickets",
        "Relevant Documentation",
        "System Information",
        "Recommended Next Steps",
    ],
    no_information: "No information available",
    unavailable: "Could not be checked: the source did not answer",
    cut_short: "[The model's answer was cut short at its length limit]",
    context_gathered: "Context Gathered",
    raw_context_footer: "Note: AI synthesis unavailable, showing raw context.",
    likely_match: "likely match",
    possibly_related: "possibly related",
    resolved_by: "resolved by",
    matched_by: [
        "similar meaning",
        "shared words",
        "similar meaning and shared words",
    ],
    same_incident: "Possibly the same incident",
    unverified: "unverified",
    link_removed: "(link removed: not among the sources)",
    monitoring: "Monitoring",
};

const GERMAN: Labels = Labels {
    language: Language::German,
    sections: [
        "Ähnliche Tickets",
        "Relevante Dokumentation",
        "Systeminformationen",
        "Empfohlene nächste Schritte",
    ],
    no_information: "Keine Informationen verfügbar",
    unavailable: "Konnte nicht geprüft werden: die Quelle hat nicht geantwortet",
    cut_short: "[Die Antwort des Modells wurde an ihrer Längengrenze abgeschnitten]",
    context_gathered: "Gesammelter Kontext",
    raw_context_footer: "Hinweis: KI-Zusammenfassung nicht verfügbar, der gesammelte Kontext wird unverändert angezeigt.",
    likely_match: "wahrscheinlicher Treffer",
    possibly_related: "möglicherweise verwandt",
    resolved_by: "gelöst durch",
    matched_by: [
        "ähnliche Bedeutung",
        "gemeinsame Begriffe",
        "ähnliche Bedeutung und gemeinsame Begriffe",
    ],
    same_incident: "Möglicherweise derselbe Vorfall",
    unverified: "nicht belegt",
    link_removed: "(Link entfernt: nicht unter den Quellen)",
    monitoring: "Überwachung",
};

const FRENCH: Labels = Labels {
    language: Language::French,
    sections: [
        "Tickets similaires",
        "Documentation pertinente",
        "Informations système",
        "Prochaines étapes recommandées",
    ],
    no_information: "Aucune information disponible",
    unavailable: "Vérification impossible : la source n'a pas répondu",
    cut_short: "[La réponse du modèle a été coupée à sa limite de longueur]",
    context_gathered: "Contexte collecté",
    raw_context_footer: "Remarque : synthèse IA indisponible, le contexte collecté est affiché tel quel.",
    likely_match: "correspondance probable",
    possibly_related: "peut-être lié",
    resolved_by: "résolu par",
    matched_by: [
        "sens proche",
        "mots en commun",
        "sens proche et mots en commun",
    ],
    same_incident: "Peut-être le même incident",
    unverified: "non vérifié",
    link_removed: "(lien retiré : absent des sources)",
    monitoring: "Supervision",
};

const SPANISH: Labels = Labels {
    language: Language::Spanish,
    sections: [
        "Tickets similares",
        "Documentación relevante",
        "Información del sistema",
        "Próximos pasos recomendados",
    ],
    no_information: "No hay información disponible",
    unavailable: "No se pudo comprobar: la fuente no respondió",
    cut_short: "[La respuesta del modelo se cortó en su límite de longitud]",
    context_gathered: "Contexto recopilado",
    raw_context_footer: "Nota: síntesis de IA no disponible, se muestra el contexto recopilado sin procesar.",
    likely_match: "coincidencia probable",
    possibly_related: "posiblemente relacionado",
    resolved_by: "resuelto con",
    matched_by: [
        "significado similar",
        "palabras en común",
        "significado similar y palabras en común",
    ],
    same_incident: "Posiblemente el mismo incidente",
    unverified: "no verificado",
    link_removed: "(enlace eliminado: no está entre las fuentes)",
    monitoring: "Monitorización",
};

const DUTCH: Labels = Labels {
    language: Language::Dutch,
    sections: [
        "Vergelijkbare tickets",
        "Relevante documentatie",
        "Systeeminformatie",
        "Aanbevolen volgende stappen",
    ],
    no_information: "Geen informatie beschikbaar",
    unavailable: "Kon niet worden gecontroleerd: de bron antwoordde niet",
    cut_short: "[Het antwoord van het model is afgebroken op de lengtelimiet]",
    context_gathered: "Verzamelde context",
    raw_context_footer: "Let op: AI-samenvatting niet beschikbaar, de verzamelde context wordt onbewerkt getoond.",
    likely_match: "waarschijnlijke overeenkomst",
    possibly_related: "mogelijk gerelateerd",
    resolved_by: "opgelost door",
    matched_by: [
        "vergelijkbare betekenis",
        "gedeelde woorden",
        "vergelijkbare betekenis en gedeelde woorden",
    ],
    same_incident: "Mogelijk hetzelfde incident",
    unverified: "niet geverifieerd",
    link_removed: "(link verwijderd: niet bij de bronnen)",
    monitoring: "Bewaking",
};

impl Labels {
    pub fn of(language: Language) -> &'static Self {
        match language {
            Language::English => &ENGLISH,
            Language::German => &GERMAN,
            Language::French => &FRENCH,
            Language::Spanish => &SPANISH,
            Language::Dutch => &DUTCH,
        }
    }

    /// The four section headings, as the note writes them.
    pub fn headings(&self) -> [String; 4] {
        self.sections.map(|title| format!("## {title}"))
    }

    pub fn matched_by(&self, matched_by: MatchedBy) -> &'static str {
        match matched_by {
            MatchedBy::Meaning => self.matched_by[0],
            MatchedBy::Words => self.matched_by[1],
            MatchedBy::Both => self.matched_by[2],
        }
    }

    /// The mark under a note cut at the tenant's word limit.
    pub fn truncated(&self, max_words: usize) -> String {
        match self.language {
            Language::English => format!("[Output truncated to {max_words}-word limit]"),
            Language::German => format!("[Ausgabe auf {max_words} Wörter gekürzt]"),
            Language::French => format!("[Texte tronqué à la limite de {max_words} mots]"),
            Language::Spanish => format!("[Texto recortado al límite de {max_words} palabras]"),
            Language::Dutch => format!("[Tekst ingekort tot de limiet van {max_words} woorden]"),
        }
    }

    /// "7 other open tickets from the last 40 minutes look like this one",
    /// with `listed` (ids) after a colon when given, and when the first came.
    pub fn related(&self, n: usize, minutes: i64, listed: Option<&str>, first: &str) -> String {
        let listed = listed.map(|ids| format!(": {ids}")).unwrap_or_default();
        let one = n == 1;
        let recent = minutes <= 1;
        match self.language {
            Language::English => {
                let tickets = if one {
                    "1 other open ticket".to_owned()
                } else {
                    format!("{n} other open tickets")
                };
                let period = if recent {
                    "minute".to_owned()
                } else {
                    format!("{minutes} minutes")
                };
                let look = if one { "looks" } else { "look" };
                format!(
                    "{tickets} from the last {period} {look} like this one{listed} — the first at {first} UTC."
                )
            }
            Language::German => {
                let tickets = if one {
                    "1 weiteres offenes Ticket".to_owned()
                } else {
                    format!("{n} weitere offene Tickets")
                };
                let period = if recent {
                    "der letzten Minute".to_owned()
                } else {
                    format!("den letzten {minutes} Minuten")
                };
                let look = if one { "ähnelt" } else { "ähneln" };
                format!("{tickets} aus {period} {look} diesem{listed} — das erste um {first} UTC.")
            }
            Language::French => {
                let tickets = if one {
                    "1 autre ticket ouvert".to_owned()
                } else {
                    format!("{n} autres tickets ouverts")
                };
                let period = if recent {
                    "de la dernière minute".to_owned()
                } else {
                    format!("des {minutes} dernières minutes")
                };
                let look = if one { "ressemble" } else { "ressemblent" };
                format!("{tickets} {period} {look} à celui-ci{listed} — le premier à {first} UTC.")
            }
            Language::Spanish => {
                let tickets = if one {
                    "1 ticket abierto más".to_owned()
                } else {
                    format!("{n} tickets abiertos más")
                };
                let period = if recent {
                    "del último minuto".to_owned()
                } else {
                    format!("de los últimos {minutes} minutos")
                };
                let look = if one { "se parece" } else { "se parecen" };
                format!("{tickets} {period} {look} a este{listed} — el primero a las {first} UTC.")
            }
            Language::Dutch => {
                let tickets = if one {
                    "1 ander open ticket".to_owned()
                } else {
                    format!("{n} andere open tickets")
                };
                let period = if recent {
                    "de laatste minuut".to_owned()
                } else {
                    format!("de laatste {minutes} minuten")
                };
                let look = if one { "lijkt" } else { "lijken" };
                format!(
                    "{tickets} uit {period} {look} op dit ticket{listed} — het eerste om {first} UTC."
                )
            }
        }
    }

    /// `value` to `places` decimals with the language's decimal mark (a
    /// comma in all but English).
    pub fn decimal(&self, value: f64, places: usize) -> String {
        let text = format!("{value:.places$}");
        match self.language {
            Language::English => text,
            _ => text.replace('.', ","),
        }
    }

    /// Why a related open ticket is listed: its cosine, the entities it
    /// shares.
    pub fn related_why(&self, similarity: Option<f64>, shared: &[String]) -> String {
        let (wording, mention, related) = match self.language {
            Language::English => ("similar wording", "both mention", "related"),
            Language::German => ("ähnlicher Wortlaut", "beide nennen", "verwandt"),
            Language::French => ("formulation proche", "tous deux citent", "lié"),
            Language::Spanish => ("redacción parecida", "ambos mencionan", "relacionado"),
            Language::Dutch => ("vergelijkbare bewoording", "beide noemen", "gerelateerd"),
        };
        let meaning = similarity.map(|cosine| format!("{wording} ({})", self.decimal(cosine, 2)));
        let shared = (!shared.is_empty()).then(|| format!("{mention} {}", shared.join(", ")));
        match (meaning, shared) {
            (Some(meaning), Some(shared)) => format!("{meaning}; {shared}"),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => related.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_similarity_is_written_with_the_languages_decimal_mark() {
        let shared = ["fs01".to_owned()];
        assert_eq!(
            Labels::of(Language::English).related_why(Some(0.873), &shared),
            "similar wording (0.87); both mention fs01"
        );
        assert_eq!(
            Labels::of(Language::German).related_why(Some(0.873), &[]),
            "ähnlicher Wortlaut (0,87)"
        );
        assert_eq!(Labels::of(Language::French).decimal(0.5, 1), "0,5");
    }

    #[test]
    fn every_language_has_its_own_distinct_words() {
        for language in Language::ALL {
            let labels = Labels::of(language);
            assert_eq!(labels.language, language);
            let mut titles = labels.sections.to_vec();
            titles.sort_unstable();
            titles.dedup();
            assert_eq!(titles.len(), 4, "{language}: four distinct titles");
            if language != Language::English {
                let english = Labels::of(Language::English);
                assert!(
                    labels
                        .sections
                        .iter()
                        .all(|title| !english.sections.contains(title)),
                    "{language}"
                );
                // Every fixed string, not only some: an English one left in
                // a language would show up in its notes.
                for (field, ours, theirs) in [
                    (
                        "no_information",
                        labels.no_information,
                        english.no_information,
                    ),
                    ("unavailable", labels.unavailable, english.unavailable),
                    ("cut_short", labels.cut_short, english.cut_short),
                    (
                        "context_gathered",
                        labels.context_gathered,
                        english.context_gathered,
                    ),
                    (
                        "raw_context_footer",
                        labels.raw_context_footer,
                        english.raw_context_footer,
                    ),
                    ("likely_match", labels.likely_match, english.likely_match),
                    (
                        "possibly_related",
                        labels.possibly_related,
                        english.possibly_related,
                    ),
                    ("resolved_by", labels.resolved_by, english.resolved_by),
                    ("same_incident", labels.same_incident, english.same_incident),
                    ("unverified", labels.unverified, english.unverified),
                    ("link_removed", labels.link_removed, english.link_removed),
                    ("monitoring", labels.monitoring, english.monitoring),
                ] {
                    assert_ne!(ours, theirs, "{language}: {field} is the English one");
                }
                for (ours, theirs) in labels.matched_by.iter().zip(english.matched_by) {
                    assert_ne!(*ours, theirs, "{language}: matched_by");
                }
                assert_ne!(labels.truncated(3), english.truncated(3));
                assert_ne!(
                    labels.related(2, 5, None, "09:12"),
                    english.related(2, 5, None, "09:12")
                );
            }
            assert!(labels.truncated(250).contains("250"));
            let line = labels.related(7, 40, Some("SUP-1, SUP-2"), "09:12");
            for part in ["7", "40", ": SUP-1, SUP-2", "09:12"] {
                assert!(line.contains(part), "{language}: {line}");
            }
        }
    }

    #[test]
    fn one_ticket_and_the_last_minute_read_in_the_singular() {
        assert_eq!(
            Labels::of(Language::English).related(1, 1, Some("SUP-100"), "09:12"),
            "1 other open ticket from the last minute looks like this one: SUP-100 — the first at 09:12 UTC."
        );
        assert_eq!(
            Labels::of(Language::German).related(1, 1, None, "09:12"),
            "1 weiteres offenes Ticket aus der letzten Minute ähnelt diesem — das erste um 09:12 UTC."
        );
        assert_eq!(
            Labels::of(Language::French).related(3, 25, None, "09:12"),
            "3 autres tickets ouverts des 25 dernières minutes ressemblent à celui-ci — le premier à 09:12 UTC."
        );
    }
}
