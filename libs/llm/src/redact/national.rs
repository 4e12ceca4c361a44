//! The personal data of the countries whose tickets arrive in German,
//! French, Spanish and Dutch: bank accounts (IBAN), national identity
//! numbers, and street addresses. A number is masked only when its own
//! check digits hold (or, for a number without any, when the ticket names
//! it), so ticket, order and serial numbers of the same length survive.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// An IBAN, printed in groups of four or run together.
static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b").expect("regex")
});
/// A Spanish DNI (8 digits and a letter) or NIE (X/Y/Z, 7 digits, letter).
static DNI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([XYZ]|\d)(\d{7})[- ]?([A-Z])\b").expect("regex"));
/// A French social security number (NIR): sex, year, month, département
/// (2A/2B for Corsica), commune, order, key; spaced or not.
static NIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b([12])[ ]?(\d{2})[ ]?(\d{2})[ ]?(\d{2}|2A|2B)[ ]?(\d{3})[ ]?(\d{3})[ ]?(\d{2})\b",
    )
    .expect("regex")
});
/// A Belgian national register number: YY.MM.DD-XXX.CC.
static BELGIAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{2})\.?(\d{2})\.?(\d{2})[- ]?(\d{3})\.?(\d{2})\b").expect("regex")
});
/// Numbers without a check a ticket would catch by length alone, masked
/// when the ticket names them: the Dutch BSN (11-proof, named "BSN" or
/// "burgerservicenummer"), the German tax id ("Steuer-ID",
/// "Steueridentifikationsnummer", "IdNr") and identity card number
/// ("Personalausweis", "Ausweisnummer").
static NAMED_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(bsn|burgerservicenummer|sofinummer|steuer-?id|steuer-?identifikationsnummer|steueridentifikationsnummer|idnr|personalausweis(?:nummer)?|ausweisnummer)(\s*(?:nr\.?|nummer|number)?\s*(?:is|ist|=|:)?\s*)([A-Z0-9][A-Z0-9 ]{7,13}[A-Z0-9])\b",
    )
    .expect("regex")
});
/// A street address: a German or Dutch street name with its number
/// ("Hauptstraße 12a", "Kerkstraat 4"), a French one ("12 bis, rue de la
/// Paix"), a Spanish one ("C/ Alcalá 20", "Calle Mayor, 5"). Suffixes that
/// end everyday words of a ticket ("Arbeitsplatz 3", "1 route statique")
/// are left out.
static STREET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b[\p{L}][\p{L}-]*(?:straße|strasse|str\.|weg|gasse|allee|damm|laan|straat|gracht|plein|kade|singel|dreef|steeg)",
        r"\s+\d{1,4}\s?[a-z]?\b",
        r"|\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai)\s+[^,\n;.]{2,40}",
        r"|(?:\bcalle|\bavenida|\bavda\.|\bpaseo|\bplaza|\bcarrer|\bC/)\s*[^,\n;.]{2,40}?,?\s*(?:n[º°o]\.?\s*)?\d{1,4}\b",
    ))
    .expect("regex")
});

fn iban_valid(candidate: &str) -> bool {
    let compact: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(value) => value,
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn dni_valid(caps: &Captures) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let first = match caps[1].to_ascii_uppercase().as_str() {
        "X" => "0".to_owned(),
        "Y" => "1".to_owned(),
        "Z" => "2".to_owned(),
        digit => digit.to_owned(),
    };
    let Ok(number) = format!("{first}{}", &caps[2]).parse::<u32>() else {
        return false;
    };
    let expected = LETTERS[(number % 23) as usize] as char;
    caps[3].eq_ignore_ascii_case(&expected.to_string())
}

fn nir_valid(caps: &Captures) -> bool {
    let department = match caps[4].to_ascii_uppercase().as_str() {
        // Corsica's letters count as these numbers in the key.
        "2A" => "19".to_owned(),
        "2B" => "18".to_owned(),
        digits => digits.to_owned(),
    };
    let body = format!(
        "{}{}{}{department}{}{}",
        &caps[1], &caps[2], &caps[3], &caps[5], &caps[6]
    );
    let (Ok(body), Ok(key)) = (body.parse::<u64>(), caps[7].parse::<u64>()) else {
        return false;
    };
    // Months 20–42 and 50–99 stand for a birth month that is not known.
    let month: u32 = caps[3].parse().unwrap_or(0);
    matches!(month, 1..=12 | 20..=42 | 50..=99) && 97 - body % 97 == key
}

