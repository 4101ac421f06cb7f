//! The canonical export format: a stream of events, each as a 4-byte little-endian length and the exact event bytes.

use std::io::{self, Read, Write};

use crate::codec::MAX_EVENT_BYTES;

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
