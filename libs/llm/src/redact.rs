//! Masks personal data and secrets in ticket text before it leaves for an
//! LLM: e-mail addresses, phone numbers (national and international forms
//! of the countries whose languages tickets arrive in), passwords, API keys
//! and tokens, payment card numbers (checked with the Luhn sum, so ticket
//! numbers and serials survive), and — in [`national`] — IBANs, national
//! identity numbers and street addresses.

mod national;

use std::sync::LazyLock;

use regex::{Captures, Regex};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // Addresses with letters beyond ASCII too (jürgen.müller@bäckerei.de).
    Regex::new(r"(?i)[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}\b")
        .expect("regex")
});
static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    // The words for a password in the five languages tickets arrive in
    // (Passwort, Kennwort, mot de passe, contraseña, wachtwoord, …; the
    // German and Dutch ones ending compounds too: Initialpasswort,
    // Standardkennwort, beheerderswachtwoord), then
    // their "is" (and a colon after it: "is: Hunter2"), a colon or an
    // equals sign. The short forms (pw, pass) only before ":" or "=":
    // "my pass is expired" is no secret.
    Regex::new(concat!(
        r#"(?i)\b(?:(password|passwd|passphrase|pwd|passcode|pin|secret|token|api[_ -]?key|access[_ -]?key|client[_ -]?secret"#,
        r#"|account[_ -]?key|shared[_ -]?access[_ -]?key|\p{L}*passwort|\p{L}*kennwort|mot de passe|mdp|contraseña|clave|\p{L}*wachtwoord)"#,
        r#"(\s*(?:(?:ist|lautet|war|était|est|era|es|is|was)\b\s*[:=]?|=|:)\s*)"#,
        r#"|(pw|pass|psw|pword)(\s*[:=]\s*))"#,
        r#"("[^"]+"|'[^']+'|\S+)"#
    ))
        .expect("regex")
});
/// Where a connection string's next setting begins (`;EndpointSuffix=`).
static NEXT_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r";[A-Za-z][A-Za-z ]*=").expect("regex"));
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer|basic)\s+[a-z0-9._~+/=-]{12,}").expect("regex"));
static KEY_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:sk-[A-Za-z0-9_-]{16,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|gh[opsu]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}",
        r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}",
        r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})\b"
    ))
    .expect("regex")
});
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)")
        .expect("regex")
});
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("regex"));
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}$|^\d{1,2}[-/]\d{1,2}[-/]\d{2,4}$").expect("regex")
});
/// A phone number: an optional country code (`+49`, `0049`), an optional
/// area code in brackets (`(0)30`, `(030)`), then groups split by spaces,
/// (after a country code the first may be one digit: `+33 1 23 45 67 89`)
/// dots, dashes or a slash (`030/1234567`, `06-12345678`,
/// `06 12 34 56 78`, `+34 612 345 678`).
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:(?:\+|\b00)\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}|(?:\(\d{1,4}\)[\s.-]?)?\d{2,4})",
        r"(?:[\s./-]\d{2,8}){1,4}\b"
    ))
        .expect("regex")
});

