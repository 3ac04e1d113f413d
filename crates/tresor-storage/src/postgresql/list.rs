//! `list(prefix)` in two index reads sent together: the prefix's folder's own entries (one
//! range of the primary key) and its child folders (a loose index scan, see
//! [`Sql::folders`](super::schema::Sql)). Neither reads the table beyond what it returns.

use super::keys::{prefix_end, split};
use super::pool::{Conn, Failure};
use crate::list::immediate_children;

pub(super) async fn children(conn: &Conn, prefix: &str) -> Result<Vec<String>, Failure> {
    // `prefix` = `folder` + `start`: the entries of `folder` whose name starts with `start`
    // are leaves; the folders whose path starts with `prefix` hold everything deeper.
    let (folder, start) = split(prefix);
    let start_end = prefix_end(start);
    let below = prefix_end(prefix);
    let client = &conn.client;
    let leaves = async {
        match (start.is_empty(), &start_end) {
            (true, _) => client.query(&conn.leaves_all, &[&folder]).await,
            (false, Some(end)) => {
                client
                    .query(&conn.leaves_range, &[&folder, &start, end])
                    .await
            }
            // `start` is only `char::MAX`s: no bound above, `immediate_children` filters.
            (false, None) => client.query(&conn.leaves_from, &[&folder, &start]).await,
        }
    };
    let folders = async {
        match &below {
            Some(end) => client.query(&conn.folders_range, &[&prefix, end]).await,
            None => client.query(&conn.folders_from, &[&prefix]).await,
        }
    };
    // Both requests go out on the first poll: one round trip.
    let (leaves, folders) = tokio::join!(biased; leaves, folders);
    let (leaves, folders) = (leaves?, folders?);

    let mut found = Vec::with_capacity(leaves.len() + folders.len());
    for row in &leaves {
        let name: &str = row.try_get(0).map_err(unexpected)?;
        found.push(format!("{folder}{name}"));
    }
    for row in &folders {
        // A folder's path: immediate_children keeps its first segment below `prefix`.
        let path: &str = row.try_get(0).map_err(unexpected)?;
        found.push(path.to_owned());
    }
    Ok(immediate_children(prefix, found.iter().map(String::as_str)))
}

pub(super) fn unexpected(err: tokio_postgres::Error) -> Failure {
    Failure::Unexpected(format!("unexpected column contents: {err}"))
}

#[cfg(test)]
mod tests {
    //! Against the real PostgreSQL on 127.0.0.1:5432, in a database of its own.
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::super::schema::{Sql, TableName, create_table};
    use crate::test_db::TestDb;

    /// The plan PostgreSQL picks for `sql` with `args`, under `plan_cache_mode` (a prepared
    /// statement switches to a generic plan, blind to the values, after five runs).
    async fn plan(client: &tokio_postgres::Client, mode: &str, sql: &str, args: &[&str]) -> String {
        let types = vec!["text"; args.len()].join(", ");
        let values = args
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        client
            .batch_execute(&format!(
                "SET plan_cache_mode = {mode}; DEALLOCATE ALL; PREPARE q({types}) AS {sql}"
            ))
            .await
            .unwrap();
        let rows = client
            .query(&format!("EXPLAIN EXECUTE q({values})"), &[])
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn listing_reads_the_primary_key_index_and_never_the_whole_table() {
        let db = TestDb::new("pgstore_plan").await;
        let client = db.admin().await;
        let table = TableName::parse("tresor_kv_store").unwrap();
        client.batch_execute(&create_table(&table)).await.unwrap();
        // 100,000 keys: 20 mounts of 50 folders of 100 keys, plus a big flat folder.
        client
            .batch_execute(
                "INSERT INTO tresor_kv_store (path, key, value) \
                 SELECT 'logical/m' || (i % 20) || '/f' || (i % 1000 / 20) || '/', 'k' || i, '\\x00' \
                 FROM generate_series(1, 100000) AS i; \
                 INSERT INTO tresor_kv_store (path, key, value) \
                 SELECT 'sys/token/id/', md5(i::text), '\\x00' FROM generate_series(1, 20000) AS i; \
                 ANALYZE tresor_kv_store",
            )
            .await
            .unwrap();
        let sql = Sql::new(&table);
        let cases: [(&str, &[&str]); 7] = [
            (&sql.get, &["logical/m3/f7/", "k12345"]),
            (&sql.leaves_all, &["logical/m3/f7/"]),
            (&sql.leaves_range, &["sys/token/id/", "ab", "ac"]),
            (&sql.leaves_from, &["sys/token/id/", "ab"]),
            (&sql.folders_range, &["logical/m3/", "logical/m30"]),
            (&sql.folders_range, &["logical/", "logical0"]),
            (&sql.folders_from, &[""]),
        ];
        for mode in ["force_custom_plan", "force_generic_plan"] {
            for (statement, args) in cases {
                let plan = plan(&client, mode, statement, args).await;
                assert!(!plan.contains("Seq Scan"), "{mode} {args:?}:\n{plan}");
                // An index scan, index-only scan or bitmap scan of the primary key.
                assert!(
                    plan.contains("Index Scan using tresor_kv_store_pkey")
                        || plan.contains("Index Only Scan using tresor_kv_store_pkey")
                        || plan.contains("Bitmap Index Scan on tresor_kv_store_pkey"),
                    "{mode} {args:?}:\n{plan}"
                );
            }
        }

        // And the folder walk reads one index entry per child folder, not every key below:
        // listing `logical/` (20 folders over 100,000 keys) fetches a few dozen rows.
        client
            .batch_execute("SET plan_cache_mode = auto")
            .await
            .unwrap();
        let analyze = client
            .query(
                &format!(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
                    sql.folders_range
                        .replace("$1", "'logical/'")
                        .replace("$2", "'logical0'")
                ),
                &[],
            )
            .await
            .unwrap();
        let json: String = analyze[0].get::<_, serde_json_text::Json>(0).0;
        let blocks = shared_blocks_hit_and_read(&json);
        assert!(blocks < 200, "{blocks} blocks read for 20 folders:\n{json}");
    }

    /// `Shared Hit Blocks` + `Shared Read Blocks` of the top plan node.
    fn shared_blocks_hit_and_read(json: &str) -> u64 {
        ["\"Shared Hit Blocks\": ", "\"Shared Read Blocks\": "]
            .iter()
            .map(|field| {
                json.find(field)
                    .and_then(|i| json.get(i + field.len()..))
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(u64::MAX / 4)
            })
            .sum()
    }

    /// EXPLAIN's JSON output, taken as text (the crate has no JSON dependency).
    mod serde_json_text {
        pub struct Json(pub String);

        impl<'a> tokio_postgres::types::FromSql<'a> for Json {
            fn from_sql(
                _: &tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(Json(String::from_utf8(raw.to_vec())?))
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                *ty == tokio_postgres::types::Type::JSON
            }
        }
    }
}