fn belgian_valid(caps: &Captures) -> bool {
    let body = format!("{}{}{}{}", &caps[1], &caps[2], &caps[3], &caps[4]);
    let (Ok(body), Ok(check)) = (body.parse::<u64>(), caps[5].parse::<u64>()) else {
        return false;
    };
    let month: u32 = caps[2].parse().unwrap_or(99);
    let day: u32 = caps[3].parse().unwrap_or(99);
    if month > 12 || day > 31 {
        return false;
    }
    // Born before 2000: 97 - body mod 97; from 2000 on, a 2 is put before.
    97 - body % 97 == check || 97 - (2_000_000_000 + body) % 97 == check
}

/// Masks the data above in `text`.
pub fn redact(text: &str) -> String {
    let text = IBAN.replace_all(text, |caps: &Captures| {
        if iban_valid(&caps[0]) {
            "[iban]".to_owned()
        } else {
            caps[0].to_owned()
        }
    });
    let text = NIR.replace_all(&text, |caps: &Captures| {
        if nir_valid(caps) {
            "[national id]".to_owned()
        } else {
            caps[0].to_owned()
        }
    });
    let text = BELGIAN.replace_all(&text, |caps: &Captures| {
        if belgian_valid(caps) {
            "[national id]".to_owned()
        } else {
            caps[0].to_owned()
        }
    });
    let text = DNI.replace_all(&text, |caps: &Captures| {
        if dni_valid(caps) {
            "[national id]".to_owned()
        } else {
            caps[0].to_owned()
        }
    });
    let text = NAMED_ID.replace_all(&text, |caps: &Captures| {
        // A number, not a word: "Personalausweis abgelaufen" stays.
        if caps[3].chars().filter(char::is_ascii_digit).count() >= 6 {
            format!("{}{}[national id]", &caps[1], &caps[2])
        } else {
            caps[0].to_owned()
        }
    });
    let text = STREET.replace_all(&text, "[address]");
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_countrys_personal_data_is_masked() {
        let cases = [
            // German
            (
                "Bitte die Erstattung auf DE89 3704 0044 0532 0130 00 überweisen",
                "Bitte die Erstattung auf [iban] überweisen",
            ),
            (
                "Neue Adresse: Hauptstraße 12a, 10115 Berlin",
                "Neue Adresse: [address], 10115 Berlin",
            ),
            (
                "Meine Steuer-ID: 12 345 678 901",
                "Meine Steuer-ID: [national id]",
            ),
            // French
            (
                "Mon RIB : FR14 2004 1010 0505 0001 3M02 606, merci",
                "Mon RIB : [iban], merci",
            ),
            (
                "numéro de sécu 1 85 05 78 006 084 91 pour la mutuelle",
                "numéro de sécu [national id] pour la mutuelle",
            ),
            (
                "livrer au 12 bis, rue de la Paix, 75002 Paris",
                "livrer au [address], 75002 Paris",
            ),
            // Spanish
            (
                "Mi DNI es 12345678Z y el NIE de mi compañero X1234567L",
                "Mi DNI es [national id] y el NIE de mi compañero [national id]",
            ),
            (
                "La cuenta ES91 2100 0418 4502 0005 1332 no recibe nóminas",
                "La cuenta [iban] no recibe nóminas",
            ),
            (
                "Oficina en C/ Alcalá 20, Madrid",
                "Oficina en [address], Madrid",
            ),
            // Dutch and Belgian
            (
                "Rekening NL91ABNA0417164300 staat niet in AFAS",
                "Rekening [iban] staat niet in AFAS",
            ),
            ("Mijn BSN is 111222333", "Mijn BSN is [national id]"),
            (
                "Rijksregisternummer 85.07.30-033.28 klopt niet",
                "Rijksregisternummer [national id] klopt niet",
            ),
            (
                "Verhuisd naar Kerkstraat 4, Utrecht",
                "Verhuisd naar [address], Utrecht",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn numbers_whose_check_digits_fail_survive() {
        for text in [
            // One digit changed in each: the checks fail.
            "DE89 3704 0044 0532 0130 01",
            "12345678A",
            "1 85 05 78 006 084 92",
            "85.07.30-033.29",
            // Everyday ticket text of the same shapes.
            "Auftrag 12345678 vom 03.04.2025, Arbeitsplatz 3 im 2. OG",
            "ajouter 1 route statique vers 10.0.0.0/8",
            "Ticket SUP-1042, Windows 10 22H2, port 8443",
            "Mein Personalausweis ist abgelaufen, BSN onbekend",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
