//! The wasmtime host: compiles each package's component once (cached on
//! disk by content hash and engine), keeps an `InstancePre` per plugin, and
//! runs every call in a fresh store with its own limits, its own WASI
//! context (no network, no environment, only the package's data folders,
//! read-only) and the tenant's storage lent to it for the call.

mod behind;
mod cache;
mod clock;
mod component;
mod contract;
mod determinism;
mod failure;
#[cfg(test)]
mod fuzz;
mod imports;
mod pipe;
mod stack;
mod state;

pub use contract::{contract_version_of, Contract, Instance};
pub use determinism::Determinism;
pub use failure::{CallFailure, FailureKind};
pub use stack::{call_stack_size, on_call_stack, MAX_WASM_STACK};
pub use state::{LogLine, ProgressFn, RecordWarning, StepLog};

use crate::limits::{Limits, MAX_PLUGIN_TEXT_BYTES};
use crate::package::Package;
use crate::storage::{TenantStore, WriteCounts};
use crate::text::truncate;
use anyhow::{anyhow, bail, Context as _, Result};
use component::*;
use contract::{contract_of, Linked};
use failure::*;
use pipe::BoundedPipe;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stack::*;
use state::{MemoryLimiter, StepState};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtxBuilder};

/// The host side of each contract version, generated from its WIT.
pub(crate) mod bindings {
    pub(crate) mod v0_1 {
        wasmtime::component::bindgen!({
            path: "../wit/migration.wit",
            world: "plugin",
        });
    }
    pub(crate) mod v0_2 {
        wasmtime::component::bindgen!({
            path: "../wit/0.2.0/migration.wit",
            world: "plugin",
        });
    }
}

/// The newest contract's types: what the runner works with, whatever
/// version a plugin was built for (see `contract`).
pub use bindings::v0_2::graft::migration::types as wit;

const CONTRACT_PACKAGE: &str = "graft:migration/";

/// How often the epoch advances: the resolution of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Handles (open files and directories, streams, pollables) one call may
/// hold at once; more fail the call as `handles`.
pub const MAX_HANDLES: usize = 256;

/// Settings of the engine, shared by every plugin.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled components are kept between runs; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Native stack a plugin may use. The engines serve all plugins, so this
    /// one is the operator's, not per module.
    pub max_wasm_stack: usize,
    /// Count every call's instructions (fuel), limited or not, as `graft
    /// validate` does to report them; otherwise only calls with a fuel
    /// limit are counted.
    pub count_fuel: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            cache_dir: None,
            max_wasm_stack: 1 << 20,
            count_fuel: false,
        }
    }
}

/// An engine and the contract's imports linked for it.
struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
}

impl Runtime {
    fn new(config: &HostConfig, metered: bool) -> Result<Runtime> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            // A sync host: the async machinery only costs time per call.
            .concurrency_support(false)
            .epoch_interruption(true)
            .consume_fuel(metered)
            // wasmtime refuses a wasm stack larger than the stack of its
            // async fibers, which this sync host never starts: keep that
            // bound out of the way of `--stack-kb` (the stack the calls
            // really run on is the runner's own, see `call_stack_size`).
            .async_stack_size(config.max_wasm_stack + (1 << 20))
            .max_wasm_stack(config.max_wasm_stack);
        let engine = Engine::new(&wasm).map_err(|e| anyhow!("cannot set up wasmtime: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        clock::add_to_linker(&mut linker)?;
        // Both versions' imports: their interfaces are versioned names, so
        // a plugin links against its own.
        bindings::v0_1::Plugin::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |state| state)?;
        bindings::v0_2::Plugin::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |state| state)?;
        Ok(Runtime { engine, linker })
    }

    /// Names this engine's compiled code: the compatibility hash wasmtime
    /// defines (it covers the wasmtime version and settings such as fuel).
    fn key(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }
}

