//! Interposed `dlopen` and `dlclose`: the handlers' unwind tables follow the loaded code at once.
//!
//! After `dlopen` the module list is re-read, so samples in the new code unwind by its CFI from
//! the first one. Around `dlclose` the handler stops reading code bytes, and the unload waits
//! until every thread has left its critical section, so no handler reads code that is being
//! unmapped; the tables are re-read before code reads resume.

use crate::lifecycle::state;
use crate::log;
use crate::next_fn::NextFn;
use sigprof::{wait_for_critical_sections, Registry};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

type Dlopen = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type Dlclose = unsafe extern "C" fn(*mut c_void) -> c_int;

// SAFETY: the types are those of libc's dlopen and dlclose.
static REAL_DLOPEN: NextFn<Dlopen> = unsafe { NextFn::new(c"dlopen") };
// SAFETY: as above.
static REAL_DLCLOSE: NextFn<Dlclose> = unsafe { NextFn::new(c"dlclose") };

fn refresh_unwind_tables() {
    if std::panic::catch_unwind(|| {
        writer::drain::refresh_modules_now();
        crate::lifecycle::start::detect_python();
    })
    .is_err()
    {
        state::switch_off("internal error while re-reading the module list");
    }
}

/// # Safety
/// Same contract as libc's `dlopen`.
#[no_mangle]
pub unsafe extern "C" fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void {
    let Some(real) = REAL_DLOPEN.get() else { return std::ptr::null_mut() };
    // SAFETY: forwarding the caller's arguments unchanged.
    let handle = unsafe { real(filename, flags) };
    if !handle.is_null() && state::is_running() {
        refresh_unwind_tables();
    }
    handle
}

/// Waits until every thread that may have started reading code bytes before `code_unloading`
/// was raised has left its critical section. The wait is not given up: unmapping code a
/// handler still reads would crash the host (reclamation rule, `sigprof` invariant 6). Only a
/// thread stopped inside the handler (by a debugger) can make it long; that is said once.
fn wait_until_no_handler_reads_code(registry: &Registry) {
    static SAID: AtomicBool = AtomicBool::new(false);
    while wait_for_critical_sections(registry, Duration::from_millis(200)) != 0 {
        if !SAID.swap(true, Ordering::Relaxed) {
            log::warn("dlclose waits for a thread stopped inside the sampling handler");
        }
    }
}

/// # Safety
/// Same contract as libc's `dlclose`.
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    let Some(real) = REAL_DLCLOSE.get() else { return -1 };
    // Whatever the shim's state (a handler may still be walking while tracing stops), the
    // code is unmapped only once no handler can be reading its bytes.
    let Some(registry) = Registry::get() else {
        // SAFETY: forwarding the caller's argument unchanged.
        return unsafe { real(handle) };
    };
    registry.code_unloading.fetch_add(1, Ordering::SeqCst);
    wait_until_no_handler_reads_code(registry);
    // SAFETY: forwarding the caller's argument unchanged.
    let result = unsafe { real(handle) };
    if state::is_running() {
        refresh_unwind_tables();
    }
    registry.code_unloading.fetch_sub(1, Ordering::SeqCst);
    result
}
