//! The target table as PostgreSQL's catalog describes it: `DataTableName` resolved by the
//! server (`to_regclass`: schema qualification, quoting, `search_path`, unquoted names folded
//! to lower case as Redshift folds them), the columns a load writes (the `DataTableColumns`
//! list, or every column but generated ones and, without `EXPLICIT_IDS`, identity ones, as
//! Redshift leaves out IDENTITY columns) and each one's type.

use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use crate::error::LoadError;
use crate::limits;
use crate::options::CopyCommand;

/// The column types sluice loads, each with the binary form [`crate::value::Cell`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `text`, `varchar(n)`, `char(n)`, `name`.
    Text,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Bool,
    Timestamp,
    TimestampTz,
    Date,
    Json,
    Jsonb,
    Uuid,
}

impl Kind {
    /// The kind of a base type, by its built-in OID.
    pub(crate) fn of(ty: &Type) -> Option<Kind> {
        Some(match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Kind::Text,
            Type::INT2 => Kind::Int2,
            Type::INT4 => Kind::Int4,
            Type::INT8 => Kind::Int8,
            Type::FLOAT4 => Kind::Float4,
            Type::FLOAT8 => Kind::Float8,
            Type::NUMERIC => Kind::Numeric,
            Type::BOOL => Kind::Bool,
            Type::TIMESTAMP => Kind::Timestamp,
            Type::TIMESTAMPTZ => Kind::TimestampTz,
            Type::DATE => Kind::Date,
            Type::JSON => Kind::Json,
            Type::JSONB => Kind::Jsonb,
            Type::UUID => Kind::Uuid,
            _ => return None,
        })
    }
}

/// One column a load writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetColumn {
    pub name: String,
    pub kind: Kind,
    /// The base type (a domain's underlying type), which the binary values are written as.
    pub pg_type: Type,
    /// NOT NULL on the column or its domain: a NULL is reported against the record.
    pub not_null: bool,
    /// `varchar(n)` / `char(n)`: most characters.
    pub chars_max: Option<usize>,
    /// The type as PostgreSQL writes it, for messages.
    pub type_name: String,
}

/// The table and the columns a load writes, in COPY order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The table as the server prints it (`regclass::text`: quoted and qualified as needed).
    pub table: String,
    pub columns: Vec<TargetColumn>,
}

/// `"name"` with inner quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct CatalogColumn {
    name: String,
    base_oid: u32,
    typmod: i32,
    not_null: bool,
    identity: bool,
    generated: bool,
    type_name: String,
}

const COLUMNS_SQL: &str = "\
SELECT a.attname::text, \
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, \
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, \
       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), \
       a.attidentity <> '', \
       a.attgenerated <> '', \
       format_type(a.atttypid, a.atttypmod) \
FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
ORDER BY a.attnum";

impl Target {
    /// Looks the table and its columns up in the catalog, inside the load's transaction.
    pub(crate) async fn lookup(
        tx: &Transaction<'_>,
        copy: &CopyCommand,
    ) -> Result<Target, LoadError> {
        let row = tx
            .query_one(
                "SELECT to_regclass($1)::oid, to_regclass($1)::text",
                &[&copy.table()],
            )
            .await
            .map_err(|e| LoadError::postgres("looking up DataTableName", e))?;
        let oid: Option<u32> = row
            .try_get(0)
            .map_err(|e| LoadError::postgres("looking up DataTableName", e))?;
        let table: Option<String> = row
            .try_get(1)
            .map_err(|e| LoadError::postgres("looking up DataTableName", e))?;
        let (Some(oid), Some(table)) = (oid, table) else {
            return Err(LoadError::TableNotFound {
                table: copy.table().to_string(),
            });
        };
        let rows = tx
            .query(COLUMNS_SQL, &[&oid])
            .await
            .map_err(|e| LoadError::postgres("reading the table's columns", e))?;
        let mut catalog = Vec::with_capacity(rows.len());
        for row in rows {
            let read = |e| LoadError::postgres("reading the table's columns", e);
            catalog.push(CatalogColumn {
                name: row.try_get(0).map_err(read)?,
                base_oid: row.try_get(1).map_err(read)?,
                typmod: row.try_get(2).map_err(read)?,
                not_null: row.try_get(3).map_err(read)?,
                identity: row.try_get(4).map_err(read)?,
                generated: row.try_get(5).map_err(read)?,
                type_name: row.try_get(6).map_err(read)?,
            });
        }
        Target::from_catalog(table, catalog, copy)
    }

