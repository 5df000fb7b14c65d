//! Messages for the log-router that its control socket did not take yet (it was full): kept
//! in order with their own duplicated fds, and sent when the socket has room again, so that
//! the supervisor's loop never waits on the router.

use nix::errno::Errno;
use proto::router::{ChannelError, SupervisorEnd, ToRouter};
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Queued messages, oldest first.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<(ToRouter, Vec<OwnedFd>)>,
}

impl Outbox {
    /// Sends `msg` (with `fds`) now if nothing is queued and the socket takes it; queues it
    /// otherwise (duplicating the fds: the caller keeps its own).
    ///
    /// # Errors
    /// The socket's error other than [`ChannelError::WouldBlock`] (nothing queued), or
    /// [`ChannelError::Socket`] when an fd cannot be duplicated (`EMFILE`).
    pub fn post(
        &mut self,
        sock: &SupervisorEnd,
        msg: &ToRouter,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ChannelError> {
        self.flush(sock)?;
        if self.queue.is_empty() {
            match sock.send(msg, fds) {
                Err(ChannelError::WouldBlock) => {}
                done => return done,
            }
        }
        let own = fds
            .iter()
            .map(|fd| fd.try_clone_to_owned())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ChannelError::Socket(Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
        self.queue.push_back((msg.clone(), own));
        Ok(())
    }

    /// Sends queued messages until the socket is full again (call when it is writable).
    ///
    /// # Errors
    /// The first error other than [`ChannelError::WouldBlock`]; the message concerned is
    /// dropped (after [`ChannelError::Closed`], drop everything with [`Outbox::clear`]).
    pub fn flush(&mut self, sock: &SupervisorEnd) -> Result<(), ChannelError> {
        while let Some((msg, fds)) = self.queue.front() {
            let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
            let sent = sock.send(msg, &fds);
            if matches!(sent, Err(ChannelError::WouldBlock)) {
                return Ok(());
            }
            self.queue.pop_front();
            sent?;
        }
        Ok(())
    }

    /// Drops every queued message (the router is gone).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Number of queued messages.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::router::channel::pair;
    use proto::router::FromRouter;
    use std::time::{Duration, Instant};

    fn add(i: usize) -> ToRouter {
        ToRouter::AddContainer {
            id: format!("c{i}"),
            log_path: "/l".into(),
            sinks: Vec::new(),
        }
    }

    #[test]
    fn a_full_socket_queues_in_order_with_the_fds_and_never_blocks() {
        let (sock, mut router) = pair::<ToRouter, FromRouter>().unwrap();
        let mut outbox = Outbox::default();
        let (r, _w) = nix::unistd::pipe().unwrap();
        let n = 2000;
        for i in 0..n {
            let started = Instant::now();
            outbox
                .post(&sock, &add(i), &[r.as_fd(), r.as_fd()])
                .unwrap();
            assert!(started.elapsed() < Duration::from_secs(1), "a send blocked");
        }
        assert!(!outbox.is_empty(), "the socket never filled up");
        let mut seen = 0;
        while seen < n {
            match router.recv().unwrap() {
                Some((ToRouter::AddContainer { id, .. }, fds)) => {
                    assert_eq!(id, format!("c{seen}"));
                    assert_eq!(fds.len(), 2);
                    seen += 1;
                }
                Some(other) => panic!("{other:?}"),
                // Read all that was sent: room for more.
                None => outbox.flush(&sock).unwrap(),
            }
        }
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn a_closed_router_is_reported_by_the_flush() {
        let (sock, router) = pair::<ToRouter, FromRouter>().unwrap();
        let mut outbox = Outbox::default();
        while outbox.is_empty() {
            outbox.post(&sock, &add(0), &[]).unwrap();
        }
        drop(router);
        assert!(matches!(outbox.flush(&sock), Err(ChannelError::Closed)));
    }
}
