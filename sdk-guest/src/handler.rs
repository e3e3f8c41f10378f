//! The [`Handler`] trait, the [`Outcome`] of an event, and
//! [`export_handler!`](crate::export_handler), which turns a handler into the guest ABI
//! exports.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::{Event, LifecycleEvent, LifecycleKind};
use crate::http::{Request, Response};
use crate::{Environment, Error, Result};

/// An integration: one method per event kind, each with a default.
///
/// Implement only what the integration needs. A `fetch` left unhandled (`Ok(None)`)
/// produces no outcome, which the host answers with 406. An `Err` becomes the outcome
/// `{"error":{"code":<status>,"message":…}}`. A panic traps the instance; the host
/// records the trap.
///
/// ```
/// use serde_json::Value;
/// use weft_sdk::{Environment, Handler, LifecycleEvent, Request, Response, Result};
///
/// struct Counter;
///
/// impl Handler for Counter {
///     fn fetch(&self, req: Request, _env: &Environment) -> Result<Option<Response>> {
///         if req.path != "/count" {
///             return Ok(None);
///         }
///         let count = weft_sdk::kv::get::<u64>("count")?.unwrap_or(0) + 1;
///         weft_sdk::kv::set("count", &count)?;
///         Ok(Some(Response::json(&count)?))
///     }
///
///     fn installation_setup(&self, _event: &LifecycleEvent, env: &Environment) -> Result<()> {
///         weft_sdk::log::info(format!("installed: {:?}", env.installation_id()));
///         Ok(())
///     }
///
///     fn task(&self, task: Value, _env: &Environment) -> Result<()> {
///         weft_sdk::log::debug(format!("task: {task}"));
///         Ok(())
///     }
/// }
/// ```
pub trait Handler {
    /// A `fetch` event: answer the request, or `Ok(None)` to leave it unhandled (406).
    fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
        let _ = (req, env);
        Ok(None)
    }

    /// A `task` event: a task queued with [`tasks::queue`](crate::tasks::queue), or a
    /// cron firing. `task` is the queued object.
    fn task(&self, task: Value, env: &Environment) -> Result<()> {
        let _ = (task, env);
        Ok(())
    }

    /// `installation_setup`: an organization installed or reconfigured the integration.
    fn installation_setup(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }

    /// `installation_deleted`: an organization uninstalled the integration.
    fn installation_deleted(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }

    /// `space_installation_setup`.
    fn space_installation_setup(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }

    /// `space_installation_deleted`.
    fn space_installation_deleted(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }

    /// `site_installation_setup`.
    fn site_installation_setup(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }

    /// `site_installation_deleted`.
    fn site_installation_deleted(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }

    /// Any other event type (always an [`Event::Other`]); the typed kinds above never
    /// reach this method.
    fn event(&self, event: &Event, env: &Environment) -> Result<()> {
        let _ = (event, env);
        Ok(())
    }
}

impl<H: Handler + ?Sized> Handler for &H {
    fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
        (**self).fetch(req, env)
    }
    fn task(&self, task: Value, env: &Environment) -> Result<()> {
        (**self).task(task, env)
    }
    fn installation_setup(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        (**self).installation_setup(event, env)
    }
    fn installation_deleted(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        (**self).installation_deleted(event, env)
    }
    fn space_installation_setup(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        (**self).space_installation_setup(event, env)
    }
    fn space_installation_deleted(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        (**self).space_installation_deleted(event, env)
    }
    fn site_installation_setup(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        (**self).site_installation_setup(event, env)
    }
    fn site_installation_deleted(&self, event: &LifecycleEvent, env: &Environment) -> Result<()> {
        (**self).site_installation_deleted(event, env)
    }
    fn event(&self, event: &Event, env: &Environment) -> Result<()> {
        (**self).event(event, env)
    }
}

/// What handling one event produced; encoded as the outcome JSON the guest returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `{"response":{"status":…,"headers":{…},"body":"<base64>"}}`
    Response(Response),
    /// `{"error":{"code":<status>,"message":"…"}}`
    Error(Error),
    /// `{}`: nothing to answer (an unhandled `fetch`, or any other event that succeeded).
    None,
}

impl Outcome {
    /// Runs `handler` on `event`: calls the method for the event's kind and maps the result.
    ///
    /// The host accepts response statuses 100–599 and error codes 400–599 only: a response
    /// with another status becomes a 500 error, an error with another status a 500 with
    /// the same message.
    pub fn of<H: Handler + ?Sized>(handler: &H, event: Event, env: &Environment) -> Self {
        let result = match event {
            Event::Fetch(fetch) => handler.fetch(fetch.request, env),
            Event::Task { task, .. } => handler.task(task, env).map(|()| None),
            Event::Lifecycle(lifecycle) => {
                let result = match lifecycle.kind {
                    LifecycleKind::InstallationSetup => handler.installation_setup(&lifecycle, env),
                    LifecycleKind::InstallationDeleted => handler.installation_deleted(&lifecycle, env),
                    LifecycleKind::SpaceInstallationSetup => handler.space_installation_setup(&lifecycle, env),
                    LifecycleKind::SpaceInstallationDeleted => handler.space_installation_deleted(&lifecycle, env),
                    LifecycleKind::SiteInstallationSetup => handler.site_installation_setup(&lifecycle, env),
                    LifecycleKind::SiteInstallationDeleted => handler.site_installation_deleted(&lifecycle, env),
                };
                result.map(|()| None)
            }
            other @ Event::Other { .. } => handler.event(&other, env).map(|()| None),
        };
        match result {
            Ok(Some(response)) if (100..=599).contains(&response.status) => Outcome::Response(response),
            Ok(Some(response)) => {
                Outcome::Error(Error::internal(format!("handler answered with invalid status {}", response.status)))
            }
            Ok(None) => Outcome::None,
            Err(err) if (400..=599).contains(&err.status()) => Outcome::Error(err),
            Err(err) => Outcome::Error(err.with_status(500)),
        }
    }

