//! Atlassian Document Format to plain text, for descriptions that Jira's
//! REST v3 webhooks send as documents rather than wiki-markup strings.

use serde_json::Value;

/// The text of an ADF document: blocks on their own lines, list items
/// prefixed with `- `, mentions and emoji by their text, links by URL.
/// Unknown node types contribute their children's text, so a new node type
/// never loses content.
pub fn to_text(document: &Value) -> String {
    let mut out = String::new();
    walk(document, &mut out, 0);
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

fn walk(node: &Value, out: &mut String, depth: usize) {
    // Deeply nested documents are cut off rather than overflow the stack.
    if depth > 64 {
        return;
    }
    let kind = node["type"].as_str().unwrap_or_default();
    match kind {
        "text" => out.push_str(node["text"].as_str().unwrap_or_default()),
        "hardBreak" => out.push('\n'),
        "mention" => out.push_str(node["attrs"]["text"].as_str().unwrap_or_default()),
        "emoji" => out.push_str(node["attrs"]["shortName"].as_str().unwrap_or_default()),
        "inlineCard" | "blockCard" => {
            out.push_str(node["attrs"]["url"].as_str().unwrap_or_default())
        }
        "listItem" => {
            out.push_str("- ");
            children(node, out, depth);
        }
        "paragraph" | "heading" | "codeBlock" | "blockquote" | "rule" | "panel" | "tableRow" => {
            children(node, out, depth);
            out.push('\n');
        }
        "tableCell" | "tableHeader" => {
            children(node, out, depth);
            out.push(' ');
        }
        _ => children(node, out, depth),
    }
}

fn children(node: &Value, out: &mut String, depth: usize) {
    if let Some(content) = node["content"].as_array() {
        for child in content {
            walk(child, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paragraphs_lists_mentions_and_links_become_text() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "VPN drops for "},
                {"type": "mention", "attrs": {"id": "1", "text": "@Jane"}},
                {"type": "hardBreak"},
                {"type": "text", "text": "see "},
                {"type": "inlineCard", "attrs": {"url": "https://kb.example.com/1"}}
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "two"}]}]}
            ]},
            {"type": "futureNode", "content": [{"type": "text", "text": "kept"}]}
        ]});
        assert_eq!(
            to_text(&doc),
            "VPN drops for @Jane\nsee https://kb.example.com/1\n- one\n- two\nkept"
        );
    }
}
