//! The real C functions behind sigtrace's interposed ones: each is the next definition after
//! sigtrace's own (libc's), found with `dlsym(RTLD_NEXT)` on first use and cached. The one
//! place where an address becomes a typed function pointer.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The next definition of the C function `name`, of type `F` (an `extern "C" fn` pointer type).
pub struct NextFn<F> {
    name: &'static CStr,
    /// The symbol version to ask `dlvsym` for; `None`: `dlsym`'s default.
    version: Option<&'static CStr>,
    /// The address, 0 until looked up (or when no later object defines it).
    address: AtomicUsize,
    function_type: PhantomData<F>,
}

impl<F: Copy> NextFn<F> {
    /// # Safety
    /// `F` must be the `extern "C" fn` pointer type of the C function `name`: [`NextFn::get`]
    /// turns the address `dlsym` finds into an `F`.
    pub const unsafe fn new(name: &'static CStr) -> Self {
        assert!(std::mem::size_of::<F>() == std::mem::size_of::<usize>(), "F must be a function pointer type");
        NextFn { name, version: None, address: AtomicUsize::new(0), function_type: PhantomData }
    }

    /// Like [`NextFn::new`], for the definition of `name` at symbol `version` (`dlsym` may give
    /// an old compatibility version of a symbol that has several, such as glibc's condition
    /// variable functions on x86_64).
    ///
    /// # Safety
    /// As for [`NextFn::new`].
    pub const unsafe fn versioned(name: &'static CStr, version: &'static CStr) -> Self {
        assert!(std::mem::size_of::<F>() == std::mem::size_of::<usize>(), "F must be a function pointer type");
        NextFn { name, version: Some(version), address: AtomicUsize::new(0), function_type: PhantomData }
    }

    /// Looks the function up now (start-up), so that a first call from a signal handler does
    /// not run `dlsym`.
    pub fn resolve(&self) {
        let _ = self.get();
    }

    /// The function, or `None` when no object after sigtrace defines it. The first call runs
    /// `dlsym` (not async-signal-safe); later calls read the cached address.
    pub fn get(&self) -> Option<F> {
        let mut address = self.address.load(Ordering::Acquire);
        if address == 0 {
            address = match self.version {
                // SAFETY: dlvsym with NUL-terminated name and version; RTLD_NEXT skips our own definition.
                Some(version) => (unsafe { libc::dlvsym(libc::RTLD_NEXT, self.name.as_ptr(), version.as_ptr()) }) as usize,
                None => 0,
            };
            if address == 0 {
                // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT skips our own definition.
                address = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) } as usize;
            }
            self.address.store(address, Ordering::Release);
        }
        // SAFETY: `new`'s contract: F is the pointer type of `name`, whose address this is, and
        // F is pointer-sized (checked in `new`).
        (address != 0).then(|| unsafe { std::mem::transmute_copy::<usize, F>(&address) })
    }
}
