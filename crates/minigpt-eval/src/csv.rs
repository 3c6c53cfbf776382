//! RFC 4180 CSV: fields with a comma, quote, CR or LF are quoted, quotes doubled; records end
//! in `\n`. Small enough to own, and the reader reports where a torn last record begins.

/// One field, quoted when needed.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One record with its line end.
pub fn record<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Parses `text` into records. Returns the complete records and the byte length they span: a
/// trailing record without its final `\n` (a write cut short) is not returned, and the caller
/// may truncate the file to the length.
pub fn parse(text: &str) -> Result<(Vec<Vec<String>>, usize), String> {
    let mut records = vec![];
    let mut fields = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut at_field_start = true;
    let mut complete = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek().map(|p| p.1) == Some('"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            '"' => return Err(format!("a quote inside an unquoted field at byte {i}")),
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_field_start = true;
            }
            '\n' => {
                fields.push(std::mem::take(&mut cur));
                records.push(std::mem::take(&mut fields));
                at_field_start = true;
                complete = i + 1;
            }
            '\r' if chars.peek().map(|p| p.1) == Some('\n') => {}
            _ => {
                cur.push(c);
                at_field_start = false;
            }
        }
    }
    Ok((records, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_quotes_commas_and_newlines() {
        let rows = vec![
            vec!["a".to_string(), "b,c".into(), "say \"hi\"".into()],
            vec!["line\nbreak".into(), String::new(), "ROMEO:\r\nBut".into()],
        ];
        let text: String = rows.iter().map(|r| record(r)).collect();
        assert_eq!(
            text,
            "a,\"b,c\",\"say \"\"hi\"\"\"\n\"line\nbreak\",,\"ROMEO:\r\nBut\"\n"
        );
        let (back, len) = parse(&text).unwrap();
        assert_eq!(back, rows);
        assert_eq!(len, text.len());
    }

    #[test]
    fn a_torn_last_record_is_left_out() {
        let text = "x,y\n1,\"two\nlines\"\n3,\"cut sho";
        let (rows, len) = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(&text[..len], "x,y\n1,\"two\nlines\"\n");
        // Cut right after a field separator, or before the line end: also left out.
        assert_eq!(parse("a,b\nc,").unwrap().1, 4);
        assert_eq!(parse("a,b\nc,d").unwrap().0.len(), 1);
    }
}
