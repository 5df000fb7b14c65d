//! The typed control channel both ends of the supervisor <-> log-router contract use: a
//! `SOCK_SEQPACKET` UNIX socket carrying one MessagePack map per packet (at most
//! [`MAX_CONTROL_LEN`] bytes) and, in the same packet, file descriptors as `SCM_RIGHTS`.
//!
//! [`Channel<Tx, Rx>`] sends `Tx` and receives `Rx`: the supervisor holds a [`SupervisorEnd`]
//! (sends [`ToRouter`], receives [`FromRouter`]), the router a [`RouterEnd`] (the reverse).
//! Every call is non-blocking (`MSG_DONTWAIT`): a full socket is [`ChannelError::WouldBlock`],
//! which the caller may queue on, or wait through with [`Channel::send_timeout`] /
//! [`Channel::wait_readable`]. The model is Sōzu's `command` crate (`channel.rs`,
//! `scm_socket.rs`).

use super::messages::{FromRouter, ToRouter, MAX_CONTROL_LEN};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::IoSlice;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Most file descriptors accepted in one packet. A packet with more is refused as
/// [`ChannelError::FdsTruncated`] (the kernel installs only this many; they are closed).
pub const MAX_FDS: usize = 8;

/// `u64` words of control-message space: room for `CMSG_SPACE(MAX_FDS * 4)` = 48 bytes on
/// Linux, aligned as `cmsghdr` requires.
const CONTROL_WORDS: usize = 8;

/// The supervisor's end: sends [`ToRouter`], receives [`FromRouter`].
pub type SupervisorEnd = Channel<ToRouter, FromRouter>;
/// The log-router's end: sends [`FromRouter`], receives [`ToRouter`].
pub type RouterEnd = Channel<FromRouter, ToRouter>;

