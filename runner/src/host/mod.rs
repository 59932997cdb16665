//! The wasmtime host: compiles each package's component once (cached on
//! disk by content hash and engine), keeps an `InstancePre` per plugin, and
//! runs every call in a fresh store with its own limits, its own WASI
//! context (no network, no environment, only the package's data folders,
//! read-only) and the tenant's storage lent to it for the call.

mod clock;
mod determinism;
#[cfg(test)]
mod fuzz;
mod output;
mod state;

pub use determinism::Determinism;
pub use state::{LogLine, ProgressFn, RecordWarning, StepLog};

use crate::limits::{Limits, MAX_PLUGIN_TEXT_BYTES};
use crate::package::Package;
use crate::storage::{TenantStore, WriteCounts};
use crate::text::truncate;
use anyhow::{anyhow, bail, Context as _, Result};
use output::BoundedPipe;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
    });
}

pub use bindings::graft::migration::types as wit;

/// The contract this runner implements; plugins of any 0.1.x are accepted.
pub const CONTRACT: &str = "graft:migration@0.1.0";
const CONTRACT_PACKAGE: &str = "graft:migration/";
const SUPPORTED_MAJOR_MINOR: (u64, u64) = (0, 1);

/// How often the epoch advances: the resolution of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack the host's own code needs below a plugin's deepest wasm
/// frame: the storage calls a plugin makes (SQLite's C code, serde),
/// wasmtime's lifting and lowering, trap handling.
const HOST_STACK_RESERVE: usize = 4 << 20;

/// Handles (open files and directories, streams, pollables) one call may
/// hold at once; more fail the call as `handles`.
pub const MAX_HANDLES: usize = 256;

/// The largest wasm stack an operator may give plugins (`--stack-kb`).
pub const MAX_WASM_STACK: usize = 256 << 20;

thread_local! {
    /// The stack size of this thread where the runner made it for plugin
    /// calls (0: a thread the runner did not make, its stack unknown).
    static CALL_STACK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Bytes of native stack left below this point on the current thread, as
/// far as the system tells (0 where it does not): a thread the runner did
/// not make (the main thread, a library caller's) runs calls in place when
/// it has room, and only gets a call thread when it has not.
fn stack_left() -> usize {
    thread_local! {
        /// The lowest address of this thread's stack (0: unknown).
        static STACK_BOTTOM: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }
    let bottom = STACK_BOTTOM.with(|cached| {
        if let Some(bottom) = cached.get() {
            return bottom;
        }
        let bottom = {
            // SAFETY: pthread_getattr_np fills `attr` for the calling thread,
            // pthread_attr_getstack reads it, and it is destroyed after.
            unsafe {
                let mut attr: libc::pthread_attr_t = std::mem::zeroed();
                if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
                    return 0;
                }
                let mut addr: *mut libc::c_void = std::ptr::null_mut();
                let mut size: libc::size_t = 0;
                let found = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
                libc::pthread_attr_destroy(&mut attr);
                if found {
                    addr as usize
                } else {
                    0
                }
            }
        };
        // Asked once per thread: for the main thread the system reads
        // /proc/self/maps to answer.
        cached.set(Some(bottom));
        bottom
    });
    let here = &bottom as *const usize as usize;
    if bottom == 0 {
        return 0;
    }
    here.saturating_sub(bottom)
}

/// The native stack a thread needs for plugin calls under `max_wasm_stack`.
pub fn call_stack_size(max_wasm_stack: usize) -> usize {
    max_wasm_stack.min(MAX_WASM_STACK) + HOST_STACK_RESERVE
}

/// `f`, to run as the body of a thread spawned with `stack` bytes of stack:
/// plugin calls on it then run in place (see `Host::call`).
pub fn on_call_stack<T>(stack: usize, f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    move || {
        CALL_STACK.with(|size| size.set(stack));
        f()
    }
}

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
        bindings::Plugin::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |state| state)?;
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
    linked: Mutex<HashMap<(String, bool), bindings::PluginPre<StepState>>>,
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
    pre: bindings::PluginPre<StepState>,
    /// Compiled with instruction counting (fuel).
    metered: bool,
}

