//! The contract versions this runner runs, told apart by what a component
//! exports, and plugins of 0.1 adapted onto the 0.2 host: the host side of
//! the contract is written once, for 0.2 (`imports`); each 0.1 import calls
//! it, and each 0.1 export is called with 0.2's values converted, so the
//! rest of the runner knows one contract.

use super::bindings::{v0_1 as old, v0_2 as new};
use super::state::StepState;
use super::*;
use wasmtime::component::InstancePre;

/// A version of the contract `graft:migration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Contract {
    #[serde(rename = "0.1.0")]
    V0_1,
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl Contract {
    /// Every version this runner runs, oldest first.
    pub const ALL: [Contract; 2] = [Contract::V0_1, Contract::V0_2];
    /// The version new plugins are built for.
    pub const NEWEST: Contract = Contract::V0_2;

    /// The version, e.g. `0.2.0`.
    pub const fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }

    /// The WIT package, e.g. `graft:migration@0.2.0`.
    pub fn package(self) -> String {
        format!("graft:migration@{}", self.version())
    }

    /// The WIT text of this version, as the runner was built with it.
    pub const fn wit(self) -> &'static str {
        match self {
            Contract::V0_1 => include_str!("../../../wit/migration.wit"),
            Contract::V0_2 => include_str!("../../../wit/0.2.0/migration.wit"),
        }
    }

    /// The version a `major.minor[.patch]` names, if this runner runs it:
    /// a runner of `0.2.0` runs plugins of any `0.2.y`.
    pub fn of_version(version: &str) -> Option<Contract> {
        let mut parts = version.split('.');
        let major_minor = (parts.next(), parts.next());
        let patch_ok =
            parts.next().is_none_or(|p| p.parse::<u64>().is_ok()) && parts.next().is_none();
        Contract::ALL.into_iter().find(|c| {
            let mut own = c.version().split('.');
            patch_ok && major_minor == (own.next(), own.next())
        })
    }

    /// The supported versions for a message: `graft:migration@0.1.x and @0.2.x`.
    pub fn supported() -> String {
        let versions: Vec<String> = Contract::ALL
            .iter()
            .map(|c| format!("@{}.x", c.version().rsplit_once('.').unwrap().0))
            .collect();
        format!("graft:migration{}", versions.join(" and "))
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.version())
    }
}

/// The contract version a component was built for, from the version of
/// the `migration` interface it exports; every contract interface it
/// imports must be of the same version. A version this runner does not
/// run is refused naming the ones it does.
pub(super) fn contract_of(engine: &Engine, path: &Path, component: &Component) -> Result<Contract> {
    let ty = component.component_type();
    let contract_names = |names: Vec<String>| -> Vec<(String, String)> {
        names
            .into_iter()
            .filter(|name| name.starts_with(CONTRACT_PACKAGE))
            .map(|name| {
                let version = name
                    .rsplit_once('@')
                    .map(|(_, v)| v)
                    .unwrap_or("")
                    .to_string();
                (name, version)
            })
            .collect()
    };
    let exports = contract_names(ty.exports(engine).map(|(n, _)| n.to_string()).collect());
    let imports = contract_names(ty.imports(engine).map(|(n, _)| n.to_string()).collect());
    let Some((_, version)) = exports
        .iter()
        .find(|(name, _)| name.starts_with(&format!("{CONTRACT_PACKAGE}migration@")))
    else {
        bail!(
            "{}: not a Graft plugin: the component does not export {CONTRACT_PACKAGE}migration",
            path.display()
        );
    };
    let Some(contract) = Contract::of_version(version) else {
        bail!(
            "{}: built for contract graft:migration@{}, but this runner supports {}: rebuild \
             the plugin with a graft-plugin-sdk for one of them",
            path.display(),
            crate::text::truncate(version, 100),
            Contract::supported()
        );
    };
    for (name, other) in exports.iter().chain(&imports) {
        if Contract::of_version(other) != Some(contract) {
            bail!(
                "{}: exports the migration interface of contract {contract} but uses {}: a \
                 plugin is built against one contract version; rebuild it",
                path.display(),
                crate::text::truncate(name, 200)
            );
        }
    }
    Ok(contract)
}

