//! `sigtrace export --format firefox`: real programs traced under the shim, exported, and the
//! Firefox Profiler's processed-profile JSON read back (threads, samples, stacks, libraries,
//! markers) and checked against `sigtrace info --json` of the same files.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sigtrace_tests::{alone, cli, compile_c, info_json, run_traced, scratch_dir, workspace_root, SIGMAS};

const FLAGS: &[&str] = &["-O2", "-g", "-fno-omit-frame-pointer"];
const HZ: u64 = 999;

/// `timeline.c`, built against the annotation API.
fn compile_timeline(dir: &Path) -> PathBuf {
    let include = format!("-I{}", workspace_root().join("shim/include").display());
    compile_c("timeline", &["-O2", "-g", "-fno-omit-frame-pointer", &include, "-ldl"], dir)
}

/// `sigtrace export --format firefox FILES…`, parsed.
fn export_firefox(files: &[PathBuf], dir: &Path) -> Value {
    let out = dir.join("profile.json");
    let mut args = vec!["export".to_string(), "--format".into(), "firefox".into(), "-o".into(), out.display().to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = cli(&args);
    assert!(output.status.success(), "sigtrace export failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&std::fs::read(&out).expect("the export wrote its file")).expect("the export is JSON")
}

fn u64_of(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not an unsigned integer: {value}"))
}

fn f64_of(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

/// One thread of the processed profile, with the accessors the checks need.
struct ThreadView<'a>(&'a Value);

impl<'a> ThreadView<'a> {
    fn name(&self) -> &str {
        self.0["name"].as_str().expect("thread name")
    }
    fn pid(&self) -> &str {
        self.0["pid"].as_str().expect("pid is a string")
    }
    fn tid(&self) -> u32 {
        self.0["tid"].as_str().and_then(|t| t.parse().ok()).expect("tid is a number in a string")
    }
    fn string(&self, index: &Value) -> &'a str {
        self.0["stringArray"][index.as_u64().expect("a string index") as usize].as_str().expect("a string")
    }
    fn column(&self, table: &str, column: &str) -> &'a [Value] {
        self.0[table][column].as_array().unwrap_or_else(|| panic!("{table}.{column} is an array"))
    }
    fn sample_count(&self) -> usize {
        u64_of(&self.0["samples"]["length"]) as usize
    }
    fn weights(&self) -> Vec<u64> {
        self.column("samples", "weight").iter().map(u64_of).collect()
    }
    fn cpu_deltas_us(&self) -> Vec<u64> {
        self.column("samples", "threadCPUDelta").iter().map(u64_of).collect()
    }
    /// Sample times in ms from the profile's start (`timeDeltas` summed).
    fn sample_times(&self) -> Vec<f64> {
        self.column("samples", "timeDeltas")
            .iter()
            .scan(0.0, |time, delta| {
                *time += f64_of(delta);
                Some(*time)
            })
            .collect()
    }
    /// The function names of sample `index`'s stack, leaf first, each with its library's name
    /// ("" for a frame outside any library).
    fn stack_of_sample(&self, index: usize, libs: &[Value]) -> Vec<(String, String)> {
        let mut frames = Vec::new();
        let mut stack = self.column("samples", "stack")[index].as_u64();
        while let Some(node) = stack {
            let frame = u64_of(&self.column("stackTable", "frame")[node as usize]) as usize;
            let func = u64_of(&self.column("frameTable", "func")[frame]) as usize;
            let name = self.string(&self.column("funcTable", "name")[func]).to_string();
            let lib = match self.column("funcTable", "resource")[func].as_i64() {
                Some(resource) if resource >= 0 => {
                    let lib = u64_of(&self.column("resourceTable", "lib")[resource as usize]) as usize;
                    libs[lib]["name"].as_str().expect("lib name").to_string()
                }
                _ => String::new(),
            };
            frames.push((name, lib));
            stack = self.column("stackTable", "prefix")[node as usize].as_u64();
        }
        frames
    }
    /// Markers of type `kind`.
    fn markers(&self, kind: &str) -> Vec<MarkerView<'a>> {
        let markers = &self.0["markers"];
        let data = markers["data"].as_array().expect("markers.data");
        (0..u64_of(&markers["length"]) as usize)
            .filter(|&i| data[i]["type"] == kind)
            .map(|i| MarkerView {
                name: self.string(&markers["name"][i]).to_string(),
                start: f64_of(&markers["startTime"][i]),
                end: f64_of(&markers["endTime"][i]),
                phase: u64_of(&markers["phase"][i]),
                data: &data[i],
            })
            .collect()
    }
}

