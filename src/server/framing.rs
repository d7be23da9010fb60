//! Where each HTTP/1.1 request on a connection begins, and whether its
//! request line is too long to hand to hyper: pure, fed the bytes a client
//! sends, in order, as they arrive.
//!
//! hyper refuses a request target over 64 KiB, or a head over its read
//! buffer, itself, with a bodiless 414 or 431, before any route sees it.
//! The connection guard (`connection`) runs every byte through a [`Framer`]
//! first: it follows the request framing of RFC 9112 (request line, header
//! fields, a `Content-Length` or chunked body, trailers) just far enough
//! to know where the next request line starts, holds each request line back
//! until it has seen it end, and refuses one longer than
//! [`MAX_REQUEST_LINE`] before hyper reads a byte of it. Shorter targets
//! still reach the API, whose middleware refuses those over 16 KiB with the
//! exact length. Anything the framer cannot follow (an unusable
//! `Content-Length` or `Transfer-Encoding`, a folded header, an overlong
//! head or chunk line) makes it step aside for good: hyper's parser has the
//! last word on such a connection, and answers it as it always did.

use crate::api::MAX_URI_BYTES;

/// Longest request line (method, target, version and the CR before its LF)
/// handed to hyper: room for any method and the version around a target of
/// the API's limit, so every target the API could accept passes, and every
/// target hyper would refuse does not.
pub(super) const MAX_REQUEST_LINE: usize = MAX_URI_BYTES + 64;

/// The longest head (request line and header fields) the framer follows,
/// hyper's own read buffer size: past it hyper answers 431 itself.
const MAX_HEAD: usize = 8192 + 4096 * 100;

/// The longest chunk-size or trailer line the framer follows.
const MAX_CHUNK_LINE: usize = 4096;

/// What the bytes fed so far allow.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scan {
    /// How many more bytes, counted from the first one not cleared before,
    /// may go to hyper now. Bytes fed but not cleared belong to a request
    /// line still being read.
    pub(super) cleared: usize,
    /// Set once: the request line after the requests cleared so far is too
    /// long. No byte of it, and nothing after it, will be cleared.
    pub(super) overlong: Option<Overlong>,
}

/// A request line longer than [`MAX_REQUEST_LINE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Overlong {
    /// Requests hyper was handed in full before this one.
    pub(super) requests_before: usize,
}

/// The framing state of one connection.
#[derive(Debug)]
pub(super) struct Framer {
    state: State,
    /// Bytes fed but not yet cleared (the request line being read).
    held: usize,
    /// Request lines cleared so far.
    requests: usize,
}

#[derive(Debug)]
enum State {
    /// Before a request line, or `len` bytes into one (held).
    RequestLine { len: usize },
    /// In the header fields; `line` is the current field line so far,
    /// `head` the head's length so far.
    Fields {
        line: Vec<u8>,
        head: usize,
        length: Length,
    },
    /// `remaining` bytes of a `Content-Length` body.
    Body { remaining: u64 },
    /// A chunk-size line so far.
    ChunkSize { line: Vec<u8> },
    /// `remaining` bytes of chunk data, then its CRLF.
    ChunkData { remaining: u64 },
    /// The line end after chunk data; `len` bytes of it seen.
    ChunkEnd { len: usize },
    /// A trailer field line, `len` bytes so far.
    Trailers { len: usize },
    /// Refused a request line: nothing more is cleared.
    Refused,
    /// Something the framer does not follow: every byte is cleared.
    Aside,
}

/// The body length the header fields announced so far.
#[derive(Debug, Default)]
struct Length {
    content_length: Option<u64>,
    chunked: bool,
    /// `Transfer-Encoding` present.
    transfer_encoding: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer {
            state: State::RequestLine { len: 0 },
            held: 0,
            requests: 0,
        }
    }
}

