//! Organizations: the tenants.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// Its id (also its subdomain-like handle).
    pub id: String,
    /// Display name.
    pub title: String,
    /// Creation time (ms).
    pub created_at: i64,
}

impl Store {
    /// Creates an organization; `false` when the id is taken.
    pub async fn create_org(&self, id: &str, title: &str) -> Result<Option<OrgRecord>> {
        let created_at = now_ms();
        let inserted =
            sqlx::query("INSERT INTO orgs (id, title, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(title)
                .bind(created_at)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok((inserted == 1).then(|| OrgRecord { id: id.to_owned(), title: title.to_owned(), created_at }))
    }

    /// One organization.
    pub async fn org(&self, id: &str) -> Result<Option<OrgRecord>> {
        let row = sqlx::query("SELECT id, title, created_at FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(OrgRecord {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }
}

/// A space or a site of an organization (both have the same shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceRecord {
    /// Its id, unique across organizations.
    pub id: String,
    /// The organization it belongs to.
    pub org_id: String,
    /// Display name.
    pub title: String,
    /// Creation time (ms).
    pub created_at: i64,
}

/// Which kind of place: the table names of spaces and sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// A content space.
    Space,
    /// A published site.
    Site,
}

impl PlaceKind {
    /// The table holding places of this kind.
    pub(super) fn table(self) -> &'static str {
        match self {
            PlaceKind::Space => "spaces",
            PlaceKind::Site => "sites",
        }
    }

    /// The table holding installations on places of this kind.
    pub(super) fn installations_table(self) -> &'static str {
        match self {
            PlaceKind::Space => "space_installations",
            PlaceKind::Site => "site_installations",
        }
    }
}

impl Store {
    /// Creates a space or site; `None` when the id is taken.
    pub async fn create_place(
        &self,
        kind: PlaceKind,
        id: &str,
        org_id: &str,
        title: &str,
    ) -> Result<Option<PlaceRecord>> {
        let created_at = now_ms();
        let inserted = sqlx::query(&format!(
            "INSERT INTO {} (id, org_id, title, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            kind.table()
        ))
        .bind(id)
        .bind(org_id)
        .bind(title)
        .bind(created_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((inserted == 1).then(|| PlaceRecord {
            id: id.to_owned(),
            org_id: org_id.to_owned(),
            title: title.to_owned(),
            created_at,
        }))
    }

    /// One space or site.
    pub async fn place(&self, kind: PlaceKind, id: &str) -> Result<Option<PlaceRecord>> {
        let row = sqlx::query(&format!("SELECT id, org_id, title, created_at FROM {} WHERE id = $1", kind.table()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(place).transpose()
    }

    /// A page of an organization's spaces or sites, by id, after `after`, and their total.
    pub async fn places(
        &self,
        kind: PlaceKind,
        org_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<(Vec<PlaceRecord>, i64)> {
        let rows = sqlx::query(&format!(
            "SELECT id, org_id, title, created_at FROM {} WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            kind.table()
        ))
        .bind(org_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(&format!("SELECT COUNT(*) FROM {} WHERE org_id = $1", kind.table()))
            .bind(org_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let places = rows.iter().map(place).collect::<Result<_>>()?;
        Ok((places, total))
    }
}

/// A row of `SELECT id, org_id, title, created_at` from `spaces` or `sites`.
fn place(row: &sqlx::any::AnyRow) -> Result<PlaceRecord> {
    Ok(PlaceRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        title: row.try_get("title")?,
        created_at: row.try_get("created_at")?,
    })
}
