//! Wall-clock timestamps as Unix milliseconds: compact on the wire and in SQLite.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds as a short human form: `850ms`, `42s`, `3m07s`, `2h05m`, `3d04h`.
pub fn format_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms}ms"),
        1..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Parses a duration as people type it, `30m`, `2h`, `7d` or `1h30m` (units `s`, `m`, `h`, `d`,
/// `w`), into milliseconds; the error says what was wrong with the text.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("`{text}` is not a duration ({why}); write e.g. 30m, 2h, 7d");
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("a number must come before each unit"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        let mut chars = rest[digits..].chars();
        let unit_ms: u64 = match chars.next() {
            Some('s') => 1000,
            Some('m') => 60_000,
            Some('h') => 3_600_000,
            Some('d') => 86_400_000,
            Some('w') => 604_800_000,
            Some(_) => return Err(bad("units are s, m, h, d and w")),
            None => return Err(bad("the number needs a unit")),
        };
        total = number
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| bad("it is too long"))?;
        rest = chars.as_str();
    }
    Ok(total)
}

/// The UTC calendar day of a Unix-ms timestamp, `YYYY-MM-DD`: how usage is totalled per day.
pub fn utc_date(ms: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The UTC time of day of a Unix-ms timestamp, `HH:MM:SS UTC`: for events a user matches
/// against their own logs, where the zone must be explicit.
pub fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::{format_duration_ms, parse_duration_ms, utc_date, utc_time};

    #[test]
    fn durations_parse_as_typed() {
        assert_eq!(parse_duration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        for bad in ["", "30", "m", "3x", "-1h", "1.5h", "99999999999999999999d"] {
            let err = parse_duration_ms(bad).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc_time(0), "00:00:00 UTC");
        assert_eq!(utc_time(50_531_999), "14:02:11 UTC");
        assert_eq!(utc_time(-1000), "23:59:59 UTC");
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(1_795_305_599_999), "2026-11-21");
        assert_eq!(utc_date(1_795_305_600_000), "2026-11-22");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration_ms(850), "850ms");
        assert_eq!(format_duration_ms(42_000), "42s");
        assert_eq!(format_duration_ms(187_000), "3m07s");
        assert_eq!(format_duration_ms(7_500_000), "2h05m");
        assert_eq!(format_duration_ms(273_600_000), "3d04h");
    }
}
