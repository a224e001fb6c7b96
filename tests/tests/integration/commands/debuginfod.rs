//! Symbols from debuginfod: a stripped build of tests/workloads/split.c is traced; its debug
//! file (objcopy --only-keep-debug) is served by Debian's real server, `debuginfod` (elfutils),
//! on a loopback port. `report` names the stripped program's functions through
//! `DEBUGINFOD_URLS`, caches the file where elfutils looks (`$DEBUGINFOD_CACHE_PATH/ID/debuginfo`),
//! and names them again with the server stopped. Servers that answer with something else (not
//! ELF, too large, too slow) cost one `sigtrace:` line each and leave `module+0x…`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sigtrace_tests::*;

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// The GNU build id of an ELF file, in hex (as `readelf -n` prints it).
fn build_id(file: &Path) -> String {
    let output = Command::new("readelf").arg("-n").arg(file).output().expect("readelf runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find_map(|line| line.trim().strip_prefix("Build ID: ")).expect("a build id").trim().to_string()
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().unwrap().port()
}

/// The HTTP status of `GET path` on the loopback `port`, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `sigtrace report --top 30 TRACE` with `env` (no other debuginfod variable).
fn report(trace: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(sigtrace_cli());
    command.args(["report", "--top", "30"]).arg(trace).env_remove("DEBUGINFOD_URLS").env_remove("DEBUGINFOD_TIMEOUT").env_remove("DEBUGINFOD_MAXSIZE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("sigtrace runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stand-in for a server gone wrong: answers every connection with `answer` after `delay`.
fn hostile_server(answer: &'static [u8], delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            std::thread::sleep(delay);
            let _ = stream.write_all(answer);
        }
    });
    port
}

#[test]
fn a_stripped_programs_functions_are_named_through_debuginfod_and_its_cache() {
    let _guard = beside_others();
    let dir = scratch_dir("debuginfod");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let debug_file = served.join("split.debug");
    run("objcopy", &["--only-keep-debug", &program.display().to_string(), &debug_file.display().to_string()]);
    run("strip", &["--strip-all", &program.display().to_string()]);
    let id = build_id(&program);
    assert_eq!(build_id(&debug_file), id);

    let traced = run_traced(&program, &["400"], &[], &dir);
    assert_eq!(traced.output.status.code(), Some(3), "{}", traced.stderr);
    let trace = traced.traces[0].clone();
    let cache = dir.join("cache");
    let cache_arg = cache.display().to_string();

    // Stripped and no server: addresses only.
    let plain = report(&trace, &[("DEBUGINFOD_CACHE_PATH", &cache_arg)]);
    assert!(plain.status.success());
    assert!(!text(&plain.stdout).contains("heavy") && text(&plain.stdout).contains("split+0x"), "{}", text(&plain.stdout));

    // The real server over the folder of debug files.
    let port = free_port();
    let log = std::fs::File::create(dir.join("debuginfod.log")).unwrap();
    let server = Command::new("debuginfod")
        .args(["-F", &served.display().to_string(), "-p", &port.to_string(), "-d", &dir.join("debuginfod.sqlite").display().to_string(), "-t", "0", "-g", "0"])
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("debuginfod starts (scripts/install-test-deps.sh installs it)");
    let mut server = Server(server);
    let start = Instant::now();
    while http_status(port, &format!("/buildid/{id}/debuginfo")) != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "debuginfod never served {id}: {}",
            std::fs::read_to_string(dir.join("debuginfod.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}");
    let fetched = report(&trace, &[("DEBUGINFOD_URLS", &url), ("DEBUGINFOD_CACHE_PATH", &cache_arg)]);
    assert!(fetched.status.success(), "{}", text(&fetched.stderr));
    assert_eq!(text(&fetched.stderr), "", "no line when it works");
    let named = text(&fetched.stdout);
    assert!(named.contains("heavy") && named.contains("light") && named.contains("spin"), "{named}");
    let cached: PathBuf = cache.join(&id).join("debuginfo");
    assert_eq!(std::fs::read(&cached).unwrap(), std::fs::read(&debug_file).unwrap(), "cached where elfutils looks");

    // The server stopped: the cache serves, with no line and the same report.
    let _ = server.0.kill();
    let _ = server.0.wait();
    let offline = report(&trace, &[("DEBUGINFOD_URLS", &url), ("DEBUGINFOD_CACHE_PATH", &cache_arg)]);
    assert_eq!(text(&offline.stderr), "");
    assert_eq!(text(&offline.stdout), named);

    // Servers gone wrong, each with an empty cache: one line each, addresses only, nothing cached.
    let not_elf = hostile_server(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nnot an elf!", Duration::ZERO);
    let huge = hostile_server(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n\x7fELF", Duration::ZERO);
    let slow = hostile_server(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\x7fELF", Duration::from_secs(20));
    for (name, port, extra, why) in [
        ("not_elf", not_elf, vec![], "not an ELF file with that build id"),
        ("huge", huge, vec![("DEBUGINFOD_MAXSIZE", "1000000")], "cap"),
        ("slow", slow, vec![("DEBUGINFOD_TIMEOUT", "1")], "127.0.0.1"),
    ] {
        let cache = dir.join(format!("cache-{name}"));
        let url = format!("http://127.0.0.1:{port}");
        let mut env = vec![("DEBUGINFOD_URLS", url.as_str()), ("DEBUGINFOD_CACHE_PATH", cache.to_str().unwrap())];
        env.extend(extra);
        let started = Instant::now();
        let output = report(&trace, &env);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        let stderr = text(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|line| line.contains(&id)).collect();
        assert!(lines.len() == 1 && lines[0].starts_with("sigtrace: debuginfod: ") && lines[0].contains(why), "{name}: one line: {stderr}");
        assert!(text(&output.stdout).contains("split+0x") && !text(&output.stdout).contains("heavy"), "{name}");
        assert!(!cache.join(&id).join("debuginfo").exists() && !cache.join(&id).join("executable").exists(), "{name}: cached a bad answer");
        eprintln!("{name}: {:?}: {}", started.elapsed(), lines.join(" | "));
    }
}
