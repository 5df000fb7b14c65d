//! A blocking client of the supervisor's socket: one frame out, one frame back.

use anyhow::{bail, Context, Result};
use proto::api::{ContainerInfo, ErrorBody, Request, RequestFrame, Response};
use proto::frame;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// A connection to the supervisor.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the supervisor at `socket`.
    ///
    /// # Errors
    /// When nothing listens there.
    pub fn connect(socket: &Path) -> Result<Self> {
        let stream = UnixStream::connect(socket).with_context(|| {
            format!(
                "cannot connect to the supervisor at {} (is `engine supervisor` running?)",
                socket.display()
            )
        })?;
        Ok(Self { stream })
    }

    /// Sends a request and reads its answer; an error answer becomes an `Err` with the
    /// supervisor's message.
    ///
    /// # Errors
    /// Transport failures and error answers.
    pub fn call(&mut self, request: Request) -> Result<Response> {
        let sent = frame::write_frame(&mut self.stream, &RequestFrame::new(request));
        // A refused client (e.g. wrong uid) is answered and closed before its request is
        // read: read that answer before reporting the failed send.
        let read: Result<Option<Response>, _> =
            frame::read_frame_with_limit(&mut self.stream, frame::MAX_RESPONSE_LEN);
        let resp = match (sent, read) {
            (_, Ok(Some(resp))) => resp,
            (Err(e), _) => return Err(e).context("cannot send request to the supervisor"),
            (Ok(()), Ok(None)) => bail!("the supervisor closed the connection"),
            (Ok(()), Err(e)) => return Err(e).context("cannot read the supervisor's answer"),
        };
        match resp {
            Response::Error(e) => Err(Refused(e).into()),
            other => Ok(other),
        }
    }

    /// Sends a request answered by one container record.
    ///
    /// # Errors
    /// As [`Client::call`], or an unexpected answer.
    pub fn container(&mut self, request: Request) -> Result<ContainerInfo> {
        match self.call(request)? {
            Response::Container(info) => Ok(info),
            other => bail!("unexpected answer from the supervisor: {other:?}"),
        }
    }
}

/// An error answer of the supervisor; `Display` is its message.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
pub struct Refused(pub ErrorBody);

/// The exit status of the CLI for an error: [`proto::exit::error_status`] of the supervisor's
/// error class when `e` is an error answer, of none otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    proto::exit::error_status(e.downcast_ref::<Refused>().map(|r| r.0.code))
}
