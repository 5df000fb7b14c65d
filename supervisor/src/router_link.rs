//! The supervisor's side of the log-router: spawns the router process, hands it each
//! container's output fds over a SOCK_SEQPACKET socketpair with SCM_RIGHTS, reads its
//! reports, and restarts it when it dies.