/// Errors of a control channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket is full now (`EAGAIN`); nothing was sent. Retry when writable.
    #[error("the control socket is full")]
    WouldBlock,
    /// [`Channel::send_timeout`] found no room within the given time; nothing was sent.
    #[error("the control socket stayed full for {0:?}")]
    Timeout(Duration),
    /// The peer closed its end (end of file, `EPIPE`, `ECONNRESET`, `ENOTCONN`).
    #[error("the peer closed the control socket")]
    Closed,
    /// A packet exceeds [`MAX_CONTROL_LEN`]: not sent, or received and dropped (with its fds).
    #[error("control packet of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Packet length, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A received packet carried more than [`MAX_FDS`] descriptors (`MSG_CTRUNC`): it was
    /// dropped and the descriptors that arrived were closed.
    #[error("control packet carried more than {max} file descriptors; it was dropped")]
    FdsTruncated {
        /// The limit, [`MAX_FDS`].
        max: usize,
    },
    /// The message could not be encoded; nothing was sent.
    #[error("cannot encode a control message: {0}")]
    Encode(#[source] rmp_serde::encode::Error),
    /// A received packet is not the expected message: it was dropped (with its fds).
    #[error("undecodable control packet: {0}")]
    Decode(#[source] rmp_serde::decode::Error),
    /// Another socket error.
    #[error("control socket: {0}")]
    Socket(#[source] Errno),
}

impl ChannelError {
    /// Whether the error concerns one packet only (it was dropped or not sent) and the channel
    /// is still usable: [`TooLarge`](Self::TooLarge), [`FdsTruncated`](Self::FdsTruncated),
    /// [`Encode`](Self::Encode), [`Decode`](Self::Decode).
    pub fn is_packet_error(&self) -> bool {
        matches!(
            self,
            Self::TooLarge { .. } | Self::FdsTruncated { .. } | Self::Encode(_) | Self::Decode(_)
        )
    }
}

/// One end of a control channel: sends `Tx`, receives `Rx`.
#[derive(Debug)]
pub struct Channel<Tx, Rx> {
    fd: OwnedFd,
    /// Receive buffer, [`MAX_CONTROL_LEN`] bytes, reused.
    buf: Vec<u8>,
    _direction: PhantomData<fn(Tx) -> Rx>,
}

/// Two connected ends: the first sends `A` and receives `B`, the second the reverse.
pub type Pair<A, B> = (Channel<A, B>, Channel<B, A>);

/// A connected pair of non-blocking, close-on-exec channel ends, e.g.
/// `pair::<ToRouter, FromRouter>()` gives a ([`SupervisorEnd`], [`RouterEnd`]).
///
/// # Errors
/// Errors of `socketpair(2)`.
pub fn pair<A, B>() -> Result<Pair<A, B>, Errno>
where
    A: Serialize + DeserializeOwned,
    B: Serialize + DeserializeOwned,
{
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )?;
    Ok((Channel::wrap(a), Channel::wrap(b)))
}

impl<Tx: Serialize, Rx: DeserializeOwned> Channel<Tx, Rx> {
    fn wrap(fd: OwnedFd) -> Self {
        Self {
            fd,
            buf: vec![0; MAX_CONTROL_LEN],
            _direction: PhantomData,
        }
    }

    /// Wraps an inherited `SOCK_SEQPACKET` socket (e.g. the log-router's `--control-fd`) and
    /// makes it non-blocking.
    ///
    /// # Errors
    /// [`ChannelError::Socket`] from `fcntl(2)`.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ChannelError> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags =
            OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).map_err(ChannelError::Socket)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(ChannelError::Socket)?;
        Ok(Self::wrap(fd))
    }

    /// The socket, e.g. to hand to a child process (which wraps it with [`Channel::from_fd`]).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends `msg` as one packet with `fds` (at most [`MAX_FDS`]) in `SCM_RIGHTS`, without
    /// blocking. The fds are duplicated into the peer; the caller keeps its own.
    ///
    /// # Errors
    /// [`ChannelError::WouldBlock`] (nothing sent), [`ChannelError::Closed`],
    /// [`ChannelError::TooLarge`], [`ChannelError::Encode`], [`ChannelError::Socket`].
    pub fn send(&self, msg: &Tx, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        self.send_packet(&encode_packet(msg)?, fds)
    }

    /// As [`Channel::send`], but waits up to `timeout` for room in the socket.
    ///
    /// # Errors
    /// As [`Channel::send`], with [`ChannelError::Timeout`] instead of `WouldBlock`.
    pub fn send_timeout(
        &self,
        msg: &Tx,
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let packet = encode_packet(msg)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.send_packet(&packet, fds) {
                Err(ChannelError::WouldBlock) => {
                    if !self.wait(PollFlags::POLLOUT, deadline) {
                        return Err(ChannelError::Timeout(timeout));
                    }
                }
                done => return done,
            }
        }
    }

    /// Receives one packet without blocking: `Ok(None)` when none is waiting. The fds that came
    /// with it are returned in order, close-on-exec.
    ///
    /// # Errors
    /// [`ChannelError::Closed`] at end of file; packet errors ([`ChannelError::TooLarge`],
    /// [`ChannelError::FdsTruncated`], [`ChannelError::Decode`]) after which the channel is
    /// still usable and the packet's fds are closed; [`ChannelError::Socket`].
    pub fn recv(&mut self) -> Result<Option<(Rx, Vec<OwnedFd>)>, ChannelError> {
        match self.recv_any()? {
            None => Ok(None),
            Some(Received::Message(msg, fds)) => Ok(Some((msg, fds))),
            Some(Received::FdsTruncated(_)) => Err(ChannelError::FdsTruncated { max: MAX_FDS }),
        }
    }

    /// As [`Channel::recv`], but a packet whose fds were cut off (`MSG_CTRUNC`: more than
    /// [`MAX_FDS`], or the receiver is out of descriptors, `RLIMIT_NOFILE`) is returned as
    /// [`Received::FdsTruncated`] with its message when the bytes decode, so that the
    /// receiver can answer for it. The fds that arrived with it are closed.
    ///
    /// # Errors
    /// As [`Channel::recv`], without [`ChannelError::FdsTruncated`].
    pub fn recv_any(&mut self) -> Result<Option<Received<Rx>>, ChannelError> {
        let Some(raw) = self.recv_raw()? else {
            return Ok(None);
        };
        if raw.fds_truncated {
            drop(raw.fds);
            let msg = (raw.len <= MAX_CONTROL_LEN)
                .then(|| rmp_serde::from_slice(&self.buf[..raw.len]).ok())
                .flatten();
            return Ok(Some(Received::FdsTruncated(msg)));
        }
        if raw.len == 0 && raw.fds.is_empty() {
            return Err(ChannelError::Closed);
        }
        if raw.len > MAX_CONTROL_LEN {
            return Err(ChannelError::TooLarge {
                len: raw.len,
                limit: MAX_CONTROL_LEN,
            });
        }
        let msg = rmp_serde::from_slice(&self.buf[..raw.len]).map_err(ChannelError::Decode)?;
        Ok(Some(Received::Message(msg, raw.fds)))
    }

    /// Waits up to `timeout` until a packet (or end of file) is waiting. Returns whether it is.
    pub fn wait_readable(&self, timeout: Duration) -> bool {
        self.wait(PollFlags::POLLIN, Instant::now() + timeout)
    }

    /// Sends an encoded packet once, retrying only on `EINTR`.
    fn send_packet(&self, packet: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
        let iov = [IoSlice::new(packet)];
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, cmsgs, flags, None) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Err(ChannelError::WouldBlock),
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                    return Err(ChannelError::Closed)
                }
                Err(e) => return Err(ChannelError::Socket(e)),
            }
        }
    }

    /// One `recvmsg(2)` into `buf`, with `MSG_TRUNC` so that the packet's real length is
    /// returned, and every `SCM_RIGHTS` fd taken into ownership (also when `MSG_CTRUNC` says
    /// some were cut off, so that the ones that arrived are closed, not leaked).
    fn recv_raw(&mut self) -> Result<Option<RawPacket>, ChannelError> {
        let mut control = [0u64; CONTROL_WORDS];
        let fd_bytes = (MAX_FDS * std::mem::size_of::<libc::c_int>()) as libc::c_uint;
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        let control_len = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
        debug_assert!(control_len <= std::mem::size_of_val(&control));
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        // SAFETY: `msghdr` is plain data; all zeroes is an empty header.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = control_len as _;
        let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC;
        let len = loop {
            // SAFETY: `hdr` points at `iov` (describing `self.buf`, `buf.len()` bytes) and at
            // `control` (`control_len` bytes); all three outlive the call.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut hdr, flags) };
            if n >= 0 {
                break n as usize;
            }
            match Errno::last() {
                Errno::EINTR => {}
                Errno::EAGAIN => return Ok(None),
                Errno::ECONNRESET => return Err(ChannelError::Closed),
                e => return Err(ChannelError::Socket(e)),
            }
        };
        let mut fds = Vec::new();
        // SAFETY: `hdr` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR return null or a
        // header inside the `msg_controllen` bytes the kernel wrote, aligned for `cmsghdr`.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&hdr) };
        while !cmsg.is_null() {
            // SAFETY: non-null headers from CMSG_FIRSTHDR/CMSG_NXTHDR are valid (see above).
            let (level, kind, cmsg_len) =
                unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
            if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
                // SAFETY: as above; CMSG_LEN is arithmetic.
                let (data, header) = unsafe { (libc::CMSG_DATA(cmsg), libc::CMSG_LEN(0)) };
                // `cmsg_len` is `size_t` with glibc, `socklen_t` with musl.
                #[allow(clippy::unnecessary_cast)]
                let count = (cmsg_len as usize).saturating_sub(header as usize)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    // SAFETY: the kernel wrote `count` ints after the header (cmsg_len covers
                    // them); each is an fd just installed in this process, owned by nobody else.
                    fds.push(unsafe {
                        OwnedFd::from_raw_fd(data.cast::<libc::c_int>().add(i).read_unaligned())
                    });
                }
            }
            // SAFETY: `cmsg` is a valid header of `hdr` (see above).
            cmsg = unsafe { libc::CMSG_NXTHDR(&hdr, cmsg) };
        }
        Ok(Some(RawPacket {
            len,
            fds,
            fds_truncated: hdr.msg_flags & libc::MSG_CTRUNC != 0,
        }))
    }

    /// Polls for `events` until `deadline`; whether they (or hang-up/error) came.
    fn wait(&self, events: PollFlags, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), events)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) if n > 0 => return true,
                Ok(_) | Err(Errno::EINTR) if Instant::now() < deadline => {}
                Ok(_) => return false,
                Err(_) => return true,
            }
        }
    }
}

