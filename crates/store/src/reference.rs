//! Reference data (products, agents, ticket types and reasons): saved whole each run, read back
//! for mapping and for naming things in reports.

use model::{Agent, Category, Product};
use sqlx::Row;

use crate::error::Result;
use crate::{Store, StoreError};

impl Store {
    /// Saves products with the JSON Desk360 sent for each (replacing earlier copies by id).
    pub async fn save_products<R: AsRef<str>>(&self, items: &[(Product, R)]) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for (p, raw) in items {
            sqlx::query(
                "INSERT INTO products (id, name, raw) VALUES (?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, raw = excluded.raw",
            )
            .bind(p.id)
            .bind(&p.name)
            .bind(raw.as_ref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Saves agents with the JSON Desk360 sent for each (replacing earlier copies by id).
    pub async fn save_agents<R: AsRef<str>>(&self, items: &[(Agent, R)]) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for (a, raw) in items {
            sqlx::query(
                "INSERT INTO agents (id, name, email, raw) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE
                 SET name = excluded.name, email = excluded.email, raw = excluded.raw",
            )
            .bind(a.id)
            .bind(&a.name)
            .bind(&a.email)
            .bind(raw.as_ref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Saves ticket types with the JSON Desk360 sent for each.
    pub async fn save_types<R: AsRef<str>>(&self, items: &[(Category, R)]) -> Result<()> {
        self.save_categories(Table::Types, items).await
    }

    /// Saves ticket reasons with the JSON Desk360 sent for each.
    pub async fn save_reasons<R: AsRef<str>>(&self, items: &[(Category, R)]) -> Result<()> {
        self.save_categories(Table::Reasons, items).await
    }

    /// Every stored product, by id.
    pub async fn products(&self) -> Result<Vec<Product>> {
        let rows = sqlx::query("SELECT id, name FROM products ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Product {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// Every stored agent, by id.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        let rows = sqlx::query("SELECT id, name, email FROM agents ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Agent {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    email: r.try_get("email")?,
                })
            })
            .collect()
    }

    /// Every stored ticket type, by id.
    pub async fn types(&self) -> Result<Vec<Category>> {
        self.categories(Table::Types).await
    }

    /// Every stored ticket reason, by id.
    pub async fn reasons(&self) -> Result<Vec<Category>> {
        self.categories(Table::Reasons).await
    }

    /// The raw JSON Desk360 sent for one reference object, for debugging a mapping.
    pub async fn reference_raw(&self, table: ReferenceTable, id: i64) -> Result<String> {
        let sql = match table {
            ReferenceTable::Products => "SELECT raw FROM products WHERE id = ?",
            ReferenceTable::Agents => "SELECT raw FROM agents WHERE id = ?",
            ReferenceTable::Types => "SELECT raw FROM types WHERE id = ?",
            ReferenceTable::Reasons => "SELECT raw FROM reasons WHERE id = ?",
        };
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{table:?} {id}")))
    }

    async fn save_categories<R: AsRef<str>>(
        &self,
        table: Table,
        items: &[(Category, R)],
    ) -> Result<()> {
        let sql = match table {
            Table::Types => {
                "INSERT INTO types (id, product_id, title, raw) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE
                 SET product_id = excluded.product_id, title = excluded.title, raw = excluded.raw"
            }
            Table::Reasons => {
                "INSERT INTO reasons (id, product_id, title, raw) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE
                 SET product_id = excluded.product_id, title = excluded.title, raw = excluded.raw"
            }
        };
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for (c, raw) in items {
            sqlx::query(sql)
                .bind(c.id)
                .bind(c.product_id)
                .bind(&c.title)
                .bind(raw.as_ref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn categories(&self, table: Table) -> Result<Vec<Category>> {
        let sql = match table {
            Table::Types => "SELECT id, product_id, title FROM types ORDER BY id",
            Table::Reasons => "SELECT id, product_id, title FROM reasons ORDER BY id",
        };
        let rows = sqlx::query(sql).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(Category {
                    id: r.try_get("id")?,
                    product_id: r.try_get("product_id")?,
                    title: r.try_get("title")?,
                })
            })
            .collect()
    }
}

/// Which category table (types and reasons share a shape).
#[derive(Clone, Copy)]
enum Table {
    Types,
    Reasons,
}

/// Names a reference table for [`Store::reference_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceTable {
    /// Desk360 products.
    Products,
    /// Desk360 agents.
    Agents,
    /// Desk360 ticket types.
    Types,
    /// Desk360 ticket reasons.
    Reasons,
}
