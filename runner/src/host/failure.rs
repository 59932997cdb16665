//! Why a call failed, told apart and bounded: the plugin's own errors,
//! traps (timeout, fuel, memory, stack, handles), panics with their
//! message, and the host's errors; every text a plugin controls is cut.

use super::*;

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

pub(super) fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

pub(super) fn host_failure(message: String) -> CallFailure {
    CallFailure {
        kind: FailureKind::Host,
        message,
        collection: None,
        record_id: None,
        backtrace: Vec::new(),
    }
}

/// A plugin's text, cut to what the host keeps of it.
pub(super) fn kept(text: String) -> String {
    match truncate(&text, MAX_PLUGIN_TEXT_BYTES) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

/// A write-behind batch that failed, its error never collected by the
/// plugin (no `flush` after it): the step fails all the same.
pub(super) fn behind_failure(error: crate::storage::StoreError) -> CallFailure {
    let record_id = match &error {
        crate::storage::StoreError::UniqueViolation { record_id, .. } => Some(record_id.clone()),
        _ => None,
    };
    CallFailure {
        kind: FailureKind::Failed,
        message: kept(format!(
            "a write-behind batch failed (the plugin did not flush to hear it): {error}"
        )),
        collection: None,
        record_id: record_id.map(kept),
        backtrace: Vec::new(),
    }
}

pub(super) fn plugin_failure(failure: wit::Failure) -> CallFailure {
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
pub(super) fn instantiate_failure(
    error: &wasmtime::Error,
    state: &StepState,
    limits: &Limits,
) -> CallFailure {
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

pub(super) fn classify_trap(
    error: &wasmtime::Error,
    state: &StepState,
    limits: &Limits,
) -> CallFailure {
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

pub(super) fn kept_bytes(text: String, max: usize) -> String {
    truncate(&text, max).into_owned()
}

/// Why a call ended that no limit explains, from the root of the error:
/// wasmtime wraps the cause in a context that only says where in the wasm
/// it happened ("error while executing at wasm backtrace: ..."), so the
/// chain is walked and every cause but that one named.
pub(super) fn trap_reason(error: &wasmtime::Error) -> String {
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
/// The record a guest was working on when it panicked, as the Rust SDK
/// tells it after the panic message (`graft-record: COLLECTION<tab>ID`):
/// the last such line.
pub(super) fn panic_record(stderr: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("graft-record: "))?;
    let (collection, id) = line.split_once('\t')?;
    Some((kept(collection.to_string()), kept(id.to_string())))
}

pub(super) fn panic_message(stderr: &[u8]) -> Option<String> {
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
