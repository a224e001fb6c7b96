//! A trace is input from elsewhere: the module paths it names must never make `report` or
//! `export` block, read without bound, or read device and kernel files. Each test takes a real
//! trace of a workload, renames the workload's module to a hostile path, and runs the built
//! CLI on it under a time limit, with its peak memory read back (`wait4`'s `ru_maxrss`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use format::{encode_end, encode_generation, encode_header, encode_preamble};
use sigtrace_tests::*;

/// A command that has not finished by then hangs (a normal report of these traces takes well
/// under a second, even on the loaded CI machine).
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// What a report of a small trace may take at its peak; reading `/dev/zero` or a file over the
/// cap would take gigabytes.
const MAX_RSS_KIB: i64 = 128 * 1024;
/// The child's address space limit: a safety net so that a regression fails the test with an
/// allocation failure instead of taking the machine's memory (the CLI needs far less).
const ADDRESS_SPACE_LIMIT: u64 = 2 << 30;
/// The size cap of a module file (`cli/src/symbolize/file_guard.rs`).
const MODULE_FILE_CAP: u64 = 4 << 30;

/// A real trace of the split workload (built with symbols) and the workload's module path.
struct BaseTrace {
    trace: PathBuf,
    program: String,
}

fn base_trace() -> &'static BaseTrace {
    static BASE: OnceLock<BaseTrace> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = scratch_dir("hostile-base");
        let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
        let run = run_traced(&program, &["60"], &[], &dir);
        assert_eq!(run.traces.len(), 1, "{}", run.stderr);
        let trace = read_trace(&run.traces[0]);
        let name = program.file_name().unwrap().to_str().unwrap();
        let module = trace.generations.iter().flat_map(|g| &g.modules).find(|m| m.path.ends_with(&format!("/{name}"))).expect("the workload is a module");
        let in_module = trace.generations.iter().any(|g| {
            let m = g.modules.iter().find(|m| m.path == module.path).unwrap();
            g.stacks.iter().flatten().any(|address| m.start <= address && address < m.end)
        });
        assert!(in_module, "some stack runs through the workload's own code");
        BaseTrace { trace: run.traces[0].clone(), program: module.path.clone() }
    })
}

/// Writes a copy of the base trace in which the workload's module is named `hostile_path`.
fn trace_naming(hostile_path: &str, dir: &Path) -> PathBuf {
    let base = base_trace();
    let trace = read_trace(&base.trace);
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, trace.header.as_ref().unwrap());
    for generation in &trace.generations {
        let mut generation = generation.clone();
        for module in generation.modules.iter_mut().filter(|m| m.path == base.program) {
            module.path = hostile_path.to_string();
        }
        encode_generation(&mut bytes, &generation);
    }
    if let Some(end) = &trace.end {
        encode_end(&mut bytes, end);
    }
    let path = dir.join("hostile.sigtrace");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What one CLI run did.
struct Finished {
    success: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    max_rss_kib: i64,
}

