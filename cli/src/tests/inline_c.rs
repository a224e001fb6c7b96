//! DWARF symbolisation of a C program compiled here with `gcc -O2 -g`: a `static inline`
//! function inlined into its caller is a frame of its own, with its file and line, in the
//! symboliser, `report`, `report --lines` and folded stacks — also when the DWARF is in a
//! separate debug file (`.gnu_debuglink`, build id) or split DWARF (`.dwo`), and not when that
//! file is another build's or not a regular file.

use std::path::{Path, PathBuf};
use std::process::Command;

use format::{Generation, Module, Sample, Thread};
use object::{Object, ObjectSymbol};

use super::{encode, header, profile_of, Scratch};
use crate::commands::report::{function_rows, render};
use crate::symbolize::{FrameName, ModuleMap, Symbolizer};

const PROGRAM: &str = r#"#include <stdio.h>

static volatile unsigned long sink;

static inline __attribute__((always_inline)) unsigned long mix_inlined(unsigned long x)
{
    for (int round = 0; round < 64; round++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL; /* MIX BODY */
        x ^= x >> 29;
    }
    return x;
}

__attribute__((noinline)) unsigned long outer_caller(unsigned long x)
{
    unsigned long mixed = mix_inlined(x); /* CALL SITE */
    sink = mixed;
    return mixed + SALT;
}

int main(int argc, char **argv)
{
    (void)argv;
    return (int)(outer_caller((unsigned long)argc) & 1);
}
"#;

/// The 1-based line of `PROGRAM` holding `marker`.
fn line_of(marker: &str) -> u32 {
    PROGRAM.lines().position(|line| line.contains(marker)).expect("marker in the program") as u32 + 1
}

/// The lines of `mix_inlined`'s body.
fn inlined_body_lines() -> std::ops::RangeInclusive<u32> {
    line_of("static inline") + 2..=line_of("return x;")
}

/// A compiled copy of `PROGRAM`: its path, build id, and function symbols (name → svma, size).
struct CProgram {
    path: PathBuf,
    build_id: Vec<u8>,
    symbols: Vec<(String, u64, u64)>,
    low: u64,
    high: u64,
}

impl CProgram {
    /// Compiles `PROGRAM` (with `SALT` defined as `salt`, so two builds differ) into `dir/name`.
    fn compile(dir: &Path, name: &str, salt: u32) -> CProgram {
        CProgram::compile_with(dir, name, salt, &[])
    }

    /// As `compile`, with more gcc flags.
    fn compile_with(dir: &Path, name: &str, salt: u32, flags: &[&str]) -> CProgram {
        let source = dir.join(format!("{name}.c"));
        std::fs::write(&source, PROGRAM).unwrap();
        let path = dir.join(name);
        let status = Command::new("gcc")
            .args(["-O2", "-g", "-Wl,--build-id", &format!("-DSALT={salt}")])
            .args(flags)
            .arg("-o")
            .arg(&path)
            .arg(&source)
            .status()
            .expect("gcc runs (the tests compile C programs)");
        assert!(status.success(), "gcc failed");
        CProgram::read(path)
    }

    fn read(path: PathBuf) -> CProgram {
        let data = std::fs::read(&path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let build_id = file.build_id().ok().flatten().unwrap_or_default().to_vec();
        let symbols: Vec<(String, u64, u64)> = file
            .symbols()
            .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
            .map(|s| (s.name().unwrap_or_default().to_string(), s.address(), s.size()))
            .collect();
        let low = symbols.iter().map(|s| s.1).min().unwrap();
        let high = symbols.iter().map(|s| s.1 + s.2.max(1)).max().unwrap();
        CProgram { path, build_id, symbols, low, high }
    }

    fn function(&self, name: &str) -> (u64, u64) {
        let (_, address, size) = self.symbols.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("{name} in the symbol table"));
        (*address, *size)
    }

    fn module(&self) -> Module {
        Module { path: self.path.to_string_lossy().into_owned(), base: BASE, start: BASE + self.low, end: BASE + self.high, build_id: self.build_id.clone() }
    }

    fn file_name(&self) -> String {
        self.path.file_name().unwrap().to_string_lossy().into_owned()
    }
}

const BASE: u64 = 0x5555_0000_0000;

/// Symbolises every address of `outer_caller` as a leaf; returns the first whose frames are
/// [mix_inlined, outer_caller], with those frames.
fn find_inlined_address(program: &CProgram, symbolizer: &mut Symbolizer) -> Option<(u64, Vec<FrameName>)> {
    let modules = [program.module()];
    let map = ModuleMap::new(&modules);
    let (start, size) = program.function("outer_caller");
    (start..start + size).find_map(|svma| {
        let frames = symbolizer.symbolize(&map, BASE + svma, false);
        let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
        (names == ["mix_inlined", "outer_caller"]).then(|| (svma, frames.to_vec()))
    })
}