/// One marker: its name, start and end (ms; 0 when the phase has none), phase (0 instant,
/// 1 interval) and data (fields by key; string fields as indices into the thread's strings).
#[derive(Debug)]
struct MarkerView<'a> {
    name: String,
    start: f64,
    end: f64,
    phase: u64,
    data: &'a Value,
}

fn threads(profile: &Value) -> Vec<ThreadView<'_>> {
    profile["threads"].as_array().expect("threads").iter().map(ThreadView).collect()
}

/// The CPU deltas (µs) of all threads add up to `sampled_cpu_ns` (info's CPU time of the
/// samples): each thread's are carried in ns, so they fall short by less than 1 µs per thread.
fn assert_cpu_deltas_are(threads: &[ThreadView], sampled_cpu_ns: u64) {
    let deltas_ns = 1000 * threads.iter().flat_map(|t| t.cpu_deltas_us()).sum::<u64>();
    let slack = 1000 * threads.len() as u64;
    assert!(deltas_ns <= sampled_cpu_ns && sampled_cpu_ns - deltas_ns < slack, "CPU deltas {deltas_ns} ns, samples' CPU time {sampled_cpu_ns} ns");
}

#[test]
fn firefox_profile_has_named_threads_samples_regions_and_logs() {
    let _alone = alone();
    let dir = scratch_dir("export-firefox");
    let program = compile_timeline(&dir);
    let run = run_traced(&program, &["150"], &[("SIGTRACE_HZ", &HZ.to_string())], &dir);
    assert!(run.output.status.success(), "timeline failed: {}", run.stderr);
    assert_eq!(run.traces.len(), 1, "{:?}", run.traces);
    let profile = export_firefox(&run.traces, &dir);
    let info = info_json(&run.traces[0]);
    let libs = profile["libs"].as_array().expect("libs");

    // meta: the command line, the sampling interval, a start time.
    let meta = &profile["meta"];
    assert!(meta["product"].as_str().expect("product").contains("timeline"), "{}", meta["product"]);
    assert!((f64_of(&meta["interval"]) - 1000.0 / HZ as f64).abs() < 1e-3, "{}", meta["interval"]);
    let start_ms = f64_of(&meta["startTime"]);
    assert!((start_ms * 1e6 - u64_of(&info["start_unix_ns"]) as f64).abs() < 1e9, "startTime {start_ms} ms");

    // One process, its three threads by tid and name; the main thread flagged.
    let threads = threads(&profile);
    let pid = u64_of(&info["pid"]) as u32;
    assert!(threads.iter().all(|t| t.pid() == pid.to_string()), "pids: {:?}", threads.iter().map(|t| t.pid()).collect::<Vec<_>>());
    let by_name: HashMap<&str, &ThreadView> = threads.iter().map(|t| (t.name(), t)).collect();
    let (alpha, beta) = (by_name["fx-alpha"], by_name["fx-beta"]);
    let main: Vec<&ThreadView> = threads.iter().filter(|t| t.0["isMainThread"] == true).collect();
    assert_eq!(main.len(), 1);
    assert_eq!(main[0].tid(), pid);
    let per_thread: HashMap<u32, &Value> = info["per_thread"].as_array().expect("per_thread").iter().map(|t| (u64_of(&t["tid"]) as u32, t)).collect();
    assert_eq!(threads.iter().map(ThreadView::tid).collect::<BTreeSet<_>>(), per_thread.keys().copied().collect::<BTreeSet<_>>());
    for thread in [alpha, beta] {
        assert_eq!(per_thread[&thread.tid()]["name"], thread.name());
    }

    // Samples and weights equal info's, thread by thread; every sample within its thread's life.
    let (mut samples, mut weight) = (0, 0);
    for thread in &threads {
        let expected = per_thread[&thread.tid()];
        assert_eq!(thread.sample_count() as u64, u64_of(&expected["samples"]), "samples of {}", thread.name());
        assert_eq!(thread.weights().iter().sum::<u64>(), u64_of(&expected["weight"]), "weight of {}", thread.name());
        samples += thread.sample_count() as u64;
        weight += thread.weights().iter().sum::<u64>();
        let (register, unregister) = (f64_of(&thread.0["registerTime"]), f64_of(&thread.0["unregisterTime"]));
        assert!(register < unregister, "{}: lives {register}..{unregister}", thread.name());
        let times = thread.sample_times();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{}: samples out of order", thread.name());
        assert!(times.iter().all(|&t| t >= register - 1e-3 && t <= unregister + 1e-3), "{}: a sample outside {register}..{unregister}", thread.name());
    }
    assert_eq!(samples, u64_of(&info["samples"]));
    assert_eq!(weight, u64_of(&info["weight"]));
    assert_cpu_deltas_are(&threads, u64_of(&info["sampled_cpu_ns"]));

    // CPU deltas: each thread's add up to its weight × period (carried in ns, so within 1 µs),
    // and that is its CPU time, within the sampling's spread (SIGMAS × sqrt(samples) periods,
    // plus one for the first sample's rounding).
    let period_ns = 1e9 / HZ as f64;
    for thread in [alpha, beta] {
        let deltas_us: u64 = thread.cpu_deltas_us().iter().sum();
        let weight: u64 = thread.weights().iter().sum();
        let from_weight_us = weight as f64 * period_ns / 1000.0;
        assert!((deltas_us as f64 - from_weight_us).abs() <= 1.0 + weight as f64 * 1e-6, "{}: deltas {deltas_us} µs, weight {weight}", thread.name());
        let cpu_us = u64_of(&per_thread[&thread.tid()]["cpu_ns"]) as f64 / 1000.0;
        let tolerance_us = (SIGMAS * (thread.sample_count() as f64).sqrt() + 2.0) * period_ns / 1000.0;
        assert!((deltas_us as f64 - cpu_us).abs() <= tolerance_us, "{}: deltas {deltas_us} µs, CPU time {cpu_us} µs (±{tolerance_us})", thread.name());
    }

    // Stacks: the workers' samples run through their own functions, in the library "timeline".
    for (thread, function) in [(alpha, "alpha_work"), (beta, "beta_work")] {
        let weights = thread.weights();
        let through: u64 = (0..thread.sample_count())
            .filter(|&i| thread.stack_of_sample(i, libs).iter().any(|(name, lib)| name == function && lib == "timeline"))
            .map(|i| weights[i])
            .sum();
        let total: u64 = weights.iter().sum();
        assert!(through as f64 >= 0.9 * total as f64, "{}: {through} of {total} through {function} in timeline", thread.name());
    }

    // Regions: "outer" around the nested "inner" on fx-alpha, inside its life; none elsewhere.
    let regions = alpha.markers("SigtraceRegion");
    let region = |name: &str| {
        let found: Vec<_> = regions.iter().filter(|r| r.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} region: {regions:?}");
        assert_eq!(found[0].phase, 1, "an interval marker");
        (found[0].start, found[0].end, f64_of(&found[0].data["depth"]) as u64)
    };
    let (outer_start, outer_end, outer_depth) = region("outer");
    let (inner_start, inner_end, inner_depth) = region("inner");
    assert_eq!((outer_depth, inner_depth), (0, 1));
    assert!(
        outer_start < inner_start && inner_start < inner_end && inner_end <= outer_end,
        "outer {outer_start}..{outer_end}, inner {inner_start}..{inner_end}"
    );
    let (register, unregister) = (f64_of(&alpha.0["registerTime"]), f64_of(&alpha.0["unregisterTime"]));
    assert!(register <= outer_start && outer_end <= unregister, "outer {outer_start}..{outer_end} outside {register}..{unregister}");
    // The inner region holds half of alpha's burn: ~75 ms of its 150 ms.
    assert!(inner_end - inner_start >= 70.0, "inner lasted {} ms", inner_end - inner_start);
    assert!(beta.markers("SigtraceRegion").is_empty() && main[0].markers("SigtraceRegion").is_empty());

    // The log message: an instant marker on the main thread, with its category and text.
    let logs = main[0].markers("SigtraceLog");
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = &logs[0];
    assert_eq!((log.name.as_str(), log.phase), ("app", 0), "an instant marker named after its category");
    let (register, unregister) = (f64_of(&main[0].0["registerTime"]), f64_of(&main[0].0["unregisterTime"]));
    assert!(register <= log.start && log.start <= unregister, "log at {} outside {register}..{unregister}", log.start);
    assert_eq!(main[0].string(&log.data["category"]), "app");
    assert_eq!(main[0].string(&log.data["text"]), "timeline start");
}

