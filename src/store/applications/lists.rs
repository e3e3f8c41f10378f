//! What an application keeps as lists: UI extensions per context, the contexts its UI is
//! disabled in for everybody, the unfurl domains and patterns it declared, the rights it
//! requires and its ssh keys. Rows of their own (migration 20261213000000), so adding,
//! toggling or removing one entry writes its own rows and never rewrites the application:
//! concurrent updates of the application, of its secrets and of other lists lose nothing.
//! Writes that check a limit are serialized per application and list, as elsewhere.

use serde_json::Value;
use sqlx::Row;

use crate::store::{Result, Store, now_ms};

/// A declared unfurl target: a domain or a link prefix (pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnfurlKind {
    /// `unfurlDomains`: a host (and its subdomains).
    Domain,
    /// `unfurlPatterns`: a prefix of the link.
    Pattern,
}

impl UnfurlKind {
    fn column(self) -> &'static str {
        match self {
            UnfurlKind::Domain => "domain",
            UnfurlKind::Pattern => "pattern",
        }
    }
}

/// An ssh key of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKeyRecord {
    /// `SHA256:…` of the key blob; unique per application.
    pub fingerprint: String,
    /// The OpenSSH public key line.
    pub public_key: String,
    /// Its comment.
    pub comment: Option<String>,
}

/// Why a list write was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRefusal {
    /// The list already holds its maximum.
    Full,
    /// The entry is there already.
    Duplicate,
    /// This value is not in the list (authorizing an undeclared unfurl target).
    Missing(String),
}

