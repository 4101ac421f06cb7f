//! The canonical export format: a stream of events, each as a 4-byte little-endian length and the exact event bytes.

use std::io::{self, Read, Write};

use crate::codec::MAX_EVENT_BYTES;

/// No valid event is shorter than this (a header of ids, keys and counters, and a signature).
pub const MIN_EVENT_BYTES: u32 = 200;

/// Why an export stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export stream I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("record {index} at byte {offset} claims {len} bytes, more than the event limit {MAX_EVENT_BYTES}")]
    Oversized { index: u64, offset: u64, len: u64 },
    #[error("record {index} at byte {offset} is truncated: the stream ends inside it")]
    Truncated { index: u64, offset: u64 },
}

/// How many records of at least [`MIN_EVENT_BYTES`] a stream of `len` bytes holds, read from
/// their length prefixes alone (skipping over the event bytes). A sizing hint, never more than
/// `len / MIN_EVENT_BYTES`, so a hostile stream cannot make a reader reserve more than its size
/// warrants; a broken stream counts what came before the break.
pub fn count_records<R: Read + io::Seek>(mut r: io::BufReader<R>, len: u64) -> usize {
    let (mut count, mut at) = (0usize, 0u64);
    let mut prefix = [0u8; 4];
    while at + 4 <= len {
        if r.read_exact(&mut prefix).is_err() {
            break;
        }
        let n = u32::from_le_bytes(prefix);
        if n >= MIN_EVENT_BYTES {
            count += 1;
        }
        at += 4 + u64::from(n);
        if r.seek_relative(i64::from(n)).is_err() {
            break;
        }
    }
    count.min(usize::try_from(len / u64::from(MIN_EVENT_BYTES)).unwrap_or(usize::MAX))
}

/// Writes one record.
pub fn write_record(out: &mut impl Write, event: &[u8]) -> io::Result<()> {
    let len = u32::try_from(event.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "event too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(event)
}

/// One record read from a stream, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Reads records one at a time, never allocating more than one event's limit per record.
#[derive(Debug)]
pub struct ExportReader<R> {
    inner: R,
    index: u64,
    offset: u64,
    failed: bool,
}

impl<R: Read> ExportReader<R> {
    /// A reader over `inner` (wrap files in a `BufReader`).
    pub fn new(inner: R) -> Self {
        ExportReader {
            inner,
            index: 0,
            offset: 0,
            failed: false,
        }
    }

    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    fn next_record(&mut self) -> Result<Option<Record>, ExportError> {
        let (index, offset) = (self.index, self.offset);
        let mut len = [0u8; 4];
        match self.read_full(&mut len)? {
            0 => return Ok(None),
            4 => {}
            _ => return Err(ExportError::Truncated { index, offset }),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_EVENT_BYTES {
            return Err(ExportError::Oversized {
                index,
                offset,
                len: len as u64,
            });
        }
        let mut bytes = vec![0u8; len];
        if self.read_full(&mut bytes)? != len {
            return Err(ExportError::Truncated { index, offset });
        }
        self.index += 1;
        self.offset += 4 + len as u64;
        Ok(Some(Record {
            index,
            offset,
            bytes,
        }))
    }
}

impl<R: Read> Iterator for ExportReader<R> {
    type Item = Result<Record, ExportError>;

    /// Yields records until the end; after the first error, yields nothing more.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_record().transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_from_their_prefixes_and_the_count_is_bounded() {
        let mut buf = Vec::new();
        for len in [300usize, 10, 250, 400] {
            write_record(&mut buf, &vec![7u8; len]).expect("write to vec");
        }
        let count = |bytes: &[u8], len: u64| {
            count_records(io::BufReader::new(io::Cursor::new(bytes.to_vec())), len)
        };
        // The 10-byte record is too short to be an event.
        assert_eq!(count(&buf, buf.len() as u64), 3);
        // A truncated tail counts what came before it.
        assert_eq!(count(&buf[..buf.len() - 100], buf.len() as u64 - 100), 3);
        // A stream of nothing but length prefixes cannot claim more records than its size allows.
        let mut lies = Vec::new();
        for _ in 0..100 {
            lies.extend_from_slice(&MIN_EVENT_BYTES.to_le_bytes());
        }
        assert_eq!(count(&lies, lies.len() as u64), 2);
        assert_eq!(
            count(&lies, 1 << 20),
            2,
            "the claimed length is not trusted past the data"
        );
        assert_eq!(count(&[], 0), 0);
    }

    #[test]
    fn records_round_trip_and_damage_is_located() {
        let mut buf = Vec::new();
        for e in [&b"one"[..], b"second", b""] {
            write_record(&mut buf, e).expect("write to vec");
        }
        let all: Vec<Record> = ExportReader::new(&buf[..])
            .collect::<Result<_, _>>()
            .expect("intact");
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].bytes, b"second");
        assert_eq!(all[1].offset, 7);
        let cut = &buf[..buf.len() - 6];
        let res: Vec<_> = ExportReader::new(cut).collect();
        assert!(
            matches!(
                res.last(),
                Some(Err(ExportError::Truncated {
                    index: 1,
                    offset: 7
                }))
            ),
            "{res:?}"
        );
        let mut huge = Vec::new();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let res: Vec<_> = ExportReader::new(&huge[..]).collect();
        assert!(matches!(
            res[0],
            Err(ExportError::Oversized { index: 0, .. })
        ));
    }
}