fn assert_inline_frames(program: &CProgram, frames: &[FrameName]) {
    let source_name = format!("{}.c", program.file_name());
    let (inlined, caller) = (&frames[0], &frames[1]);
    assert_eq!(inlined.module, program.file_name());
    assert!(inlined.file.ends_with(&source_name), "{inlined:?}");
    assert!(inlined_body_lines().contains(&inlined.line), "{inlined:?} not in {:?}", inlined_body_lines());
    assert!(caller.file.ends_with(&source_name), "{caller:?}");
    assert_eq!(caller.line, line_of("CALL SITE"), "the caller's frame is at the call site: {caller:?}");
}

#[test]
fn an_inlined_static_function_is_a_frame_of_its_own() {
    let scratch = Scratch::new("inline");
    let program = CProgram::compile(&scratch.0, "prog", 1);
    let mut symbolizer = Symbolizer::with_debug_dirs(vec![]);
    let (_, frames) = find_inlined_address(&program, &mut symbolizer).expect("some address of outer_caller is mix_inlined's code");
    assert_inline_frames(&program, &frames);

    // `main` at its entry is main itself, one frame.
    let modules = [program.module()];
    let map = ModuleMap::new(&modules);
    let main = symbolizer.symbolize(&map, BASE + program.function("main").0, false);
    assert_eq!(main.len(), 1);
    assert_eq!(main[0].function, "main");
    assert!(main[0].line > 0, "{main:?}");
}

#[test]
fn reports_and_folded_stacks_show_the_inlined_function() {
    let scratch = Scratch::new("inline-report");
    let program = CProgram::compile(&scratch.0, "prog", 1);
    let (inlined_svma, _) = find_inlined_address(&program, &mut Symbolizer::with_debug_dirs(vec![])).unwrap();
    // Leaf in the inlined code, called from main (a return address just past main's entry).
    let main_return = BASE + program.function("main").0 + 1;
    // An instruction of outer_caller's own (storing to `sink`), not of the inlined loop.
    let caller_own = {
        let modules = [program.module()];
        let map = ModuleMap::new(&modules);
        let mut symbolizer = Symbolizer::with_debug_dirs(vec![]);
        let (start, size) = program.function("outer_caller");
        (BASE + start..BASE + start + size)
            .find(|&avma| {
                let frames = symbolizer.symbolize(&map, avma, false);
                frames.len() == 1 && frames[0].function == "outer_caller"
            })
            .expect("outer_caller has code of its own")
    };
    let generation = Generation {
        sequence: 1,
        start_time: 2_000_000,
        end_time: 3_000_000,
        process_cpu_ns: 5_000_000,
        threads: vec![Thread { tid: 100, name: "main".into(), cpu_ns: 5_000_000, dropped: 0, exited: false }],
        modules: vec![program.module()],
        stacks: vec![vec![BASE + inlined_svma, main_return], vec![caller_own, main_return]].into(),
        samples: vec![
            Sample { time: 2_000_100, thread: 0, stack: 0, weight: 3, state: Default::default() },
            Sample { time: 2_000_200, thread: 0, stack: 1, weight: 1, state: Default::default() },
        ],
        counters: vec![],
        stack_walks: vec![],
        events: vec![],
        python_code: vec![],
    };
    let path = scratch.write("inline.sigtrace", &encode(&header(), &[generation]));
    let profile = profile_of(&[path]);

    let folded = crate::export::folded::render(&profile);
    assert!(folded.contains("main;outer_caller;mix_inlined 3\n"), "{folded}");

    let rows: Vec<(String, u64, u64)> = function_rows(&profile, false)
        .into_iter()
        .map(|row| (profile.frames[row.frame as usize].function.clone(), row.self_weight, row.total_weight))
        .collect();
    assert_eq!(rows[0], ("mix_inlined".to_string(), 3, 3), "{rows:?}");
    assert!(rows.contains(&("outer_caller".to_string(), 1, 4)), "{rows:?}");
    assert!(rows.contains(&("main".to_string(), 0, 4)), "{rows:?}");

    let text = render(&profile, 20, false, false);
    assert!(!text.contains("file:line"), "{text}");
    let with_lines = render(&profile, 20, false, true);
    assert!(with_lines.contains("file:line"), "{with_lines}");
    let inlined_row = with_lines.lines().find(|line| line.contains("mix_inlined")).unwrap();
    let source_name = format!("{}.c:", program.file_name());
    let line: u32 = inlined_row.split(&source_name).nth(1).and_then(|rest| rest.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(inlined_body_lines().contains(&line), "{with_lines}");
    // The call site of the inlined function is a row of outer_caller at its own line.
    let call_site = format!("{source_name}{}", line_of("CALL SITE"));
    assert!(with_lines.lines().any(|row| row.contains("outer_caller") && row.contains(&call_site)), "{with_lines}");
}

/// Splits the DWARF of `program` into `debug_path` and strips it, linking the two by
/// `.gnu_debuglink`.
fn split_debug_info(program: &CProgram, debug_path: &Path) {
    let run = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("objcopy").args(args).status().expect("objcopy runs");
        assert!(status.success(), "objcopy {args:?}");
    };
    run(&["--only-keep-debug".as_ref(), program.path.as_os_str(), debug_path.as_os_str()]);
    let link = format!("--add-gnu-debuglink={}", debug_path.display());
    run(&["--strip-debug".as_ref(), link.as_ref(), program.path.as_os_str()]);
}

