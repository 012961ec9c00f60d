//! Small parsers for the value formats of the config file: durations (`1h30m`), clock times
//! (`07:45`), daily ranges (`06:30-17:00`), weekly slots (`Mon 07:00`), dates, e-mail
//! mailboxes, loopback hosts and relative paths.
//!
//! Each parser returns the problem as `what is wrong; how to fix it`, ready for a
//! [`super::Problem`], so the validator only adds file and key.

use super::{TimeRange, WeeklySlot};
use chrono::{NaiveDate, NaiveTime, Weekday};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parses `90s`, `15m`, `1h`, `1h30m`, `2h15m30s`: units `h`, `m`, `s`, largest first, each
/// at most once. A bare number is refused because `15` could mean seconds or minutes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "write it as a number with unit h, m or s, e.g. `15m`, `1h30m` or `90s`";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("the duration is empty; {hint}"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    // Rank of the last unit seen (h = 3, m = 2, s = 1): each next unit must be smaller.
    let mut last_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{s}` is not a duration; {hint}"));
        }
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return Err(format!("`{s}` has no unit; {hint}"));
        };
        let (rank, seconds_per_unit) = match unit {
            'h' => (3, 3600),
            'm' => (2, 60),
            's' => (1, 1),
            c if c.is_whitespace() => {
                return Err(format!(
                    "`{s}` contains a space; write it without spaces, e.g. `30s` or `1h30m`"
                ));
            }
            '.' | ',' => {
                return Err(format!(
                    "`{s}` has a decimal number; combine whole units instead, e.g. `1m30s` for 1.5 minutes"
                ));
            }
            _ => return Err(format!("`{s}` has an unknown unit `{unit}`; {hint}")),
        };
        if rank >= last_rank {
            return Err(format!(
                "`{s}` repeats a unit or lists a smaller one first; {hint}"
            ));
        }
        last_rank = rank;
        let value: u64 = number
            .parse()
            .map_err(|_| format!("`{s}` is too large; {hint}"))?;
        total = value
            .checked_mul(seconds_per_unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}` is too large; {hint}"))?;
        rest = &after[unit.len_utf8()..];
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way the config file writes it (`1h30m`), for messages.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Parses a clock time `HH:MM` (24-hour; `7:45` is accepted too).
pub fn parse_time(text: &str) -> Result<NaiveTime, String> {
    let s = text.trim();
    let bad = || format!("`{s}` is not a time of day; write it as HH:MM (24-hour), e.g. `07:45`");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || h.len() > 2 || !all_digits(m) || m.len() != 2 {
        return Err(bad());
    }
    let hour: u32 = h.parse().map_err(|_| bad())?;
    let minute: u32 = m.parse().map_err(|_| bad())?;
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// Parses a daily range `HH:MM-HH:MM`. The range may wrap past midnight (`20:00-06:30`); an
/// empty range (start = end) is refused. An en dash is accepted because word processors put
/// one there.
pub fn parse_time_range(text: &str) -> Result<TimeRange, String> {
    let s = text.trim();
    let Some((a, b)) = s.split_once('-').or_else(|| s.split_once('–')) else {
        return Err(format!(
            "`{s}` is not a time range; write it as HH:MM-HH:MM, e.g. `06:30-17:00`"
        ));
    };
    let start = parse_time(a)?;
    let end = parse_time(b)?;
    if start == end {
        return Err(format!(
            "`{s}` starts and ends at the same time; give a range such as `06:30-17:00`"
        ));
    }
    Ok(TimeRange { start, end })
}

/// Parses a weekday name: English or German, short or long, any case (`Mon`, `Mo`, `Monday`,
/// `Montag`).
pub fn parse_weekday(text: &str) -> Option<Weekday> {
    let w = text.trim().to_lowercase();
    let day = match w.as_str() {
        "mon" | "monday" | "mo" | "montag" => Weekday::Mon,
        "tue" | "tuesday" | "di" | "dienstag" => Weekday::Tue,
        "wed" | "wednesday" | "mi" | "mittwoch" => Weekday::Wed,
        "thu" | "thursday" | "do" | "donnerstag" => Weekday::Thu,
        "fri" | "friday" | "fr" | "freitag" => Weekday::Fri,
        "sat" | "saturday" | "sa" | "samstag" | "sonnabend" => Weekday::Sat,
        "sun" | "sunday" | "so" | "sonntag" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

/// Parses a weekly slot `Mon 07:00` (German weekday names such as `Mo 07:00` work too).
pub fn parse_weekly_slot(text: &str) -> Result<WeeklySlot, String> {
    let s = text.trim();
    let hint = "write it as weekday and time, e.g. `Mon 07:00` (Mon..Sun or Mo..So)";
    let mut parts = s.split_whitespace();
    let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("`{s}` is not a weekly slot; {hint}"));
    };
    let weekday = parse_weekday(day).ok_or_else(|| format!("`{day}` is not a weekday; {hint}"))?;
    let time = parse_time(time)?;
    Ok(WeeklySlot { weekday, time })
}

/// Parses an ISO date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let s = text.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        // chrono accepts 1- and 5-digit years and single-digit months; insist on the ISO form.
        .filter(|_| s.len() == 10)
        .ok_or_else(|| format!("`{s}` is not a date; write it as YYYY-MM-DD, e.g. `2025-10-13`"))
}

