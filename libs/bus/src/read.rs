//! Reading an ordered consumer to the end of what an operator's tool asked
//! for (a rebuild's last sequence): every message up to it, and no waiting
//! for ever past it.

use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::pull::Ordered;
use futures::StreamExt as _;

/// How long a message may take to come while more are expected.
const STALLED: Duration = Duration::from_secs(30);
/// How long to wait for more once the server has said none is left.
const QUIET: Duration = Duration::from_secs(2);

/// Why a read stopped short.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the stream stopped delivering events")]
    Stalled,
    #[error("{0}")]
    Nats(String),
}

/// The messages of `messages` up to sequence `last`, one at a time; `None`
/// once it is reached. The server's count of what is left says where the
/// filter's matches end before `last`; on a cluster that count can be a
/// moment stale (a leader that has just taken over), so "nothing more" is
/// believed only once nothing more comes for a while — a read that stopped
/// early would drop events.
pub struct ToEnd {
    messages: Ordered,
    last: u64,
    said_done: bool,
    done: bool,
}

impl ToEnd {
    pub fn new(messages: Ordered, last: u64) -> Self {
        Self {
            messages,
            last,
            said_done: false,
            done: false,
        }
    }

    /// The next message and its stream sequence, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<(Message, u64)>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let wait = if self.said_done { QUIET } else { STALLED };
        let next = match tokio::time::timeout(wait, self.messages.next()).await {
            Ok(next) => next,
            Err(_) if self.said_done => return Ok(None),
            Err(_) => return Err(ReadError::Stalled),
        };
        let Some(message) = next else {
            return Ok(None);
        };
        let message = message.map_err(|err| ReadError::Nats(err.to_string()))?;
        let info = message
            .info()
            .map_err(|err| ReadError::Nats(err.to_string()))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence > self.last {
            return Ok(None);
        }
        self.done = sequence >= self.last;
        self.said_done = pending == 0;
        Ok(Some((message, sequence)))
    }
}