impl Framer {
    /// Takes the next bytes the client sent.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Scan {
        let mut cleared = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            match &mut self.state {
                State::Aside => {
                    cleared += self.held + bytes.len() - (i - 1);
                    self.held = 0;
                    return Scan {
                        cleared,
                        overlong: None,
                    };
                }
                State::Refused => break,
                State::RequestLine { len } => {
                    if *len == 0 && (b == b'\r' || b == b'\n') {
                        // Empty lines before a request line are ignored
                        // (RFC 9112 §2.2); hyper skips them too.
                        cleared += 1;
                        continue;
                    }
                    if b == b'\n' {
                        cleared += self.held + 1;
                        self.held = 0;
                        self.requests += 1;
                        let head = *len + 1;
                        self.state = State::Fields {
                            line: Vec::new(),
                            head,
                            length: Length::default(),
                        };
                        continue;
                    }
                    *len += 1;
                    self.held += 1;
                    if *len > MAX_REQUEST_LINE {
                        self.state = State::Refused;
                        return Scan {
                            cleared,
                            overlong: Some(Overlong {
                                requests_before: self.requests,
                            }),
                        };
                    }
                }
                State::Fields { line, head, length } => {
                    cleared += 1;
                    *head += 1;
                    if *head > MAX_HEAD {
                        self.state = State::Aside;
                        continue;
                    }
                    if b != b'\n' {
                        line.push(b);
                        continue;
                    }
                    let field = line.strip_suffix(b"\r").unwrap_or(line);
                    if !field.is_empty() {
                        let followed = length.add(field);
                        line.clear();
                        if !followed {
                            self.state = State::Aside;
                        }
                        continue;
                    }
                    self.state = match length.body() {
                        Some(Body::None) => State::RequestLine { len: 0 },
                        Some(Body::Length(n)) => State::Body { remaining: n },
                        Some(Body::Chunked) => State::ChunkSize { line: Vec::new() },
                        None => State::Aside,
                    };
                }
                State::Body { remaining } => {
                    // Skip as much of the body as this read holds.
                    let here = (bytes.len() - (i - 1)) as u64;
                    let take = here.min(*remaining);
                    cleared += take as usize;
                    i += take as usize - 1;
                    *remaining -= take;
                    if *remaining == 0 {
                        self.state = State::RequestLine { len: 0 };
                    }
                }
                State::ChunkSize { line } => {
                    cleared += 1;
                    if b != b'\n' {
                        line.push(b);
                        if line.len() > MAX_CHUNK_LINE {
                            self.state = State::Aside;
                        }
                        continue;
                    }
                    self.state = match chunk_size(line) {
                        Some(0) => State::Trailers { len: 0 },
                        Some(n) => State::ChunkData { remaining: n },
                        None => State::Aside,
                    };
                }
                State::ChunkData { remaining } => {
                    let here = (bytes.len() - (i - 1)) as u64;
                    let take = here.min(*remaining);
                    cleared += take as usize;
                    i += take as usize - 1;
                    *remaining -= take;
                    if *remaining == 0 {
                        self.state = State::ChunkEnd { len: 0 };
                    }
                }
                State::ChunkEnd { len } => {
                    cleared += 1;
                    *len += 1;
                    if b == b'\n' {
                        self.state = State::ChunkSize { line: Vec::new() };
                    } else if b != b'\r' || *len > 1 {
                        self.state = State::Aside;
                    }
                }
                State::Trailers { len } => {
                    cleared += 1;
                    if b == b'\n' {
                        // `len` counts the line's bytes before its LF; an
                        // empty line (or a lone CR) ends the trailers.
                        self.state = if *len <= 1 {
                            State::RequestLine { len: 0 }
                        } else {
                            State::Trailers { len: 0 }
                        };
                        continue;
                    }
                    *len += 1;
                    if *len > MAX_CHUNK_LINE {
                        self.state = State::Aside;
                    }
                }
            }
        }
        Scan {
            cleared,
            overlong: None,
        }
    }

    /// The client closed its side: whatever was held goes to hyper, which
    /// answers an unfinished request as it sees fit.
    pub(super) fn release(&mut self) -> usize {
        std::mem::take(&mut self.held)
    }
}

enum Body {
    None,
    Length(u64),
    Chunked,
}

