//! Incremental reception of one startup frame from a TCP byte stream.

use crate::error::MpaError;
use crate::startup::frame::{
    FrameKind, HEADER_LEN, MAX_FRAME_LEN, MAX_PRIVATE_DATA, MAX_REVISION, StartupRepr,
};

/// Progress of a [`StartupReader`] after some input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadProgress {
    /// All input was taken and the frame is not complete yet.
    NeedMore,
    /// The frame is complete; `consumed` octets of this input belonged to it. What
    /// follows is the start of Full Operation (FPDUs).
    Complete {
        /// Octets of the last input that belonged to the frame.
        consumed: usize,
    },
}

/// Collects one MPA Request or Reply from stream chunks of any size, into a fixed
/// buffer (no allocation), rejecting a bad key, revision or PD_Length as soon as the
/// octets that show it arrive.
///
/// A Request must not be followed by anything: the Initiator waits for the Reply
/// (RFC 5044 §7.1.2), so octets after a Request are an error. A Reply may be
/// followed by FPDUs at once (siw as Responder sends them, docs/wire-facts.md §1.3).
#[derive(Clone)]
pub struct StartupReader {
    expect: FrameKind,
    buf: [u8; MAX_FRAME_LEN],
    len: usize,
    complete: bool,
}

impl core::fmt::Debug for StartupReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StartupReader")
            .field("expect", &self.expect)
            .field("len", &self.len)
            .field("complete", &self.complete)
            .finish()
    }
}

impl StartupReader {
    /// A reader expecting a frame of the given kind.
    pub fn new(expect: FrameKind) -> Self {
        Self {
            expect,
            buf: [0; MAX_FRAME_LEN],
            len: 0,
            complete: false,
        }
    }

    /// Takes the next chunk of the stream.
    pub fn push(&mut self, input: &[u8]) -> Result<ReadProgress, MpaError> {
        if self.complete {
            return match (self.expect, input.len()) {
                (_, 0) | (FrameKind::Reply, _) => Ok(ReadProgress::Complete { consumed: 0 }),
                (FrameKind::Request, n) => Err(MpaError::TrailingBytes(n)),
            };
        }
        let mut consumed = 0;
        // Header first, then exactly PD_Length more octets.
        let need_header = HEADER_LEN - self.len.min(HEADER_LEN);
        let take = need_header.min(input.len());
        self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
        self.len += take;
        consumed += take;
        self.check_prefix()?;
        if self.len < HEADER_LEN {
            return Ok(ReadProgress::NeedMore);
        }
        let total = HEADER_LEN + usize::from(self.pd_length());
        let take = (total - self.len).min(input.len() - consumed);
        self.buf[self.len..self.len + take].copy_from_slice(&input[consumed..consumed + take]);
        self.len += take;
        consumed += take;
        if self.len < total {
            return Ok(ReadProgress::NeedMore);
        }
        self.complete = true;
        // Validate the whole frame (IRD/ORD word presence) now that it is here.
        StartupRepr::parse_bytes(&self.buf[..self.len])?;
        if self.expect == FrameKind::Request && consumed < input.len() {
            return Err(MpaError::TrailingBytes(input.len() - consumed));
        }
        Ok(ReadProgress::Complete { consumed })
    }

    /// The complete frame, once [`StartupReader::push`] returned
    /// [`ReadProgress::Complete`].
    pub fn frame(&self) -> Option<StartupRepr<'_>> {
        if !self.complete {
            return None;
        }
        StartupRepr::parse_bytes(&self.buf[..self.len]).ok()
    }

    /// The raw octets of the frame received so far.
    pub fn raw(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn pd_length(&self) -> u16 {
        u16::from_be_bytes([self.buf[18], self.buf[19]])
    }

    /// Rejects a frame as soon as the octets received so far show it is bad.
    fn check_prefix(&self) -> Result<(), MpaError> {
        let key = self.expect.key();
        let n = self.len.min(key.len());
        if self.buf[..n] != key[..n] {
            return Err(MpaError::BadKey);
        }
        if self.len > 17 {
            let rev = self.buf[17];
            if rev == 0 || rev > MAX_REVISION {
                return Err(MpaError::BadRevision(rev));
            }
        }
        if self.len >= HEADER_LEN && usize::from(self.pd_length()) > MAX_PRIVATE_DATA {
            return Err(MpaError::PrivateDataTooLong(self.pd_length()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::startup::frame::KEY_REQUEST;
    use crate::startup::ird_ord::IrdOrd;

    fn request(pd: &[u8]) -> Vec<u8> {
        StartupRepr {
            kind: FrameKind::Request,
            markers: false,
            crc: true,
            reject: false,
            rev: 2,
            ird_ord: Some(IrdOrd {
                ird: 4,
                ord: 4,
                ..IrdOrd::default()
            }),
            private_data: pd,
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn byte_by_byte() {
        let bytes = request(b"hello private data");
        let mut r = StartupReader::new(FrameKind::Request);
        for (i, b) in bytes.iter().enumerate() {
            let p = r.push(core::slice::from_ref(b)).unwrap();
            if i + 1 < bytes.len() {
                assert_eq!(p, ReadProgress::NeedMore, "at {i}");
                assert!(r.frame().is_none());
            } else {
                assert_eq!(p, ReadProgress::Complete { consumed: 1 });
            }
        }
        assert_eq!(r.frame().unwrap().private_data, b"hello private data");
    }

    #[test]
    fn reply_followed_by_fpdus() {
        let mut bytes = request(b"x");
        bytes[9] = b'p';
        let frame_len = bytes.len();
        bytes.extend_from_slice(&[0, 0x17, 0x41, 0x43]);
        let mut r = StartupReader::new(FrameKind::Reply);
        assert_eq!(
            r.push(&bytes).unwrap(),
            ReadProgress::Complete {
                consumed: frame_len
            }
        );
    }

    #[test]
    fn request_followed_by_bytes_is_an_error() {
        let mut bytes = request(b"");
        bytes.extend_from_slice(&[1, 2, 3]);
        let mut r = StartupReader::new(FrameKind::Request);
        assert_eq!(r.push(&bytes), Err(MpaError::TrailingBytes(3)));
        let mut r = StartupReader::new(FrameKind::Request);
        let n = bytes.len() - 3;
        assert_eq!(
            r.push(&bytes[..n]).unwrap(),
            ReadProgress::Complete { consumed: n }
        );
        assert_eq!(r.push(&bytes[n..]), Err(MpaError::TrailingBytes(3)));
    }

    #[test]
    fn early_errors() {
        let mut r = StartupReader::new(FrameKind::Reply);
        // A Request where a Reply is expected: the key differs at octet 9.
        assert_eq!(r.push(&KEY_REQUEST[..9]).unwrap(), ReadProgress::NeedMore);
        assert_eq!(r.push(&KEY_REQUEST[9..10]), Err(MpaError::BadKey));
        let mut r = StartupReader::new(FrameKind::Request);
        assert_eq!(r.push(b"GET / HTTP/1.1\r\n"), Err(MpaError::BadKey));
        let mut bytes = request(b"");
        bytes[18..20].copy_from_slice(&600u16.to_be_bytes());
        let mut r = StartupReader::new(FrameKind::Request);
        assert_eq!(r.push(&bytes[..20]), Err(MpaError::PrivateDataTooLong(600)));
        let mut bytes = request(b"");
        bytes[17] = 9;
        let mut r = StartupReader::new(FrameKind::Request);
        assert_eq!(r.push(&bytes[..18]), Err(MpaError::BadRevision(9)));
    }
}