    /// The outcome JSON.
    pub fn to_json(&self) -> Value {
        self.wire().and_then(|wire| serde_json::to_value(wire).ok()).unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// The outcome JSON as bytes, encoded directly (the path every event takes).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.wire().and_then(|wire| serde_json::to_vec(&wire).ok()).unwrap_or_else(|| b"{}".to_vec())
    }

    /// The ABI v2 outcome: `[u32 header_len][header JSON][body bytes]`, the header being
    /// the outcome JSON without the body (which follows it as raw bytes).
    pub fn to_v2_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "lowercase")]
        enum Head<'a> {
            Response { status: u16, headers: &'a crate::http::Headers },
            Error { code: u16, message: &'a str },
        }
        let (head, body) = match self {
            Outcome::Response(response) => {
                (Some(Head::Response { status: response.status, headers: &response.headers }), &response.body[..])
            }
            Outcome::Error(err) => (Some(Head::Error { code: err.status(), message: err.message() }), &[][..]),
            Outcome::None => (None, &[][..]),
        };
        let mut out = vec![0u8; 4];
        let encoded = head.is_some_and(|head| serde_json::to_writer(&mut out, &head).is_ok());
        if !encoded {
            out.truncate(4);
            out.extend_from_slice(b"{}");
        }
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_le_bytes());
        if encoded {
            out.extend_from_slice(body);
        }
        out
    }

    /// The wire form; `None` for the empty outcome `{}`.
    fn wire(&self) -> Option<WireOutcome<'_>> {
        match self {
            Outcome::Response(response) => Some(WireOutcome::Response(response)),
            Outcome::Error(err) => Some(WireOutcome::Error { code: err.status(), message: err.message() }),
            Outcome::None => None,
        }
    }

    /// Parses outcome JSON (the inverse of [`Outcome::to_json`]); `None` if malformed.
    pub fn from_json(value: &Value) -> Option<Self> {
        let object = value.as_object()?;
        if let Some(response) = object.get("response") {
            return serde_json::from_value(response.clone()).ok().map(Outcome::Response);
        }
        if let Some(error) = object.get("error") {
            let status = u16::try_from(error.get("code")?.as_u64()?).ok()?;
            let message = error.get("message")?.as_str()?;
            return Some(Outcome::Error(Error::new(status, message)));
        }
        object.is_empty().then_some(Outcome::None)
    }

    /// The response, if this outcome is one.
    pub fn into_response(self) -> Option<Response> {
        match self {
            Outcome::Response(response) => Some(response),
            _ => None,
        }
    }

    /// The error, if this outcome is one.
    pub fn into_error(self) -> Option<Error> {
        match self {
            Outcome::Error(err) => Some(err),
            _ => None,
        }
    }

    /// Whether this is the empty outcome `{}`.
    pub fn is_none(&self) -> bool {
        matches!(self, Outcome::None)
    }
}

/// [`Outcome`] as the guest ABI encodes it: `{"response":…}` or `{"error":…}`.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum WireOutcome<'a> {
    Response(&'a Response),
    Error { code: u16, message: &'a str },
}

/// Exports a [`Handler`] as the guest ABI v2: `weft_init`, `weft_buffer`, `weft_reserve` and
/// `weft_run`.
///
/// Takes an expression that builds the handler (`MyHandler`, `MyHandler::new()`,
/// `MyHandler::default()`); it is evaluated once per event. Use it once per crate, in a
/// `cdylib`. Before each event it installs the [`log`](crate::log) facade's logger
/// ([`log::init`](crate::log::init)), so `log::info!(…)` lines reach the event's log. The
/// exports are only emitted on `wasm32` targets; natively the macro expands to nothing but
/// a type check, so the crate still builds and tests with `cargo test`.
///
/// weft pre-initialises the module when it is published (its `_initialize` runs once and
/// memory is snapshotted): state set up during initialisation is the same for every event,
/// so never take randomness there (seed per event, e.g. from [`std::collections::hash_map::RandomState`]
/// created inside the handler).
///
/// ```
/// # use weft_sdk::Handler;
/// #[derive(Default)]
/// struct MyHandler;
/// impl Handler for MyHandler {}
///
/// weft_sdk::export_handler!(MyHandler::default());
/// ```
#[macro_export]
macro_rules! export_handler {
    ($handler:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            /// Guest ABI v2: initialisation, run once at publish before the snapshot.
            #[unsafe(no_mangle)]
            pub extern "C" fn weft_init() {
                $crate::log::init();
            }

            /// Guest ABI v2: `(ptr << 32) | capacity` of the input buffer.
            #[unsafe(no_mangle)]
            pub extern "C" fn weft_buffer() -> i64 {
                $crate::abi::buffer()
            }

            /// Guest ABI v2: room for an input of `len` bytes, larger than the buffer.
            #[unsafe(no_mangle)]
            pub extern "C" fn weft_reserve(len: i32) -> i32 {
                $crate::abi::reserve(len)
            }

            /// Guest ABI v2: handles the `len`-byte input the host wrote; returns
            /// `(out_ptr << 32) | out_len` of the outcome.
            #[unsafe(no_mangle)]
            pub extern "C" fn weft_run(len: i32) -> i64 {
                // `log::info!(…)` and friends reach the host (a no-op after the first call).
                $crate::log::init();
                let handler = $handler;
                $crate::abi::run(&handler, len)
            }
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[allow(dead_code)]
            fn __weft_handler() -> impl $crate::Handler {
                $handler
            }
        };
    };
}