#[test]
fn separate_debug_files_are_found_by_debuglink_and_build_id() {
    let scratch = Scratch::new("debuglink");
    let program = CProgram::compile(&scratch.0, "prog", 1);
    std::fs::create_dir_all(scratch.0.join(".debug")).unwrap();
    let debug_path = scratch.0.join(".debug/prog.debug");
    split_debug_info(&program, &debug_path);
    let stripped = CProgram::read(program.path.clone());
    assert_eq!(stripped.build_id, program.build_id);
    assert!(!crate::symbolize::debuginfo::has_dwarf(&std::fs::read(&stripped.path).unwrap()));

    // By .gnu_debuglink, in the `.debug/` subdirectory.
    let (_, frames) = find_inlined_address(&stripped, &mut Symbolizer::with_debug_dirs(vec![])).expect("DWARF from prog.debug");
    assert_inline_frames(&stripped, &frames);

    // By build id under a debug directory (the debuglink file gone).
    let debug_root = scratch.0.join("debug-root");
    let hex: String = program.build_id.iter().map(|b| format!("{b:02x}")).collect();
    let by_id = debug_root.join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..]));
    std::fs::create_dir_all(by_id.parent().unwrap()).unwrap();
    std::fs::rename(&debug_path, &by_id).unwrap();
    assert!(find_inlined_address(&stripped, &mut Symbolizer::with_debug_dirs(vec![])).is_none());
    let (_, frames) = find_inlined_address(&stripped, &mut Symbolizer::with_debug_dirs(vec![debug_root])).expect("DWARF by build id");
    assert_inline_frames(&stripped, &frames);

    // Another build's debug file under the debuglink name is not used: symbol table only.
    let other = CProgram::compile(&scratch.0, "other", 2);
    assert_ne!(other.build_id, program.build_id);
    std::fs::rename(&other.path, &debug_path).unwrap();
    let mut symbolizer = Symbolizer::with_debug_dirs(vec![]);
    assert!(find_inlined_address(&stripped, &mut symbolizer).is_none());
    let modules = [stripped.module()];
    let map = ModuleMap::new(&modules);
    let (start, size) = stripped.function("outer_caller");
    for svma in start..start + size {
        let frames = symbolizer.symbolize(&map, BASE + svma, false);
        let mut expected = FrameName::unresolved("outer_caller".into(), "prog".into());
        expected.system_name = "outer_caller".into();
        assert_eq!(&frames[..], [expected]);
    }
}

#[test]
fn split_dwarf_is_read_and_a_fifo_in_its_place_is_refused_without_blocking() {
    let scratch = Scratch::new("split-dwarf");
    let program = CProgram::compile_with(&scratch.0, "prog", 1, &["-gsplit-dwarf"]);
    // gcc names it after the output and the source (here prog.dwo; prog-prog.dwo elsewhere).
    let dwo_files: Vec<PathBuf> =
        std::fs::read_dir(&scratch.0).unwrap().flatten().map(|entry| entry.path()).filter(|path| path.extension().is_some_and(|e| e == "dwo")).collect();
    assert_eq!(dwo_files.len(), 1, "gcc -gsplit-dwarf wrote one .dwo file: {dwo_files:?}");
    let dwo = dwo_files[0].clone();
    let (_, frames) = find_inlined_address(&program, &mut Symbolizer::with_debug_dirs(vec![])).expect("inline frames from the .dwo");
    assert_inline_frames(&program, &frames);

    // A FIFO in the .dwo's place is refused (opening it to read would wait for a writer), once;
    // the symbol table still names the function. Run on a thread so a hang fails the test.
    std::fs::remove_file(&dwo).unwrap();
    let c_path = std::ffi::CString::new(dwo.to_str().unwrap()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (sender, receiver) = std::sync::mpsc::channel();
    let path = program.path.clone();
    std::thread::spawn(move || {
        let program = CProgram::read(path);
        let mut symbolizer = Symbolizer::with_debug_dirs(vec![]);
        let inlined = find_inlined_address(&program, &mut symbolizer).is_some();
        let modules = [program.module()];
        let frames = symbolizer.symbolize(&ModuleMap::new(&modules), BASE + program.function("outer_caller").0, false);
        sender.send((inlined, frames.last().unwrap().function.clone(), symbolizer.warnings())).unwrap();
    });
    let (inlined, outermost, warnings) = receiver.recv_timeout(std::time::Duration::from_secs(20)).expect("symbolisation finishes");
    assert!(!inlined, "no inline frames without the .dwo");
    assert_eq!(outermost, "outer_caller");
    assert_eq!(warnings, [dwo.display().to_string()]);
}
