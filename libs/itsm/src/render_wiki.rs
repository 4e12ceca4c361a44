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
    let mut previous = None;
    for c in text.chars() {
        match c {
            '\\' => out.push_str("&#92;"),
            // `--` and `---` are dashes in wiki text: `--force` would show
            // as "–force". A hyphen after a hyphen is its reference.
            '-' if previous == Some('-') => out.push_str("&#45;"),
            '*' | '_' | '{' | '}' | '[' | ']' | '|' | '!' | '^' | '~' | '+' | '?' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        previous = Some(c);
    }
    out
}

/// Text with the bare links in it as wiki links (`[label|target]`): Jira
/// links a bare URL itself, but escaping would put backslashes into it
/// (`KB\_0042\?lang=de`), so each is written as a link whose target is
/// the URL as it is; the rest is escaped.
fn text_with_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = link_start(rest) {
        out.push_str(&escaped(&rest[..start]));
        let tail = &rest[start..];
        let mut end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '|' | '[' | ']'))
            .unwrap_or(tail.len());
        // Closing punctuation belongs to the sentence, not the link.
        while end > 0 && tail[..end].ends_with(['.', ',', ';', ':', '!', '?', ')', '\'']) {
            if tail[..end].ends_with(')')
                && tail[..end].matches('(').count() >= tail[..end].matches(')').count()
            {
                break;
            }
            end -= 1;
        }
        let url = &tail[..end];
        if safe_url(url) && url.len() > "https://".len() {
            out.push_str(&format!("[{}|{url}]", escaped(url)));
        } else {
            out.push_str(&escaped(url));
        }
        rest = &tail[end..];
        if end == 0 {
            // Not a link after all: move past its first character.
            let first = rest.chars().next().map_or(0, char::len_utf8);
            out.push_str(&escaped(&rest[..first]));
            rest = &rest[first..];
        }
    }
    out.push_str(&escaped(rest));
    out
}

/// Where the next `http://` or `https://` (any case) starts.
fn link_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
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
            // Inside a link the text is its label: no link in a link.
            Event::Text(text) if links.is_empty() => out.push_str(&text_with_links(&text)),
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
    fn a_bare_link_keeps_its_address_and_double_hyphens_stay_hyphens() {
        let wiki = wiki(
            "See https://kb.example.com/KB_0042?lang=de#top, or (https://learn.example.com/cc754820(v=ws.10)). Run `setup --force` with --force.",
        );
        assert!(
            wiki.contains("[https://kb.example.com/KB\\_0042\\?lang=de\\#top|https://kb.example.com/KB_0042?lang=de#top],"),
            "{wiki}"
        );
        assert!(
            wiki.contains("|https://learn.example.com/cc754820(v=ws.10)])."),
            "{wiki}"
        );
        assert!(wiki.contains("with -&#45;force."), "{wiki}");
        assert!(!wiki.contains("--"), "{wiki}");
        // A link written as a link stays one link.
        let linked = super::wiki("[the article](https://kb.example.com/a_1)");
        assert_eq!(linked, "[the article|https://kb.example.com/a_1]\n");
    }

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
        // The bare address is a link to itself, as Jira would make it.
        assert!(
            rendered.contains(
                r"\[me\|[https://evil.example|https://evil.example]\] \{color:red\}now\{color\}"
            ),
            "{rendered}"
        );
        let link = wiki("[x](javascript:alert(1)) and <b>bold</b>");
        assert_eq!(link, "x and <b>bold</b>\n");
    }
}
