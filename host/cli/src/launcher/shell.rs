//! The POSIX shell text the launchers read and write: settings such as
//! `--ssh-args "-p 2222 -i ~/.ssh/key"` are split into words as `sh`
//! would, and every path and argument put into a remote or batch script
//! is quoted, so that a space or a `$` in a profile path runs nothing.

use std::fmt::Write;

/// `word` quoted for `sh`: unchanged if it holds only characters no shell
/// treats specially, else in single quotes (a quote inside written
/// `'\''`).
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `words` quoted and joined by spaces: one command line.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().fold(String::new(), |mut line, word| {
        if !line.is_empty() {
            line.push(' ');
        }
        let _ = write!(line, "{}", quote(word.as_ref()));
        line
    })
}

/// Splits `text` into words as `sh` does with quotes and backslashes, but
/// without expanding anything (no `$`, `~` or globs: these settings name
/// options, not shell programs).
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has started: `''` is an empty word, not none.
    let mut started = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            '\'' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed ' in {text:?}")),
                    }
                }
            }
            '"' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        // Inside double quotes a backslash escapes only
                        // these.
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed \" in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed \" in {text:?}")),
                    }
                }
            }
            '\\' => {
                started = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("a trailing \\ in {text:?}")),
                }
            }
            c => {
                started = true;
                word.push(c);
            }
        }
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(quote("/opt/wasp/bin/wasp"), "/opt/wasp/bin/wasp");
        assert_eq!(quote("--max-memory=64MiB"), "--max-memory=64MiB");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(
            join(&["wasp", "engine", "--file", "my profile/x.json"]),
            "wasp engine --file 'my profile/x.json'"
        );
    }

    #[test]
    fn splitting_reads_quotes_as_sh_does_and_reads_back_quoting() {
        assert_eq!(
            split(" -p 2222  -i '/root/my key' -o \"UserKnownHostsFile=/tmp/k h\" ").unwrap(),
            [
                "-p",
                "2222",
                "-i",
                "/root/my key",
                "-o",
                "UserKnownHostsFile=/tmp/k h"
            ]
        );
        assert_eq!(
            split(r#"a\ b "c\"d" '' e"#).unwrap(),
            ["a b", "c\"d", "", "e"]
        );
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split("'open").unwrap_err().contains("unclosed '"));
        assert!(split("\"open").unwrap_err().contains("unclosed \""));
        let words = ["ssh", "-o", "ProxyCommand=nc %h %p", "it's", "$x", ""];
        assert_eq!(split(&join(&words)).unwrap(), words);
    }
}