/// The contract version a plugin file says it was built for: the version
/// of the `migration` interface its component exports, read without
/// compiling it (for listings; `Host::load` checks it in full).
pub fn contract_version_of(path: &Path) -> Result<String> {
    let bytes = crate::package::read_at_most(path, crate::package::MAX_PLUGIN_BYTES)
        .with_context(|| format!("{}: cannot read the plugin", path.display()))?;
    check_header(path, &bytes)?;
    let export = format!("{CONTRACT_PACKAGE}migration@");
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        let payload =
            payload.map_err(|e| anyhow!("{}: not a valid component: {e}", path.display()))?;
        match payload {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            // Only the outer component's exports are the plugin's.
            wasmparser::Payload::ComponentExportSection(exports) if depth == 0 => {
                for item in exports {
                    let item = item
                        .map_err(|e| anyhow!("{}: not a valid component: {e}", path.display()))?;
                    if let Some(version) = item.name.name.strip_prefix(&export) {
                        return Ok(crate::text::truncate(version, 100).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    bail!(
        "{}: not a Graft plugin: the component does not export {CONTRACT_PACKAGE}migration",
        path.display()
    )
}

/// A plugin linked and ready to instantiate, of its contract version.
#[derive(Clone)]
pub(super) enum Linked {
    V0_1(old::PluginPre<StepState>),
    V0_2(new::PluginPre<StepState>),
}

impl Linked {
    pub(super) fn new(contract: Contract, pre: InstancePre<StepState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_1 => Linked::V0_1(old::PluginPre::new(pre)?),
            Contract::V0_2 => Linked::V0_2(new::PluginPre::new(pre)?),
        })
    }

    pub(super) fn contract(&self) -> Contract {
        match self {
            Linked::V0_1(_) => Contract::V0_1,
            Linked::V0_2(_) => Contract::V0_2,
        }
    }

    pub(super) fn instantiate(&self, store: &mut Store<StepState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Linked::V0_1(pre) => Instance::V0_1(pre.instantiate(store)?),
            Linked::V0_2(pre) => Instance::V0_2(pre.instantiate(store)?),
        })
    }
}

/// A plugin instantiated for one call. Its exports take and give the
/// newest contract's values, whatever version the plugin was built for.
pub enum Instance {
    V0_1(old::Plugin),
    V0_2(new::Plugin),
}

type CallResult<T> = wasmtime::Result<Result<T, wit::Failure>>;

impl Instance {
    pub fn describe(&self, store: &mut Store<StepState>) -> wasmtime::Result<wit::Description> {
        Ok(match self {
            Instance::V0_1(p) => {
                let d = p.graft_migration_migration().call_describe(store)?;
                wit::Description {
                    module_name: d.module_name,
                    release: d.release,
                    upgrades_from: d.upgrades_from,
                    rolls_back_to: d.rolls_back_to,
                    contract: d.contract,
                }
            }
            Instance::V0_2(p) => p.graft_migration_migration().call_describe(store)?,
        })
    }

    pub fn inspect(&self, store: &mut Store<StepState>) -> wasmtime::Result<wit::StoredState> {
        use old::graft::migration::types::StoredState as Old;
        Ok(match self {
            Instance::V0_1(p) => match p.graft_migration_migration().call_inspect(store)? {
                Old::Empty => wit::StoredState::Empty,
                Old::Release(r) => wit::StoredState::Release(r),
                Old::Unrecognised(what) => wit::StoredState::Unrecognised(what),
            },
            Instance::V0_2(p) => p.graft_migration_migration().call_inspect(store)?,
        })
    }

    pub fn upgrade(
        &self,
        store: &mut Store<StepState>,
        ctx: &wit::Context,
    ) -> CallResult<wit::Outcome> {
        Ok(match self {
            Instance::V0_1(p) => p
                .graft_migration_migration()
                .call_upgrade(store, &old_context(ctx))?
                .map(new_outcome)
                .map_err(new_failure),
            Instance::V0_2(p) => p.graft_migration_migration().call_upgrade(store, ctx)?,
        })
    }

    pub fn rollback(
        &self,
        store: &mut Store<StepState>,
        ctx: &wit::Context,
    ) -> CallResult<wit::Outcome> {
        Ok(match self {
            Instance::V0_1(p) => p
                .graft_migration_migration()
                .call_rollback(store, &old_context(ctx))?
                .map(new_outcome)
                .map_err(new_failure),
            Instance::V0_2(p) => p.graft_migration_migration().call_rollback(store, ctx)?,
        })
    }

    pub fn load_data(
        &self,
        store: &mut Store<StepState>,
        ctx: &wit::Context,
        kind: wit::DataKind,
    ) -> CallResult<wit::Outcome> {
        Ok(match self {
            Instance::V0_1(p) => p
                .graft_migration_migration()
                .call_load_data(store, &old_context(ctx), old_kind(kind))?
                .map(new_outcome)
                .map_err(new_failure),
            Instance::V0_2(p) => p
                .graft_migration_migration()
                .call_load_data(store, ctx, kind)?,
        })
    }
}

// The values of the two versions' shared types, converted.

mod old_types {
    pub use super::old::graft::migration::types::*;
}

fn old_context(ctx: &wit::Context) -> old_types::Context {
    old_types::Context {
        tenant: ctx.tenant.clone(),
        module_from: ctx.module_from.clone(),
        module_to: ctx.module_to.clone(),
        parameters: ctx.parameters.clone(),
        simulate: ctx.simulate,
    }
}

fn old_kind(kind: wit::DataKind) -> old_types::DataKind {
    match kind {
        wit::DataKind::System => old_types::DataKind::System,
        wit::DataKind::Reference => old_types::DataKind::Reference,
        wit::DataKind::Sample => old_types::DataKind::Sample,
    }
}

fn new_kind(kind: old_types::DataKind) -> wit::DataKind {
    match kind {
        old_types::DataKind::System => wit::DataKind::System,
        old_types::DataKind::Reference => wit::DataKind::Reference,
        old_types::DataKind::Sample => wit::DataKind::Sample,
    }
}

fn new_outcome(outcome: old_types::Outcome) -> wit::Outcome {
    match outcome {
        old_types::Outcome::Created => wit::Outcome::Created,
        old_types::Outcome::Upgraded => wit::Outcome::Upgraded,
        old_types::Outcome::Unchanged => wit::Outcome::Unchanged,
    }
}

fn new_failure(failure: old_types::Failure) -> wit::Failure {
    match failure {
        old_types::Failure::Unsupported(message) => wit::Failure::Unsupported(message),
        old_types::Failure::Failed(d) => wit::Failure::Failed(wit::FailureDetail {
            message: d.message,
            collection: d.collection,
            record_id: d.record_id,
        }),
    }
}

fn new_records(recs: Vec<old_types::Record>) -> Vec<wit::Record> {
    recs.into_iter()
        .map(|r| wit::Record {
            id: r.id,
            doc: r.doc,
        })
        .collect()
}

fn old_records(recs: Vec<wit::Record>) -> Vec<old_types::Record> {
    recs.into_iter()
        .map(|r| old_types::Record {
            id: r.id,
            doc: r.doc,
        })
        .collect()
}

// The 0.1 imports, each a call of the 0.2 host.

use new::graft::migration::{log as new_log, overlay as new_overlay, store as new_store};
use old::graft::migration::{log as old_log, overlay as old_overlay, store as old_store};

fn old_error(e: new_store::StoreError) -> old_store::StoreError {
    match e {
        new_store::StoreError::NoSuchCollection(c) => old_store::StoreError::NoSuchCollection(c),
        new_store::StoreError::InvalidName(m) => old_store::StoreError::InvalidName(m),
        new_store::StoreError::InvalidDocument(m) => old_store::StoreError::InvalidDocument(m),
        new_store::StoreError::UniqueViolation(v) => {
            old_store::StoreError::UniqueViolation(old_store::UniqueViolation {
                collection: v.collection,
                index: v.index,
                record_id: v.record_id,
            })
        }
        new_store::StoreError::Other(m) => old_store::StoreError::Other(m),
        // 0.1 has no way to reach another module's data, so never sees this.
        new_store::StoreError::NotPermitted(m) => old_store::StoreError::Other(m),
    }
}

fn new_spec(spec: old_store::IndexSpec) -> new_store::IndexSpec {
    new_store::IndexSpec {
        name: spec.name,
        field: spec.field,
        unique: spec.unique,
        case_insensitive: spec.case_insensitive,
    }
}

fn old_spec(spec: new_store::IndexSpec) -> old_store::IndexSpec {
    old_store::IndexSpec {
        name: spec.name,
        field: spec.field,
        unique: spec.unique,
        case_insensitive: spec.case_insensitive,
    }
}

type OldRes<T> = Result<T, old_store::StoreError>;

impl old_types::Host for StepState {}

impl old_store::Host for StepState {
    fn create_collection(&mut self, name: String) -> OldRes<bool> {
        new_store::Host::create_collection(self, name).map_err(old_error)
    }

    fn drop_collection(&mut self, name: String) -> OldRes<bool> {
        new_store::Host::drop_collection(self, name).map_err(old_error)
    }

    fn list_collections(&mut self) -> Vec<String> {
        new_store::Host::list_collections(self)
    }

    fn create_index(&mut self, collection: String, spec: old_store::IndexSpec) -> OldRes<bool> {
        new_store::Host::create_index(self, collection, new_spec(spec)).map_err(old_error)
    }

    fn drop_index(&mut self, collection: String, name: String) -> OldRes<bool> {
        new_store::Host::drop_index(self, collection, name).map_err(old_error)
    }

    fn list_indexes(&mut self, collection: String) -> OldRes<Vec<old_store::IndexSpec>> {
        new_store::Host::list_indexes(self, collection)
            .map(|specs| specs.into_iter().map(old_spec).collect())
            .map_err(old_error)
    }

    fn get(&mut self, collection: String, id: String) -> OldRes<Option<String>> {
        new_store::Host::get(self, collection, id).map_err(old_error)
    }

    fn put(&mut self, collection: String, rec: old_types::Record) -> OldRes<bool> {
        let rec = wit::Record {
            id: rec.id,
            doc: rec.doc,
        };
        new_store::Host::put(self, collection, rec)
            .map(|effect| effect == wit::WriteEffect::Inserted)
            .map_err(old_error)
    }

    fn put_batch(&mut self, collection: String, recs: Vec<old_types::Record>) -> OldRes<u32> {
        new_store::Host::put_batch(self, collection, new_records(recs))
            .map(|effects| {
                effects
                    .iter()
                    .filter(|e| **e == wit::WriteEffect::Inserted)
                    .count() as u32
            })
            .map_err(old_error)
    }

    fn delete(&mut self, collection: String, id: String) -> OldRes<bool> {
        new_store::Host::delete(self, collection, id).map_err(old_error)
    }

    fn scan(
        &mut self,
        collection: String,
        after: Option<String>,
        limit: u32,
    ) -> OldRes<Vec<old_types::Record>> {
        new_store::Host::scan(self, collection, after, limit)
            .map(old_records)
            .map_err(old_error)
    }

    fn count(&mut self, collection: String) -> OldRes<u64> {
        new_store::Host::count(self, collection).map_err(old_error)
    }

    fn update_all(
        &mut self,
        collection: String,
        changes: Vec<old_store::FieldChange>,
    ) -> OldRes<u64> {
        let changes = changes
            .into_iter()
            .map(|change| match change {
                old_store::FieldChange::SetDefault(c) => new_store::FieldChange::SetDefault(c),
                old_store::FieldChange::Set(c) => new_store::FieldChange::Set(c),
                old_store::FieldChange::Remove(f) => new_store::FieldChange::Remove(f),
                old_store::FieldChange::Rename(c) => new_store::FieldChange::Rename(c),
            })
            .collect();
        new_store::Host::update_all(self, collection, changes).map_err(old_error)
    }
}

impl old_overlay::Host for StepState {
    fn load(
        &mut self,
        collection: String,
        kind: old_types::DataKind,
        recs: Vec<old_types::Record>,
    ) -> OldRes<old_overlay::LoadReport> {
        new_overlay::Host::load(self, collection, new_kind(kind), new_records(recs))
            .map(|r| old_overlay::LoadReport {
                inserted: r.inserted,
                replaced: r.replaced,
                unchanged: r.unchanged,
                kept: r.kept,
                skipped: r.skipped,
            })
            .map_err(old_error)
    }
}

impl old_log::Host for StepState {
    fn log(&mut self, level: old_log::Level, message: String) {
        let level = match level {
            old_log::Level::Trace => new_log::Level::Trace,
            old_log::Level::Debug => new_log::Level::Debug,
            old_log::Level::Info => new_log::Level::Info,
            old_log::Level::Warn => new_log::Level::Warn,
            old_log::Level::Error => new_log::Level::Error,
        };
        new_log::Host::log(self, level, message)
    }

    fn warn_record(&mut self, collection: String, record_id: String, message: String) {
        new_log::Host::warn_record(self, collection, record_id, message)
    }

    fn progress(&mut self, done: u64, total: u64) {
        new_log::Host::progress(self, done, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_matched_by_major_and_minor() {
        assert_eq!(Contract::of_version("0.1.0"), Some(Contract::V0_1));
        assert_eq!(Contract::of_version("0.1.7"), Some(Contract::V0_1));
        assert_eq!(Contract::of_version("0.2.0"), Some(Contract::V0_2));
        assert_eq!(Contract::of_version("0.2"), Some(Contract::V0_2));
        for unknown in ["0.3.0", "1.0.0", "0", "", "0.2.x", "0.2.0.1", "0.1.0-rc1"] {
            assert_eq!(Contract::of_version(unknown), None, "{unknown}");
        }
        assert_eq!(Contract::supported(), "graft:migration@0.1.x and @0.2.x");
    }

    #[test]
    fn each_version_is_its_own_wit_package() {
        for contract in Contract::ALL {
            assert!(contract
                .wit()
                .contains(&format!("package {};", contract.package())));
        }
    }
}
