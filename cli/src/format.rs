//! Human formatting (relative times, sizes, tables) and the parsers of argument values.

use std::time::Duration;

use oauth_state_store::Status;

/// `--status` values.
pub fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status; use one of {}", names.join(", "))
    })
}

/// `--limit`: a count of at least 1.
pub fn parse_limit(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1 (leave --limit out to list every flow)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("use a whole number from 1 to {}", u32::MAX)),
    }
}

const DURATION_HELP: &str = "use a number and a unit (ms, s, m, h, d, w), such as 30m, 1h30m or 2w";

/// A duration such as `500ms`, `90s`, `15m`, `2h`, `1d`, `2w` or `1h30m`; zero allowed.
fn parse_span(s: &str) -> Result<Duration, String> {
    let mut total_ms: u64 = 0;
    let mut digits = String::new();
    let mut chars = s.trim().chars().peekable();
    let mut parts = 0;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| DURATION_HELP.to_string())?;
        digits.clear();
        let unit_ms: u64 = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 604_800_000,
            _ => return Err(DURATION_HELP.into()),
        };
        parts += 1;
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|part| total_ms.checked_add(part))
            .ok_or("the duration is too large")?;
    }
    if !digits.is_empty() || parts == 0 {
        return Err(DURATION_HELP.into());
    }
    Ok(Duration::from_millis(total_ms))
}

/// `--older-than`: a positive duration (see [`parse_span`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_span(s)?;
    if d.is_zero() {
        return Err("must be positive, such as 30m".into());
    }
    Ok(d)
}

/// `--busy-timeout`: a duration, zero meaning "do not wait".
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_span(s)
}

/// "in 4m", "3m ago", "now".
pub fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = at_ms.saturating_sub(now_ms);
    if delta.unsigned_abs() < 1_000 {
        return "now".into();
    }
    let span = span(delta.unsigned_abs() / 1_000);
    if delta > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A length of time in whole seconds, in at most two units: "45s", "4m", "2h 5m", "3d 1h".
pub fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// "512 B", "96.0 KiB", "1.5 MiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Rows of cells as left-aligned columns, two spaces apart, without trailing blanks.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(
            parse_duration("1m500ms"),
            Ok(std::time::Duration::from_millis(60_500))
        );
        for bad in [
            "",
            "0m",
            "15",
            "m",
            "1x",
            "-5m",
            "99999999999999999999d",
            "5ms5",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_duration("0s").unwrap_err(),
            "must be positive, such as 30m"
        );
        assert_eq!(parse_timeout("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn limits_start_at_one() {
        assert_eq!(parse_limit("3"), Ok(3));
        assert!(parse_limit("0").unwrap_err().contains("at least 1"));
        assert!(parse_limit("-1").is_err());
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = 1_000_000_000;
        assert_eq!(relative(now + 4 * 60_000, now), "in 4m");
        assert_eq!(relative(now - 3 * 60_000 - 10_000, now), "3m ago");
        assert_eq!(relative(now + 500, now), "now");
        assert_eq!(relative(now + 3_600_000 + 5 * 60_000, now), "in 1h 5m");
        assert_eq!(relative(now - 86_400_000 * 2, now), "2d ago");
    }

    #[test]
    fn sizes_and_tables_are_human() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        let t = table(&[
            vec!["A".into(), "BB".into()],
            vec!["CCC".into(), "D".into()],
        ]);
        assert_eq!(t, "A    BB\nCCC  D\n");
    }
}