#[test]
fn firefox_process_tree_has_a_process_per_pid() {
    let _alone = alone();
    let dir = scratch_dir("export-firefox-tree");
    let program = compile_c("forks", FLAGS, &dir);
    let run = run_traced(&program, &["60", "60"], &[], &dir);
    assert!(run.output.status.success(), "forks failed: {}", run.stderr);
    // The parent, three children, and the image child 2 exec'd (same pid, a file of its own).
    assert_eq!(run.traces.len(), 5, "{:?}", run.traces);
    let profile = export_firefox(&run.traces, &dir);
    let threads = threads(&profile);

    let infos: Vec<Value> = run.traces.iter().map(|t| info_json(t)).collect();
    let pids: BTreeSet<String> = infos.iter().map(|i| u64_of(&i["pid"]).to_string()).collect();
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert_eq!(threads.iter().map(|t| t.pid().to_string()).collect::<BTreeSet<_>>(), pids, "a process per pid");
    // The exec'd image continues its pid's process, named after the later image, with an exec marker.
    let exec_pid = pids.iter().find(|&pid| infos.iter().filter(|i| u64_of(&i["pid"]).to_string() == *pid).count() == 2).expect("a pid with two images").clone();
    let exec_main: Vec<&ThreadView> = threads.iter().filter(|t| t.pid() == exec_pid && t.0["isMainThread"] == true).collect();
    assert_eq!(exec_main.len(), 1);
    let later_image = infos.iter().filter(|i| u64_of(&i["pid"]).to_string() == exec_pid).max_by_key(|i| u64_of(&i["start_unix_ns"])).expect("an image");
    let exec_name = later_image["executable"].as_str().expect("an executable");
    assert_eq!(exec_main[0].0["processName"], exec_name.rsplit('/').next().expect("a file name"));
    let execs = exec_main[0].markers("SigtraceExec");
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert!(exec_main[0].string(&execs[0].data["command"]).contains("sh -c"), "{:?}", execs[0]);

    let samples: u64 = threads.iter().map(|t| t.sample_count() as u64).sum();
    let weight: u64 = threads.iter().flat_map(|t| t.weights()).sum();
    assert_eq!(samples, infos.iter().map(|i| u64_of(&i["samples"])).sum::<u64>());
    assert_eq!(weight, infos.iter().map(|i| u64_of(&i["weight"])).sum::<u64>());
    assert_cpu_deltas_are(&threads, infos.iter().map(|i| u64_of(&i["sampled_cpu_ns"])).sum());
}
