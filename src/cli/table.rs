//! Plain-text tables for the terminal: every column as wide as its widest cell, whatever
//! the values are.

/// `header` and `rows` as aligned lines, two spaces between columns, the last unpadded.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // An empty last cell leaves no padding behind.
        out.truncate(out.trim_end().len());
        out
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec![
                "a-very-long-client-id-indeed".to_owned(),
                "x".to_owned(),
                "last".to_owned(),
            ],
            vec!["b".to_owned(), "wide value here".to_owned(), "z".to_owned()],
            vec!["c".to_owned(), "y".to_owned(), String::new()],
        ];
        let text = render(&["ID", "AUTH", "SCOPES"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        // Every line's second column starts at the same place.
        let at = |line: &str, word: &str| line.find(word).expect(word);
        assert_eq!(at(lines[0], "AUTH"), at(lines[1], "x"));
        assert_eq!(at(lines[0], "AUTH"), at(lines[2], "wide value here"));
        assert_eq!(at(lines[0], "SCOPES"), at(lines[1], "last"));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
