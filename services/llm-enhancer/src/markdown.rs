//! What may become markup in a note. Text that code copies into a note
//! from tickets and sources (a subject, a fix, a title) is escaped, so it
//! shows as written and never turns into a link, an image or emphasis. And
//! a note keeps only the links the context gave — judged on the link as the
//! help desk will render it (entities decoded, any scheme, any case), not
//! on how its text looks.

use std::collections::HashSet;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// `text` as Markdown that renders as exactly `text`: every character that
/// could open markup inline (links, images, autolinks, HTML, entities,
/// emphasis, code) is backslash-escaped, as CommonMark allows for any
/// ASCII punctuation.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '~' | '!' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A link target as compared with the sources' own.
fn normalized(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The URLs a note may link to: the context's own.
pub fn allowed(urls: impl IntoIterator<Item = impl AsRef<str>>) -> HashSet<String> {
    urls.into_iter()
        .map(|url| normalized(url.as_ref()))
        .collect()
}

/// `note` with every link and image whose target is not in `allowed`
/// replaced by its text and `removed`; how many were.
pub fn only_allowed_links(note: &str, allowed: &HashSet<String>, removed: &str) -> (String, usize) {
    // The ranges to replace, in order and never nested (an image inside a
    // refused link goes with it).
    let mut refused: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut open: Option<(std::ops::Range<usize>, String, usize)> = None;
    // Parsed as the help desks' renderers parse it (tables included: a
    // `|` inside a code span still splits a table's cell, so a link hidden
    // in one to any other reader is a link to theirs).
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(note, options).into_offset_iter() {
        match (&mut open, event) {
            (None, Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }))
                if !allowed.contains(&normalized(&dest_url)) =>
            {
                open = Some((range, String::new(), 0));
            }
            (Some((_, _, depth)), Event::Start(Tag::Link { .. } | Tag::Image { .. })) => {
                *depth += 1;
            }
            (Some((_, words, _)), Event::Text(text) | Event::Code(text)) => {
                words.push_str(&text);
            }
            (Some((_, _, depth)), Event::End(TagEnd::Link | TagEnd::Image)) => {
                if *depth == 0 {
                    let (range, words, _) = open.take().expect("open");
                    refused.push((range, words));
                } else {
                    *depth -= 1;
                }
            }
            _ => {}
        }
    }
    if refused.is_empty() {
        return (note.to_owned(), 0);
    }
    let mut out = String::with_capacity(note.len());
    let mut at = 0;
    for (range, words) in &refused {
        out.push_str(&note[at..range.start]);
        let words = words.trim();
        if !words.is_empty() {
            out.push_str(&text(words));
            out.push(' ');
        }
        out.push_str(removed);
        at = range.end;
    }
    out.push_str(&note[at..]);
    (out, refused.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOVED: &str = "(link removed: not among the sources)";

    /// The note as a help desk renders it: its links' targets.
    fn link_targets(note: &str) -> Vec<String> {
        Parser::new(note)
            .filter_map(|event| match event {
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    Some(dest_url.to_string())
                }
                _ => None,
            })
            .collect()
    }

    fn rendered_text(note: &str) -> String {
        Parser::new(note)
            .filter_map(|event| match event {
                Event::Text(text) | Event::Code(text) => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn escaped_text_renders_as_written_and_makes_no_link() {
        for hostile in [
            "Outlook asks for password [Sign in again](https://evil.xyz/sso)",
            "![x](https://evil.xyz/pixel.png) <https://evil.xyz> <b>bold</b>",
            "[Reset](&#104;ttps://evil.xyz/r) *not emphasis* _nor this_ `nor code`",
            "[a]: https://evil.xyz\nsee [a]",
            r"C:\Users\jane\ a back\slash and a | pipe & an ~ tilde!",
        ] {
            let escaped = text(hostile);
            let note = format!("- **SUP-1** {escaped}\n");
            assert_eq!(link_targets(&note), Vec::<String>::new(), "{hostile}");
            assert_eq!(
                rendered_text(&note),
                format!("SUP-1 {}", hostile.replace('\n', "")).trim_end(),
                "{hostile}"
            );
        }
    }

    #[test]
    fn only_the_sources_links_stay_however_a_link_is_spelled() {
        let allowed = allowed(["https://kb.example.com/a/17"]);
        let note = "See [the article](https://kb.example.com/a/17/) and \
                    [Reset](HTTPS://evil.xyz/r), [Reset](&#104;ttps://evil.xyz/r), \
                    [mail security](mailto:x@evil.com), <https://evil.xyz/auto>, \
                    ![pixel](https://evil.xyz/p.png) and [ref][r].\n\n[r]: https://evil.xyz/ref\n";
        let (kept, removed) = only_allowed_links(note, &allowed, REMOVED);
        assert_eq!(removed, 6, "{kept}");
        assert_eq!(
            link_targets(&kept),
            vec!["https://kb.example.com/a/17/".to_owned()],
            "{kept}"
        );
        assert!(kept.contains(&format!("Reset {REMOVED}")), "{kept}");
        assert!(kept.contains(&format!("mail security {REMOVED}")), "{kept}");
    }

    #[test]
    fn a_link_hidden_in_a_table_cell_is_found_as_the_renderers_find_it() {
        let note = "| a | b |\n|---|---|\n| `x | [Reset](&#104;ttps://evil.xyz/r)` |\n";
        let (kept, removed) =
            only_allowed_links(note, &allowed(["https://kb.example.com"]), REMOVED);
        assert_eq!(removed, 1, "{kept}");
        let html_targets: Vec<String> = Parser::new_ext(&kept, Options::ENABLE_TABLES)
            .filter_map(|event| match event {
                Event::Start(Tag::Link { dest_url, .. }) => Some(dest_url.to_string()),
                _ => None,
            })
            .collect();
        assert!(html_targets.is_empty(), "{kept}");
    }

    #[test]
    fn a_note_without_foreign_links_is_unchanged() {
        let note = "## Steps\n1. Restart the [spooler](https://kb.example.com/a/17).\n";
        let (kept, removed) =
            only_allowed_links(note, &allowed(["https://kb.example.com/a/17"]), REMOVED);
        assert_eq!((kept.as_str(), removed), (note, 0));
    }
}
