//! What an invocation produced: the guest's outcome, or why it failed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::host::LogLine;

/// Everything the host needs to answer and record one invocation.
#[derive(Debug)]
pub struct RunReport {
    /// The guest's outcome, or the reason it produced none.
    pub result: Result<Outcome, Failure>,
    /// Log lines: the `log` op in call order, then captured stdout and stderr.
    pub logs: Vec<LogLine>,
    /// Wall-clock time from instantiation to the end of `weft_handle`.
    pub duration: Duration,
}

/// The outcome JSON a guest returned from `weft_handle`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `{"response":{…}}`: an HTTP response (for `fetch` events).
    Response(GuestResponse),
    /// `{"error":{"code":…,"message":"…"}}`: the handler reported an error.
    Error {
        /// An HTTP status code.
        code: u16,
        /// A human readable message.
        message: String,
    },
    /// `{}`: the handler had nothing to say.
    None,
}

/// An HTTP response produced by a guest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuestResponse {
    /// HTTP status, 100–599.
    pub status: u16,
    /// Response headers.
    pub headers: BTreeMap<String, String>,
    /// Response body (decoded from base64).
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// Why an invocation produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The class of failure, recorded in the events log.
    pub kind: FailureKind,
    /// Details for the author.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// The classes of guest failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The wall-clock deadline passed.
    Timeout,
    /// The guest needed more memory than its limit and trapped.
    MemoryLimit,
    /// The guest recursed past the stack limit.
    StackOverflow,
    /// The guest trapped (unreachable, out-of-bounds access, panic, …).
    Trap,
    /// The guest called `proc_exit`.
    Exit,
    /// The outcome JSON is larger than allowed.
    OutputTooLarge,
    /// The outcome is not valid outcome JSON or points outside guest memory.
    BadOutput,
    /// `weft_alloc` (v1) or `weft_reserve` (v2) returned 0 for the invocation.
    AllocFailed,
    /// ABI v2: the guest's input buffer lies outside its memory, or the input could not be
    /// converted to the module's ABI.
    BadInput,
    /// The guest made more host calls (or outbound requests) than allowed.
    HostCallLimit,
    /// The module could not be instantiated.
    Instantiate,
    /// Dev mode: the author's tunnel did not answer in time.
    TunnelUnreachable,
}

impl FailureKind {
    /// The snake_case name recorded in the events log.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::Trap => "trap",
            FailureKind::Exit => "exit",
            FailureKind::OutputTooLarge => "output_too_large",
            FailureKind::BadOutput => "bad_output",
            FailureKind::AllocFailed => "alloc_failed",
            FailureKind::BadInput => "bad_input",
            FailureKind::HostCallLimit => "host_call_limit",
            FailureKind::Instantiate => "instantiate",
            FailureKind::TunnelUnreachable => "tunnel_unreachable",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutcome<'a> {
    #[serde(borrow)]
    response: Option<RawResponse<'a>>,
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawResponse<'a> {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// JSON encoders leave base64's characters unescaped, so the text is normally read in
    /// place (an escaped one makes it a copy).
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawError {
    code: u16,
    #[serde(default)]
    message: String,
}

impl Outcome {
    /// Parses the outcome JSON returned by `weft_handle`.
    pub fn parse(bytes: &[u8]) -> Result<Outcome, Failure> {
        let bad = |why: String| Failure::new(FailureKind::BadOutput, why);
        let raw: RawOutcome =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("outcome is not valid outcome JSON: {e}")))?;
        match (raw.response, raw.error) {
            (Some(_), Some(_)) => Err(bad("outcome has both `response` and `error`".into())),
            (Some(response), None) => {
                if !(100..=599).contains(&response.status) {
                    return Err(bad(format!("response status {} is not 100–599", response.status)));
                }
                let body = match response.body {
                    Some(body) => {
                        BASE64.decode(body.as_bytes()).map_err(|e| bad(format!("response body is not base64: {e}")))?
                    }
                    None => Vec::new(),
                };
                Ok(Outcome::Response(GuestResponse { status: response.status, headers: response.headers, body }))
            }
            (None, Some(error)) => {
                if !(400..=599).contains(&error.code) {
                    return Err(bad(format!("error code {} is not 400–599", error.code)));
                }
                Ok(Outcome::Error { code: error.code, message: error.message })
            }
            (None, None) => Ok(Outcome::None),
        }
    }
}

