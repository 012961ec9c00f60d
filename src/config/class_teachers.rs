//! `class_teachers_file`: `Klasse;E-Mail` lines that name the class teachers of Klassen where
//! WebUntis does not know them (or knows the wrong ones).
//!
//! The format is what a spreadsheet exports as "CSV (semicolon)": no header, `#` comments,
//! one address per line, several lines per Klasse for shared Klassenleitungen.

use super::parse::check_mailbox;
use std::collections::BTreeMap;

/// A bad line: its 1-based number and what is wrong with it (`problem; fix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Parses the file into Klasse → addresses (in file order, without duplicates). Every bad line
/// is reported.
pub fn parse_class_teachers(text: &str) -> Result<BTreeMap<String, Vec<String>>, Vec<LineError>> {
    // Spreadsheets like to start UTF-8 exports with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    let format = "write one `Klasse;E-Mail` per line, e.g. `7b;a.mueller@schule.example`";
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let s = raw.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = s.split(';').map(str::trim).collect();
        let (klasse, address) = match fields.as_slice() {
            [k, a] => (*k, *a),
            // A trailing `;` is what some spreadsheets add to every row.
            [k, a, ""] => (*k, *a),
            [_] if s.contains(',') || s.contains('\t') => {
                errors.push(LineError {
                    line,
                    message: format!("`{s}` is not separated by `;`; {format}"),
                });
                continue;
            }
            [_] => {
                errors.push(LineError {
                    line,
                    message: format!("`{s}` has no `;`; {format}"),
                });
                continue;
            }
            _ => {
                errors.push(LineError {
                    line,
                    message: format!(
                        "`{s}` has more than two fields; {format} (one address per line)"
                    ),
                });
                continue;
            }
        };
        if klasse.is_empty() {
            errors.push(LineError {
                line,
                message: format!("`{s}` has no Klasse; {format}"),
            });
            continue;
        }
        if let Err(e) = check_mailbox(address) {
            errors.push(LineError { line, message: e });
            continue;
        }
        let list = map.entry(klasse.to_string()).or_default();
        if !list.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            list.push(address.to_string());
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_comments_and_shared_klassen() {
        let text = "\u{feff}# Klassenleitungen 2025/26\n\
5a;a.mueller@schule.example\n\
\n\
5a ; b.schmidt@schule.example\r\n\
7b;Carla Weber <c.weber@schule.example>;\n\
5a;A.Mueller@schule.example\n";
        let map = parse_class_teachers(text).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(
            map["5a"],
            vec!["a.mueller@schule.example", "b.schmidt@schule.example"]
        );
        assert_eq!(map["7b"], vec!["Carla Weber <c.weber@schule.example>"]);
    }

    #[test]
    fn reports_every_bad_line_by_number() {
        let text = "5a;a.mueller@schule.example\n\
7b,c.weber@schule.example\n\
# fine\n\
8c;not-an-address\n\
;x@schule.example\n\
9d;a@schule.example;b@schule.example\n\
Klasse\n";
        let errors = parse_class_teachers(text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4, 5, 6, 7]);
        assert!(errors[0].message.contains("not separated by `;`"));
        assert!(errors[1].message.contains("not a valid e-mail address"));
        assert!(errors[2].message.contains("no Klasse"));
        assert!(errors[3].message.contains("more than two fields"));
        assert!(errors[4].message.contains("has no `;`"));
    }

    #[test]
    fn an_empty_file_is_an_empty_map() {
        assert!(parse_class_teachers("# nothing yet\n").unwrap().is_empty());
    }
}
