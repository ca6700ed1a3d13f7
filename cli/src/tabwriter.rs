//! Elastic tabstops, as Go's `text/tabwriter` lays them out for the docker CLI's tables.
//!
//! Input is text whose cells end in `\t`; the last cell of a line is not part of a column.
//! A column is a run of consecutive lines that all have a tab-terminated cell at that index, and
//! every cell in it is padded to `max(minwidth, widest cell + padding)`.

/// Collects text and aligns it on [`TabWriter::finish`].
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    buf: String,
}

impl TabWriter {
    /// The docker CLI's table writer: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    pub fn docker_table() -> TabWriter {
        TabWriter::new(10, 3)
    }

    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            buf: String::new(),
        }
    }

    pub fn write_str(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Adds one line made of `cells` joined by tabs.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let line: Vec<&str> = cells.iter().map(|c| c.as_ref()).collect();
        self.buf.push_str(&line.join("\t"));
        self.buf.push('\n');
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        let ends_with_newline = self.buf.ends_with('\n');
        let body = if ends_with_newline {
            &self.buf[..self.buf.len() - 1]
        } else {
            &self.buf[..]
        };
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut widths: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
        let mut stack = Vec::new();
        self.layout(&lines, 0, lines.len(), &mut stack, &mut widths);
        let mut out = String::with_capacity(self.buf.len() * 2);
        for (i, cells) in lines.iter().enumerate() {
            for (j, cell) in cells.iter().enumerate() {
                out.push_str(cell);
                if j + 1 < cells.len() {
                    let width = widths[i].get(j).copied().unwrap_or(0);
                    let len = cell.chars().count();
                    for _ in len..width {
                        out.push(' ');
                    }
                }
            }
            if i + 1 < lines.len() || ends_with_newline {
                out.push('\n');
            }
        }
        out
    }

    /// Assigns widths to column `stack.len()` for lines `line0..line1`, recursing right.
    fn layout(
        &self,
        lines: &[Vec<&str>],
        line0: usize,
        line1: usize,
        stack: &mut Vec<usize>,
        widths: &mut [Vec<usize>],
    ) {
        let column = stack.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                widths[this] = stack.clone();
                this += 1;
                continue;
            }
            let start = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                let w = lines[this][column].chars().count() + self.padding;
                width = width.max(w);
                this += 1;
            }
            stack.push(width);
            self.layout(lines, start, this, stack, widths);
            stack.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_docker_ps() {
        let mut tw = TabWriter::docker_table();
        tw.row(&["CONTAINER ID", "IMAGE", "COMMAND", "NAMES"]);
        tw.row(&["4cbae2330758", "busybox", "\"httpd -f -p 80\"", "web"]);
        let out = tw.finish();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND            NAMES\n\
             4cbae2330758   busybox   \"httpd -f -p 80\"   web\n"
        );
    }

    #[test]
    fn trailing_empty_cell_keeps_padding() {
        let mut tw = TabWriter::docker_table();
        tw.row(&["SIZE", "COMMENT"]);
        tw.row(&["0B", ""]);
        assert_eq!(tw.finish(), "SIZE      COMMENT\n0B        \n");
    }

    #[test]
    fn columns_are_blocks_of_consecutive_lines() {
        let mut tw = TabWriter::new(0, 1);
        tw.write_str("a\tb\nno tabs here\nlonger\tc\n");
        assert_eq!(tw.finish(), "a b\nno tabs here\nlonger c\n");
    }

    #[test]
    fn top_uses_wide_minimum() {
        let mut tw = TabWriter::new(20, 3);
        tw.row(&["UID", "PID", "CMD"]);
        tw.row(&["root", "19573", "sleep 30"]);
        assert_eq!(
            tw.finish(),
            "UID                 PID                 CMD\nroot                19573               sleep 30\n"
        );
    }
}
