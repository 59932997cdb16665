//! Resource limits of one plugin call. The operator sets the ceiling; a
//! module's `graft.json` may ask for less (or, up to the ceiling, for what
//! its migration needs), never for more.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the host keeps of one text a plugin returns (a failure message,
/// what `inspect` found): longer text is cut (`text::truncate`), so a
/// 100 MB message costs the journal and the history no more than this.
pub const MAX_PLUGIN_TEXT_BYTES: usize = 16 << 10;

/// The limits a call runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall-clock time of one call (epoch interruption).
    pub deadline: Duration,
    /// WebAssembly instructions of one call, in wasmtime fuel; `None`: no count.
    pub fuel: Option<u64>,
    /// Linear memory of the instance.
    pub memory_bytes: u64,
    /// Bytes of log messages and stdout/stderr kept per call; more is
    /// counted and dropped.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(15 * 60),
            fuel: None,
            memory_bytes: 1 << 30,
            log_bytes: 1 << 20,
        }
    }
}

/// A module's own limits, from its `graft.json` (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitOverrides {
    pub deadline_ms: Option<u64>,
    pub fuel: Option<u64>,
    pub memory_mb: Option<u64>,
    pub log_bytes: Option<u64>,
}

impl Limits {
    /// The limits for a module: its own where it sets them, never above these.
    pub fn for_module(&self, module: &LimitOverrides) -> Limits {
        Limits {
            deadline: module.deadline_ms.map_or(self.deadline, |ms| {
                Duration::from_millis(ms).min(self.deadline)
            }),
            fuel: match (module.fuel, self.fuel) {
                (Some(m), Some(o)) => Some(m.min(o)),
                (m, o) => m.or(o),
            },
            memory_bytes: module
                .memory_mb
                .map_or(self.memory_bytes, |mb| (mb << 20).min(self.memory_bytes)),
            log_bytes: module
                .log_bytes
                .map_or(self.log_bytes, |b| b.min(self.log_bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_limits_never_exceed_the_operator() {
        let operator = Limits {
            deadline: Duration::from_secs(10),
            fuel: Some(1000),
            memory_bytes: 100 << 20,
            log_bytes: 500,
        };
        let asks = LimitOverrides {
            deadline_ms: Some(60_000),
            fuel: Some(10),
            memory_mb: Some(50),
            log_bytes: None,
        };
        let limits = operator.for_module(&asks);
        assert_eq!(limits.deadline, Duration::from_secs(10));
        assert_eq!(limits.fuel, Some(10));
        assert_eq!(limits.memory_bytes, 50 << 20);
        assert_eq!(limits.log_bytes, 500);
        assert_eq!(operator.for_module(&LimitOverrides::default()), operator);
    }
}
