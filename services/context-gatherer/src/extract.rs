//! Finds the hosts a ticket mentions: IPv4 addresses, IPv6 addresses in
//! every textual form (full, compressed, IPv4-mixed, with a zone, in
//! brackets with a port), fully qualified domain names and bare host names.
//!
//! Extraction is generous: every candidate is only looked up in the
//! tenant's inventory, so a word that merely looks like a host name costs a
//! lookup and matches nothing.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// What the ticket mentions, deduplicated, in order of appearance.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mentions {
    /// `(as written, parsed)`.
    pub addresses: Vec<(String, IpAddr)>,
    /// Lower-cased host names and FQDNs.
    pub hostnames: Vec<String>,
}

/// At most this many candidates of each kind are looked up.
pub const MAX_CANDIDATES: usize = 32;

/// Of the host-name candidates, this many are kept for bare names.
const RESERVED_FOR_BARE_NAMES: usize = 8;

/// A dotted quad, with a prefix length; what stands around it is checked
/// by [`stands_alone`] (a pattern that took the separators with it missed
/// the second of two addresses one separator apart).
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"((?:\d{1,3}\.){3}\d{1,3})(?:/\d{1,2})?").expect("regex"));

/// Words after which a dotted quad is a version, not an address.
const VERSION_WORDS: &[&str] = &["version", "ver", "v", "build", "release", "firmware", "fw"];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the dotted quad at `start..end` of `text` is one on its own: not
/// part of a longer token (`1.2.3.4.5`, `a1.2.3.4`), nor a version number
/// (`version 7.2.1.5`, `build 10.0.19045.3803`). A sentence's full stop
/// may follow it.
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    if before.is_some_and(|c| is_word(c) || c == '.') {
        return false;
    }
    let mut after = text[end..].chars();
    let alone_after = match after.next() {
        None => true,
        Some('.') => after.next().is_none_or(|c| !is_word(c)),
        Some(c) => !is_word(c),
    };
    let word_before = text[..start]
        .trim_end_matches([' ', ':', '#'])
        .rsplit(|c: char| !is_word(c) && c != '.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_lowercase();
    alone_after && !VERSION_WORDS.contains(&word_before.as_str())
}
static FQDN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)*\.[a-z][a-z0-9-]{0,61}[a-z0-9])\b")
        .expect("regex")
});
/// A bare host name: letters then digits (`pc0231`, `srv-db-01`,
/// `SRV_SQL01` — Windows names take underscores), or words joined by
/// hyphens or underscores (`file-server`).
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9_]*(?:-[a-z0-9_]+)*\d[a-z0-9_-]*|[a-z]+(?:[-_][a-z0-9]+)+)\b")
        .expect("regex")
});
/// A word in capitals, as users write the names of servers without a
/// digit (`FILESERVER`, `NAS`, `EXCHANGE`): looked up last.
static CAPITALS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Z]{3,15})\b").expect("regex"));

/// File extensions that make "name.ext" a file, not a host.
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "msi", "txt", "log", "pdf", "docx", "doc", "xlsx", "xls", "pptx", "csv", "zip",
    "png", "jpg", "jpeg", "gif", "ps1", "bat", "cmd", "sh", "ini", "cfg", "conf", "json", "xml",
    "yaml", "yml", "pst", "ost", "msg", "eml", "vbs", "js", "html", "htm", "sys", "tmp", "bak",
    "iso", "vhd", "vhdx",
];