/// Why a call did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The plugin said it cannot do this step.
    Unsupported,
    /// The plugin returned a failure.
    Failed,
    /// The plugin panicked.
    Panic,
    /// The wall-clock deadline passed.
    Timeout,
    /// The instruction budget (fuel) ran out.
    Fuel,
    /// The plugin asked for more memory than its limit.
    Memory,
    /// The plugin overflowed its stack.
    Stack,
    /// The plugin held more open files and other handles than allowed.
    Handles,
    /// Any other trap.
    Trap,
    /// The steps reported more record warnings than the operator allows.
    Warnings,
    /// The host could not run the call.
    Host,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallFailure {
    pub kind: FailureKind,
    pub message: String,
    pub collection: Option<String>,
    pub record_id: Option<String>,
    /// Where in the plugin a trap happened: its functions, innermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        write!(f, "{kind}: {}", self.message)?;
        if let Some(collection) = &self.collection {
            write!(f, " (collection {collection}")?;
            if let Some(id) = &self.record_id {
                write!(f, ", record {id}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
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
                pre: pre.clone(),
                metered,
            });
        }
        let component = self.compile(runtime, path, &bytes, &key.0)?;
        check_contract(&runtime.engine, path, &component)?;
        let instance_pre = runtime.linker.instantiate_pre(&component).map_err(|e| {
            anyhow!(
                "{}: the plugin needs imports this runner does not provide: {e}",
                path.display()
            )
        })?;
        let pre = bindings::PluginPre::new(instance_pre)
            .map_err(|e| anyhow!("{}: not a Graft plugin for {CONTRACT}: {e}", path.display()))?;
        self.linked.lock().unwrap().insert(key.clone(), pre.clone());
        Ok(Plugin {
            package: package.clone(),
            sha256: key.0,
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

    fn compile(
        &self,
        runtime: &Runtime,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<Component> {
        let cached = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{sha256}-{}.cwasm", runtime.key())));
        if let Some(cached) = cached.as_ref().filter(|p| p.exists()) {
            match read_cache_entry(cached) {
                // SAFETY: deserializing runs the bytes as native code. These
                // are exactly the bytes `Component::serialize` wrote for an
                // engine with the same compatibility hash (part of the name):
                // their checksum, written with them, was checked just now, so
                // a flipped bit or a truncated file is never loaded. (Whoever
                // can write the cache folder can run code as the runner: it
                // must be the runner's alone, see the threat model.)
                Ok(serialized) => {
                    match unsafe { Component::deserialize(&runtime.engine, &serialized) } {
                        Ok(component) => return Ok(component),
                        Err(e) => tracing::warn!(
                            "{}: ignoring unusable cached compilation: {e}",
                            cached.display()
                        ),
                    }
                }
                Err(why) => tracing::warn!(
                    "{}: recompiling the plugin: the cached compilation {why}",
                    cached.display()
                ),
            }
        }
        let component = Component::new(&runtime.engine, bytes).map_err(|e| {
            anyhow!(
                "{}: not a valid WebAssembly component: {e:#}",
                path.display()
            )
        })?;
        if let Some(cached) = cached {
            // Write then rename, so a reader never sees half a file.
            let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
            let written = component
                .serialize()
                .map_err(|e| anyhow!("{e}"))
                .and_then(|data| std::fs::write(&tmp, cache_entry(&data)).map_err(Into::into))
                .and_then(|()| std::fs::rename(&tmp, &cached).map_err(Into::into));
            if let Err(e) = written {
                tracing::warn!(
                    "{}: cannot cache the compiled plugin: {e}",
                    cached.display()
                );
            }
        }
        Ok(component)
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
        f: impl FnOnce(
                &bindings::Plugin,
                &mut Store<StepState>,
            ) -> wasmtime::Result<Result<T, wit::Failure>>
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
        f: impl FnOnce(
            &bindings::Plugin,
            &mut Store<StepState>,
        ) -> wasmtime::Result<Result<T, wit::Failure>>,
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
            release: plugin.package.id.version.to_string(),
            overlay: Vec::new(),
            log: StepLog::new(limits.log_bytes, setup.progress),
            writes: WriteCounts::default(),
            stdout,
            stderr,
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
            limits: limits.clone(),
            progress: None,
            determinism: None,
        };
        let outcome = self.call(plugin, setup, |p, store| {
            p.graft_migration_migration().call_describe(store).map(Ok)
        });
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

/// Let the process open as many files as the system allows it (the soft
/// limit up to the hard one, once): every call may hold `MAX_HANDLES`,
/// tenants run in parallel, and each tenant's database holds a few more.
fn raise_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write `limit`.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    tracing::debug!("cannot raise the open file limit");
                }
            }
        }
    });
}

