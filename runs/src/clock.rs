//! Wall-clock helpers for the text a run writes: Unix seconds and `YYYY-MM-DD HH:MM:SS` UTC,
//! both ways, without a date crate (Howard Hinnant's civil-date algorithms).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc_timestamp(unix: u64) -> String {
    let (days, rest) = (unix / 86_400, unix % 86_400);
    // Civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC; an optional trailing ` UTC` is ignored) to Unix seconds:
/// the inverse of [`utc_timestamp`].
pub fn parse_utc_timestamp(text: &str) -> Option<u64> {
    let text = text.trim().trim_end_matches("UTC").trim();
    let (date, time) = text.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_are_civil_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(utc_timestamp(1_795_700_000), "2026-11-26 13:33:20");
    }

    #[test]
    fn timestamps_round_trip() {
        for t in [0, 951_782_400, 1_795_700_000, 4_102_444_799] {
            assert_eq!(parse_utc_timestamp(&utc_timestamp(t)), Some(t));
        }
        assert_eq!(
            parse_utc_timestamp("2026-11-26 13:33:20 UTC"),
            Some(1_795_700_000)
        );
        assert_eq!(parse_utc_timestamp("yesterday"), None);
    }
}
