//! How numbers read in reports, logs and dashboards: durations, sizes, percentages, counts.

/// `42 s`, `12.5 min`, `3.1 h`.
pub fn seconds(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// How long ago: `12 s ago`, `3 min ago`, `2.5 h ago`, `4 days ago`.
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s < 90 => format!("{s} s ago"),
        s if s < 5400 => format!("{} min ago", s / 60),
        s if s < 3 * 86_400 => format!("{:.1} h ago", s as f64 / 3600.0),
        s => format!("{} days ago", s / 86_400),
    }
}

/// Binary units: `512 B`, `1.5 KiB`, `12.0 MiB`, `1.25 GiB`.
pub fn bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// A fraction as a percentage with one decimal: `0.9567` → `95.7%`.
pub fn percent1(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A threshold as a percentage, without decimals when it is whole: `0.7` → `70%`.
pub fn percent_bound(x: f64) -> String {
    let p = 100.0 * x;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(seconds(42.0), "42 s");
        assert_eq!(seconds(750.0), "12.5 min");
        assert_eq!(age(12), "12 s ago");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(percent1(0.9567), "95.7%");
        assert_eq!(percent_bound(0.7), "70%");
        assert_eq!(percent_bound(0.725), "72.5%");
    }
}