/// Checks an RFC 5322 mailbox: `user@domain` or `Name <user@domain>`.
pub fn check_mailbox(text: &str) -> Result<(), String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(
            "the address is empty; write it as `user@domain` or `Name <user@domain>`".into(),
        );
    }
    s.parse::<lettre::message::Mailbox>().map(|_| ()).map_err(|_| {
        format!(
            "`{s}` is not a valid e-mail address; write it as `user@domain` or `Name <user@domain>` (one address per entry)"
        )
    })
}

/// Whether `host` is a loopback host: `localhost`, an address in 127.0.0.0/8, or `::1`
/// (also in URL brackets `[::1]`). Only loopback hosts may be reached without TLS.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    let bare = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Resolves a path from the config file: relative paths are taken relative to the directory of
/// the config file, so a config and its secrets can be moved together.
pub fn resolve_path(config_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        config_dir.join(path)
    }
}

/// The directory relative paths in `config_file` are resolved against.
pub fn config_dir(config_file: &Path) -> PathBuf {
    match config_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("2h15m30s", 8130),
            (" 5m ", 300),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in [
            "",
            "15",
            "m",
            "15x",
            "1m1h",
            "1h1h",
            "1.5h",
            "-5m",
            "1 h",
            "99999999999999999999h",
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("; "), "{text}: {err}");
        }
    }

    #[test]
    fn durations_format_back() {
        for text in ["45s", "15m", "1h", "1h30m", "2h15m30s", "0s", "1m30s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("07:45"), Ok(t("07:45")));
        assert_eq!(parse_time("7:45"), Ok(t("07:45")));
        assert_eq!(parse_time("23:59"), Ok(t("23:59")));
        for bad in [
            "24:00", "07:60", "0745", "07:5", "7h45", "", "07:45:00", "+7:45", "007:45",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_ranges() {
        assert_eq!(
            parse_time_range("06:30-17:00"),
            Ok(TimeRange {
                start: t("06:30"),
                end: t("17:00")
            })
        );
        assert_eq!(
            parse_time_range("20:00 – 06:30"),
            Ok(TimeRange {
                start: t("20:00"),
                end: t("06:30")
            })
        );
        for bad in [
            "06:30",
            "06:30-",
            "-17:00",
            "06:30-06:30",
            "6-17",
            "06:30-25:00",
        ] {
            assert!(parse_time_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn weekly_slots() {
        for (text, day) in [
            ("Mon 07:00", Weekday::Mon),
            ("Mo 07:00", Weekday::Mon),
            ("montag 07:00", Weekday::Mon),
            ("Di 07:00", Weekday::Tue),
            ("So 07:00", Weekday::Sun),
            ("Sun 07:00", Weekday::Sun),
            ("Sa 07:00", Weekday::Sat),
            ("  Fri   16:30 ", Weekday::Fri),
        ] {
            assert_eq!(
                parse_weekly_slot(text).map(|s| s.weekday),
                Ok(day),
                "{text}"
            );
        }
        assert_eq!(parse_weekly_slot("Fri 16:30").unwrap().time, t("16:30"));
        for bad in ["Mon", "07:00", "Mon 7", "Xyz 07:00", "Mon 07:00 extra", ""] {
            assert!(parse_weekly_slot(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2025-10-13"),
            Ok(NaiveDate::from_ymd_opt(2025, 10, 13).unwrap())
        );
        for bad in [
            "2025-02-30",
            "13.10.2025",
            "2025-1-13",
            "25-10-13",
            "",
            "2025-10-13T00:00",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mailboxes() {
        for ok in [
            "sozialarbeit@schule.example",
            "Fehlzeiten-Frühwarnsystem <fehlzeiten@schule.example>",
            "\"Müller, Anna\" <a.mueller@schule.example>",
        ] {
            assert_eq!(check_mailbox(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "sozialarbeit",
            "a@b@c",
            "a@schule.example, b@schule.example",
            "Name <>",
        ] {
            assert!(check_mailbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "mail.schule.example",
            "10.0.0.1",
            "128.0.0.1",
            "::2",
            "localhost.example",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let dir = config_dir(Path::new("/etc/fehlzeiten/fehlzeiten.toml"));
        assert_eq!(dir, PathBuf::from("/etc/fehlzeiten"));
        assert_eq!(
            resolve_path(&dir, Path::new("smtp.secret")),
            PathBuf::from("/etc/fehlzeiten/smtp.secret")
        );
        assert_eq!(
            resolve_path(&dir, Path::new("/run/keys/smtp")),
            PathBuf::from("/run/keys/smtp")
        );
        assert_eq!(config_dir(Path::new("fehlzeiten.toml")), PathBuf::from("."));
    }
}