impl Outcome {
    /// Parses an ABI v2 outcome: `[u32 header_len][header JSON][body bytes]`, the header
    /// being the v1 outcome JSON without a body.
    pub fn parse_v2(bytes: &[u8]) -> Result<Outcome, Failure> {
        let bad = |why: String| Failure::new(FailureKind::BadOutput, why);
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(bad(format!("outcome is {} bytes, shorter than its 4-byte header length", bytes.len())));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(bad(format!("outcome header claims {len} bytes but only {} follow", rest.len())));
        }
        let (header, body) = rest.split_at(len);
        let raw: RawOutcome =
            serde_json::from_slice(header).map_err(|e| bad(format!("outcome header is not outcome JSON: {e}")))?;
        match (raw.response, raw.error) {
            (Some(_), Some(_)) => Err(bad("outcome has both `response` and `error`".into())),
            (Some(response), None) => {
                if response.body.is_some() {
                    return Err(bad("a v2 response's body follows the header, not inside it".into()));
                }
                if !(100..=599).contains(&response.status) {
                    return Err(bad(format!("response status {} is not 100–599", response.status)));
                }
                Ok(Outcome::Response(GuestResponse {
                    status: response.status,
                    headers: response.headers,
                    body: body.to_vec(),
                }))
            }
            (None, error) if !body.is_empty() => {
                let _ = error;
                Err(bad(format!("{} body bytes follow an outcome that is not a response", body.len())))
            }
            (None, Some(error)) => {
                if !(400..=599).contains(&error.code) {
                    return Err(bad(format!("error code {} is not 400–599", error.code)));
                }
                Ok(Outcome::Error { code: error.code, message: error.message })
            }
            (None, None) => Ok(Outcome::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(header: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn parses_v2_outcomes_with_the_body_beside_the_header() {
        let Outcome::Response(r) = Outcome::parse_v2(&v2(r#"{"response":{"status":200}}"#, b"\0raw")).unwrap() else {
            panic!("expected a response")
        };
        assert_eq!((r.status, r.body.as_slice()), (200, &b"\0raw"[..]));
        assert_eq!(Outcome::parse_v2(&v2("{}", b"")).unwrap(), Outcome::None);
    }

    #[test]
    fn a_v2_header_that_lies_about_its_length_is_bad_output() {
        let mut lying = v2(r#"{"response":{"status":200}}"#, b"body");
        lying[..4].copy_from_slice(&1000u32.to_le_bytes());
        for bad in [lying, vec![1, 0], v2("{}", b"stray"), v2(r#"{"response":{"status":200,"body":"aGk="}}"#, b"")] {
            assert_eq!(Outcome::parse_v2(&bad).unwrap_err().kind, FailureKind::BadOutput);
        }
    }

    #[test]
    fn parses_each_outcome_shape() {
        assert_eq!(Outcome::parse(b"{}").unwrap(), Outcome::None);
        assert_eq!(
            Outcome::parse(br#"{"error":{"code":404,"message":"no"}}"#).unwrap(),
            Outcome::Error { code: 404, message: "no".into() }
        );
        let Outcome::Response(r) =
            Outcome::parse(br#"{"response":{"status":201,"headers":{"a":"b"},"body":"aGk="}}"#).unwrap()
        else {
            panic!("expected a response")
        };
        assert_eq!((r.status, r.body.as_slice(), r.headers["a"].as_str()), (201, &b"hi"[..], "b"));
    }

    #[test]
    fn rejects_malformed_outcomes_as_bad_output() {
        for bad in [
            &b"not json"[..],
            br#"{"response":{"status":99}}"#,
            br#"{"response":{"status":200,"body":"%%"}}"#,
            br#"{"error":{"code":200}}"#,
            br#"{"response":{"status":200},"error":{"code":500}}"#,
            br#"{"surprise":1}"#,
        ] {
            assert_eq!(Outcome::parse(bad).unwrap_err().kind, FailureKind::BadOutput);
        }
    }
}
