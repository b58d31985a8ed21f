//! gzip of a rendered page, done once per collection. The page is cut into one
//! piece per core; each piece is deflated on its own thread into blocks that
//! end on a byte boundary (a sync flush), and the pieces are joined into one
//! deflate stream under one gzip header, as pigz does. Every gzip reader sees
//! one ordinary member; a 4 MB page compresses in about half the time.
use std::{io, thread};

use flate2::{Compress, CompressError, Compression, Crc, FlushCompress, Status};

/// Pieces smaller than this are not worth a thread.
const MIN_PIECE: usize = 512 * 1024;
/// Output room kept free per `compress_vec` call.
const OUTPUT_STEP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    #[error("deflate failed: {0}")]
    Deflate(CompressError),
    #[error("a compression thread panicked")]
    ThreadPanicked,
}

/// `data` as a gzip member at the fastest level, using up to `threads`
/// threads; `capacity` is a guess of the compressed size (the previous page's).
pub fn gzip(data: &[u8], threads: usize, capacity: usize) -> Result<Vec<u8>, GzipError> {
    let pieces = threads.min(data.len() / MIN_PIECE).max(1);
    gzip_in_pieces(data, pieces, capacity)
}

fn gzip_in_pieces(data: &[u8], pieces: usize, capacity: usize) -> Result<Vec<u8>, GzipError> {
    let piece_len = data.len().div_ceil(pieces).max(1);
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![data]
    } else {
        data.chunks(piece_len).collect()
    };
    let last = chunks.len() - 1;
    let per_piece = capacity / chunks.len() + OUTPUT_STEP;
    let deflated: Vec<Result<(Vec<u8>, Crc), GzipError>> = thread::scope(|scope| {
        let spawned: Vec<_> = chunks
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, chunk)| {
                let job = move || deflate_piece(chunk, i == last, per_piece);
                // Without a thread (resource limits), the piece is done inline below.
                thread::Builder::new()
                    .name("gzip".into())
                    .spawn_scoped(scope, job)
                    .map_err(|_: io::Error| (i, chunk))
            })
            .collect();
        let mut results = vec![deflate_piece(chunks[0], last == 0, per_piece)];
        for handle in spawned {
            results.push(match handle {
                Ok(handle) => handle.join().unwrap_or(Err(GzipError::ThreadPanicked)),
                Err((i, chunk)) => deflate_piece(chunk, i == last, per_piece),
            });
        }
        results
    });

    let mut out = Vec::with_capacity(capacity.max(OUTPUT_STEP));
    // Magic, CM=deflate, no flags, no mtime, XFL 0, OS=Unix.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    let mut crc = Crc::new();
    for piece in deflated {
        let (bytes, piece_crc) = piece?;
        out.extend_from_slice(&bytes);
        crc.combine(&piece_crc);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    Ok(out)
}

/// Raw deflate of one piece: ends with a sync flush, or, for the last piece,
/// with the final block.
fn deflate_piece(piece: &[u8], last: bool, capacity: usize) -> Result<(Vec<u8>, Crc), GzipError> {
    let mut crc = Crc::new();
    crc.update(piece);
    let mut deflate = Compress::new(Compression::fast(), false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(capacity);
    loop {
        if out.capacity() - out.len() < OUTPUT_STEP {
            out.reserve(OUTPUT_STEP.max(out.capacity() / 2));
        }
        // total_in never exceeds the piece's length, which is a usize.
        let consumed = usize::try_from(deflate.total_in()).unwrap_or(piece.len());
        let status = deflate
            .compress_vec(&piece[consumed..], &mut out, flush)
            .map_err(GzipError::Deflate)?;
        let all_in = usize::try_from(deflate.total_in()).is_ok_and(|n| n == piece.len());
        // A flush is complete when all input is in and the output had room left.
        let done = match status {
            Status::StreamEnd => true,
            Status::Ok | Status::BufError => !last && all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok((out, crc));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        let line = b"bpf_map_entries{id=\"7\"} 42\n";
        (0..len)
            .map(|i| line[i % line.len()] ^ (i / 977) as u8 & 3)
            .collect()
    }

    #[test]
    fn pieces_join_into_one_gzip_member() {
        for len in [0, 1, 1000, 300_000] {
            let data = sample(len);
            for pieces in [1, 2, 3, 7] {
                let gz = gzip_in_pieces(&data, pieces, 0).unwrap();
                assert_eq!(gunzip(&gz), data, "len {len}, {pieces} pieces");
                // One member: a single-member reader saw all the data, and the
                // trailer's size is the whole input's.
                assert_eq!(gz[gz.len() - 4..], (len as u32).to_le_bytes());
            }
        }
    }

    #[test]
    fn small_pages_use_one_piece() {
        let data = sample(1000);
        let one = gzip_in_pieces(&data, 1, 0).unwrap();
        assert_eq!(gzip(&data, 8, 0).unwrap(), one);
    }
}
