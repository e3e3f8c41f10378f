//! One event's input, in the two forms the guest ABIs take.
//!
//! ABI v1 reads one JSON document, `{"abi":1,"event":…,"environment":…}`, with a fetch
//! request's body as base64 inside the event. ABI v2 reads the parts side by side in one
//! buffer: `[u32 event_len][u32 environment_len][event JSON][environment JSON][body bytes]`
//! (lengths little-endian; the body is whatever follows), with no body inside the event.
//! The host builds the form its module speaks; the other is converted here (dev mode and
//! tests hand v1 JSON to any module).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::outcome::{Failure, FailureKind};

/// An event's input.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// ABI v1's invocation JSON.
    Json(&'a [u8]),
    /// ABI v2's parts.
    Parts(EventParts<'a>),
}

/// ABI v2's parts of an input.
#[derive(Debug, Clone, Copy)]
pub struct EventParts<'a> {
    /// The event object (`type` first), a fetch request without its body.
    pub event: &'a [u8],
    /// The environment object, as encoded once per installation.
    pub environment: &'a [u8],
    /// A fetch request's body (empty otherwise).
    pub body: &'a [u8],
}

impl EventParts<'_> {
    /// The size of the v2 input buffer.
    pub fn len(&self) -> usize {
        8 + self.event.len() + self.environment.len() + self.body.len()
    }

    /// Whether there is nothing at all (never: the header is 8 bytes).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The 8-byte header of the v2 buffer.
    pub(crate) fn header(&self) -> [u8; 8] {
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&(self.event.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&(self.environment.len() as u32).to_le_bytes());
        header
    }
}

/// Owned v2 parts, converted from v1 JSON.
pub(crate) struct OwnedParts {
    event: Vec<u8>,
    environment: Vec<u8>,
    body: Vec<u8>,
}

impl OwnedParts {
    pub(crate) fn parts(&self) -> EventParts<'_> {
        EventParts { event: &self.event, environment: &self.environment, body: &self.body }
    }
}

fn bad_input(why: impl std::fmt::Display) -> Failure {
    Failure::new(FailureKind::BadInput, format!("the invocation cannot be converted: {why}"))
}

impl<'a> Input<'a> {
    /// The v1 invocation JSON.
    pub(crate) fn to_v1(self) -> Result<Cow<'a, [u8]>, Failure> {
        match self {
            Input::Json(json) => Ok(Cow::Borrowed(json)),
            Input::Parts(parts) => {
                let mut event: Value = serde_json::from_slice(parts.event).map_err(bad_input)?;
                if let Some(request) = event.get_mut("request").and_then(Value::as_object_mut) {
                    request.insert("body".into(), Value::String(BASE64.encode(parts.body)));
                }
                let mut json = Vec::with_capacity(64 + parts.len() * 4 / 3);
                json.extend_from_slice(br#"{"abi":1,"event":"#);
                serde_json::to_writer(&mut json, &event).map_err(bad_input)?;
                json.extend_from_slice(br#","environment":"#);
                json.extend_from_slice(if parts.environment.is_empty() { b"{}" } else { parts.environment });
                json.push(b'}');
                Ok(Cow::Owned(json))
            }
        }
    }

    /// The v2 parts, converting v1 JSON.
    pub(crate) fn to_v2(json: &[u8]) -> Result<OwnedParts, Failure> {
        let mut invocation: Value = serde_json::from_slice(json).map_err(bad_input)?;
        let Some(fields) = invocation.as_object_mut() else { return Err(bad_input("not an object")) };
        let mut event = fields.remove("event").ok_or_else(|| bad_input("no `event`"))?;
        let environment = fields.remove("environment").unwrap_or(Value::Object(Default::default()));
        let mut body = Vec::new();
        if let Some(request) = event.get_mut("request").and_then(Value::as_object_mut)
            && let Some(encoded) = request.remove("body")
        {
            if let Value::String(encoded) = encoded {
                body = BASE64.decode(encoded).map_err(|e| bad_input(format!("request body: {e}")))?;
            }
        }
        Ok(OwnedParts {
            event: serde_json::to_vec(&event).map_err(bad_input)?,
            environment: serde_json::to_vec(&environment).map_err(bad_input)?,
            body,
        })
    }
}
