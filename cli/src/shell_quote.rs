//! Arguments shown as a POSIX shell would need them typed: the command lines `info`, `record`
//! and the flame graphs' titles show, and the `sigtrace report …` command `record` prints.

/// Quotes `text` for a POSIX shell when it needs it (single quotes; `'` as `'\''`).
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
