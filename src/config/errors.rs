//! Configuration errors that point at the file, line, column and key, and the small reading
//! of RON text that finds them: the key before a syntax error, the line of a key whose value
//! failed a check.

use std::fmt;
use std::path::PathBuf;

/// A configuration error, with where it is when it comes from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    pub(super) fn value(message: String) -> Self {
        ConfigError {
            file: None,
            line: 0,
            column: 0,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) if self.line > 0 => write!(
                f,
                "{}:{}:{}: {}",
                file.display(),
                self.line,
                self.column,
                self.message
            ),
            Some(file) => write!(f, "{}: {}", file.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn describe_ron_error(err: &ron::Error) -> String {
    match err {
        ron::Error::NoSuchStructField {
            expected,
            found,
            outer,
        } => format!(
            "unknown key `{found}`{}; expected one of: {}",
            outer
                .as_ref()
                .map(|o| format!(" in {o}"))
                .unwrap_or_default(),
            expected.join(", ")
        ),
        ron::Error::DuplicateStructField { field, .. } => format!("key `{field}` given twice"),
        other => other.to_string(),
    }
}

/// The last `key:` before a parse error's position: the key whose value is wrong.
pub(super) fn key_before(text: &str, line: usize, column: usize) -> Option<String> {
    let mut prefix = String::new();
    for (index, text_line) in text.lines().enumerate() {
        if index + 1 == line {
            prefix.extend(text_line.chars().take(column.saturating_sub(1)));
            break;
        }
        prefix.push_str(text_line);
        prefix.push('\n');
    }
    let code = blank_strings_and_comments(&prefix);
    let mut rest = code.as_str();
    // Colons inside strings and comments are blanked, so every colon left follows a key or
    // a map's string key (then look further back, to the map's own key).
    while let Some(colon) = rest.rfind(':') {
        let before = rest.get(..colon).unwrap_or_default().trim_end();
        // The key is the ASCII word before the colon; start after the last other character,
        // whatever its width.
        let start = before
            .char_indices()
            .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let key = before.get(start..).unwrap_or_default();
        if key.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Some(key.to_string());
        }
        rest = rest.get(..colon).unwrap_or_default();
    }
    None
}

/// `text` with the contents of string literals, `//` comments and (nested) `/* */` comments
/// replaced by spaces (quotes and line breaks kept), so punctuation inside them is not taken
/// for RON syntax.
fn blank_strings_and_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut in_comment) = (false, false, false);
    let mut block_depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if block_depth > 0 && !in_string {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block_depth -= 1;
                out.push_str("  ");
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                block_depth += 1;
                out.push_str("  ");
            } else {
                out.push(if c == '\n' { '\n' } else { ' ' });
            }
        } else if c == '\n' {
            in_comment = false;
            out.push(c);
        } else if in_comment {
            out.push(' ');
        } else if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            out.push(if in_string { ' ' } else { '"' });
        } else if c == '"' {
            in_string = true;
            out.push('"');
        } else if c == '/' && chars.peek() == Some(&'/') {
            in_comment = true;
            out.push(' ');
        } else if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            block_depth = 1;
            out.push_str("  ");
        } else {
            out.push(c);
        }
    }
    out
}

/// The line without a `//` comment; a `//` inside a string (a URL) is not one.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let mut previous = ' ';
    for (index, c) in line.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            (false, _, '/') if previous == '/' => return &line[..index - 1],
            _ => {}
        }
        previous = c;
    }
    line
}

/// Finds `key:` of a validation message ("filesystem.mount_timeout: ...") in the text, so the
/// error can point at a line and column.
pub(super) fn locate_key(text: &str, message: &str) -> Option<(usize, usize)> {
    let path = message.split(':').next()?;
    let key = path.rsplit('.').next()?;
    for (index, line) in text.lines().enumerate() {
        let code = strip_comment(line);
        if let Some(col) = code.find(key) {
            let after = code[col + key.len()..].trim_start();
            let before_ok = col == 0
                || !code.as_bytes()[col - 1].is_ascii_alphanumeric()
                    && code.as_bytes()[col - 1] != b'_';
            if before_ok && after.starts_with(':') {
                return Some((index + 1, col + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_end_at_double_slash_outside_strings() {
        assert_eq!(strip_comment("a: 1, // note"), "a: 1, ");
        assert_eq!(
            strip_comment("url: \"http://gw\", // x"),
            "url: \"http://gw\", "
        );
        assert_eq!(strip_comment("s: \"a\\\"//b\""), "s: \"a\\\"//b\"");
    }
}
