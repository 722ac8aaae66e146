use std::io::{self, BufRead};

/// What one call to [`LineReader::next_line`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// A complete line (without its `\n` / `\r\n`) is in the buffer.
    Line,
    /// The line exceeded the limit; its length in bytes. The bytes were skipped.
    TooLong(usize),
    Eof,
}

/// Splits a byte stream into lines with memchr, counting line numbers and
/// bounding memory per line.
pub struct LineReader<R> {
    inner: R,
    max_line: usize,
    line_no: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            max_line,
            line_no: 0,
        }
    }

    /// 1-based number of the line last returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Reads the next line into `buf` (cleared first).
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<ReadLine> {
        buf.clear();
        let mut total = 0usize;
        let mut too_long = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if total == 0 {
                    return Ok(ReadLine::Eof);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            total += take;
            if !too_long {
                if total > self.max_line {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            let consumed = if done { take + 1 } else { take };
            self.inner.consume(consumed);
            if done {
                total += 1;
                break;
            }
        }
        self.line_no += 1;
        if too_long {
            return Ok(ReadLine::TooLong(total));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(ReadLine::Line)
    }
}

impl<R> LineReader<R> {
    /// Gives back the reader, positioned after the last line returned.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, usize>> {
        let mut r = LineReader::new(input, max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match r.next_line(&mut buf).unwrap() {
                ReadLine::Line => out.push(Ok(String::from_utf8(buf.clone()).unwrap())),
                ReadLine::TooLong(n) => out.push(Err(n)),
                ReadLine::Eof => break,
            }
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 100),
            vec![
                Ok("a".into()),
                Ok("bb".into()),
                Ok("".into()),
                Ok("ccc".into())
            ]
        );
    }

    #[test]
    fn long_line_is_reported_and_the_next_line_survives() {
        let mut data = vec![b'x'; 5000];
        data.extend_from_slice(b"\nafter\n");
        let mut r = LineReader::new(std::io::BufReader::with_capacity(64, &data[..]), 1000);
        let mut buf = Vec::new();
        assert_eq!(r.next_line(&mut buf).unwrap(), ReadLine::TooLong(5001));
        assert_eq!(r.next_line(&mut buf).unwrap(), ReadLine::Line);
        assert_eq!(buf, b"after");
        assert_eq!(r.line_no(), 2);
    }
}