impl Length {
    /// Takes one header field line; false when the framer cannot follow it.
    fn add(&mut self, field: &[u8]) -> bool {
        if field[0] == b' ' || field[0] == b'\t' {
            // Obsolete line folding: hyper refuses it.
            return false;
        }
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            return false;
        };
        let name = &field[..colon];
        let value = field[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(n) = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                return false;
            };
            if self.content_length.is_some_and(|m| m != n) {
                return false;
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            self.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        }
        true
    }

    /// The body the fields announce (RFC 9112 §6.3); `None` when it is not
    /// one the framer follows.
    fn body(&self) -> Option<Body> {
        match (self.transfer_encoding, self.content_length) {
            (true, None) if self.chunked => Some(Body::Chunked),
            (true, _) => None,
            (false, Some(0) | None) => Some(Body::None),
            (false, Some(n)) => Some(Body::Length(n)),
        }
    }
}

/// The size of a chunk-size line (`1*HEXDIG [chunk-ext] CR`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `parts` one after another; the bytes cleared in total and the
    /// overlong verdict, if any.
    fn run(parts: &[&[u8]]) -> (usize, Option<Overlong>) {
        let mut framer = Framer::default();
        let mut cleared = 0;
        for part in parts {
            let scan = framer.feed(part);
            cleared += scan.cleared;
            if scan.overlong.is_some() {
                return (cleared, scan.overlong);
            }
        }
        (cleared, None)
    }

    fn long_get(target_len: usize) -> Vec<u8> {
        format!(
            "GET /{} HTTP/1.1\r\nhost: x\r\n\r\n",
            "a".repeat(target_len - 1)
        )
        .into_bytes()
    }

    #[test]
    fn a_request_line_is_held_until_it_ends() {
        let mut framer = Framer::default();
        assert_eq!(framer.feed(b"GET /a HT").cleared, 0);
        assert_eq!(framer.feed(b"TP/1.1\r").cleared, 0);
        assert_eq!(framer.feed(b"\nhost: x\r\n\r\n").cleared, 28);
    }

    #[test]
    fn pipelined_requests_with_bodies_are_followed_to_an_overlong_line() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\nPOST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        stream.extend_from_slice(
            b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nt: 1\r\n\r\n",
        );
        stream.extend_from_slice(b"GET /c HTTP/1.1\r\n\r\n");
        let before = stream.len();
        stream.extend_from_slice(&long_get(MAX_REQUEST_LINE));
        // Whole, and one byte at a time: the same verdict.
        assert_eq!(
            run(&[&stream]),
            (before, Some(Overlong { requests_before: 3 }))
        );
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes), (before, Some(Overlong { requests_before: 3 })));
    }

    #[test]
    fn a_body_that_looks_like_a_long_line_is_a_body() {
        let body = "x".repeat(3 * MAX_REQUEST_LINE);
        let request = format!(
            "POST /a HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}GET / HTTP/1.1\r\n\r\n",
            body.len()
        );
        assert_eq!(run(&[request.as_bytes()]), (request.len(), None));
        let chunked = format!(
            "POST /a HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        assert_eq!(run(&[chunked.as_bytes()]), (chunked.len(), None));
    }

    #[test]
    fn the_longest_request_line_passes_and_one_more_byte_does_not() {
        // "GET " + target + " HTTP/1.1\r" is the line.
        let fits = long_get(MAX_REQUEST_LINE - 14);
        assert_eq!(run(&[&fits]), (fits.len(), None));
        let over = long_get(MAX_REQUEST_LINE - 13);
        assert_eq!(run(&[&over]), (0, Some(Overlong { requests_before: 0 })));
    }

    #[test]
    fn framing_it_cannot_follow_leaves_the_rest_to_hyper() {
        let long = long_get(2 * MAX_REQUEST_LINE);
        for head in [
            &b"POST / HTTP/1.1\r\ncontent-length: five\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nx: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let stream = [head, &long].concat();
            assert_eq!(
                run(&[&stream]),
                (stream.len(), None),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn an_unfinished_line_is_released_when_the_client_closes() {
        let mut framer = Framer::default();
        assert_eq!(framer.feed(b"GET /a").cleared, 0);
        assert_eq!(framer.release(), 6);
        assert_eq!(framer.release(), 0);
    }
}
