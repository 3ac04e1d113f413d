//! The table: its name (validated, always quoted), its `CREATE` statement, the statements every
//! connection prepares, and creating the table on first start.

use std::fmt;

use tokio_postgres::Client;

/// The table when the config names none.
pub const DEFAULT_TABLE: &str = "tresor_kv_store";

/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`): longer names are silently truncated,
/// so two configs could name one table without knowing it.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Taken, inside the transaction that creates the table, by every node starting at once:
/// two concurrent `CREATE TABLE IF NOT EXISTS` of one name can both pass the existence check
/// and one then fails on PostgreSQL's `pg_type` unique index. ASCII "tresor", then 1.
const SCHEMA_LOCK: i64 = 0x7472_6573_6f72_0001;

/// A table name that is safe to put in SQL: `name` or `schema.name`, each part a plain
/// identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes), rendered double-quoted so a
/// reserved word is still just a name. Anything else is refused, never escaped.
#[derive(Clone, PartialEq, Eq)]
pub struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('.');
        let (schema, name) = match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, _) => (None, name),
            (Some(schema), Some(name), None) => (Some(schema), name),
            _ => {
                return Err(format!(
                    "table {text:?} is not a valid table name: use `name` or `schema.name`"
                ));
            }
        };
        for part in schema.iter().chain([&name]) {
            check_identifier(text, part)?;
        }
        Ok(Self {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// The unquoted table name, without its schema (names derived from it, such as the
    /// primary key's, are left to PostgreSQL).
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check_identifier(whole: &str, part: &str) -> Result<(), String> {
    let mut chars = part.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "table {whole:?} is not a valid table name: each part must be letters, digits and \
             underscores, not starting with a digit"
        ));
    }
    if part.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "table {whole:?} is not a valid table name: {part:?} is longer than PostgreSQL's \
             {MAX_IDENTIFIER_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The quoted form used in SQL (`"schema"."name"`); the parts hold no `"` by construction.
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "\"{schema}\".")?;
        }
        write!(f, "\"{}\"", self.name)
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The table's definition. The primary key `(path, key)` is also the only index: `get`,
/// `put` and `delete` are one lookup in it, a folder's entries are one range of it (`path =`),
/// and its sub-folders are found by skipping through it (see [`Sql::folders`]).
pub fn create_table(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n  \
           path  TEXT COLLATE \"C\" NOT NULL,\n  \
           key   TEXT COLLATE \"C\" NOT NULL,\n  \
           value BYTEA NOT NULL,\n  \
           PRIMARY KEY (path, key)\n\
         )"
    )
}

/// Every statement the backend runs, rendered once for its table.
#[derive(Debug)]
pub struct Sql {
    pub get: String,
    pub put: String,
    pub delete: String,
    /// Every entry of a folder: `$1` the folder.
    pub leaves_all: String,
    /// The entries of folder `$1` whose name is in `[$2, $3)`.
    pub leaves_range: String,
    /// The entries of folder `$1` whose name is at least `$2` (no upper bound exists).
    pub leaves_from: String,
    /// One `path` per distinct child folder of the prefix `$1`, for paths below `$2`.
    pub folders_range: String,
    /// As `folders_range`, when no upper bound exists.
    pub folders_from: String,
    /// With HA (see `ha::fence_sql`): fails unless lock `$1` is held by identity `$2`.
    pub fence: Option<String>,
}