pub struct Host {
    /// See `HostConfig::max_wasm_stack`.
    max_wasm_stack: usize,
    /// Two engines, since counting instructions is compiled into the code
    /// and costs about a tenth of a rewrite's time (docs/benchmarks.md):
    /// calls are metered only when their limits have fuel (or the host
    /// counts all, `HostConfig::count_fuel`). Both have epoch deadlines.
    plain: Runtime,
    metered: Runtime,
    count_fuel: bool,
    cache_dir: Option<PathBuf>,
    /// Plugins already compiled and linked in this process, by the sha256 of
    /// their bytes and whether metered: every tenant after the first only
    /// instantiates.
    linked: Mutex<HashMap<(String, bool), Linked>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A loaded plugin, ready to be instantiated for any tenant.
pub struct Plugin {
    pub package: Package,
    pub sha256: String,
    /// The contract version the plugin was built for.
    pub contract: Contract,
    pre: Linked,
    /// Compiled with instruction counting (fuel).
    metered: bool,
}

/// Resources a call used.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Usage {
    pub duration_ms: u64,
    /// Instructions (wasmtime fuel) used, where counted: calls with a fuel
    /// limit, or every call of a host that counts (`graft validate`);
    /// `None` otherwise, and where no plugin ran.
    pub fuel: Option<u64>,
    pub peak_memory_bytes: u64,
}

/// What a call gives back: its value or failure, and in every case the
/// storage it borrowed, its log, writes and resource use.
pub struct CallOutcome<T> {
    pub result: Result<T, CallFailure>,
    pub store: Option<Box<dyn TenantStore>>,
    pub log: StepLog,
    pub writes: WriteCounts,
    pub usage: Usage,
    /// What the call's overlay loads did, by collection.
    pub overlay: Vec<crate::overlay::CollectionOverlay>,
}

/// What a call needs besides the plugin.
pub struct CallSetup {
    pub store: Option<Box<dyn TenantStore>>,
    /// Other modules whose collections the call may read (contract 0.2's
    /// `required`): the enabled providers of what the module requires.
    pub readable: Vec<String>,
    pub limits: Limits,
    pub progress: Option<ProgressFn>,
    /// The fixed clock and seeded randomness of the call; `None`: the
    /// host's real clock and random numbers (for calls that touch no data).
    pub determinism: Option<Determinism>,
}

