//! What Jira's ADF schema refuses in a comment, as far as a note can
//! break it.

use serde_json::Value;

/// The parts of ADF's schema a note can break: text only inside
/// paragraphs, headings and code blocks, and never empty; paragraphs and
/// headings hold inline nodes only; lists hold list items; the code mark
/// beside a link mark only.
pub(super) fn valid_adf(node: &Value, parent: &str) -> bool {
    let kind = node["type"].as_str().unwrap_or_default();
    let content = node["content"].as_array();
    let children_ok = |allowed: &[&str]| {
        content.into_iter().flatten().all(|child| {
            allowed.contains(&child["type"].as_str().unwrap_or_default()) && valid_adf(child, kind)
        })
    };
    const INLINE: &[&str] = &["text", "hardBreak", "mention", "emoji"];
    const BLOCKS: &[&str] = &[
        "paragraph",
        "heading",
        "bulletList",
        "orderedList",
        "codeBlock",
        "blockquote",
        "rule",
    ];
    match kind {
        "doc" => children_ok(BLOCKS),
        "paragraph" | "heading" => children_ok(INLINE),
        "codeBlock" => children_ok(&["text"]),
        "bulletList" | "orderedList" => children_ok(&["listItem"]),
        "listItem" => children_ok(&["paragraph", "bulletList", "orderedList", "codeBlock"]),
        "blockquote" => children_ok(&["paragraph", "bulletList", "orderedList", "codeBlock"]),
        "text" => {
            let marks: Vec<&str> = node["marks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|mark| mark["type"].as_str())
                .collect();
            matches!(parent, "paragraph" | "heading" | "codeBlock")
                && node["text"].as_str().is_some_and(|text| !text.is_empty())
                && (!marks.contains(&"code") || marks.iter().all(|m| matches!(*m, "code" | "link")))
        }
        "hardBreak" | "rule" | "mention" | "emoji" => true,
        _ => false,
    }
}
