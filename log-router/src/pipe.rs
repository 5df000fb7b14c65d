//! Reading container pipes without losing bytes if the router dies.
//!
//! A chunk is first copied with `tee(2)` into a private scratch pipe and read from there, so it
//! stays in the container's pipe. Only once every blocking sink has stored it is it consumed
//! (spliced to `/dev/null`). A router killed at any point leaves every unstored byte in the
//! container's pipe for its successor: delivery is at least once.

use crate::buffers::Buffers;
pub use crate::buffers::CHUNK_BYTES;
use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, tee, FcntlArg, OFlag, SpliceFFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Pipe size asked for container pipes and the scratch pipe, in bytes (the default
/// `/proc/sys/fs/pipe-max-size`).
pub const PIPE_BYTES: usize = 1 << 20;

nix::ioctl_read_bad!(fionread, libc::FIONREAD, libc::c_int);

/// Bytes buffered in the pipe `fd` right now (`FIONREAD`).
///
/// # Errors
/// Errors of `ioctl` (e.g. `fd` is not a pipe).
pub fn pending(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one `int` through the pointer, which points at `n`.
    unsafe { fionread(fd.as_raw_fd(), &mut n) }?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// What a peek found.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek {
    /// Bytes at the head of the pipe, still in it.
    Data(Vec<u8>),
    /// As `Data`, and the pipe held nothing more (the chunk limit was not reached).
    All(Vec<u8>),
    /// Nothing buffered right now.
    Empty,
    /// Every writer closed and the pipe is empty.
    Eof,
}

/// The private pipe chunks are copied through, and `/dev/null` for consuming.
#[derive(Debug)]
pub struct Scratch {
    read: File,
    write: OwnedFd,
    null: File,
    chunk: usize,
    buffers: Buffers,
}

impl Scratch {
    /// Creates the scratch pipe (as large as the system allows, up to [`PIPE_BYTES`]).
    ///
    /// # Errors
    /// Errors of `pipe2` or opening `/dev/null`.
    pub fn new() -> io::Result<Self> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let size = grow(w.as_fd()).unwrap_or(64 * 1024);
        Ok(Self {
            read: File::from(r),
            write: w,
            null: std::fs::OpenOptions::new().write(true).open("/dev/null")?,
            chunk: CHUNK_BYTES.min(size),
            buffers: Buffers::default(),
        })
    }

    /// The stock peeked chunks are read into; a chunk hands its buffer back to it.
    pub fn buffers(&self) -> &Buffers {
        &self.buffers
    }

    /// Copies up to one chunk from the head of `src` without consuming it.
    ///
    /// # Errors
    /// Errors of `tee` or of reading the scratch pipe.
    pub fn peek(&mut self, src: BorrowedFd<'_>) -> io::Result<Peek> {
        let n = match tee(
            src,
            &self.write,
            self.chunk,
            SpliceFFlags::SPLICE_F_NONBLOCK,
        ) {
            Ok(0) => return Ok(Peek::Eof),
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(Peek::Empty),
            Err(e) => return Err(e.into()),
        };
        let mut data = self.buffers.take(n);
        read_into_spare(&self.read, &mut data, n)?;
        Ok(if n < self.chunk {
            Peek::All(data)
        } else {
            Peek::Data(data)
        })
    }

    /// Removes `n` bytes (already peeked) from the head of `src`.
    ///
    /// # Errors
    /// Errors of `splice`; `UnexpectedEof` if the pipe holds fewer than `n` bytes.
    pub fn consume(&mut self, src: BorrowedFd<'_>, mut n: usize) -> io::Result<()> {
        while n > 0 {
            match splice(
                src,
                None,
                &self.null,
                None,
                n,
                SpliceFFlags::SPLICE_F_NONBLOCK,
            ) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => n -= k,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads and throws away whatever `src` holds now, for a container whose output is not
    /// routed, counting what it threw away (the router reports it as dropped).
    ///
    /// # Errors
    /// Errors of `read`.
    pub fn discard(&mut self, src: BorrowedFd<'_>) -> io::Result<Discarded> {
        let mut buf = [0u8; 16 * 1024];
        let mut done = Discarded::default();
        loop {
            match nix::unistd::read(src, &mut buf) {
                Ok(0) => {
                    done.eof = true;
                    return Ok(done);
                }
                Ok(n) => done.count(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(done),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// What one [`Scratch::discard`] threw away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Bytes thrown away.
    pub bytes: u64,
    /// Line feeds among them (each ends a record).
    pub lines: u64,
    /// The last byte thrown away was not a line feed: a record is still open.
    pub open_line: bool,
    /// End of file was reached.
    pub eof: bool,
}

impl Discarded {
    fn count(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        self.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        self.open_line = bytes.last() != Some(&b'\n');
    }
}

/// Appends exactly `n` bytes read from `src` to `buf`, straight into its spare capacity (no
/// zeroing of memory about to be overwritten, and one `read(2)` for a whole chunk where
/// `read_to_end` would start at 8 KiB and double).
///
/// # Errors
/// Errors of `read`; `UnexpectedEof` if `src` holds fewer than `n` bytes.
fn read_into_spare(src: &File, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    buf.reserve(n);
    let end = buf.len() + n;
    while buf.len() < end {
        let want = end - buf.len();
        let spare = &mut buf.spare_capacity_mut()[..want];
        // SAFETY: the kernel writes at most `spare.len()` bytes into the vector's spare
        // capacity, which is valid for writes of that length.
        let got = unsafe { libc::read(src.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        match got {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            g if g > 0 => {
                // SAFETY: the first `g` bytes of the spare capacity were just initialised.
                unsafe { buf.set_len(buf.len() + g as usize) };
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Asks for a [`PIPE_BYTES`] pipe; returns the resulting size in bytes.
///
/// # Errors
/// Errors of `fcntl`.
pub fn grow(fd: BorrowedFd<'_>) -> io::Result<usize> {
    match fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as i32)) {
        Ok(n) => Ok(n as usize),
        Err(_) => Ok(fcntl(fd, FcntlArg::F_GETPIPE_SZ)? as usize),
    }
}

/// Makes a container's read end non-blocking and as large as allowed.
///
/// # Errors
/// `EINVAL`-style errors when `fd` is not a pipe.
pub fn prepare(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    grow(fd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn peek_keeps_bytes_until_consumed() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        prepare(r.as_fd()).unwrap();
        let mut s = Scratch::new().unwrap();
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::Empty);
        let mut w = File::from(w);
        w.write_all(b"ab\xff").unwrap();
        assert_eq!(pending(r.as_fd()).unwrap(), 3);
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::All(b"ab\xff".to_vec()));
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::All(b"ab\xff".to_vec()));
        s.consume(r.as_fd(), 2).unwrap();
        w.write_all(b"c").unwrap();
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::All(b"\xffc".to_vec()));
        s.consume(r.as_fd(), 2).unwrap();
        drop(w);
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::Eof);
    }

    #[test]
    fn a_large_chunk_is_peeked_whole() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        prepare(r.as_fd()).unwrap();
        let mut s = Scratch::new().unwrap();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        File::from(w).write_all(&bytes).unwrap();
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::All(bytes.clone()));
        s.consume(r.as_fd(), bytes.len()).unwrap();
        assert_eq!(s.peek(r.as_fd()).unwrap(), Peek::Eof);
    }

    #[test]
    fn discard_reads_to_eof_and_counts_what_it_threw_away() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
        let mut s = Scratch::new().unwrap();
        let mut w = File::from(w);
        w.write_all(&[7u8; 1000]).unwrap();
        w.write_all(b"\nsecond\nopen").unwrap();
        let first = s.discard(r.as_fd()).unwrap();
        assert_eq!(
            first,
            Discarded {
                bytes: 1012,
                lines: 2,
                open_line: true,
                eof: false
            }
        );
        w.write_all(&[b'x'; 40_000]).unwrap();
        w.write_all(b"\n").unwrap();
        drop(w);
        let last = s.discard(r.as_fd()).unwrap();
        assert_eq!(
            last,
            Discarded {
                bytes: 40_001,
                lines: 1,
                open_line: false,
                eof: true
            }
        );
        assert!(s.discard(r.as_fd()).unwrap().eof);
    }
}