/// A cache entry starts with this, then the xxh3-128 checksum of the
/// serialized component, then the component: what is loaded is checked
/// first. A checksum, not a MAC: it finds a flipped bit or a torn file;
/// whoever can write the cache could as well write a matching checksum (see
/// the threat model). xxh3 rather than sha256: a cached load is about half
/// a millisecond, which sha256 of a few MB would multiply.
const CACHE_MAGIC: &[u8; 8] = b"graftcw1";
const CACHE_HEADER: usize = 8 + 16;

fn cache_checksum(serialized: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(serialized).to_le_bytes()
}

fn cache_entry(serialized: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(CACHE_HEADER + serialized.len());
    entry.extend_from_slice(CACHE_MAGIC);
    entry.extend_from_slice(&cache_checksum(serialized));
    entry.extend_from_slice(serialized);
    entry
}

/// The serialized component of a cache entry, if its checksum holds; else
/// what is wrong with it.
fn read_cache_entry(path: &Path) -> Result<Vec<u8>, String> {
    let mut entry = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    if entry.len() < CACHE_HEADER || &entry[..8] != CACHE_MAGIC {
        return Err("is not in graft's cache format".into());
    }
    if cache_checksum(&entry[CACHE_HEADER..]) != entry[8..CACHE_HEADER] {
        return Err("does not match its checksum (corrupted)".into());
    }
    entry.drain(..CACHE_HEADER);
    Ok(entry)
}

/// A description names a module and releases: short texts, a few of them.
/// Anything larger is refused before the host keeps or prints it.
fn check_description_size(path: &Path, description: &wit::Description) -> Result<()> {
    const TEXT: usize = 256;
    const RELEASES: usize = 1000;
    let texts = [
        &description.module_name,
        &description.release,
        &description.contract,
    ]
    .into_iter()
    .chain(&description.upgrades_from)
    .chain(&description.rolls_back_to);
    if texts.clone().any(|t| t.len() > TEXT)
        || description.upgrades_from.len() > RELEASES
        || description.rolls_back_to.len() > RELEASES
    {
        bail!(
            "{}: describe returned names longer than {TEXT} bytes or more than {RELEASES} \
             releases: not a description graft can use",
            path.display()
        );
    }
    Ok(())
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

fn host_failure(message: String) -> CallFailure {
    CallFailure {
        kind: FailureKind::Host,
        message,
        collection: None,
        record_id: None,
        backtrace: Vec::new(),
    }
}

/// A plugin's text, cut to what the host keeps of it.
fn kept(text: String) -> String {
    match truncate(&text, MAX_PLUGIN_TEXT_BYTES) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

fn plugin_failure(failure: wit::Failure) -> CallFailure {
    match failure {
        wit::Failure::Unsupported(message) => CallFailure {
            kind: FailureKind::Unsupported,
            message: kept(message),
            collection: None,
            record_id: None,
            backtrace: Vec::new(),
        },
        wit::Failure::Failed(detail) => CallFailure {
            kind: FailureKind::Failed,
            message: kept(detail.message),
            collection: detail.collection.map(kept),
            record_id: detail.record_id.map(kept),
            backtrace: Vec::new(),
        },
    }
}

/// Why a plugin could not start: its memories and tables (or how many it
/// creates) past the limits are `memory`, anything else is the host's.
fn instantiate_failure(error: &wasmtime::Error, state: &StepState, limits: &Limits) -> CallFailure {
    let text = format!("{error:#}");
    if state.limiter.exceeded {
        return classify_trap(error, state, limits);
    }
    if text.contains("count too high") || text.contains("resource limit exceeded") {
        return CallFailure {
            kind: FailureKind::Memory,
            message: kept(format!(
                "the plugin creates more than the host allows (at most {} instances, {} memories, \
                 {} tables): {text}",
                state::MAX_INSTANCES,
                state::MAX_MEMORIES,
                state::MAX_TABLES
            )),
            ..host_failure(String::new())
        };
    }
    host_failure(kept(format!("cannot instantiate the plugin: {text}")))
}

/// Frames of a trap's backtrace the host keeps, and the longest name (a
/// plugin names its own functions).
const BACKTRACE_FRAMES: usize = 64;
const FRAME_NAME_BYTES: usize = 512;

fn classify_trap(error: &wasmtime::Error, state: &StepState, limits: &Limits) -> CallFailure {
    let trap = error.downcast_ref::<Trap>().copied();
    let (kind, message) = if state.limiter.exceeded {
        (
            FailureKind::Memory,
            format!(
                "the plugin needed more than its memory limit of {} MiB",
                limits.memory_bytes >> 20
            ),
        )
    } else {
        match trap {
            Some(Trap::Interrupt) => (
                FailureKind::Timeout,
                format!(
                    "the plugin ran past its deadline of {:.1} s",
                    limits.deadline.as_secs_f64()
                ),
            ),
            Some(Trap::OutOfFuel) => (
                FailureKind::Fuel,
                format!(
                    "the plugin used all its fuel ({} units)",
                    limits.fuel.unwrap_or(u64::MAX)
                ),
            ),
            Some(Trap::StackOverflow) => (
                FailureKind::Stack,
                "the plugin overflowed its stack".to_string(),
            ),
            _ if error.chain().any(|cause| {
                matches!(
                    cause.downcast_ref::<wasmtime::component::ResourceTableError>(),
                    Some(wasmtime::component::ResourceTableError::Full)
                )
            }) =>
            {
                (
                    FailureKind::Handles,
                    format!(
                        "the plugin held more than {MAX_HANDLES} open files, streams and other \
                         handles at once"
                    ),
                )
            }
            _ => (FailureKind::Trap, trap_reason(error)),
        }
    };
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|trace| {
            trace
                .frames()
                .iter()
                .take(BACKTRACE_FRAMES)
                .map(|frame| match frame.func_name() {
                    Some(name) => kept_bytes(
                        format!("{:#}", rustc_demangle::demangle(name)),
                        FRAME_NAME_BYTES,
                    ),
                    None => format!("function #{}", frame.func_index()),
                })
                .collect()
        })
        .unwrap_or_default();
    CallFailure {
        kind,
        message,
        collection: None,
        record_id: None,
        backtrace,
    }
}

fn kept_bytes(text: String, max: usize) -> String {
    truncate(&text, max).into_owned()
}

/// Why a call ended that no limit explains, from the root of the error:
/// wasmtime wraps the cause in a context that only says where in the wasm
/// it happened ("error while executing at wasm backtrace: ..."), so the
/// chain is walked and every cause but that one named.
fn trap_reason(error: &wasmtime::Error) -> String {
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!(
            "the plugin called exit({}) instead of returning a result",
            exit.0
        );
    }
    let causes: Vec<String> = error
        .chain()
        .map(|cause| cause.to_string())
        .filter(|text| !text.starts_with("error while executing at wasm backtrace"))
        .map(|text| text.lines().next().unwrap_or_default().trim().to_string())
        .filter(|text| !text.is_empty())
        .collect();
    let reason = if causes.is_empty() {
        "no reason given".to_string()
    } else {
        causes.join(": ")
    };
    kept(format!("the plugin trapped: {reason}"))
}

