//! The messages of the reverse tunnel between `weft dev` and the server, one JSON text
//! frame each. The server sends `invoke` with an id; the CLI acknowledges it at once with
//! `ack` and answers with `outcome` under the same id. Either side may send `ping` (the
//! other answers `pong`); WebSocket pings keep idle connections alive as well.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_runtime::LogLine;

/// From the server to `weft dev`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The tunnel is registered: events flow from now on.
    Ready {
        /// The integration.
        integration: String,
    },
    /// Run this invocation and answer with [`ClientMessage::Outcome`].
    Invoke {
        /// The request's id.
        id: String,
        /// The invocation JSON.
        invocation: Value,
    },
    /// Answers [`ClientMessage::Ping`].
    Pong,
}

/// From `weft dev` to the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The invocation `id` arrived.
    Ack {
        /// The request's id.
        id: String,
    },
    /// What the module produced for invocation `id`.
    Outcome {
        /// The request's id.
        id: String,
        /// The outcome JSON (`{"response":…}`, `{"error":…}` or `{}`).
        outcome: Value,
        /// The run's log lines.
        #[serde(default)]
        logs: Vec<LogLine>,
    },
    /// A heartbeat; the server answers [`ServerMessage::Pong`].
    Ping,
}
