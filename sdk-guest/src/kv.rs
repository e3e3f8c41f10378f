//! The installation's key-value store (ops `kv.get`, `kv.set`, `kv.delete`, `kv.list`).
//!
//! Values are any JSON, at most 64 KiB of JSON text; keys are 1–512 bytes; an installation
//! keeps at most 10 000 keys (`weft_abi::limits`). Storing `null` keeps the key (it is
//! listed) with a value that [`get`] reads as `None`, like an absent key; [`delete`] removes it.
//!
//! ```
//! use weft_sdk::kv;
//!
//! kv::set("counter", &41)?;
//! let next = kv::get::<u64>("counter")?.unwrap_or(0) + 1;
//! kv::set("counter", &next)?;
//! assert_eq!(kv::list("count")?, ["counter"]);
//! kv::delete("counter")?;
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{Error, Result, host};

/// The value at `key` parsed into `T`, or `None` if there is none.
///
/// Fails (500) if the host call fails or the stored value does not fit `T`.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match host::call("kv.get", json!({ "key": key }), 500)? {
        Value::Null => Ok(None),
        value => serde_json::from_value(value)
            .map(Some)
            .map_err(|err| Error::internal(format!("kv.get {key:?}: unexpected value: {err}"))),
    }
}

/// Stores `value` (serialized to JSON) at `key`.
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<()> {
    let value = serde_json::to_value(value)?;
    host::call("kv.set", json!({ "key": key, "value": value }), 500).map(drop)
}

/// Deletes `key` (no error if absent).
pub fn delete(key: &str) -> Result<()> {
    host::call("kv.delete", json!({ "key": key }), 500).map(drop)
}

/// The keys starting with `prefix` (`""` lists every key).
pub fn list(prefix: &str) -> Result<Vec<String>> {
    let keys = host::call("kv.list", json!({ "prefix": prefix }), 500)?;
    serde_json::from_value(keys).map_err(|err| Error::internal(format!("kv.list: unexpected result: {err}")))
}