/// The message of a Rust panic from the guest's stderr, as
/// "MESSAGE (at FILE:LINE:COL)".
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("panicked at ")?;
    let mut lines = text[start + "panicked at ".len()..].lines();
    let location = lines.next().unwrap_or_default().trim_end_matches(':');
    let message: Vec<&str> = lines
        .take_while(|line| !line.starts_with("note:"))
        .take(4)
        .collect();
    Some(format!("{} (at {location})", message.join(" ")))
}

/// Tell a core module, garbage and a component apart before wasmtime does,
/// so the error says what to do.
fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!(
            "{}: not a WebAssembly file (no \\0asm header): rebuild the plugin",
            path.display()
        );
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => bail!(
            "{}: a core WebAssembly module, not a component: build the plugin with \
             `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)",
            path.display()
        ),
        _ => bail!(
            "{}: unknown WebAssembly encoding version {:02x?}",
            path.display(),
            &bytes[4..8]
        ),
    }
}

/// Refuse a component built for another contract version with an error
/// that names both versions.
fn check_contract(engine: &Engine, path: &Path, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .chain(ty.imports(engine).map(|(name, _)| name.to_string()))
        .filter(|name| name.starts_with(CONTRACT_PACKAGE))
        .collect();
    if !names
        .iter()
        .any(|n| n.starts_with("graft:migration/migration@"))
    {
        bail!(
            "{}: not a Graft plugin: the component does not export {CONTRACT_PACKAGE}migration",
            path.display()
        );
    }
    for name in names {
        let version = name.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        let major_minor = (parts.next().flatten(), parts.next().flatten());
        if major_minor != (Some(SUPPORTED_MAJOR_MINOR.0), Some(SUPPORTED_MAJOR_MINOR.1)) {
            bail!(
                "{}: built for contract graft:migration@{version}, but this runner supports {CONTRACT} \
                 (0.1.x): rebuild the plugin with a graft-plugin-sdk for 0.1",
                path.display()
            );
        }
    }
    Ok(())
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
