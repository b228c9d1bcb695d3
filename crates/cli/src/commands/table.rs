//! Aligned tables for the ops commands' terminal output.

/// `rows` under `header`, each column as wide as its widest cell, two spaces apart.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    render_painted(header, rows, None)
}

/// As [`render`], with the cells of column `state_column` coloured by their state word
/// when standard output is a terminal.
pub fn render_with_states(header: &[&str], rows: &[Vec<String>], state_column: usize) -> String {
    render_painted(
        header,
        rows,
        Some(state_column).filter(|_| super::colour::enabled()),
    )
}

fn render_painted(header: &[&str], rows: &[Vec<String>], painted: Option<usize>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Padding is measured before painting, so colour codes never skew the columns.
    let line = |cells: Vec<&str>, paint: bool| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                let text = format!("{cell:<width$}");
                if paint && painted == Some(column) {
                    super::colour::paint(&text, cell, true)
                } else {
                    text
                }
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = line(header.to_vec(), false);
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect(), true));
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

    #[test]
    fn painted_columns_keep_their_width() {
        let text = super::render_painted(
            &["JOB", "STATUS", "TYPE"],
            &[vec!["a".into(), "dead".into(), "x".into()]],
            Some(1),
        );
        assert_eq!(text, "JOB  STATUS  TYPE\na    \x1b[31mdead  \x1b[0m  x\n");
    }
}