impl Store {
    /// The UI extensions of every context of an application, by context.
    pub async fn ui_extensions(&self, app_id: &str) -> Result<Vec<(String, Value)>> {
        let rows =
            sqlx::query("SELECT context, extensions FROM application_ui_extensions WHERE app_id = $1 ORDER BY context")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("context")?, serde_json::from_str(row.try_get::<&str, _>("extensions")?)?)))
            .collect()
    }

    /// Replaces the UI extensions of one context; refused when it would be the application's
    /// `max`+1st context.
    pub async fn set_ui_extensions(
        &self,
        app_id: &str,
        context: &str,
        extensions: &Value,
        max: i64,
    ) -> Result<std::result::Result<(), ListRefusal>> {
        let now = now_ms();
        let json = extensions.to_string();
        let update = sqlx::query(
            "UPDATE application_ui_extensions SET extensions = $3, updated_at = $4 WHERE app_id = $1 AND context = $2",
        )
        .bind(app_id)
        .bind(context)
        .bind(&json)
        .bind(now);
        let insert = sqlx::query(
            "INSERT INTO application_ui_extensions (app_id, context, extensions, updated_at) \
             SELECT $1, $2, $3, $4 WHERE (SELECT COUNT(*) FROM application_ui_extensions WHERE app_id = $1) < $5 \
             ON CONFLICT (app_id, context) DO UPDATE SET extensions = $3, updated_at = $4",
        )
        .bind(app_id)
        .bind(context)
        .bind(&json)
        .bind(now)
        .bind(max);
        let written = self.upsert_within_cap(&format!("app-ui-extensions:{app_id}"), update, insert).await?;
        Ok(if written { Ok(()) } else { Err(ListRefusal::Full) })
    }

    /// The contexts an application's UI is disabled in for everybody.
    pub async fn ui_disabled_contexts(&self, app_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT context FROM application_ui_disabled WHERE app_id = $1 ORDER BY context")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("context")?)).collect()
    }

    /// Disables (adds the row) or enables (deletes it) an application's UI for everybody in
    /// one context; `false` when disabling it would make the application's `max`+1st
    /// disabled context.
    pub async fn set_ui_disabled(&self, app_id: &str, context: &str, disabled: bool, max: i64) -> Result<bool> {
        if !disabled {
            sqlx::query("DELETE FROM application_ui_disabled WHERE app_id = $1 AND context = $2")
                .bind(app_id)
                .bind(context)
                .execute(&self.pool)
                .await?;
            return Ok(true);
        }
        // Already disabled: nothing to change (the update only finds the row).
        let update = sqlx::query(
            "UPDATE application_ui_disabled SET disabled_at = disabled_at WHERE app_id = $1 AND context = $2",
        )
        .bind(app_id)
        .bind(context);
        let insert = sqlx::query(
            "INSERT INTO application_ui_disabled (app_id, context, disabled_at) \
             SELECT $1, $2, $3 WHERE (SELECT COUNT(*) FROM application_ui_disabled WHERE app_id = $1) < $4 \
             ON CONFLICT (app_id, context) DO UPDATE SET disabled_at = application_ui_disabled.disabled_at",
        )
        .bind(app_id)
        .bind(context)
        .bind(now_ms())
        .bind(max);
        self.upsert_within_cap(&format!("app-ui-disabled:{app_id}"), update, insert).await
    }

    /// The declared unfurl targets of one kind, in declared order, with whether each is
    /// authorized.
    pub async fn unfurl_targets(&self, app_id: &str, kind: UnfurlKind) -> Result<Vec<(String, bool)>> {
        let rows = sqlx::query(
            "SELECT value, authorized FROM application_unfurl_targets WHERE app_id = $1 AND kind = $2 \
             ORDER BY position, value",
        )
        .bind(app_id)
        .bind(kind.column())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("value")?, row.try_get::<i64, _>("authorized")? != 0))).collect()
    }

    /// The authorized unfurl targets of the active applications of an organization:
    /// `(app_id, kind, value)`, per application in creation order.
    pub async fn authorized_unfurl_targets(&self, org_id: &str) -> Result<Vec<(String, UnfurlKind, String)>> {
        let rows = sqlx::query(
            "SELECT t.app_id, t.kind, t.value FROM application_unfurl_targets t \
             JOIN applications a ON a.id = t.app_id \
             WHERE a.org_id = $1 AND a.status = 'active' AND t.authorized = 1 \
             ORDER BY a.created_at, a.id, t.kind, t.position",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind = match row.try_get::<&str, _>("kind")? {
                    "domain" => UnfurlKind::Domain,
                    _ => UnfurlKind::Pattern,
                };
                Ok((row.try_get("app_id")?, kind, row.try_get("value")?))
            })
            .collect()
    }

    /// Makes `values` (distinct, in order) the declared targets of one kind: the others are
    /// deleted, new ones start unauthorized, kept ones keep their authorization.
    pub async fn declare_unfurl_targets(&self, app_id: &str, kind: UnfurlKind, values: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("app-unfurl-targets:{app_id}:{}", kind.column())).await?;
        let kept: Vec<String> = (0..values.len()).map(|i| format!("${}", i + 3)).collect();
        let delete = if kept.is_empty() {
            "DELETE FROM application_unfurl_targets WHERE app_id = $1 AND kind = $2".to_owned()
        } else {
            format!(
                "DELETE FROM application_unfurl_targets WHERE app_id = $1 AND kind = $2 AND value NOT IN ({})",
                kept.join(", ")
            )
        };
        let mut query = sqlx::query(&delete).bind(app_id).bind(kind.column());
        for value in values {
            query = query.bind(value);
        }
        query.execute(&mut *tx).await?;
        for (position, value) in values.iter().enumerate() {
            sqlx::query(
                "INSERT INTO application_unfurl_targets (app_id, kind, value, position, authorized) \
                 VALUES ($1, $2, $3, $4, 0) ON CONFLICT (app_id, kind, value) DO UPDATE SET position = $4",
            )
            .bind(app_id)
            .bind(kind.column())
            .bind(value)
            .bind(position as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Authorizes (or takes back) declared targets; refused, changing nothing, when one of
    /// `values` is not declared.
    pub async fn authorize_unfurl_targets(
        &self,
        app_id: &str,
        kind: UnfurlKind,
        values: &[String],
        authorized: bool,
    ) -> Result<std::result::Result<(), ListRefusal>> {
        let mut distinct: Vec<&String> = Vec::new();
        for value in values {
            if !distinct.contains(&value) {
                distinct.push(value);
            }
        }
        if distinct.is_empty() {
            return Ok(Ok(()));
        }
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("app-unfurl-targets:{app_id}:{}", kind.column())).await?;
        let listed: Vec<String> = (0..distinct.len()).map(|i| format!("${}", i + 4)).collect();
        let update = format!(
            "UPDATE application_unfurl_targets SET authorized = $3 WHERE app_id = $1 AND kind = $2 AND value IN ({})",
            listed.join(", ")
        );
        let mut query = sqlx::query(&update).bind(app_id).bind(kind.column()).bind(i64::from(authorized));
        for value in &distinct {
            query = query.bind(*value);
        }
        if query.execute(&mut *tx).await?.rows_affected() == distinct.len() as u64 {
            tx.commit().await?;
            return Ok(Ok(()));
        }
        // Some value is not declared: find it, and let the rollback undo the update.
        let declared: Vec<String> = sqlx::query_scalar::<_, String>(
            "SELECT value FROM application_unfurl_targets WHERE app_id = $1 AND kind = $2",
        )
        .bind(app_id)
        .bind(kind.column())
        .fetch_all(&mut *tx)
        .await?;
        let missing = distinct.iter().find(|v| !declared.contains(v)).map_or_else(String::new, |v| (*v).clone());
        Ok(Err(ListRefusal::Missing(missing)))
    }

    /// The rights an application requires, in the order they were added.
    pub async fn required_rights(&self, app_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT right_code FROM application_required_rights WHERE app_id = $1 ORDER BY position, right_code",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("right_code")?)).collect()
    }

    /// Removes `remove`, then appends those of `add` it does not hold yet; refused, changing
    /// nothing, when that would make more than `max`. Returns the rights it then requires.
    pub async fn update_required_rights(
        &self,
        app_id: &str,
        add: &[String],
        remove: &[String],
        max: i64,
    ) -> Result<std::result::Result<Vec<String>, ListRefusal>> {
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("app-required-rights:{app_id}")).await?;
        for code in remove {
            sqlx::query("DELETE FROM application_required_rights WHERE app_id = $1 AND right_code = $2")
                .bind(app_id)
                .bind(code)
                .execute(&mut *tx)
                .await?;
        }
        for code in add {
            sqlx::query(
                "INSERT INTO application_required_rights (app_id, right_code, position) \
                 SELECT $1, $2, COALESCE(MAX(position), -1) + 1 FROM application_required_rights WHERE app_id = $1 \
                 ON CONFLICT (app_id, right_code) DO NOTHING",
            )
            .bind(app_id)
            .bind(code)
            .execute(&mut *tx)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT right_code FROM application_required_rights WHERE app_id = $1 ORDER BY position, right_code",
        )
        .bind(app_id)
        .fetch_all(&mut *tx)
        .await?;
        let required = rows.iter().map(|row| row.try_get("right_code")).collect::<sqlx::Result<Vec<String>>>()?;
        if required.len() as i64 > max {
            return Ok(Err(ListRefusal::Full));
        }
        tx.commit().await?;
        Ok(Ok(required))
    }

    /// The ssh keys of an application, in the order they were added.
    pub async fn ssh_keys(&self, app_id: &str) -> Result<Vec<SshKeyRecord>> {
        let rows = sqlx::query(
            "SELECT fingerprint, public_key, comment FROM application_ssh_keys WHERE app_id = $1 \
             ORDER BY position, fingerprint",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SshKeyRecord {
                    fingerprint: row.try_get("fingerprint")?,
                    public_key: row.try_get("public_key")?,
                    comment: row.try_get("comment")?,
                })
            })
            .collect()
    }

    /// Adds an ssh key unless the application has it already or holds `max`.
    pub async fn add_ssh_key(
        &self,
        app_id: &str,
        key: &SshKeyRecord,
        max: i64,
    ) -> Result<std::result::Result<(), ListRefusal>> {
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("app-ssh-keys:{app_id}")).await?;
        let inserted = sqlx::query(
            "INSERT INTO application_ssh_keys (app_id, fingerprint, public_key, comment, position) \
             SELECT $1, $2, $3, $4, COALESCE(MAX(position), -1) + 1 FROM application_ssh_keys WHERE app_id = $1 \
             HAVING COUNT(*) < $5 ON CONFLICT (app_id, fingerprint) DO NOTHING",
        )
        .bind(app_id)
        .bind(&key.fingerprint)
        .bind(&key.public_key)
        .bind(&key.comment)
        .bind(max)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            tx.commit().await?;
            return Ok(Ok(()));
        }
        let exists = sqlx::query("SELECT 1 FROM application_ssh_keys WHERE app_id = $1 AND fingerprint = $2")
            .bind(app_id)
            .bind(&key.fingerprint)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        Ok(Err(if exists { ListRefusal::Duplicate } else { ListRefusal::Full }))
    }

    /// Deletes an ssh key; `false` when there was none.
    pub async fn delete_ssh_key(&self, app_id: &str, fingerprint: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM application_ssh_keys WHERE app_id = $1 AND fingerprint = $2")
            .bind(app_id)
            .bind(fingerprint)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }
}