impl<Tx, Rx> AsFd for Channel<Tx, Rx> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<Tx, Rx> AsRawFd for Channel<Tx, Rx> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One packet from [`Channel::recv_any`].
#[derive(Debug)]
pub enum Received<Rx> {
    /// A message and the fds of its packet, in order.
    Message(Rx, Vec<OwnedFd>),
    /// A packet whose fds were cut off (`MSG_CTRUNC`); the ones that arrived were closed. Its
    /// message, when its bytes decode (`None` when they do not).
    FdsTruncated(Option<Rx>),
}

/// What one `recvmsg` produced.
struct RawPacket {
    /// Real length of the packet, in bytes (may exceed the buffer).
    len: usize,
    /// Descriptors that arrived.
    fds: Vec<OwnedFd>,
    /// `MSG_CTRUNC`: some descriptors did not fit and were dropped by the kernel.
    fds_truncated: bool,
}

/// Encodes one packet body, refusing one over [`MAX_CONTROL_LEN`].
fn encode_packet<T: Serialize>(msg: &T) -> Result<Vec<u8>, ChannelError> {
    let bytes = rmp_serde::to_vec_named(msg).map_err(ChannelError::Encode)?;
    if bytes.len() > MAX_CONTROL_LEN {
        return Err(ChannelError::TooLarge {
            len: bytes.len(),
            limit: MAX_CONTROL_LEN,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::SinkSpec;
    use nix::sys::socket::send;
    use std::io::{Read, Write};

    fn ends() -> (SupervisorEnd, RouterEnd) {
        pair::<ToRouter, FromRouter>().unwrap()
    }

    fn add(id: &str) -> ToRouter {
        ToRouter::AddContainer {
            id: id.into(),
            log_path: format!("/logs/{id}.log"),
            sinks: vec![SinkSpec::parse("file").unwrap()],
        }
    }

    /// A pipe's (read end, write end) as files.
    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (r.into(), w.into())
    }

    #[test]
    fn messages_and_fds_pass_in_order() {
        let (sup, mut router) = ends();
        let (mut r1, w1) = pipe();
        let (mut r2, w2) = pipe();
        sup.send(&add("a"), &[w1.as_fd(), w2.as_fd()]).unwrap();
        sup.send(&ToRouter::Shutdown, &[]).unwrap();
        drop((w1, w2));
        let (msg, fds) = router.recv().unwrap().unwrap();
        assert_eq!(msg, add("a"));
        assert_eq!(fds.len(), 2);
        let mut files: Vec<std::fs::File> = fds.into_iter().map(Into::into).collect();
        files[0].write_all(b"one").unwrap();
        files[1].write_all(b"two").unwrap();
        drop(files);
        let (mut a, mut b) = (String::new(), String::new());
        r1.read_to_string(&mut a).unwrap();
        r2.read_to_string(&mut b).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("one", "two"));
        let (next, none) = router.recv().unwrap().unwrap();
        assert_eq!((next, none.len()), (ToRouter::Shutdown, 0));
        assert!(router.recv().unwrap().is_none());
    }

    #[test]
    fn the_router_answers_the_other_way() {
        let (mut sup, router) = ends();
        router
            .send(&FromRouter::Drained { id: "a".into() }, &[])
            .unwrap();
        assert!(sup.wait_readable(Duration::from_secs(1)));
        let (msg, _) = sup.recv().unwrap().unwrap();
        assert_eq!(msg, FromRouter::Drained { id: "a".into() });
    }

    #[test]
    fn too_many_fds_are_refused_and_closed() {
        let (sup, mut router) = ends();
        let (mut r, w) = pipe();
        let dups: Vec<OwnedFd> = (0..MAX_FDS + 2)
            .map(|_| w.as_fd().try_clone_to_owned().unwrap())
            .collect();
        {
            let borrowed: Vec<BorrowedFd<'_>> = dups.iter().map(AsFd::as_fd).collect();
            sup.send(&add("a"), &borrowed).unwrap();
        }
        drop((dups, w));
        assert!(matches!(
            router.recv(),
            Err(ChannelError::FdsTruncated { max: MAX_FDS })
        ));
        // Every copy of the write end is closed: the read end sees end of file at once.
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);
        sup.send(&ToRouter::Shutdown, &[]).unwrap();
        assert_eq!(router.recv().unwrap().unwrap().0, ToRouter::Shutdown);
    }

    #[test]
    fn a_truncated_packet_still_names_its_message() {
        let (sup, mut router) = ends();
        let (mut r, w) = pipe();
        let dups: Vec<OwnedFd> = (0..MAX_FDS + 1)
            .map(|_| w.as_fd().try_clone_to_owned().unwrap())
            .collect();
        {
            let borrowed: Vec<BorrowedFd<'_>> = dups.iter().map(AsFd::as_fd).collect();
            sup.send(&add("a"), &borrowed).unwrap();
        }
        drop((dups, w));
        match router.recv_any().unwrap() {
            Some(Received::FdsTruncated(Some(msg))) => assert_eq!(msg, add("a")),
            other => panic!("{other:?}"),
        }
        let mut rest = Vec::new();
        assert_eq!(
            r.read_to_end(&mut rest).unwrap(),
            0,
            "the fds that came are closed"
        );
        sup.send(&ToRouter::Shutdown, &[]).unwrap();
        assert!(matches!(
            router.recv_any().unwrap(),
            Some(Received::Message(ToRouter::Shutdown, fds)) if fds.is_empty()
        ));
    }

    #[test]
    fn closed_peer_is_closed_both_ways() {
        let (sup, mut router) = ends();
        drop(sup);
        assert!(matches!(router.recv(), Err(ChannelError::Closed)));
        assert!(router.wait_readable(Duration::ZERO));
        let err = router.send(&FromRouter::Ready, &[]).unwrap_err();
        assert!(matches!(err, ChannelError::Closed), "{err}");
    }

    #[test]
    fn oversized_and_garbage_packets_are_dropped_and_the_channel_goes_on() {
        let (sup, mut router) = ends();
        let big = ToRouter::Validate {
            sinks: vec![SinkSpec {
                sink: "x".repeat(MAX_CONTROL_LEN),
                options: vec![],
            }],
        };
        assert!(matches!(
            sup.send(&big, &[]),
            Err(ChannelError::TooLarge { limit: MAX_CONTROL_LEN, len }) if len > MAX_CONTROL_LEN
        ));
        let raw = vec![0xc1; MAX_CONTROL_LEN + 10];
        send(sup.as_raw_fd(), &raw, MsgFlags::empty()).unwrap();
        send(sup.as_raw_fd(), &[0xc1], MsgFlags::empty()).unwrap();
        sup.send(&ToRouter::Shutdown, &[]).unwrap();
        let err = router.recv().unwrap_err();
        assert!(
            matches!(err, ChannelError::TooLarge { len, .. } if len == MAX_CONTROL_LEN + 10),
            "{err}"
        );
        assert!(err.is_packet_error());
        let err = router.recv().unwrap_err();
        assert!(matches!(err, ChannelError::Decode(_)), "{err}");
        assert!(err.is_packet_error());
        assert_eq!(router.recv().unwrap().unwrap().0, ToRouter::Shutdown);
    }

    #[test]
    fn a_full_socket_would_block_then_times_out_then_drains() {
        let (sup, mut router) = ends();
        let mut sent = 0;
        loop {
            match sup.send(&add("fill"), &[]) {
                Ok(()) => sent += 1,
                Err(ChannelError::WouldBlock) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(sent > 0);
        let waited = Duration::from_millis(50);
        assert!(matches!(
            sup.send_timeout(&ToRouter::Shutdown, &[], waited),
            Err(ChannelError::Timeout(t)) if t == waited
        ));
        let mut got = 0;
        while router.recv().unwrap().is_some() {
            got += 1;
        }
        assert_eq!(got, sent);
        sup.send_timeout(&ToRouter::Shutdown, &[], waited).unwrap();
        assert_eq!(router.recv().unwrap().unwrap().0, ToRouter::Shutdown);
    }

    #[test]
    fn from_fd_wraps_an_inherited_end() {
        let (sup, router) = ends();
        let mut router = RouterEnd::from_fd(router.into_fd()).unwrap();
        assert!(router.recv().unwrap().is_none());
        sup.send(&ToRouter::Shutdown, &[]).unwrap();
        assert_eq!(router.recv().unwrap().unwrap().0, ToRouter::Shutdown);
    }
}
