//! What plugin calls need of the process: a native stack (wasm frames run
//! on the calling thread's stack, so every call runs on a thread with room
//! for the whole wasm stack plus the host's own code below it), and open
//! files.

/// Native stack the host's own code needs below a plugin's deepest wasm
/// frame: the storage calls a plugin makes (SQLite's C code, serde),
/// wasmtime's lifting and lowering, trap handling.
pub(super) const HOST_STACK_RESERVE: usize = 4 << 20;

/// The largest wasm stack an operator may give plugins (`--stack-kb`).
pub const MAX_WASM_STACK: usize = 256 << 20;

thread_local! {
    /// The stack size of this thread where the runner made it for plugin
    /// calls (0: a thread the runner did not make, its stack unknown).
    pub(super) static CALL_STACK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Bytes of native stack left below this point on the current thread, as
/// far as the system tells (0 where it does not): a thread the runner did
/// not make (the main thread, a library caller's) runs calls in place when
/// it has room, and only gets a call thread when it has not.
pub(super) fn stack_left() -> usize {
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

/// Let the process open as many files as the system allows it (the soft
/// limit up to the hard one, once): every call may hold `MAX_HANDLES`,
/// tenants run in parallel, and each tenant's database holds a few more.
pub(super) fn raise_file_limit() {
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
