//! Durations as scenario files write them: `500ms`, `10s`, `1m30s`, `1.5h`.

use std::time::Duration;

/// Parses a duration: one or more `NUMBER UNIT` groups, units `ns us ms s m h`
/// (`µs` too). The number may have a fraction (`1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration (write e.g. `10s`, `500ms`, `2m`)".into());
    }
    let b = t.as_bytes();
    let mut i = 0;
    let mut total: f64 = 0.0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "bad duration `{s}`: expected a number at `{}`",
                &t[i..]
            ));
        }
        let num: f64 = t[start..i]
            .parse()
            .map_err(|_| format!("bad duration `{s}`: `{}` is not a number", &t[start..i]))?;
        let ustart = i;
        while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let unit = t[ustart..i].trim();
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "bad duration `{s}`: missing unit after `{num}` (ns, us, ms, s, m, h)"
                ))
            }
            u => {
                return Err(format!(
                    "bad duration `{s}`: unknown unit `{u}` (ns, us, ms, s, m, h)"
                ))
            }
        };
        total += num * scale;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("bad duration `{s}`: too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration for messages: `0.41s`, `500ms`, `2m`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 && s.fract() == 0.0 && (s as u64) % 60 == 0 {
        format!("{}m", s as u64 / 60)
    } else if s >= 1.0 || s == 0.0 {
        let t = format!("{s:.2}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        format!("{t}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        assert_eq!(parse_duration("3us"), Ok(Duration::from_micros(3)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        for bad in ["", "10", "s", "10 parsecs", "1.2.3s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_duration(Duration::from_millis(410)), "410ms");
        assert_eq!(fmt_duration(Duration::from_millis(1410)), "1.41s");
        assert_eq!(fmt_duration(Duration::from_secs(10)), "10s");
        assert_eq!(fmt_duration(Duration::from_secs(120)), "2m");
    }
}