fn luhn_valid(digits: &str) -> bool {
    let digits: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(idx, digit)| {
            if idx % 2 == 1 {
                let d = digit * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                *digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The longest leading run of 13–19 of the digits in `number` (spaces
/// and dashes kept) that passes the Luhn sum: a card number followed by
/// its expiry or a code ("4111 1111 1111 1111 09/27") still masks.
fn card_prefix(number: &str) -> Option<usize> {
    if luhn_valid(number) {
        return Some(number.len());
    }
    // A shorter run only where a group ends (a space or dash follows): a
    // long id written in one piece is not a card number and its expiry.
    let mut ends = Vec::new();
    let mut digits = 0;
    for (at, c) in number.char_indices() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if (13..=19).contains(&digits) {
            ends.push(at);
        }
    }
    ends.into_iter()
        .rev()
        .find(|&end| luhn_valid(&number[..end]))
}

/// Whether a number with dots is a phone number: at least nine digits,
/// beginning with a trunk 0 or a +, in dotted groups of two to four
/// ("06.12.34.56.78", "0471.12.34.56") — not an address, a version or a
/// date.
fn dotted_phone(number: &str) -> bool {
    let number = number.trim();
    let digits = number.chars().filter(char::is_ascii_digit).count();
    // "01.02.24 14.30" is a date and a time, not one number.
    digits >= 9
        && !number.contains(char::is_whitespace)
        && (number.starts_with('0') || number.starts_with('+'))
        && number
            .split('.')
            .all(|group| (2..=4).contains(&group.chars().filter(char::is_ascii_digit).count()))
}

/// The text with every recognised secret or personal datum replaced by a
/// label such as `[email]`.
pub fn redact(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    // Composed first: a keyword typed as `n` and a combining tilde (some
    // mail clients and macOS send text so) is `ñ` to every pattern.
    let text: String = text.nfc().collect();
    // Then: an IBAN or a national id would otherwise read as a phone number.
    let text = national::redact(&text);
    let text = PRIVATE_KEY.replace_all(&text, "[private key]");
    let text = SECRET_ASSIGNMENT.replace_all(&text, |caps: &Captures| {
        let value = &caps[5];
        let (word, between) = match (caps.get(1), caps.get(3)) {
            (Some(word), _) => (word.as_str(), &caps[2]),
            // "PASS: 41" is a test count; a password has four characters
            // at least.
            (None, Some(_)) if value.chars().count() < 4 => return caps[0].to_owned(),
            (None, Some(word)) => (word.as_str(), &caps[4]),
            (None, None) => ("", ""),
        };
        // The whole value goes, commas and semicolons in it too — except
        // where a connection string's next `Key=` begins.
        let rest = NEXT_KEY
            .find(value)
            .map_or("", |next| &value[next.start()..]);
        format!("{word}{between}[redacted]{rest}")
    });
    let text = BEARER.replace_all(&text, |caps: &Captures| format!("{} [token]", &caps[1]));
    let text = KEY_LIKE.replace_all(&text, "[token]");
    let text = EMAIL.replace_all(&text, "[email]");
    let text = CARD.replace_all(&text, |caps: &Captures| match card_prefix(&caps[0]) {
        Some(end) => format!("[card number]{}", &caps[0][end..]),
        None => caps[0].to_owned(),
    });
    let text = PHONE.replace_all(&text, |caps: &Captures| {
        let number = &caps[0];
        let digits = number.chars().filter(char::is_ascii_digit).count();
        // Dates, versions and addresses have dots or few digits; phone numbers
        // have at least seven digits, and dots only in a phone's groups.
        let phone = digits >= 7
            && (!number.contains('.') || dotted_phone(number))
            && !DATE.is_match(number.trim());
        if phone {
            "[phone]".to_owned()
        } else {
            number.to_owned()
        }
    });
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_and_secrets_are_masked() {
        let cases = [
            (
                "mail jane.doe@acme.example about it",
                "mail [email] about it",
            ),
            ("my password is Hunter2!", "my password is [redacted]"),
            ("pwd: 'correct horse'", "pwd: [redacted]"),
            ("api_key=AbC123xyz987", "api_key=[redacted]"),
            (
                "header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload-part.signature1",
                "header Authorization: Bearer [token]",
            ),
            (
                "key sk-proj-abcdefghijklmnop1234 leaked",
                "key [token] leaked",
            ),
            (
                "card 4111 1111 1111 1111 was charged",
                "card [card number] was charged",
            ),
            ("call +49 30 1234 5678 today", "call [phone] today"),
            ("call (030) 123-4567", "call [phone]"),
            (
                "Rückruf unter 030/1234567 bitte",
                "Rückruf unter [phone] bitte",
            ),
            ("Tel. 0049 89 12345678", "Tel. [phone]"),
            (
                "erreichbar unter +49 (0)30 1234567",
                "erreichbar unter [phone]",
            ),
            ("rappelez-moi au 06 12 34 56 78", "rappelez-moi au [phone]"),
            ("appelez le +33 1 23 45 67 89", "appelez le [phone]"),
            ("llamadme al +34 612 345 678", "llamadme al [phone]"),
            ("bel me op 06-12345678", "bel me op [phone]"),
            ("bel +31 20 123 4567", "bel [phone]"),
            (
                "Mein Passwort ist Sommer2026! und mein BSN is 111222333",
                "Mein Passwort ist [redacted] und mein BSN is [national id]",
            ),
            ("my password is: Hunter2!", "my password is: [redacted]"),
            (
                "Das Passwort lautet: Sommer2026!",
                "Das Passwort lautet: [redacted]",
            ),
            (
                "Das Initialpasswort ist Sommer2026!",
                "Das Initialpasswort ist [redacted]",
            ),
            ("Standardkennwort: Geheim99", "Standardkennwort: [redacted]"),
            (
                "Het beheerderswachtwoord is Zomer2026",
                "Het beheerderswachtwoord is [redacted]",
            ),
            (
                "mi contrasen\u{303}a es Secreta99",
                "mi contraseña es [redacted]",
            ),
            (
                "mot de passe est : Azerty123",
                "mot de passe est : [redacted]",
            ),
            ("PW: Sommer2026 bitte", "PW: [redacted] bitte"),
            ("password=p@ss;w0rd here", "password=[redacted] here"),
            ("PW: Sommer,2026! bitte", "PW: [redacted] bitte"),
            (
                "Server=db1;Password=Xy;12;Database=crm",
                "Server=db1;Password=[redacted];Database=crm",
            ),
            (
                "login admin / pass=Geheim99",
                "login admin / pass=[redacted]",
            ),
            (
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=q1w2e3r4t5y6u7i8o9p0==;EndpointSuffix=core.windows.net",
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=[redacted];EndpointSuffix=core.windows.net",
            ),
            (
                "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc in the log",
                "stripe [token] in the log",
            ),
            (
                "my PAT github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "my PAT [token]",
            ),
            (
                "maps key AIzaSyA1234567890abcdefghijklmnopqrstuv here",
                "maps key [token] here",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY----- attached",
                "[private key] attached",
            ),
            (
                "Karte 4111 1111 1111 1111 09/27 abgelehnt",
                "Karte [card number] 09/27 abgelehnt",
            ),
            (
                "rappelez-moi au 06.12.34.56.78 svp",
                "rappelez-moi au [phone] svp",
            ),
            (
                "schreib an jürgen.müller@bäckerei-müller.de",
                "schreib an [email]",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn ordinary_ticket_text_survives() {
        for text in [
            "Ticket SUP-1042 since 2026-11-25 on 10.20.1.31, Windows 10 22H2, port 8443",
            "Serial 1234567890123 is not a card (Luhn fails)",
            "Outlook 16.0.17928.20114 crashes at 09:30",
            "seit dem 03/04/2025 bzw. 2025/04/03, Route 10.0.0.0/8",
            "Citrix 23.9.1.104 on 192.168.100.200, build 10.0.19045.2965, am 01.02.2024",
            "my boarding pass is expired, the passport too",
            "PASS: 41 FAIL: 2 in the nightly run",
            "Event id 1732540812345678901 in the log",
            "am 01.02.24 14.30 Uhr und 05.11.24 09.15 uur",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
