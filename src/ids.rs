//! Random identifiers and secrets.

use rand::Rng;
use rand::distributions::Alphanumeric;

/// `prefix` followed by `len` random alphanumeric characters.
pub fn random(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    id.extend(rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from));
    id
}

/// An event id that sorts by creation time: `evt_` + 12 hex digits of milliseconds + 10
/// random characters. Keyset pagination of the events log relies on this order.
pub fn event_id(now_ms: i64) -> String {
    let mut id = format!("evt_{:012x}", now_ms.max(0));
    id.extend(rand::thread_rng().sample_iter(&Alphanumeric).take(10).map(|b| char::from(b).to_ascii_lowercase()));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_sort_by_time() {
        let (earlier, later) = (event_id(1_700_000_000_000), event_id(1_700_000_000_001));
        assert!(earlier < later, "{earlier} should sort before {later}");
        assert_eq!(earlier.len(), 4 + 12 + 10);
    }
}
