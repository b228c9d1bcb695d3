//! Plain aligned tables for the ops commands' terminal output.

/// `rows` under `header`, each column as wide as its widest cell, two spaces apart.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_under_their_headers() {
        let text = super::render(
            &["QUEUE", "PENDING"],
            &[
                vec!["default".into(), "3".into()],
                vec!["low".into(), "12".into()],
            ],
        );
        assert_eq!(text, "QUEUE    PENDING\ndefault  3\nlow      12\n");
    }
}
