//! Masks personal data and secrets in ticket text before it leaves for an
//! LLM: e-mail addresses, phone numbers (national and international forms
//! of the countries whose languages tickets arrive in), passwords, API keys
//! and tokens, payment card numbers (checked with the Luhn sum, so ticket
//! numbers and serials survive), and — in [`national`] — IBANs, national
//! identity numbers and street addresses.

mod national;

use std::sync::LazyLock;

use regex::{Captures, Regex};

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").expect("regex"));
static SECRET_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    // The words for a password in the five languages tickets arrive in
    // (Passwort, Kennwort, mot de passe, contraseña, wachtwoord, …) and
    // their "is".
    Regex::new(concat!(
        r#"(?i)\b(password|passwd|pwd|passcode|pin|secret|token|api[_ -]?key|access[_ -]?key|client[_ -]?secret"#,
        r#"|passwort|kennwort|mot de passe|mdp|contraseña|clave|wachtwoord)"#,
        r#"(\s*(?:(?:ist|lautet|war|était|est|era|es|is|was)\b|=|:)\s*)("[^"]+"|'[^']+'|\S+)"#
    ))
        .expect("regex")
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer|basic)\s+[a-z0-9._~+/=-]{12,}").expect("regex"));
static KEY_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:sk-[A-Za-z0-9_-]{16,}|ghp_[A-Za-z0-9]{20,}|xox[abp]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})\b")
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

/// The text with every recognised secret or personal datum replaced by a
/// label such as `[email]`.
pub fn redact(text: &str) -> String {
    // First: an IBAN or a national id would otherwise read as a phone number.
    let text = national::redact(text);
    let text = SECRET_ASSIGNMENT.replace_all(&text, |caps: &Captures| {
        format!("{}{}[redacted]", &caps[1], &caps[2])
    });
    let text = BEARER.replace_all(&text, |caps: &Captures| format!("{} [token]", &caps[1]));
    let text = KEY_LIKE.replace_all(&text, "[token]");
    let text = EMAIL.replace_all(&text, "[email]");
    let text = CARD.replace_all(&text, |caps: &Captures| {
        if luhn_valid(&caps[0]) {
            "[card number]".to_owned()
        } else {
            caps[0].to_owned()
        }
    });
    let text = PHONE.replace_all(&text, |caps: &Captures| {
        let digits = caps[0].chars().filter(char::is_ascii_digit).count();
        // Dates, versions and addresses have dots or few digits; phone numbers
        // have at least seven digits.
        let phone = digits >= 7 && !caps[0].contains('.') && !DATE.is_match(caps[0].trim());
        if phone {
            "[phone]".to_owned()
        } else {
            caps[0].to_owned()
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
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
