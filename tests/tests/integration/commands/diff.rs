//! `sigtrace diff BASE NEW` on two runs of a real program whose CPU time moves from one
//! function to another: the table and the differential flame graph.

use std::path::{Path, PathBuf};

use super::flame_svg;
use sigtrace_tests::*;

/// shift.c with work_a() taking `percent_a` of 600 ms of CPU, work_b() the rest, at 4000 Hz.
fn shift_trace(program: &Path, percent_a: u32, dir: &Path) -> PathBuf {
    let run = run_traced(program, &[&percent_a.to_string(), "600"], &[("SIGTRACE_HZ", "4000")], dir);
    assert!(run.output.status.success(), "shift failed: {}", run.stderr);
    assert_eq!(run.traces.len(), 1, "one trace: {}", run.stderr);
    run.traces[0].clone()
}

/// A row of the table: (function, [base self, new self, self change, base total, new total, total change]).
fn table_rows(table: &str) -> Vec<(String, Vec<f64>)> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let numbers: Vec<f64> = fields.iter().take(6).map(|f| f.parse().ok()).collect::<Option<_>>()?;
            (fields.len() >= 8 && numbers.len() == 6).then(|| (fields[6].to_string(), numbers))
        })
        .collect()
}

#[test]
fn diff_shows_the_share_moving_from_one_function_to_another() {
    let _alone = alone();
    let dir = scratch_dir("diff");
    let program = compile_c("shift", &["-O2", "-g"], &dir);
    let (base_dir, new_dir) = (dir.join("base"), dir.join("new"));
    std::fs::create_dir_all(&base_dir).expect("dir");
    std::fs::create_dir_all(&new_dir).expect("dir");
    let base = shift_trace(&program, 30, &base_dir);
    let new = shift_trace(&program, 70, &new_dir);
    let svg_path = dir.join("diff.svg");
    let output = cli(&["diff", "--top", "4", "--flamegraph", &svg_path.display().to_string(), &base.display().to_string(), &new.display().to_string()]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "sigtrace diff failed: {}", String::from_utf8_lossy(&output.stderr));

    // The two largest changes: work_a grew by 40 points, work_b shrank by 40, each within what
    // the two runs' sample counts allow (a difference of two independent shares).
    let rows = table_rows(&table);
    assert_eq!(rows.len(), 4, "--top 4 shows four rows:\n{table}");
    let mut first_two: Vec<&str> = rows[..2].iter().map(|(name, _)| name.as_str()).collect();
    first_two.sort_unstable();
    assert_eq!(first_two, ["work_a", "work_b"], "the largest changes come first:\n{table}");
    let samples = |trace: &Path| sample_count(&read_trace(trace)) as f64;
    let (base_samples, new_samples) = (samples(&base), samples(&new));
    let spread = (0.3 * 0.7 / base_samples + 0.3 * 0.7 / new_samples).sqrt();
    let tolerance = 100.0 * SIGMAS * spread + 1.0; // + the clock reads inside each function's loop
    for (function, base_share, change) in [("work_a", 30.0, 40.0), ("work_b", 70.0, -40.0)] {
        let (_, numbers) = rows.iter().find(|(name, _)| name == function).expect("the function's row");
        assert!((numbers[3] - base_share).abs() <= tolerance, "{function}'s total share in base {} vs {base_share} ± {tolerance:.1}:\n{table}", numbers[3]);
        assert!((numbers[5] - change).abs() <= tolerance, "{function} changed by {} points, expected {change} ± {tolerance:.1}:\n{table}", numbers[5]);
        assert!((numbers[4] - numbers[3] - numbers[5]).abs() < 0.011, "change = new - base:\n{table}");
    }
    assert!(table.contains("shift 30 600") && table.contains("shift 70 600"), "both commands are named:\n{table}");

    // The differential flame graph parses, names both functions, and colours work_a's frame as
    // grown and work_b's as shrunk (inferno's tooltips carry the change after a `;`).
    let svg = flame_svg::parse(&std::fs::read(&svg_path).expect("the differential flame graph"));
    assert!(svg.title.contains("shift 30 600") && svg.title.contains("shift 70 600"), "title: {}", svg.title);
    let change_of = |name: &str| {
        let frame = svg.widest(name);
        let change = frame.tooltip.rsplit_once("; ").map(|(_, c)| c.trim_end_matches("%)")).unwrap_or_else(|| panic!("a change in {}", frame.tooltip));
        change.parse::<f64>().unwrap_or_else(|_| panic!("a number in {}", frame.tooltip))
    };
    assert!(change_of("work_a") > 20.0, "work_a grew: {:?}", svg.widest("work_a"));
    assert!(change_of("work_b") < -20.0, "work_b shrank: {:?}", svg.widest("work_b"));
}
