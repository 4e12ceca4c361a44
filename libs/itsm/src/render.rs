//! Markdown notes rendered for help-desk tools.
//!
//! Raw HTML in the Markdown (which comes from a model) is escaped, never
//! passed through, so a note can not carry script into a ticket. Links are
//! kept only for http, https and mailto.

use pulldown_cmark::{Event, Options, Parser, Tag, html};

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

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

#[cfg(test)]
mod tests {
    use super::*;

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
