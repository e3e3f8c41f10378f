//! The events log: one row per invocation.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AnyQuery, Result, Store, placeholders};

/// One recorded invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Event id; ids sort by creation time.
    pub id: String,
    /// The identity of the integration that ran.
    pub integration_id: String,
    /// Its name.
    pub integration: String,
    /// The installation it ran for, if any.
    pub installation_id: Option<String>,
    /// Event type (`fetch`, `task`, …).
    pub event_type: String,
    /// success, failed or dead (a failure no retry follows).
    pub status: String,
    /// Failure class when failed.
    pub error_kind: Option<String>,
    /// Failure detail when failed.
    pub error_message: Option<String>,
    /// HTTP status answered, for fetch events.
    pub response_status: Option<i64>,
    /// Run time in microseconds.
    pub duration_us: i64,
    /// The logs as a JSON array of `{level, message, timestamp}`.
    pub logs: String,
    /// The event object exactly as the module received it, as JSON (fetch request bodies
    /// cut to the server's cap); `None` for events recorded before payloads were kept.
    pub payload: Option<String>,
    /// Creation (ms).
    pub created_at: i64,
}

/// A page of events, newest first.
pub struct EventPage {
    /// The events.
    pub events: Vec<EventRecord>,
    /// All events of the integration that match the filter.
    pub total: i64,
}

/// Which events a listing returns; `None` fields match every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter<'a> {
    /// Only events with this status (`success`, `failed` — dead ones included — or `dead`).
    pub status: Option<&'a str>,
    /// Only events of this type (`fetch`, `task`, …).
    pub event_type: Option<&'a str>,
    /// Only events that ran for this installation.
    pub installation_id: Option<&'a str>,
}

/// The rows of the integration with id `$1` that match the filter bound as `$2`–`$4` by
/// [`EventFilter::bind`]. An empty value matches every row: one statement for every
/// combination. `failed` matches dead-lettered events too (GitBook's statuses are only
/// `success` and `failed`).
const MATCHING: &str = "integration_id = $1 AND ($2 = '' OR status = $2 OR ($2 = 'failed' AND status = 'dead')) \
                        AND ($3 = '' OR type = $3) \
                        AND ($4 = '' OR installation_id = $4)";

impl EventFilter<'_> {
    /// Binds `integration_id` and the filter as [`MATCHING`]'s `$1`–`$4`, so that a page
    /// and its count always select the same events.
    fn bind<'q>(&self, integration_id: &'q str, query: AnyQuery<'q>) -> AnyQuery<'q>
    where
        Self: 'q,
    {
        query
            .bind(integration_id)
            .bind(self.status.unwrap_or(""))
            .bind(self.event_type.unwrap_or(""))
            .bind(self.installation_id.unwrap_or(""))
    }
}

const COLUMNS: &str = "id, integration_id, integration, installation_id, type, status, error_kind, error_message, \
                       response_status, duration_us, logs, created_at, payload";

/// [`COLUMNS`] with the logs left out, for lists (they show the payload, which is capped).
const LIST_COLUMNS: &str = "id, integration_id, integration, installation_id, type, status, error_kind, \
                            error_message, response_status, duration_us, '' AS logs, created_at, payload";

fn record(row: &AnyRow) -> Result<EventRecord> {
    Ok(EventRecord {
        id: row.try_get("id")?,
        integration_id: row.try_get("integration_id")?,
        integration: row.try_get("integration")?,
        installation_id: row.try_get("installation_id")?,
        event_type: row.try_get("type")?,
        status: row.try_get("status")?,
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
        response_status: row.try_get("response_status")?,
        duration_us: row.try_get("duration_us")?,
        logs: row.try_get("logs")?,
        created_at: row.try_get("created_at")?,
        payload: row.try_get("payload")?,
    })
}

impl Store {
    /// Writes a batch of events in one statement.
    pub async fn insert_events(&self, events: &[EventRecord]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO events ({COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING",
            placeholders(self.backend, events.len(), 13)
        );
        let mut insert = sqlx::query(&sql);
        for event in events {
            insert = insert
                .bind(&event.id)
                .bind(&event.integration_id)
                .bind(&event.integration)
                .bind(&event.installation_id)
                .bind(&event.event_type)
                .bind(&event.status)
                .bind(&event.error_kind)
                .bind(&event.error_message)
                .bind(event.response_status)
                .bind(event.duration_us)
                .bind(&event.logs)
                .bind(event.created_at)
                .bind(&event.payload);
        }
        insert.execute(&self.pool).await?;
        Ok(())
    }

    /// Events of integration `integration_id` that match `filter` and are older than the
    /// event `before` (all when empty), newest first, without their logs (`logs` is empty;
    /// [`Store::event`] reads one event's).
    pub async fn events(
        &self,
        integration_id: &str,
        filter: &EventFilter<'_>,
        before: &str,
        limit: i64,
    ) -> Result<EventPage> {
        // A list never shows logs, so it never reads them: each event's may be large.
        let page = format!(
            "SELECT {LIST_COLUMNS} FROM events WHERE {MATCHING} AND ($5 = '' OR id < $5) ORDER BY id DESC LIMIT $6"
        );
        let rows =
            filter.bind(integration_id, sqlx::query(&page)).bind(before).bind(limit).fetch_all(&self.pool).await?;
        let count = format!("SELECT COUNT(*) FROM events WHERE {MATCHING}");
        let total = filter.bind(integration_id, sqlx::query(&count)).fetch_one(&self.pool).await?.try_get(0)?;
        Ok(EventPage { events: rows.iter().map(record).collect::<Result<_>>()?, total })
    }

    /// One event of integration `integration_id`.
    pub async fn event(&self, integration_id: &str, id: &str) -> Result<Option<EventRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE integration_id = $1 AND id = $2"))
            .bind(integration_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }
}
