//! Background tasks (op `task.queue`): queue a JSON object now, get it back later as a
//! `task` event handled by [`Handler::task`](crate::Handler::task).
//!
//! ```
//! use serde_json::json;
//!
//! weft_sdk::tasks::queue(&json!({"kind": "sync", "page": 2}), 60)?;
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use serde::Serialize;
use serde_json::json;

use crate::{Error, Result, host};

/// The longest delay a task can be scheduled with: one day, in seconds.
pub const MAX_SCHEDULE_SECS: u32 = weft_abi::limits::MAX_SCHEDULE_SECS;

/// Queues `task`, which must serialize to a JSON object, to run in `schedule_secs`
/// seconds (0 = as soon as possible, at most [`MAX_SCHEDULE_SECS`]).
///
/// Fails with 500 if the task is not an object, the delay is out of range, or the host
/// refuses it.
pub fn queue<T: Serialize + ?Sized>(task: &T, schedule_secs: u32) -> Result<()> {
    if schedule_secs > MAX_SCHEDULE_SECS {
        return Err(Error::internal(format!(
            "task.queue: schedule {schedule_secs}s is over the maximum of {MAX_SCHEDULE_SECS}s"
        )));
    }
    let task = serde_json::to_value(task)?;
    if !task.is_object() {
        return Err(Error::internal("task.queue: a task must be a json object"));
    }
    host::call("task.queue", json!({ "task": task, "schedule": schedule_secs }), 500).map(drop)
}
