//! `Retry-After` as far ends send it (RFC 9110 §10.2.3): a number of
//! seconds, or an HTTP date — which Microsoft's and Atlassian's gateways,
//! among others, send. One parser for every outbound client, so a date is
//! not read as "no wish" by one of them and honoured by another.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How long the far end asked us to wait, if it asked in a form we read.
/// A date already past asks for no wait at all.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse(value, SystemTime::now())
}

fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1994-11-06 08:49:37 UTC, the RFC's own example date.
    fn rfc_example() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn seconds_are_read_as_seconds() {
        assert_eq!(parse("120", rfc_example()), Some(Duration::from_secs(120)));
        assert_eq!(parse("0", rfc_example()), Some(Duration::ZERO));
    }

    #[test]
    fn a_date_in_any_of_the_three_forms_is_the_time_until_it() {
        let two_minutes_before = rfc_example() - Duration::from_secs(120);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse(form, two_minutes_before),
                Some(Duration::from_secs(120)),
                "{form}"
            );
        }
    }

    #[test]
    fn a_date_already_past_asks_for_no_wait() {
        let later = rfc_example() + Duration::from_secs(3600);
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_no_wish() {
        for value in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994"] {
            assert_eq!(parse(value, rfc_example()), None, "{value:?}");
        }
    }

    #[test]
    fn the_header_is_read_from_a_response() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, " 7 ".parse().expect("a header value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