pub fn mentions(text: &str) -> Mentions {
    let mut seen_addresses = BTreeSet::new();
    let mut addresses = Vec::new();
    let mut push_address = |written: &str, address: IpAddr| {
        if addresses.len() < MAX_CANDIDATES && seen_addresses.insert(address) {
            addresses.push((written.to_owned(), address));
        }
    };
    for capture in IPV4.captures_iter(text) {
        let whole = capture.get(0).expect("the match");
        if !stands_alone(text, whole.start(), whole.end()) {
            continue;
        }
        let written = &capture[1];
        if let Ok(address) = written.parse::<Ipv4Addr>() {
            push_address(written, IpAddr::V4(address));
        }
    }
    for token in text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '\'' | '<' | '>' | '=')
    }) {
        if let Some((written, address)) = ipv6_in(token) {
            push_address(written, IpAddr::V6(address));
        }
    }

    let fqdns: Vec<String> = FQDN
        .captures_iter(text)
        .map(|capture| capture[1].to_ascii_lowercase())
        .filter(|name| {
            let extension = name.rsplit('.').next().unwrap_or_default();
            let numeric = name
                .split('.')
                .all(|label| label.chars().all(|c| c.is_ascii_digit()));
            !numeric && !FILE_EXTENSIONS.contains(&extension)
        })
        .collect();
    // A bare name that is a label of a dotted one is that name's part.
    let labels: BTreeSet<&str> = fqdns.iter().flat_map(|name| name.split('.')).collect();
    let bare: Vec<String> = HOSTNAME
        .captures_iter(text)
        .map(|capture| capture[1].to_ascii_lowercase())
        .filter(|name| (3..=63).contains(&name.len()) && !labels.contains(name.as_str()))
        .collect();
    let capitals: Vec<String> = CAPITALS
        .captures_iter(text)
        .map(|capture| capture[1].to_ascii_lowercase())
        .collect();
    // Dotted names first, but never all of the candidates: a pasted stack
    // trace (`System.Net.Http.HttpRequestException`, `UserService.java`)
    // is full of them, and would leave `SRV-APP01` later in the ticket
    // unlooked-up.
    let mut seen_names = BTreeSet::new();
    let dotted: Vec<String> = fqdns
        .iter()
        .filter(|name| seen_names.insert((*name).clone()))
        .take(MAX_CANDIDATES - RESERVED_FOR_BARE_NAMES)
        .cloned()
        .collect();
    let room = MAX_CANDIDATES - dotted.len();
    let hostnames: Vec<String> = dotted
        .into_iter()
        .chain(
            bare.iter()
                .chain(capitals.iter())
                .filter(|name| seen_names.insert((*name).clone()))
                .take(room)
                .cloned(),
        )
        .collect();
    Mentions {
        addresses,
        hostnames,
    }
}

