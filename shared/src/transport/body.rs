//! Request bodies in, answers out.
//!
//! In: //! hyper delivers a large body as many chunks (up to its read buffer, 64 KiB on the local
//! server). Collecting the chunks and then joining them holds the page twice; [`read_whole`]
//! copies each chunk into one buffer sized from the declared length as it arrives, so the page
//! is held once (plus one chunk).
//!
//! Out: [`TextBody`] sends an answer's [`JsonText`] piece by piece (records passed through are
//! slices of the request), with its exact length, so hyper announces a `Content-Length` as for
//! a body in one buffer. Short pieces in a row are joined into one frame of up to 64 KiB: a
//! large page whose records pass through between rewritten ones is thousands of short pieces,
//! and a frame each made that page twice as slow (hyper queues at most 16 frames per write).
//! They are joined as they are sent, so the copies in flight are the frames hyper has queued
//! (at most 16 × 64 KiB), never a second copy of the page.

use crate::protocol::JsonText;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Pieces shorter than this are joined with their short neighbours into frames of up to this.
const FRAME: usize = 64 * 1024;

/// The most a declared length may reserve up front (the Lambda payload limit is 6 MB; a
/// larger body still reads, growing as it goes).
const MAX_RESERVE: usize = 8 << 20;

/// Every data frame of `body`, in one buffer; `declared` is the body's announced length.
pub async fn read_whole<B>(body: B, declared: Option<usize>) -> Result<Bytes, B::Error>
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(MAX_RESERVE));
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.is_empty() && declared.is_none_or(|n| n == data.len()) {
                // The whole body in one chunk: keep it as it is.
                if body.is_end_stream() {
                    return Ok(data);
                }
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// An answer's text as an HTTP body: its pieces one frame each, its length exact.
#[derive(Debug, Default)]
pub struct TextBody {
    pieces: VecDeque<Bytes>,
    left: u64,
}

impl From<JsonText> for TextBody {
    fn from(text: JsonText) -> Self {
        let left = text.len() as u64;
        TextBody {
            pieces: text.into_pieces().into(),
            left,
        }
    }
}

impl Body for TextBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.pieces.pop_front().map(|first| {
            let short = |p: &Bytes| p.len() < FRAME;
            if !short(&first) || !self.pieces.front().is_some_and(short) {
                return first;
            }
            let mut joined = BytesMut::with_capacity(FRAME);
            joined.extend_from_slice(&first);
            while let Some(p) = self
                .pieces
                .pop_front_if(|p| short(p) && joined.len() + p.len() <= FRAME)
            {
                joined.extend_from_slice(&p);
            }
            joined.freeze()
        });
        if let Some(p) = &next {
            self.left = self.left.saturating_sub(p.len() as u64);
        }
        Poll::Ready(next.map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    #[tokio::test]
    async fn chunks_are_joined_in_order() {
        let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> =
            ["ab", "c", "def"]
                .into_iter()
                .map(|c| Ok(hyper::body::Frame::data(Bytes::from_static(c.as_bytes()))))
                .collect();
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        assert_eq!(read_whole(body, Some(6)).await.unwrap(), "abcdef");
        let one = Full::new(Bytes::from_static(b"whole"));
        assert_eq!(read_whole(one, Some(5)).await.unwrap(), "whole");
        let empty = Full::new(Bytes::new());
        assert_eq!(read_whole(empty, None).await.unwrap(), "");
    }

    /// Thousands of short pieces go as a few frames of up to 64 KiB; long ones as they are.
    #[tokio::test]
    async fn short_pieces_in_a_row_are_joined_into_frames() {
        let mut pieces: VecDeque<Bytes> = (0..5_000u32)
            .map(|i| Bytes::from(format!("{i:0>300}")))
            .collect();
        pieces.insert(2_500, Bytes::from(vec![b'x'; 3 * FRAME]));
        let all: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        let mut body = std::pin::pin!(TextBody {
            left: all.len() as u64,
            pieces,
        });
        let (mut frames, mut got) = (Vec::new(), Vec::new());
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            got.extend_from_slice(&data);
            frames.push(data.len());
            assert_eq!(
                body.size_hint().exact(),
                Some((all.len() - got.len()) as u64)
            );
        }
        assert_eq!(got, all);
        assert!(frames.len() < 30, "{} frames", frames.len());
        assert!(frames.iter().all(|&n| n <= FRAME || n == 3 * FRAME));
        assert!(frames.contains(&(3 * FRAME)));
    }

    #[tokio::test]
    async fn a_text_body_sends_its_pieces_with_an_exact_length() {
        let text = crate::protocol::text::to_text(&serde_json::json!({"a": [1, "b"]})).unwrap();
        let body = TextBody::from(text);
        assert_eq!(body.size_hint().exact(), Some(13));
        let whole = read_whole(body, Some(13)).await.unwrap();
        assert_eq!(whole, r#"{"a":[1,"b"]}"#);
        assert!(TextBody::default().is_end_stream());
        assert_eq!(TextBody::default().size_hint().exact(), Some(0));
    }
}
