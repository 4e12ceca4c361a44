//! Markdown notes rendered for help-desk tools: HTML for the tools that
//! show HTML, plain text (with its line breaks) for the journals and note
//! fields that show text; and HTML from the tools reduced to text.
//!
//! Raw HTML in the Markdown (which comes from a model) is escaped, never
//! passed through, so a note can not carry script into a ticket. Links are
//! kept only for http, https and mailto.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

pub fn html(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: "#".into(),
            title,
            id,
        }),
        Event::Start(Tag::Image { dest_url, .. }) => Event::Text(dest_url),
        Event::End(pulldown_cmark::TagEnd::Image) => Event::Text("".into()),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, parser);
    out
}

/// The note as plain text, for tools whose notes are text (ServiceNow's
/// journal, ConnectWise and Autotask notes): headings on lines of their
/// own, list items as `- `, links as `text (url)`, emphasis dropped, blank
/// lines between blocks. Raw HTML stays as the text it is.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut links: Vec<String> = Vec::new();
    let mut list_depth = 0usize;
    let block_break = |out: &mut String| {
        let trimmed = out.trim_end_matches([' ', '\n']).len();
        out.truncate(trimmed);
        if !out.is_empty() {
            out.push_str("\n\n");
        }
    };
    for event in Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    ) {
        match event {
            Event::Start(
                Tag::Heading { .. } | Tag::Paragraph | Tag::CodeBlock(_) | Tag::Table(_),
            ) if list_depth == 0 => block_break(&mut out),
            Event::End(TagEnd::Heading(_)) => out.push('\n'),
            Event::Start(Tag::List(_)) => {
                if list_depth == 0 {
                    block_break(&mut out);
                }
                list_depth += 1;
            }
            Event::End(TagEnd::List(_)) => list_depth = list_depth.saturating_sub(1),
            Event::Start(Tag::Item) => {
                let trimmed = out.trim_end_matches(' ').len();
                out.truncate(trimmed);
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(list_depth.saturating_sub(1)));
                out.push_str("- ");
            }
            Event::Start(Tag::Link { dest_url, .. }) => links.push(if safe_url(&dest_url) {
                dest_url.to_string()
            } else {
                String::new()
            }),
            Event::End(TagEnd::Link) => {
                if let Some(url) = links.pop().filter(|url| !url.is_empty()) {
                    out.push_str(&format!(" ({url})"));
                }
            }
            Event::Start(Tag::Image { dest_url, .. }) => out.push_str(&dest_url),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => out.push('\n'),
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                out.push_str(&text)
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Rule => {
                block_break(&mut out);
                out.push_str("----");
            }
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// `text` without the characters that reorder how text around them is
/// displayed (U+202A–U+202E, U+2066–U+2069): copied from a ticket into a
/// note, an override makes a command or a ticket id read otherwise than it
/// is ("Trojan Source"). The marks that only hint a direction (U+200E,
/// U+200F) stay: a right-to-left language needs them and they move
/// nothing across them.
pub fn without_direction_overrides(text: &str) -> std::borrow::Cow<'_, str> {
    let overrides = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if text.contains(overrides) {
        std::borrow::Cow::Owned(text.chars().filter(|c| !overrides(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether a link may be followed from a note: http, https and mailto only.
pub fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

/// Text of an HTML fragment: tags dropped, block ends as line breaks,
/// character references decoded.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag
                    .trim_start_matches('/')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if matches!(
                    name.as_str(),
                    "br" | "br/" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3"
                ) {
                    text.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => text.push(c),
        }
    }
    // Every character reference HTML has (`&auml;`, `&eacute;`, `&#252;`,
    // `&rsquo;`): left encoded, `Gesch&auml;ft` is indexed as three words
    // and found by none, and quoted so in a note. A no-break space is a
    // space to every reader of the text.
    let decoded = html_escape::decode_html_entities(&text).replace('\u{a0}', " ");
    decoded
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_overrides_are_dropped_and_direction_marks_kept() {
        assert_eq!(
            without_direction_overrides("run \u{202E}txt.exe\u{202C} and \u{2067}x\u{2069}"),
            "run txt.exe and x"
        );
        let hebrew = "\u{200F}שלום";
        assert!(matches!(
            without_direction_overrides(hebrew),
            std::borrow::Cow::Borrowed(kept) if kept == hebrew
        ));
    }

    #[test]
    fn html_text_has_every_character_reference_decoded_once() {
        assert_eq!(
            html_to_text(
                "<p>Gesch&auml;ft&nbsp;&amp; r&eacute;seau</p><div>&#252;ber &#x00FC;ber &rsquo;x&rsquo; &lt;b&gt; &amp;lt;</div>"
            ),
            "Geschäft & réseau\nüber über ’x’ <b> &lt;"
        );
    }

    #[test]
    fn plain_text_keeps_sections_lists_and_links_readable() {
        let text = plain_text(
            "## Similar Tickets\n- **SUP-1** VPN drops: [fix](https://kb.example.com/a)\n- SUP-2\n\n## Next steps\n1. Check the tunnel\n\n---\n\n_ai-agents-ref:42_\n",
        );
        assert_eq!(
            text,
            "Similar Tickets\n\n- SUP-1 VPN drops: fix (https://kb.example.com/a)\n- SUP-2\n\nNext steps\n\n- Check the tunnel\n\n----\n\nai-agents-ref:42"
        );
    }

    #[test]
    fn plain_text_keeps_raw_html_as_text_and_drops_unsafe_links() {
        let text = plain_text("<script>x</script>\n\nSee [a](javascript:alert(1))");
        assert!(text.contains("<script>x</script>"), "{text}");
        assert!(!text.contains("javascript"), "{text}");
    }

    #[test]
    fn sections_lists_and_links_render_as_html() {
        let out = html("## Similar Tickets\n- SUP-1: [fix](https://kb.example.com/a)\n");
        assert_eq!(
            out,
            "<h2>Similar Tickets</h2>\n<ul>\n<li>SUP-1: <a href=\"https://kb.example.com/a\">fix</a></li>\n</ul>\n"
        );
    }

    #[test]
    fn raw_html_and_script_from_the_model_are_escaped() {
        let out = html("Hi <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>");
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn javascript_links_lose_their_target() {
        let out = html("[click](javascript:alert(1))");
        assert_eq!(out, "<p><a href=\"#\">click</a></p>\n");
    }
}
