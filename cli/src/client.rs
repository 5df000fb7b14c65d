//! A blocking client of the supervisor's socket: one frame out, one frame back.

use anyhow::{bail, Context, Result};
use proto::api::{ContainerInfo, ErrorBody, Request, RequestFrame, Response};
use proto::frame::channel::{CallError, FrameClient};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// A connection to the supervisor.
#[derive(Debug)]
pub struct Client {
    channel: FrameClient<UnixStream, RequestFrame, Response>,
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
        Ok(Self {
            channel: FrameClient::new(stream),
        })
    }

    /// Sends a request and reads its answer; an error answer becomes an `Err` with the
    /// supervisor's message.
    ///
    /// # Errors
    /// Transport failures and error answers.
    pub fn call(&mut self, request: Request) -> Result<Response> {
        // A refused client (e.g. wrong uid) is answered and closed before its request is
        // read: `call` reads that answer before reporting a failed send.
        let resp = match self.channel.call(&RequestFrame::new(request)) {
            Ok(resp) => resp,
            Err(CallError::Send(e)) => {
                return Err(e).context("cannot send request to the supervisor")
            }
            Err(CallError::Closed) => bail!("the supervisor closed the connection"),
            Err(CallError::Receive(e)) => {
                return Err(e).context("cannot read the supervisor's answer")
            }
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
