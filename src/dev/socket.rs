//! The server's end of the reverse tunnel: one WebSocket per `weft dev`, over which
//! invocations go out and outcomes come back (see [`super::protocol`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::TunnelRequest;
use super::protocol::{ClientMessage, ServerMessage};
use crate::state::AppState;
use crate::store::IntegrationRecord;

/// How often the server pings an idle tunnel.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A tunnel silent for this long is considered gone.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// Serves one reverse tunnel of `integration` until it closes.
pub async fn serve(state: AppState, integration: IntegrationRecord, mut socket: WebSocket) {
    let (sender, mut requests) = mpsc::channel::<TunnelRequest>(64);
    let connection = state.dev.register(&integration.id, sender);
    let IntegrationRecord { id: integration_id, name: integration, .. } = integration;
    tracing::info!(%integration, connection, "dev tunnel connected");
    let mut pending: HashMap<String, oneshot::Sender<Result<Vec<u8>, String>>> = HashMap::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut last_heard = Instant::now();
    let ready = ServerMessage::Ready { integration: integration.clone() };
    let closed = state.dev.closed();
    tokio::pin!(closed);
    // Every write has a deadline: a client that stops reading is dropped, failing its
    // pending events (the queue retries them), instead of blocking this loop.
    let limit = state.dev.timeout();
    if send(&mut socket, &ready, limit).await {
        loop {
            tokio::select! {
                () = &mut closed => {
                    let _ = tokio::time::timeout(limit, socket.send(Message::Close(None))).await;
                    break;
                }
                request = requests.recv() => {
                    let Some(request) = request else { break };
                    let id = crate::ids::random("inv_", 16);
                    let invocation = serde_json::from_slice(&request.invocation).unwrap_or_default();
                    if !send(&mut socket, &ServerMessage::Invoke { id: id.clone(), invocation }, limit).await {
                        let _ = request.reply.send(Err("the dev tunnel closed".to_owned()));
                        break;
                    }
                    pending.insert(id, request.reply);
                }
                message = socket.recv() => {
                    let Some(Ok(message)) = message else { break };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => match serde_json::from_str::<ClientMessage>(&text) {
                            Ok(ClientMessage::Outcome { id, mut outcome, logs }) => {
                                if let Some(reply) = pending.remove(&id) {
                                    if let Some(fields) = outcome.as_object_mut() {
                                        fields.insert("logs".to_owned(), json!(logs));
                                    }
                                    let _ = reply.send(Ok(outcome.to_string().into_bytes()));
                                }
                            }
                            Ok(ClientMessage::Ack { .. }) => {}
                            Ok(ClientMessage::Ping) => {
                                if !send(&mut socket, &ServerMessage::Pong, limit).await {
                                    break;
                                }
                            }
                            Err(error) => tracing::warn!(%error, %integration, "unreadable dev tunnel message"),
                        },
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        tracing::warn!(%integration, "dev tunnel went silent; closing it");
                        break;
                    }
                    let ping = tokio::time::timeout(limit, socket.send(Message::Ping(Vec::new().into())));
                    if !matches!(ping.await, Ok(Ok(()))) {
                        tracing::warn!(%integration, "dev tunnel stopped reading; closing it");
                        break;
                    }
                }
            }
        }
    }
    state.dev.unregister(&integration_id, connection);
    // Dropping `pending` fails every invocation still waiting: they end at once as
    // `tunnel_unreachable` instead of waiting for the timeout.
    drop(pending);
    tracing::info!(%integration, connection, "dev tunnel disconnected");
}

/// Sends `message`, giving up after `limit`: `false` means the tunnel is gone or stuck.
async fn send(socket: &mut WebSocket, message: &ServerMessage, limit: Duration) -> bool {
    let text = serde_json::to_string(message).expect("protocol messages encode");
    matches!(tokio::time::timeout(limit, socket.send(Message::Text(text.into()))).await, Ok(Ok(())))
}