/// An IPv6 address in a token: plain, in brackets (with a port), with a
/// zone. Returns the address as written (without brackets and port).
fn ipv6_in(token: &str) -> Option<(&str, Ipv6Addr)> {
    if token.matches(':').count() < 2 {
        return None;
    }
    let token = token.trim_end_matches(['.', ':', '!', '?']);
    // In brackets, as in URLs and `[addr]:port`.
    let token = match token.find('[') {
        Some(start) => token[start + 1..].split(']').next()?,
        None => token,
    };
    let without_prefix = token.split('/').next()?;
    let address = without_prefix.split('%').next()?;
    address
        .parse::<Ipv6Addr>()
        .ok()
        .map(|parsed| (without_prefix, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(text: &str) -> Vec<String> {
        mentions(text)
            .addresses
            .into_iter()
            .map(|(_, address)| address.to_string())
            .collect()
    }

    #[test]
    fn ipv4_addresses_are_found_and_invalid_ones_ignored() {
        assert_eq!(
            addresses(
                "PC at 10.20.1.31, gateway 10.20.1.1. Not 999.1.1.1 or 1.2.3 or version 1.2.3.4.5"
            ),
            ["10.20.1.31", "10.20.1.1"]
        );
        assert_eq!(
            addresses("subnet 192.168.10.0/24 is down"),
            ["192.168.10.0"]
        );
        assert_eq!(addresses("10.0.0.5 and again 10.0.0.5"), ["10.0.0.5"]);
    }

    #[test]
    fn ipv6_addresses_are_found_in_every_textual_form() {
        let cases = [
            (
                "full 2001:0db8:0000:0000:0000:ff00:0042:8329 here",
                "2001:db8::ff00:42:8329",
            ),
            (
                "compressed 2001:db8::ff00:42:8329.",
                "2001:db8::ff00:42:8329",
            ),
            ("loopback ::1 pings", "::1"),
            ("mixed ::ffff:10.20.1.31 mapped", "::ffff:10.20.1.31"),
            (
                "zone fe80::1ff:fe23:4567:890a%eth0 link-local",
                "fe80::1ff:fe23:4567:890a",
            ),
            ("url http://[2001:db8::1]:8080/ fails", "2001:db8::1"),
            ("prefix 2001:db8:abcd::/48 routed", "2001:db8:abcd::"),
        ];
        for (text, expected) in cases {
            assert!(
                addresses(text).contains(&expected.to_owned()),
                "{text}: {:?}",
                addresses(text)
            );
        }
        assert!(addresses("time 10:30:00 and ratio 3:2:1").is_empty());
    }

    #[test]
    fn host_names_and_fqdns_are_found_but_files_are_not() {
        let found = mentions(
            "Cannot reach srv-db-01.corp.example.com or FILESERVER01 from PC-0231; outlook.exe crashes, see log.txt",
        )
        .hostnames;
        for expected in ["srv-db-01.corp.example.com", "fileserver01", "pc-0231"] {
            assert!(
                found.contains(&expected.to_owned()),
                "{expected} missing from {found:?}"
            );
        }
        assert!(
            !found
                .iter()
                .any(|name| name.ends_with(".exe") || name.ends_with(".txt")),
            "{found:?}"
        );
        assert!(
            !found.contains(&"srv-db-01".to_owned()),
            "the FQDN's first label is not a second host: {found:?}"
        );
    }

    #[test]
    fn windows_names_with_underscores_and_names_in_capitals_are_candidates() {
        let found =
            mentions("SRV_SQL01 is slow and \\\\srv_fs01.corp.local\\data too; FILESERVER is down")
                .hostnames;
        for expected in ["srv_sql01", "srv_fs01.corp.local", "fileserver"] {
            assert!(
                found.contains(&expected.to_owned()),
                "{expected} missing from {found:?}"
            );
        }
    }

    #[test]
    fn addresses_one_separator_apart_are_each_found_and_versions_are_none() {
        for text in [
            "10.1.1.5\n10.1.1.6\n10.1.1.7",
            "10.1.1.5 10.1.1.6 10.1.1.7",
            "10.1.1.5,10.1.1.6,10.1.1.7",
            "range 10.1.1.5-10.1.1.6, and 10.1.1.7.",
        ] {
            let found: Vec<String> = mentions(text)
                .addresses
                .iter()
                .map(|(written, _)| written.clone())
                .collect();
            assert_eq!(found, ["10.1.1.5", "10.1.1.6", "10.1.1.7"], "{text:?}");
        }
        for text in [
            "agent version 7.2.1.5 crashed",
            "Windows build 10.0.19045.3803",
            "firmware: 1.0.2.7",
            "1.2.3.4.5 is no address",
            "a1.2.3.4",
        ] {
            assert!(mentions(text).addresses.is_empty(), "{text:?}");
        }
        // A sentence may end after one.
        assert_eq!(mentions("The server is 10.0.0.9.").addresses.len(), 1);
        assert_eq!(mentions("reach 10.20.0.0/16 from here").addresses.len(), 1);
    }

    #[test]
    fn a_stack_trace_full_of_dotted_names_leaves_room_for_a_host_name() {
        let trace: String = (0..60)
            .map(|n| format!("at Com.Example.Svc{n}.UserService.login()\n"))
            .collect();
        let found = mentions(&format!("{trace}\nSRV-APP01 is down")).hostnames;
        assert!(found.len() <= MAX_CANDIDATES);
        assert!(found.contains(&"srv-app01".to_owned()), "{found:?}");
        // The labels of the dotted names are not bare names of their own.
        assert!(!found.contains(&"svc0".to_owned()), "{found:?}");
    }

    #[test]
    fn candidates_are_bounded() {
        let text: String = (0..100)
            .map(|n| format!("10.0.{}.{} ", n / 250, n % 250 + 1))
            .collect();
        assert_eq!(mentions(&text).addresses.len(), MAX_CANDIDATES);
    }
}