    fn from_catalog(
        table: String,
        catalog: Vec<CatalogColumn>,
        copy: &CopyCommand,
    ) -> Result<Target, LoadError> {
        let chosen: Vec<&CatalogColumn> = match copy.columns() {
            Some(names) => {
                let mut chosen = Vec::with_capacity(names.len());
                for name in names {
                    let column = catalog.iter().find(|c| &c.name == name).ok_or_else(|| {
                        LoadError::ColumnNotFound {
                            table: table.clone(),
                            column: name.clone(),
                        }
                    })?;
                    chosen.push(column);
                }
                chosen
            }
            None => catalog
                .iter()
                .filter(|c| !c.generated && (!c.identity || copy.options().explicit_ids))
                .collect(),
        };
        if chosen.is_empty() {
            return Err(LoadError::NoColumns { table });
        }
        if chosen.len() > limits::COLUMNS_MAX {
            return Err(LoadError::UnsupportedColumnType {
                table,
                column: chosen[limits::COLUMNS_MAX].name.clone(),
                type_name: format!("(more than {} columns)", limits::COLUMNS_MAX),
            });
        }
        let mut columns = Vec::with_capacity(chosen.len());
        for c in chosen {
            let resolved = Type::from_oid(c.base_oid).and_then(|t| Kind::of(&t).map(|k| (k, t)));
            let Some((kind, pg_type)) = resolved else {
                return Err(LoadError::UnsupportedColumnType {
                    table,
                    column: c.name.clone(),
                    type_name: c.type_name.clone(),
                });
            };
            // varchar(n) and char(n) keep n + 4 in the type modifier.
            let chars_max = match pg_type {
                Type::VARCHAR | Type::BPCHAR if c.typmod >= 4 => usize::try_from(c.typmod - 4).ok(),
                _ => None,
            };
            columns.push(TargetColumn {
                name: c.name.clone(),
                kind,
                pg_type,
                not_null: c.not_null,
                chars_max,
                type_name: c.type_name.clone(),
            });
        }
        Ok(Target { table, columns })
    }

    /// `COPY table (columns) FROM STDIN (FORMAT binary)`.
    pub(crate) fn copy_statement(&self) -> String {
        let columns: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.table,
            columns.join(", ")
        )
    }

    pub(crate) fn types(&self) -> Vec<Type> {
        self.columns.iter().map(|c| c.pg_type.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, oid: u32, typmod: i32) -> CatalogColumn {
        CatalogColumn {
            name: name.to_string(),
            base_oid: oid,
            typmod,
            not_null: false,
            identity: false,
            generated: false,
            type_name: format!("type {oid}"),
        }
    }

    fn catalog() -> Vec<CatalogColumn> {
        let mut id = col("id", Type::INT8.oid(), -1);
        id.identity = true;
        let mut total = col("total", Type::NUMERIC.oid(), -1);
        total.generated = true;
        vec![
            id,
            col("name", Type::VARCHAR.oid(), 24),
            col("Mixed", Type::TEXT.oid(), -1),
            total,
        ]
    }

    #[test]
    fn default_columns_leave_out_identity_and_generated() {
        let copy = CopyCommand::new("t", None, None).unwrap();
        let t = Target::from_catalog("t".into(), catalog(), &copy).unwrap();
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["name", "Mixed"]);
        assert_eq!(t.columns[0].chars_max, Some(20));
        assert_eq!(
            t.copy_statement(),
            "COPY t (\"name\", \"Mixed\") FROM STDIN (FORMAT binary)"
        );
        let copy = CopyCommand::new("t", None, Some("explicit_ids")).unwrap();
        let t = Target::from_catalog("t".into(), catalog(), &copy).unwrap();
        assert_eq!(t.columns[0].name, "id");
    }

    #[test]
    fn listed_columns_are_matched_exactly_after_folding() {
        let copy = CopyCommand::new("t", Some("NAME, \"Mixed\""), None).unwrap();
        let t = Target::from_catalog("t".into(), catalog(), &copy).unwrap();
        assert_eq!(t.columns.len(), 2);
        let copy = CopyCommand::new("t", Some("mixed"), None).unwrap();
        let err = Target::from_catalog("t".into(), catalog(), &copy).unwrap_err();
        assert!(matches!(err, LoadError::ColumnNotFound { .. }), "{err}");
    }

    #[test]
    fn unsupported_types_are_named() {
        let copy = CopyCommand::new("t", None, None).unwrap();
        let mut c = catalog();
        c.push(col("tags", 1009, -1)); // text[]
        let err = Target::from_catalog("t".into(), c, &copy).unwrap_err();
        assert!(err.to_string().contains("\"tags\""), "{err}");
    }

    #[test]
    fn columns_at_the_limit() {
        let copy = CopyCommand::new("t", None, None).unwrap();
        let many = |n: usize| {
            (0..n)
                .map(|i| col(&format!("c{i}"), Type::INT4.oid(), -1))
                .collect::<Vec<_>>()
        };
        let t = Target::from_catalog("t".into(), many(limits::COLUMNS_MAX), &copy).unwrap();
        assert_eq!(t.columns.len(), limits::COLUMNS_MAX);
        assert!(Target::from_catalog("t".into(), many(limits::COLUMNS_MAX + 1), &copy).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
