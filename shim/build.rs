//! Links GCC's unwinder into libsigtrace.so statically instead of depending on libgcc_s.so.1.
//!
//! rustc links every Linux GNU artifact with `-lgcc_s` for `std`'s panic unwinding. For a shim
//! that lives in short processes that is a cost paid by each of them: the dynamic loader opens
//! and maps one more library, and libgcc_s's constructor (`__cpu_indicator_init`) runs `cpuid`
//! a dozen times, each a trap to the hypervisor in a VM (~60 µs of a `/bin/true` here). A
//! linker script named `libgcc_s.so`, found first on the search path, makes `-lgcc_s` pull
//! `libgcc_eh.a` (the same unwinder, compiled position-independent) into the library; the
//! version script rustc writes keeps its symbols local, so the program's own unwinder is never
//! interposed. When the compiler has no `libgcc_eh.a`, nothing changes.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(output) = Command::new(&compiler).arg("-print-file-name=libgcc_eh.a").output() else { return };
    let archive = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !archive.is_absolute() || !archive.exists() {
        return; // `-print-file-name` echoes the bare name when it finds nothing
    }
    let dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-unwind");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    std::fs::write(dir.join("libgcc_s.so"), format!("INPUT({})\n", archive.display())).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search=native={}", dir.display());
}