/// Runs `sigtrace ARGS`, killing it after `TIME_LIMIT` (which fails the test).
fn run_cli_bounded(args: &[&str], dir: &Path) -> Finished {
    let (stdout_path, stderr_path) = (dir.join("cli.stdout"), dir.join("cli.stderr"));
    let mut command = Command::new(sigtrace_cli());
    command.args(args).stdin(Stdio::null()).stdout(File::create(&stdout_path).unwrap()).stderr(File::create(&stderr_path).unwrap());
    // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: ADDRESS_SPACE_LIMIT, rlim_max: ADDRESS_SPACE_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    // Reaped below with wait4, which also returns its peak memory.
    let pid = command.spawn().expect("sigtrace starts").id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: pid is our own unreaped child; status and usage are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(reaped, 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > TIME_LIMIT {
            timed_out = true;
            // SAFETY: as above; the child has not been reaped, so the pid is still its own.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed();
    let finished = Finished {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout: std::fs::read_to_string(&stdout_path).unwrap(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
        elapsed,
        max_rss_kib: usage.ru_maxrss,
    };
    assert!(!timed_out, "sigtrace {args:?} still ran after {elapsed:?} (peak RSS {} KiB); stderr:\n{}", finished.max_rss_kib, finished.stderr);
    finished
}

/// `report` and `export` of a trace whose workload module is named `hostile_path` finish in
/// time, within `MAX_RSS_KIB`, succeed, refuse the module in one stderr line ending in
/// `reason`, and name its addresses `file+0xOFFSET`.
fn assert_refused(case: &str, hostile_path: &str, reason: &str) {
    let dir = scratch_dir(case);
    let trace = trace_naming(hostile_path, &dir);
    let trace = trace.to_str().unwrap();
    let file_name = Path::new(hostile_path).file_name().unwrap().to_str().unwrap();
    let refusal = format!("sigtrace: not reading {hostile_path} (named by the trace as a module): {reason}");
    for args in [&["report", "--top", "20", trace][..], &["export", "--format", "folded", trace][..]] {
        let run = run_cli_bounded(args, &dir);
        eprintln!("{case}: sigtrace {} took {:?}, peak RSS {} KiB", args[0], run.elapsed, run.max_rss_kib);
        assert!(run.success, "sigtrace {args:?} failed; stderr:\n{}", run.stderr);
        assert!(run.max_rss_kib < MAX_RSS_KIB, "sigtrace {args:?} peaked at {} KiB", run.max_rss_kib);
        let lines: Vec<&str> = run.stderr.lines().filter(|line| line.contains(hostile_path)).collect();
        assert_eq!(lines, [refusal.as_str()], "one refusal line; stderr:\n{}", run.stderr);
        assert!(run.stdout.contains(&format!("{file_name}+0x")), "module+offset names for its addresses:\n{}", run.stdout);
    }
}

#[test]
fn a_fifo_named_as_a_module_is_refused_without_blocking() {
    let _beside_others = beside_others();
    let dir = scratch_dir("hostile-fifo-file");
    let fifo = dir.join("module.fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo: {}", std::io::Error::last_os_error());
    assert_refused("hostile-fifo", fifo.to_str().unwrap(), "not a regular file (a FIFO)");
}

#[test]
fn dev_zero_named_as_a_module_is_refused_without_reading() {
    let _beside_others = beside_others();
    assert_refused("hostile-zero", "/dev/zero", "it is under /dev");
}

#[test]
fn dev_urandom_named_as_a_module_is_refused_without_reading() {
    let _beside_others = beside_others();
    assert_refused("hostile-urandom", "/dev/urandom", "it is under /dev");
}

#[test]
fn a_symlink_into_dev_is_refused() {
    let _beside_others = beside_others();
    let dir = scratch_dir("hostile-link-file");
    let link = dir.join("libzero.so");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    assert_refused("hostile-link", link.to_str().unwrap(), "it leads to /dev/zero, under /dev");
}

#[test]
fn a_directory_named_as_a_module_is_refused() {
    let _beside_others = beside_others();
    let dir = scratch_dir("hostile-dir-file");
    let module_dir = dir.join("libdir.so");
    std::fs::create_dir(&module_dir).unwrap();
    assert_refused("hostile-dir", module_dir.to_str().unwrap(), "not a regular file (a directory)");
}

#[test]
fn a_proc_path_is_refused_even_when_it_leads_to_a_regular_file() {
    let _beside_others = beside_others();
    // /proc/self/exe resolves to the sigtrace binary itself, a valid ELF file.
    assert_refused("hostile-proc", "/proc/self/exe", "it is under /proc");
}

#[test]
fn a_file_over_the_size_cap_is_refused_without_mapping() {
    let _beside_others = beside_others();
    let dir = scratch_dir("hostile-big-file");
    let big = dir.join("libhuge.so");
    let size = MODULE_FILE_CAP + 1;
    File::create(&big).unwrap().set_len(size).unwrap(); // sparse: no disk space used
    assert_refused("hostile-big", big.to_str().unwrap(), &format!("it has {size} bytes, over the cap of {MODULE_FILE_CAP}"));
    std::fs::remove_file(&big).unwrap();
}