impl Host {
    pub fn new(config: HostConfig) -> Result<Host> {
        raise_file_limit();
        if config.max_wasm_stack > MAX_WASM_STACK {
            bail!(
                "a plugin stack of {} KiB is more than the {} KiB graft allows (--stack-kb)",
                config.max_wasm_stack >> 10,
                MAX_WASM_STACK >> 10
            );
        }
        let plain = Runtime::new(&config, false)?;
        let metered = Runtime::new(&config, true)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let engines = [plain.engine.weak(), metered.engine.weak()];
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("graft-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for weak in &engines {
                        match weak.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => return,
                        }
                    }
                }
            })
            .context("cannot start the deadline timer")?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the plugin cache", dir.display()))?;
        }
        Ok(Host {
            max_wasm_stack: config.max_wasm_stack,
            plain,
            metered,
            count_fuel: config.count_fuel,
            cache_dir: config.cache_dir,
            linked: Mutex::new(HashMap::new()),
            ticker_stop,
        })
    }

    /// Count every call's instructions from now on (see `HostConfig::count_fuel`).
    pub fn count_fuel(&mut self) {
        self.count_fuel = true;
    }

    /// Load a package's plugin for calls under `limits`: check it is a
    /// component for this contract, compile it (or load the cached
    /// compilation) and link it.
    pub fn load(&self, package: &Package, limits: &Limits) -> Result<Plugin> {
        let metered = self.count_fuel || limits.fuel.is_some();
        let runtime = self.runtime(metered);
        let path = &package.plugin;
        let bytes = crate::package::read_at_most(path, crate::package::MAX_PLUGIN_BYTES)
            .with_context(|| format!("{}: cannot read the plugin", path.display()))?;
        check_header(path, &bytes)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = (sha256, metered);
        if let Some(pre) = self.linked.lock().unwrap().get(&key) {
            return Ok(Plugin {
                package: package.clone(),
                sha256: key.0,
                contract: pre.contract(),
                pre: pre.clone(),
                metered,
            });
        }
        let component = self.compile(runtime, path, &bytes, &key.0)?;
        let contract = contract_of(&runtime.engine, path, &component)?;
        let instance_pre = runtime.linker.instantiate_pre(&component).map_err(|e| {
            anyhow!(
                "{}: the plugin needs imports this runner does not provide: {e}",
                path.display()
            )
        })?;
        let pre = Linked::new(contract, instance_pre).map_err(|e| {
            anyhow!(
                "{}: not a Graft plugin for {}: {e}",
                path.display(),
                contract.package()
            )
        })?;
        self.linked.lock().unwrap().insert(key.clone(), pre.clone());
        Ok(Plugin {
            package: package.clone(),
            sha256: key.0,
            contract,
            pre,
            metered,
        })
    }

    fn runtime(&self, metered: bool) -> &Runtime {
        if metered {
            &self.metered
        } else {
            &self.plain
        }
    }

    /// The native stack a thread needs to run this host's plugin calls: a
    /// plugin's wasm frames run on the calling thread's own stack, up to
    /// `max_wasm_stack`, and the host's code runs below them. A thread that
    /// runs many calls (a tenant worker) is spawned with it (`on_call_stack`).
    pub fn call_stack_size(&self) -> usize {
        call_stack_size(self.max_wasm_stack)
    }

    /// Run one call of a plugin in a fresh store, on a stack that holds it:
    /// the current thread's where the runner made it large enough, else a
    /// thread of its own (a stack overflow of the host would abort the
    /// whole process, every other tenant's job with it).
    pub fn call<T: Send>(
        &self,
        plugin: &Plugin,
        setup: CallSetup,
        f: impl FnOnce(&Instance, &mut Store<StepState>) -> wasmtime::Result<Result<T, wit::Failure>>
            + Send,
    ) -> CallOutcome<T> {
        let needed = self.call_stack_size();
        if CALL_STACK.with(|size| size.get()) >= needed || stack_left() >= needed {
            return self.call_here(plugin, setup, f);
        }
        // The call's parts wait in a slot the thread takes them from, so
        // that if no thread can be started they are still here.
        let slot = Mutex::new(Some((setup, f)));
        let spawned = std::thread::scope(|scope| {
            let body = on_call_stack(needed, || {
                let (setup, f) = slot.lock().unwrap().take().expect("taken once");
                self.call_here(plugin, setup, f)
            });
            std::thread::Builder::new()
                .name("graft-call".into())
                .stack_size(needed)
                .spawn_scoped(scope, body)
                .map(|thread| thread.join())
        });
        match spawned {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => {
                tracing::warn!("cannot start a thread for a plugin call ({e}); calling in place");
                let (setup, f) = slot.into_inner().unwrap().expect("not taken");
                self.call_here(plugin, setup, f)
            }
        }
    }

    fn call_here<T>(
        &self,
        plugin: &Plugin,
        setup: CallSetup,
        f: impl FnOnce(&Instance, &mut Store<StepState>) -> wasmtime::Result<Result<T, wit::Failure>>,
    ) -> CallOutcome<T> {
        let started = Instant::now();
        let limits = setup.limits;
        let stdout = BoundedPipe::new(limits.log_bytes as usize);
        let stderr = BoundedPipe::new(limits.log_bytes as usize);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        if let Some(determinism) = &setup.determinism {
            determinism.apply(&mut wasi);
        }
        let mut preopen_error = None;
        for (host_path, guest_path) in plugin.package.data_folders() {
            if let Err(e) = wasi.preopened_dir(&host_path, guest_path, FsPerms::ReadOnly) {
                preopen_error = Some(format!(
                    "{}: cannot open the data folder: {e}",
                    host_path.display()
                ));
            }
        }
        let deadline = started + limits.deadline;
        let mut table = ResourceTable::new();
        // Open files, streams and other handles a call may hold at once: a
        // plugin must not take the process's file descriptors from every
        // other tenant's call.
        table.set_max_capacity(MAX_HANDLES);
        let mut state = StepState {
            deadline: Some(deadline),
            wasi: wasi.build(),
            table,
            limiter: MemoryLimiter::new(limits.memory_bytes as usize),
            store: setup.store,
            module: plugin.package.id.name.clone(),
            readable: setup.readable,
            release: plugin.package.id.version.to_string(),
            overlay: Vec::new(),
            log: StepLog::new(limits.log_bytes, setup.progress),
            writes: WriteCounts::default(),
            stdout,
            stderr,
            behind: Default::default(),
        };
        if let Some(db) = state.store.as_deref_mut() {
            db.set_deadline(Some(deadline));
        }
        let mut store = Store::new(&self.runtime(plugin.metered).engine, state);
        store.limiter(|state| &mut state.limiter);
        let fuel = limits.fuel.unwrap_or(u64::MAX);
        let metering = match (plugin.metered, limits.fuel) {
            (true, _) => store
                .set_fuel(fuel)
                .map_err(|e| host_failure(e.to_string())),
            (false, None) => Ok(()),
            (false, Some(_)) => Err(host_failure(format!(
                "{}: loaded without instruction counting, called with a fuel limit",
                plugin.package.plugin.display()
            ))),
        };
        let result = match preopen_error {
            Some(message) => Err(host_failure(message)),
            None => metering.and_then(|()| {
                store.set_epoch_deadline(deadline_ticks(limits.deadline));
                let instance = plugin
                    .pre
                    .instantiate(&mut store)
                    .map_err(|e| instantiate_failure(&e, store.data(), &limits))?;
                match f(&instance, &mut store) {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(failure)) => Err(plugin_failure(failure)),
                    Err(error) => Err(classify_trap(&error, store.data(), &limits)),
                }
            }),
        };
        let fuel_used = plugin.metered.then(|| fuel - store.get_fuel().unwrap_or(0));
        let mut state = store.into_data();
        // A write-behind batch is written before the call ends, and its
        // error fails the call even where the plugin never asked for it.
        state.reclaim();
        let unheard = state.behind.take_error();
        let result = match (result, unheard) {
            (Ok(_), Some(e)) => Err(behind_failure(e)),
            (result, _) => result,
        };
        if let Some(db) = state.store.as_deref_mut() {
            db.set_deadline(None);
        }
        let (out, out_dropped) = state.stdout.take();
        let (err, err_dropped) = state.stderr.take();
        state.log.captured("info", "stdout", &out, out_dropped);
        state.log.captured("warn", "stderr", &err, err_dropped);
        let result = result.map_err(|mut failure| {
            // However the plugin ended (an interrupted storage call it
            // reported, or the epoch trap), a call past its deadline timed out.
            if Instant::now() >= deadline && failure.kind != FailureKind::Timeout {
                failure.message = format!(
                    "the plugin ran past its deadline of {:.1} s ({})",
                    limits.deadline.as_secs_f64(),
                    failure.message
                );
                failure.kind = FailureKind::Timeout;
            }
            if failure.kind == FailureKind::Trap {
                // A Rust guest prints its panic message, then aborts.
                if let Some(panic) = panic_message(&err) {
                    failure.kind = FailureKind::Panic;
                    failure.message = panic;
                    if let Some((collection, record_id)) = panic_record(&err) {
                        failure.collection = Some(collection);
                        failure.record_id = Some(record_id);
                    }
                }
            }
            failure
        });
        CallOutcome {
            result,
            store: state.store,
            log: state.log,
            writes: state.writes,
            overlay: state.overlay,
            usage: Usage {
                duration_ms: started.elapsed().as_millis() as u64,
                fuel: fuel_used,
                peak_memory_bytes: state.limiter.peak as u64,
            },
        }
    }

    /// Start a plugin in a fresh store and call nothing: checks that it
    /// instantiates, and measures what every call pays before it runs.
    pub fn instantiate(&self, plugin: &Plugin, limits: &Limits) -> Result<()> {
        let setup = CallSetup {
            store: None,
            readable: Vec::new(),
            limits: limits.clone(),
            progress: None,
            determinism: None,
        };
        let outcome = self.call(plugin, setup, |_, _| Ok(Ok(())));
        outcome.result.map_err(|failure| {
            anyhow!(
                "{}: cannot start: {failure}",
                plugin.package.plugin.display()
            )
        })
    }

    /// Ask a plugin who it is (no storage is lent to this call).
    pub fn describe(&self, plugin: &Plugin, limits: &Limits) -> Result<wit::Description> {
        let setup = CallSetup {
            store: None,
            readable: Vec::new(),
            limits: limits.clone(),
            progress: None,
            determinism: None,
        };
        let outcome = self.call(plugin, setup, |p, store| p.describe(store).map(Ok));
        let description = outcome.result.map_err(|failure| {
            anyhow!(
                "{}: describe failed: {failure}",
                plugin.package.plugin.display()
            )
        })?;
        check_description_size(&plugin.package.plugin, &description)?;
        Ok(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two engines' compiled code must never be mistaken for each
    /// other in the cache: plain code would not count a metered call's fuel.
    #[test]
    fn metered_and_plain_code_are_cached_apart() {
        let config = HostConfig::default();
        let plain = Runtime::new(&config, false).unwrap();
        let metered = Runtime::new(&config, true).unwrap();
        assert_ne!(plain.key(), metered.key());
        assert_eq!(plain.key(), Runtime::new(&config, false).unwrap().key());
    }
}