impl Sql {
    pub fn new(table: &TableName) -> Self {
        Self {
            get: format!("SELECT value FROM {table} WHERE path = $1 AND key = $2"),
            put: format!(
                "INSERT INTO {table} (path, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete: format!("DELETE FROM {table} WHERE path = $1 AND key = $2"),
            leaves_all: format!("SELECT key FROM {table} WHERE path = $1"),
            leaves_range: format!(
                "SELECT key FROM {table} WHERE path = $1 AND key >= $2 AND key < $3"
            ),
            leaves_from: format!("SELECT key FROM {table} WHERE path = $1 AND key >= $2"),
            folders_range: Self::folders(table, Some("$2")),
            folders_from: Self::folders(table, None),
            fence: None,
        }
    }

    /// A loose index scan: find the first `path` below the prefix `$1`, then jump straight
    /// past every path in the same child folder (`<prefix><child>` followed by `'0'`, the
    /// character after `/`) to the next one. Each step is one probe of the primary key, so
    /// listing a folder costs one probe per child folder, however many keys sit deeper down
    /// (a plain `DISTINCT` over `path LIKE 'prefix%'` would read every one of them).
    /// `path > $1` leaves out the folder `$1` itself, whose entries are the leaves.
    fn folders(table: &TableName, below: Option<&str>) -> String {
        let bound = below.map_or_else(String::new, |b| format!(" AND path < {b}"));
        format!(
            "WITH RECURSIVE walk(path) AS (\n  \
               (SELECT path FROM {table} WHERE path > $1{bound} ORDER BY path LIMIT 1)\n  \
               UNION ALL\n  \
               SELECT (SELECT path FROM {table}\n          \
                        WHERE path >= left(walk.path, length($1) + strpos(substr(walk.path, length($1) + 1), '/') - 1) || '0'{bound}\n          \
                        ORDER BY path LIMIT 1)\n  \
               FROM walk WHERE walk.path IS NOT NULL\n\
             )\n\
             SELECT path FROM walk WHERE path IS NOT NULL"
        )
    }
}

/// Creates the table unless it exists. Safe when several nodes start at once (see
/// [`SCHEMA_LOCK`]), and needs no `CREATE` privilege when someone else made the table.
pub async fn ensure(client: &Client, table: &TableName) -> Result<(), tokio_postgres::Error> {
    ensure_with(client, table, &create_table(table)).await
}

/// As [`ensure`], for any table and its `CREATE` statement (the HA lock table too).
pub async fn ensure_with(
    client: &Client,
    table: &TableName,
    create: &str,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let outcome = async {
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        let exists = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.to_string()])
            .await?
            .try_get::<_, bool>(0)?;
        if !exists {
            client.batch_execute(create).await?;
            tracing::info!(%table, "created a storage table");
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(err) => {
            // Best effort: on a broken connection the server rolls back by itself.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(err)
        }
    }
}

/// Checks that an existing table has the columns the statements need, with the `"C"`
/// collation list ranges depend on, and no other column a write would leave empty (such as
/// Vault's `parent_path`): a table made for something else is refused at open, not at the
/// first write.
pub async fn check_shape(client: &Client, table: &TableName) -> Result<(), String> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    coalesce(c.collname::text, ''), a.attnotnull AND NOT a.atthasdef \
             FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&table.to_string()],
        )
        .await
        .map_err(|e| {
            format!(
                "reading the columns of {table}: {}",
                super::connection::describe(&e)
            )
        })?;
    let mut problems = Vec::new();
    let mut seen = 0;
    for row in &rows {
        let column = |i| row.try_get::<_, String>(i).unwrap_or_default();
        let (name, kind, collation) = (column(0), column(1), column(2));
        let required = row.try_get::<_, bool>(3).unwrap_or(false);
        let want = match name.as_str() {
            "path" | "key" => Some(("text", "C")),
            "value" => Some(("bytea", "")),
            _ => None,
        };
        match want {
            Some((want_kind, want_collation)) => {
                seen += 1;
                if kind != want_kind || collation != want_collation {
                    let wanted = if want_collation.is_empty() {
                        want_kind.to_owned()
                    } else {
                        format!("{want_kind} COLLATE \"{want_collation}\"")
                    };
                    problems.push(format!(
                        "column {name} is {kind} (collation {collation:?}), not {wanted}"
                    ));
                }
            }
            None if required => problems.push(format!(
                "column {name} is NOT NULL without a default, and Tresor does not fill it"
            )),
            None => {}
        }
    }
    if seen < 3 {
        problems.push("it lacks one of the columns path, key and value".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "table {table} exists but is not a Tresor storage table ({}); name another table or drop it",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn plain_and_schema_qualified_names_are_quoted() {
        assert_eq!(
            TableName::parse("tresor_kv_store").unwrap().to_string(),
            "\"tresor_kv_store\""
        );
        assert_eq!(
            TableName::parse("vault.Kv_2").unwrap().to_string(),
            "\"vault\".\"Kv_2\""
        );
        assert_eq!(
            TableName::parse("select").unwrap().to_string(),
            "\"select\""
        );
    }

    #[test]
    fn hostile_or_odd_names_are_refused() {
        for bad in [
            "",
            "kv; DROP TABLE users",
            "kv\"; DROP TABLE users; --",
            "a.b.c",
            ".kv",
            "kv.",
            "1kv",
            "kv-store",
            "kv store",
            "clé",
            "kv\0",
            &"k".repeat(64),
        ] {
            let err = TableName::parse(bad).unwrap_err();
            assert!(err.contains("not a valid table name"), "{bad:?}: {err}");
        }
        assert!(TableName::parse(&"k".repeat(63)).is_ok());
    }
}
