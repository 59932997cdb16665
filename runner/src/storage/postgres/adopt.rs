//! Taking over tables a FOLIO module made (`graft adopt`): a schema's
//! tables, registered as collections, with the indexes graft can use.

use super::sql::backend;
use super::*;

/// An existing table registered as a collection by `adopt_table`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdoptedTable {
    pub collection: String,
    pub table: String,
    pub records: u64,
    /// Indexes graft can read (on `jsonb->>'field'` paths, `lower(...)`).
    pub indexes: Vec<IndexSpec>,
    /// Index definitions it cannot (other functions, such as FOLIO's
    /// `f_unaccent`): they stay in the database, unknown to plugins.
    pub unread_indexes: Vec<String>,
}

impl PostgresStore {
    /// The tables of a module's schema (`<tenant>_<module>`), each with
    /// whether it has FOLIO's `id` (uuid or text) and `jsonb` columns.
    pub fn schema_tables(&mut self, module: &str) -> StoreResult<(String, Vec<(String, bool)>)> {
        let schema = self.module_schema(module)?;
        let rows = self
            .client
            .query(
                "SELECT t.table_name::text,
                        bool_or(c.column_name = 'id' AND c.data_type IN ('uuid', 'text'))
                        AND bool_or(c.column_name = 'jsonb' AND c.data_type = 'jsonb')
                 FROM information_schema.tables t
                 JOIN information_schema.columns c
                   ON c.table_schema = t.table_schema AND c.table_name = t.table_name
                 WHERE t.table_schema = $1 AND t.table_type = 'BASE TABLE'
                 GROUP BY t.table_name ORDER BY t.table_name",
                &[&schema],
            )
            .map_err(backend)?;
        Ok((
            schema,
            rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
        ))
    }

    /// Register an existing table of the module's schema as a collection,
    /// with the indexes on it that graft can read.
    pub fn adopt_table(
        &mut self,
        module: &str,
        collection: &str,
        table: &str,
    ) -> StoreResult<AdoptedTable> {
        check_name("collection", collection)?;
        if self.find_table(module, collection)?.is_some() {
            return Err(StoreError::InvalidName(format!(
                "collection {collection} of {module} is registered already"
            )));
        }
        let schema = self.module_schema(module)?;
        self.client
            .execute(
                "INSERT INTO graft.collections (tenant, module, collection, schema_name, table_name)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&self.tenant, &module, &collection, &schema, &table],
            )
            .map_err(backend)?;
        let definitions: Vec<(String, String)> = self
            .client
            .query(
                "SELECT indexname::text, indexdef FROM pg_indexes
                 WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
                &[&schema, &table],
            )
            .map_err(backend)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut indexes = Vec::new();
        let mut unread_indexes = Vec::new();
        for (name, definition) in definitions {
            if definition.ends_with("(id)") {
                continue; // the primary key
            }
            match read_index(&name, &definition) {
                Some(spec) => {
                    self.client
                        .execute(
                            "INSERT INTO graft.indexes (tenant, module, collection, name, field, is_unique, case_insensitive, sql_name)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $4)",
                            &[&self.tenant, &module, &collection, &spec.name, &spec.field, &spec.unique, &spec.case_insensitive],
                        )
                        .map_err(backend)?;
                    indexes.push(spec);
                }
                None => unread_indexes.push(definition),
            }
        }
        let records = self.count(module, collection)?;
        Ok(AdoptedTable {
            collection: collection.to_string(),
            table: table.to_string(),
            records,
            indexes,
            unread_indexes,
        })
    }
}

/// An index graft can use from its definition: btree expressions that are
/// only `jsonb` paths, each optionally in `lower(...)` (all or none).
fn read_index(name: &str, definition: &str) -> Option<IndexSpec> {
    let unique = definition.starts_with("CREATE UNIQUE INDEX");
    let start = definition.find("USING btree (")? + "USING btree (".len();
    let body = definition[start..].strip_suffix(')')?;
    let mut fields = Vec::new();
    let mut lowered = Vec::new();
    for part in split_top_level(body) {
        let part = part.trim();
        let (inner, lower) = match part.strip_prefix("lower(") {
            Some(rest) => (rest.strip_suffix(')')?, true),
            None => (part, false),
        };
        // Only parentheses, `jsonb`, arrows and quoted names may remain.
        let mut path = Vec::new();
        let mut rest = inner.replace(['(', ')'], "");
        rest = rest.trim().strip_prefix("jsonb")?.to_string();
        while !rest.trim().is_empty() {
            let trimmed = rest.trim_start();
            let after_arrow = trimmed
                .strip_prefix("->>")
                .or_else(|| trimmed.strip_prefix("->"))?
                .trim_start();
            let quoted = after_arrow.strip_prefix('\'')?;
            let end = quoted.find('\'')?;
            path.push(quoted[..end].to_string());
            rest = quoted[end + 1..].trim_start_matches("::text").to_string();
        }
        if path.is_empty() {
            return None;
        }
        fields.push(path.join("."));
        lowered.push(lower);
    }
    if fields.is_empty() || lowered.iter().any(|l| *l != lowered[0]) {
        return None;
    }
    Some(IndexSpec {
        name: name.to_string(),
        field: fields.join(","),
        unique,
        case_insensitive: lowered[0],
    })
}

/// Split on commas outside parentheses and quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::read_index;

    #[test]
    fn reads_folio_style_index_definitions() {
        let spec = read_index(
            "material_type_name_idx",
            "CREATE UNIQUE INDEX material_type_name_idx ON diku_mod_inventory_storage.material_type USING btree (lower((jsonb ->> 'name'::text)))",
        )
        .unwrap();
        assert_eq!(spec.field, "name");
        assert!(spec.unique && spec.case_insensitive);
        let spec = read_index(
            "users_email",
            "CREATE INDEX users_email ON diku_mod_users.users USING btree (((jsonb -> 'personal'::text) ->> 'email'::text))",
        )
        .unwrap();
        assert_eq!(spec.field, "personal.email");
        assert!(!spec.unique && !spec.case_insensitive);
        let spec = read_index(
            "codes",
            "CREATE UNIQUE INDEX codes ON s.t USING btree (((jsonb ->> 'code'::text)), ((jsonb ->> 'typeId'::text)))",
        )
        .unwrap();
        assert_eq!(spec.field, "code,typeId");
        // FOLIO's accent folding is not an index graft can describe.
        assert!(read_index(
            "x",
            "CREATE INDEX x ON s.t USING btree (lower(f_unaccent((jsonb ->> 'name'::text))))"
        )
        .is_none());
        assert!(read_index("g", "CREATE INDEX g ON s.t USING gin (jsonb)").is_none());
    }
}
