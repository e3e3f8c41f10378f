//! Users and their roles in organizations.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time (ms).
    pub created_at: i64,
}

/// One membership: a user's role in an organization (`admin` or `member`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The organization.
    pub org_id: String,
    /// The user.
    pub user_id: String,
    /// admin or member.
    pub role: String,
    /// Creation time (ms).
    pub created_at: i64,
}

impl Store {
    /// Creates a user; `None` when the id is taken.
    pub async fn create_user(&self, id: &str, name: &str) -> Result<Option<UserRecord>> {
        let created_at = now_ms();
        let inserted =
            sqlx::query("INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(name)
                .bind(created_at)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok((inserted == 1).then(|| UserRecord { id: id.to_owned(), name: name.to_owned(), created_at }))
    }

    /// One user.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT id, name, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(UserRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Adds a user to an organization, or changes their role there.
    pub async fn set_member(&self, org_id: &str, user_id: &str, role: &str) -> Result<MemberRecord> {
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        Ok(MemberRecord { org_id: org_id.to_owned(), user_id: user_id.to_owned(), role: role.to_owned(), created_at })
    }

    /// Deletes a user with their memberships and tokens, in one transaction; `false` when
    /// there was none.
    pub async fn delete_user(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_tokens WHERE kind = 'user' AND subject = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM org_members WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Removes a user from an organization; `false` when they were not a member.
    pub async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Every membership of a user.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<MemberRecord>> {
        let rows =
            sqlx::query("SELECT org_id, user_id, role, created_at FROM org_members WHERE user_id = $1 ORDER BY org_id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(member).collect()
    }

    /// Every member of an organization.
    pub async fn members(&self, org_id: &str) -> Result<Vec<MemberRecord>> {
        let rows =
            sqlx::query("SELECT org_id, user_id, role, created_at FROM org_members WHERE org_id = $1 ORDER BY user_id")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(member).collect()
    }
}

/// A row of `SELECT org_id, user_id, role, created_at FROM org_members`.
fn member(row: &sqlx::any::AnyRow) -> Result<MemberRecord> {
    Ok(MemberRecord {
        org_id: row.try_get("org_id")?,
        user_id: row.try_get("user_id")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
    })
}
