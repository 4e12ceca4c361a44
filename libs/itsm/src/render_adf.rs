//! Markdown notes rendered as Atlassian Document Format for Jira. Raw HTML
//! in the Markdown becomes plain text; links keep only http(s) and mailto
//! targets.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};

/// A node being built, with the marks in force for text inside it.
struct Frame {
    node: Value,
}

/// Whether `node` is inline content (it belongs inside a paragraph).
fn inline(node: &Value) -> bool {
    matches!(node["type"].as_str(), Some("text" | "hardBreak"))
}

/// A block container's content with each run of loose inline nodes in a
/// paragraph of its own. A tight list item's text arrives without one (its
/// nested list or code block after it), and so may an HTML block's: ADF
/// allows text only inside paragraphs and headings, and Jira refuses the
/// whole comment otherwise.
fn blocks(content: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(content.len());
    let mut run: Vec<Value> = Vec::new();
    for node in content {
        if inline(&node) {
            run.push(node);
        } else {
            if !run.is_empty() {
                out.push(json!({"type": "paragraph", "content": std::mem::take(&mut run)}));
            }
            out.push(node);
        }
    }
    if !run.is_empty() {
        out.push(json!({"type": "paragraph", "content": run}));
    }
    out
}

pub fn adf(markdown: &str) -> Value {
    let mut stack = vec![Frame {
        node: json!({"type": "doc", "version": 1, "content": []}),
    }];
    let mut marks: Vec<Value> = Vec::new();
    let push_child = |stack: &mut Vec<Frame>, child: Value| {
        let parent = stack.last_mut().expect("document frame");
        parent.node["content"]
            .as_array_mut()
            .expect("content")
            .push(child);
    };
    let text = |content: &str, marks: &[Value]| {
        let mut node = json!({"type": "text", "text": content});
        if !marks.is_empty() {
            node["marks"] = Value::Array(marks.to_vec());
        }
        node
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => stack.push(Frame { node: json!({"type": "paragraph", "content": []}) }),
                Tag::Heading { level: heading, .. } => stack.push(Frame {
                    node: json!({"type": "heading", "attrs": {"level": heading as u8}, "content": []}),
                }),
                Tag::List(Some(start)) => stack.push(Frame {
                    node: json!({"type": "orderedList", "attrs": {"order": start}, "content": []}),
                }),
                Tag::List(None) => stack.push(Frame { node: json!({"type": "bulletList", "content": []}) }),
                Tag::Item => stack.push(Frame { node: json!({"type": "listItem", "content": []}) }),
                Tag::CodeBlock(kind) => {
                    let language = match kind {
                        CodeBlockKind::Fenced(language) if !language.is_empty() => Some(language.to_string()),
                        _ => None,
                    };
                    let mut node = json!({"type": "codeBlock", "content": []});
                    if let Some(language) = language {
                        node["attrs"] = json!({"language": language});
                    }
                    stack.push(Frame { node });
                }
                Tag::BlockQuote(_) => stack.push(Frame { node: json!({"type": "blockquote", "content": []}) }),
                Tag::Emphasis => marks.push(json!({"type": "em"})),
                Tag::Strong => marks.push(json!({"type": "strong"})),
                Tag::Strikethrough => marks.push(json!({"type": "strike"})),
                Tag::Link { dest_url, .. } => {
                    let href = if crate::render::safe_url(&dest_url) { dest_url.to_string() } else { "#".to_owned() };
                    marks.push(json!({"type": "link", "attrs": {"href": href}}));
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::List(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_) => {
                    let mut frame = stack.pop().expect("open frame");
                    // List items and quotes hold block nodes only.
                    if matches!(frame.node["type"].as_str(), Some("listItem" | "blockquote")) {
                        let content = frame.node["content"].as_array().cloned().unwrap_or_default();
                        frame.node["content"] = Value::Array(blocks(content));
                    }
                    let empty = frame.node["content"].as_array().is_some_and(Vec::is_empty);
                    if !(empty && frame.node["type"] == "paragraph") {
                        push_child(&mut stack, frame.node);
                    }
                }
                TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link => {
                    marks.pop();
                }
                _ => {}
            },
            Event::Text(content) | Event::Html(content) | Event::InlineHtml(content)
                if !content.is_empty() =>
            {
                push_child(&mut stack, text(&content, &marks));
            }
            Event::Code(content) if !content.is_empty() => {
                // ADF allows the code mark beside a link only.
                let mut code_marks: Vec<Value> = marks
                    .iter()
                    .filter(|mark| mark["type"] == "link")
                    .cloned()
                    .collect();
                code_marks.push(json!({"type": "code"}));
                push_child(&mut stack, text(&content, &code_marks));
            }
            Event::SoftBreak => push_child(&mut stack, text(" ", &marks)),
            Event::HardBreak => push_child(&mut stack, json!({"type": "hardBreak"})),
            Event::Rule => push_child(&mut stack, json!({"type": "rule"})),
            _ => {}
        }
    }
    let mut doc = stack.into_iter().next().expect("document frame").node;
    let content = doc["content"].as_array().cloned().unwrap_or_default();
    doc["content"] = Value::Array(blocks(content));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_renders_to_the_expected_document() {
        let markdown = "## Similar Tickets\n- **SUP-977**: [fix](https://kb.example.com/a) <script>x</script>\n\n1. Run `gpupdate`\n\n---\n";
        let expected = json!({"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Similar Tickets"}]},
            {"type": "bulletList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "SUP-977", "marks": [{"type": "strong"}]},
                {"type": "text", "text": ": "},
                {"type": "text", "text": "fix", "marks": [{"type": "link", "attrs": {"href": "https://kb.example.com/a"}}]},
                {"type": "text", "text": " "},
                {"type": "text", "text": "<script>"},
                {"type": "text", "text": "x"},
                {"type": "text", "text": "</script>"}
            ]}]}]},
            {"type": "orderedList", "attrs": {"order": 1}, "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "Run "},
                {"type": "text", "text": "gpupdate", "marks": [{"type": "code"}]}
            ]}]}]},
            {"type": "rule"}
        ]});
        assert_eq!(adf(markdown), expected);
    }

    /// Every text node sits in a paragraph or heading, and no paragraph
    /// holds a block: what ADF's schema requires of a comment.
    fn assert_valid(node: &Value, parent: &str) {
        let kind = node["type"].as_str().unwrap();
        if kind == "text" {
            assert!(
                matches!(parent, "paragraph" | "heading" | "codeBlock"),
                "text in {parent}"
            );
            assert!(!node["text"].as_str().unwrap().is_empty(), "empty text");
            let marks: Vec<&str> = node["marks"]
                .as_array()
                .map(|marks| marks.iter().map(|m| m["type"].as_str().unwrap()).collect())
                .unwrap_or_default();
            if marks.contains(&"code") {
                assert!(
                    marks.iter().all(|m| matches!(*m, "code" | "link")),
                    "{marks:?}"
                );
            }
        }
        if kind == "paragraph" {
            for child in node["content"].as_array().unwrap() {
                assert!(
                    matches!(child["type"].as_str(), Some("text" | "hardBreak")),
                    "a paragraph holding {child}"
                );
            }
        }
        if let Some(children) = node["content"].as_array() {
            for child in children {
                assert_valid(child, kind);
            }
        }
    }

    #[test]
    fn nested_lists_code_and_html_blocks_make_a_valid_document() {
        let markdown = [
            "## Recommended Next Steps",
            "1. Check the **`spooler`** service",
            "   - run `sc query spooler`",
            "   - then restart it",
            "2. Look at the logs:",
            "   ```",
            "   Get-EventLog System",
            "   ```",
            "",
            "<div>an HTML block</div>",
            "",
            "> quoted *text*",
            "> - and a list",
        ]
        .join("\n");
        let doc = adf(&markdown);
        assert_valid(&doc, "");
        let steps = &doc["content"][1];
        assert_eq!(steps["type"], "orderedList");
        let first = &steps["content"][0]["content"];
        assert_eq!(first[0]["type"], "paragraph");
        assert_eq!(first[1]["type"], "bulletList");
    }

    #[test]
    fn unsafe_links_lose_their_target() {
        let doc = adf("[x](javascript:alert(1))");
        assert_eq!(
            doc["content"][0]["content"][0]["marks"][0]["attrs"]["href"],
            "#"
        );
    }
}
