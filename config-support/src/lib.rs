//! Reading RON configs the one trajhost way, shared by the dataset, the host and the plugins:
//! the config is a serde type (with `#[serde(deny_unknown_fields)]`, and `default` where fields
//! are optional), and every error — syntax, type, unknown field, or a value the config's own
//! validation refuses — names the field and, when the config came from text, its line and
//! column: `configs/data.ron:9:5: invalid config field `frames`: must be at least 1, got 0`.

use serde::de::DeserializeOwned;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// The largest config file read: far beyond any real config, and a path to `/dev/zero` or a
/// FIFO is refused instead of read forever or waited on.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A config file's text: a regular file of at most [`MAX_CONFIG_BYTES`], opened without
/// blocking on a FIFO.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    read_bounded(path, MAX_CONFIG_BYTES)
}

/// A text file from someone else: a regular file of at most `max` bytes, opened without
/// blocking on a FIFO.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(invalid(format!(
            "{} bytes, more than the {max} such a file may have",
            meta.len()
        )));
    }
    let mut text = String::new();
    file.take(max).read_to_string(&mut text)?;
    Ok(text)
}

/// A config problem: `field` is a dotted path such as `augmentation.noise_level` (with an
/// optional list index, `classes[2]`), or `<syntax>` when no field could be named.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub source_name: String,
    pub field: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ConfigError {
    /// The error without its source: `[line:column: ]field `name`: message`, for messages
    /// that name the source their own way.
    pub fn at_field(&self) -> String {
        let place = match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{line}:{column}: "),
            _ => String::new(),
        };
        format!("{place}field `{}`: {}", self.field, self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(
            f,
            ": invalid config field `{}`: {}",
            self.field, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// A value the config's validation refuses, before it is placed in the text: see
/// [`Source::locate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// The error without a position, for configs built or changed in code.
    pub fn unplaced(self, source_name: &str) -> ConfigError {
        ConfigError {
            source_name: source_name.into(),
            field: self.field,
            line: None,
            column: None,
            message: self.message,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}

/// RON text and where it came from (a path, or a name such as `--backbone`).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub text: &'a str,
    pub name: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, name: &'a str) -> Self {
        Source { text, name }
    }

    /// Deserialises the text; a syntax, type or unknown-field error names the field nearest
    /// before the error's position.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.parse_with(ron::Options::default())
    }

    /// [`Source::parse`] with RON's `implicit_some`: an `Option` field may be written without
    /// `Some(..)` (a backbone's knobs, all optional).
    pub fn parse_implicit_some<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.parse_with(
            ron::Options::default()
                .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME),
        )
    }

    fn parse_with<T: DeserializeOwned>(&self, options: ron::Options) -> Result<T, ConfigError> {
        options.from_str(self.text).map_err(|e| {
            let (line, column) = (e.position.line, e.position.col);
            ConfigError {
                source_name: self.name.into(),
                field: field_before(self.text, line, column).unwrap_or_else(|| "<syntax>".into()),
                line: Some(line),
                column: Some(column),
                message: e.code.to_string(),
            }
        })
    }

    /// Places a validation error at its field in the text (no position when the field is not
    /// written there, e.g. a default).
    pub fn locate(&self, invalid: Invalid) -> ConfigError {
        let (line, column) = locate(self.text, &invalid.field).unzip();
        ConfigError {
            line,
            column,
            ..invalid.unplaced(self.name)
        }
    }

    /// [`Source::parse`], then `check` (the config's validation), placing its error.
    pub fn parse_checked<T: DeserializeOwned>(
        &self,
        check: impl FnOnce(&T) -> Result<(), Invalid>,
    ) -> Result<T, ConfigError> {
        let config = self.parse()?;
        check(&config).map_err(|invalid| self.locate(invalid))?;
        Ok(config)
    }
}

/// Finds `path` (dotted, with an optional `[i]` list index) in RON text; 1-based line/column.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        offset = find_field(text, name, offset)?;
        if let Some(i) = index {
            // Point at the i-th string literal of the list.
            let list = offset + text[offset..].find('[')?;
            let mut pos = list;
            for _ in 0..=i {
                pos += 1 + text[pos + 1..].find('"')?;
                let close = pos + 1 + text[pos + 1..].find('"')?;
                if close > pos && text[list..close].contains(']') {
                    return None;
                }
                offset = pos;
                pos = close;
            }
        }
    }
    Some(line_col(text, offset))
}

/// Byte offset of `name` used as a field (`name:`), outside `//` comments, at or after `from`.
fn find_field(text: &str, name: &str, from: usize) -> Option<usize> {
    let mut start = from;
    while let Some(rel) = text[start..].find(name) {
        let at = start + rel;
        start = at + name.len();
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after_ok = text[start..].trim_start().starts_with(':');
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let in_comment = text[line_start..at].contains("//");
        if before_ok && after_ok && !in_comment {
            return Some(at);
        }
    }
    None
}

/// The nearest `name:` at or before a 1-based (line, column): names the field of a parse error.
fn field_before(text: &str, line: usize, column: usize) -> Option<String> {
    let offset = offset_of(text, line, column)?;
    let head = &text[..offset];
    let mut best: Option<&str> = None;
    for l in head.lines() {
        let code = l.split("//").next().unwrap_or("");
        for part in code.split([',', '(', '[']) {
            if let Some((name, _)) = part.split_once(':') {
                let name = name.trim();
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    best = Some(name);
                }
            }
        }
    }
    best.map(str::to_string)
}

fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return Some((offset + column.saturating_sub(1)).min(text.len()));
        }
        offset += l.len();
    }
    Some(text.len())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let head = &text[..offset];
    let line = head.matches('\n').count() + 1;
    let column = offset - head.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        width: i64,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        depth: i64,
    }

    const TEXT: &str = "// a probe\n(\n    width: 4,\n    inner: (depth: 2),\n)\n";

    #[test]
    fn unknown_and_mistyped_fields_are_named_with_their_position() {
        let text = TEXT.replace("width", "wdith");
        let e = Source::new(&text, "p.ron").parse::<Probe>().unwrap_err();
        assert!(e.message.contains("wdith"), "{e}");
        assert_eq!(e.line, Some(3));
        let text = TEXT.replace("depth: 2", "depth: \"deep\"");
        let e = Source::new(&text, "p.ron").parse::<Probe>().unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("depth", Some(4)));
        assert!(e.to_string().starts_with("p.ron:4:"), "{e}");
    }

    #[test]
    fn validation_errors_are_placed_at_their_field() {
        let check = |p: &Probe| {
            if p.inner.depth > 1 && p.width > 0 {
                Err(Invalid::new("inner.depth", "must be at most 1, got 2"))
            } else {
                Ok(())
            }
        };
        let e = Source::new(TEXT, "p.ron")
            .parse_checked::<Probe>(check)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.ron:4:13: invalid config field `inner.depth`: must be at most 1, got 2"
        );
        let placed = Source::new("()", "p.ron").locate(Invalid::new("width", "x"));
        assert_eq!((placed.line, placed.column), (None, None));
    }

    #[test]
    fn list_entries_and_commented_names_are_told_apart() {
        let text = "(\n  // classes: [\"no\"]\n  classes: [\"a\", \"b\"],\n)";
        assert_eq!(locate(text, "classes"), Some((3, 3)));
        assert_eq!(locate(text, "classes[1]"), Some((3, 18)));
        assert_eq!(locate(text, "classes[2]"), None);
    }
}
