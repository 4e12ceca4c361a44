//! Markdown notes rendered as Jira wiki markup: what Jira Data Center's
//! REST API v2 and the Service Management request API take as a comment's
//! text (they render it with the wiki renderer, where `## Heading` would
//! be a numbered list). Text that could open markup is escaped; links keep
//! only http(s) and mailto targets; raw HTML stays text.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::render::safe_url;

/// Characters that open wiki markup: escaped with a backslash in text.
/// (`-` is not among them: a hyphen opens strike-through only between
/// spaces, and ids, dates and the note's marker are full of hyphens.) A
/// backslash itself is written as its character reference: escaped as
/// `\\` it would be a line break, and Windows paths are full of them.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("&#92;"),
            '*' | '_' | '{' | '}' | '[' | ']' | '|' | '!' | '^' | '~' | '+' | '?' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn wiki(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + 64);
    // The markers of the lists the text is in (`*` bullets, `#` numbers).
    let mut lists: Vec<char> = Vec::new();
    let mut in_code_block = false;
    // Links open: the target of each, or None when it may not be followed.
    let mut links: Vec<Option<String>> = Vec::new();
    let block_break = |out: &mut String| {
        let trimmed = out.trim_end_matches([' ', '\n']).len();
        out.truncate(trimmed);
        if !out.is_empty() {
            out.push_str("\n\n");
        }
    };
    let line_break = |out: &mut String| {
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(Tag::Heading { level: heading, .. }) => {
                block_break(&mut out);
                out.push_str(&format!("h{}. ", heading as u8));
            }
            Event::End(TagEnd::Heading(_)) => out.push('\n'),
            Event::Start(Tag::Paragraph) if lists.is_empty() => block_break(&mut out),
            // A list item's second paragraph: a line break, not glued on.
            Event::Start(Tag::Paragraph) => {
                let line = out.rsplit('\n').next().unwrap_or_default();
                if !line.trim_end().chars().all(|c| matches!(c, '*' | '#')) {
                    out.push_str(" \\\\ ");
                }
            }
            Event::End(TagEnd::Paragraph) => {}
            Event::Start(Tag::List(start)) => {
                if lists.is_empty() {
                    block_break(&mut out);
                }
                lists.push(if start.is_some() { '#' } else { '*' });
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                line_break(&mut out);
                out.extend(lists.iter());
                out.push(' ');
            }
            Event::End(TagEnd::Item) => line_break(&mut out),
            Event::Start(Tag::CodeBlock(_)) => {
                if lists.is_empty() {
                    block_break(&mut out);
                } else {
                    line_break(&mut out);
                }
                out.push_str("{noformat}\n");
                in_code_block = true;
            }
            Event::End(TagEnd::CodeBlock) => {
                line_break(&mut out);
                out.push_str("{noformat}\n");
                in_code_block = false;
            }
            Event::Start(Tag::BlockQuote(_)) => {
                block_break(&mut out);
                out.push_str("{quote}\n");
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                line_break(&mut out);
                out.push_str("{quote}\n");
            }
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => out.push('*'),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => out.push('_'),
            Event::Start(Tag::Strikethrough) | Event::End(TagEnd::Strikethrough) => {
                out.push('-');
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                let target = safe_url(&dest_url).then(|| dest_url.to_string());
                if target.is_some() {
                    out.push('[');
                }
                links.push(target);
            }
            Event::End(TagEnd::Link) => {
                if let Some(Some(target)) = links.pop() {
                    // `|` and `]` end a link's target: percent-encoded.
                    let target = target.replace('|', "%7C").replace(']', "%5D");
                    out.push_str(&format!("|{target}]"));
                }
            }
            Event::Start(Tag::Image { dest_url, .. }) => out.push_str(&escaped(&dest_url)),
            Event::Text(text) if in_code_block => {
                // `{noformat}` is the only thing that ends a block.
                out.push_str(&text.replace("{noformat}", "{ noformat}"));
            }
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => {
                out.push_str(&escaped(&text));
            }
            Event::Code(code) => {
                out.push_str("{{");
                out.push_str(&escaped(&code));
                out.push_str("}}");
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push_str("\\\\ "),
            Event::Rule => {
                block_break(&mut out);
                out.push_str("----\n");
            }
            _ => {}
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_renders_as_wiki_markup() {
        let markdown = [
            "## Similar Tickets",
            "- **SUP-977**: [the fix](https://kb.example.com/a) was `gpupdate /force`",
            "",
            "## Recommended Next Steps",
            "1. Check the _spooler_",
            "   - run `sc query spooler`",
            "2. Restart it:",
            "",
            "   ```",
            "   Restart-Service Spooler",
            "   ```",
            "",
            "---",
            "",
            "_ai-agents-ref:0190a8e4-6c4e-7f3a-9d1e-1a2b3c4d5e6f_",
        ]
        .join("\n");
        let expected = "h2. Similar Tickets\n\n\
            * *SUP-977*: [the fix|https://kb.example.com/a] was {{gpupdate /force}}\n\n\
            h2. Recommended Next Steps\n\n\
            # Check the _spooler_\n\
            #* run {{sc query spooler}}\n\
            # Restart it:\n\
            {noformat}\nRestart-Service Spooler\n{noformat}\n\n\
            ----\n\n\
            _ai-agents-ref:0190a8e4-6c4e-7f3a-9d1e-1a2b3c4d5e6f_\n";
        assert_eq!(wiki(&markdown), expected);
    }

    #[test]
    fn windows_paths_and_a_list_items_paragraphs_survive() {
        // As a note carries them: a path in code, a share in escaped text.
        let rendered = wiki(
            "Delete `C:\\Temp\\*.tmp` from \\\\\\\\fs01\\\\share\n\n1. Restart it.\n\n   Then check the queue.\n",
        );
        assert!(
            rendered.contains("{{C:&#92;Temp&#92;\\*.tmp}} from &#92;&#92;fs01&#92;share"),
            "{rendered}"
        );
        assert!(
            rendered.contains("# Restart it. \\\\ Then check the queue."),
            "{rendered}"
        );
    }

    #[test]
    fn text_that_would_be_markup_stays_text() {
        let rendered = wiki("Call [me|https://evil.example] {color:red}now{color} *please* \\");
        assert!(!rendered.contains("[me|"), "{rendered}");
        assert!(rendered.contains(r"\[me\|https://evil.example\] \{color:red\}now\{color\}"));
        let link = wiki("[x](javascript:alert(1)) and <b>bold</b>");
        assert_eq!(link, "x and <b>bold</b>\n");
    }
}
