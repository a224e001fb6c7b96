//! Every `SIGTRACE_*` variable: its name, the values it takes, its default and its meaning —
//! the one table the parser, `sigtrace record` and the README's configuration table are made
//! from ([`VARIABLES`], rendered by [`Variable::readme_row`]).

use crate::choices::{Choice, DrainThreadChoice, LogLevel, Mode, TimerChoice, UnwindChoice};

/// The prefix of every variable sigtrace reads.
pub const PREFIX: &str = "SIGTRACE_";

/// A variable that takes a whole number in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberVariable {
    pub name: &'static str,
    pub min: u64,
    pub max: u64,
    /// The value of an unset variable, and of one that is not a number.
    pub default: u64,
}

impl NumberVariable {
    /// The accepted values as `u32`s (every number variable's maximum fits).
    pub const fn range_u32(&self) -> std::ops::RangeInclusive<u32> {
        self.min as u32..=self.max as u32
    }
}

pub const HZ: NumberVariable = NumberVariable { name: "SIGTRACE_HZ", min: 1, max: 10_000, default: 999 };
pub const WALL_HZ: NumberVariable = NumberVariable { name: "SIGTRACE_WALL_HZ", min: 1, max: 1_000, default: 100 };
pub const GENERATION_MS: NumberVariable = NumberVariable { name: "SIGTRACE_GENERATION_MS", min: 10, max: 3_600_000, default: 1000 };
pub const DEPTH: NumberVariable = NumberVariable { name: "SIGTRACE_DEPTH", min: 1, max: 2048, default: 256 };
pub const BUFFER_KB: NumberVariable = NumberVariable { name: "SIGTRACE_BUFFER_KB", min: 4, max: 65_536, default: 64 };
/// Unset, the drain period adapts to the load; `default` is the period a bad value falls back to.
pub const DRAIN_MS: NumberVariable = NumberVariable { name: "SIGTRACE_DRAIN_MS", min: 1, max: 10_000, default: 10 };
pub const KEEP: NumberVariable = NumberVariable { name: "SIGTRACE_KEEP", min: 1, max: 1_000_000, default: 1_000_000 };
pub const MAX_THREADS: NumberVariable = NumberVariable { name: "SIGTRACE_MAX_THREADS", min: 1, max: 1 << 20, default: 4096 };

/// The trace path pattern of an unset `SIGTRACE_OUTPUT` (and of `sigtrace record` without `-o`).
pub const DEFAULT_OUTPUT: &str = "sigtrace.%e.%p.sigtrace";

/// What a variable takes, as the README's "values" and "default" columns show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// A number in its range; the default is the variable's.
    Number(NumberVariable),
    /// A number in its range when set; unset, sigtrace chooses (`unset` says how).
    NumberOrUnset { number: NumberVariable, unset: &'static str },
    /// One of `names`.
    Choice { names: &'static [&'static str], default: &'static str },
    /// Exactly `0` or `1`.
    Flag { default: bool },
    /// Values described in words.
    Described { values: &'static str, default: &'static str },
}

/// One `SIGTRACE_*` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub values: Values,
    /// What it does, for the README's table.
    pub meaning: &'static str,
}

impl Variable {
    const fn number(number: NumberVariable, meaning: &'static str) -> Variable {
        Variable { name: number.name, values: Values::Number(number), meaning }
    }

    const fn choice<T: Choice>(name: &'static str, meaning: &'static str) -> Variable {
        Variable { name, values: Values::Choice { names: T::NAMES, default: T::DEFAULT_NAME }, meaning }
    }

    /// The "values" column: `1–10000`, `` `cpu`, `wall` ``, `` `0`, `1` `` or words.
    pub fn values_text(&self) -> String {
        match self.values {
            Values::Number(number) | Values::NumberOrUnset { number, .. } => format!("{}–{}", number.min, number.max),
            Values::Choice { names, .. } => names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", "),
            Values::Flag { .. } => "`0`, `1`".to_string(),
            Values::Described { values, .. } => values.to_string(),
        }
    }

    /// The "default" column.
    pub fn default_text(&self) -> String {
        match self.values {
            Values::Number(number) => number.default.to_string(),
            Values::NumberOrUnset { unset, .. } => unset.to_string(),
            Values::Choice { default, .. } | Values::Described { default, .. } => format!("`{default}`"),
            Values::Flag { default } => u8::from(default).to_string(),
        }
    }

    /// The variable's row of the README's configuration table.
    pub fn readme_row(&self) -> String {
        format!("| `{}` | {} | {} | {} |", self.name, self.values_text(), self.default_text(), self.meaning)
    }
}

/// Every variable the parser reads, in the README's order.
pub const VARIABLES: [Variable; 20] = [
    Variable {
        name: "SIGTRACE_OUTPUT",
        values: Values::Described { values: "a path pattern, not empty", default: DEFAULT_OUTPUT },
        meaning: "trace path; `%p` pid, `%e` executable name, `%t` start time (s), `%%`. A taken name gets a counter before its extension (`demo.1234.1.sigtrace`, `.2`, …; appended when the pattern has no extension); nothing is ever overwritten",
    },
    Variable::choice::<Mode>(
        "SIGTRACE_MODE",
        "`cpu`: samples measure on-CPU time; `wall`: also the wall time of threads blocked in a call (docs/USAGE.md, \"Wall-clock mode\")",
    ),
    Variable::number(HZ, "samples per second of CPU time per thread"),
    Variable::number(WALL_HZ, "`wall` mode: ticks per second at which sigtrace's own thread samples the blocked threads"),
    Variable::choice::<TimerChoice>(
        "SIGTRACE_TIMER",
        "`auto`: per thread, a perf event while it computes, a POSIX timer while its context switches would make a perf event dear (see What it costs); `itimer` signals any thread, blocked ones too, so `wall` mode takes `auto` instead (one line)",
    ),
    Variable::choice::<UnwindChoice>(
        "SIGTRACE_UNWIND",
        "`auto`: DWARF CFI, frame pointers where there is none or DWARF cannot run; `fp`: frame pointers only; `dwarf`: CFI only, when it cannot run only the PC is kept",
    ),
    Variable::number(GENERATION_MS, "how often a generation is closed and written"),
    Variable::number(DEPTH, "maximum frames per stack (`info` names stacks cut there `depth limit (SIGTRACE_DEPTH=N)`)"),
    Variable::number(BUFFER_KB, "ring size per thread and generation"),
    Variable {
        name: "SIGTRACE_SIGNAL",
        values: Values::Described { values: "`SIGPROF`, `SIGVTALRM`, `SIGALRM`, `SIGUSR1`, `SIGUSR2`, `SIGRTMIN+N`, or its number", default: "SIGPROF" },
        meaning: "the sampling signal",
    },
    Variable {
        name: "SIGTRACE_PAUSED",
        values: Values::Flag { default: false },
        meaning: "1: start with sampling paused (threads registered, no timer armed) until the toggle signal or `sigtrace_resume()` (docs/USAGE.md, \"Pause and resume\")",
    },
    Variable {
        name: "SIGTRACE_TOGGLE_SIGNAL",
        values: Values::Described { values: "`SIGUSR1`, `SIGUSR2`, `SIGHUP`, `SIGALRM`, `SIGVTALRM`, `SIGPROF`, `SIGWINCH`, `SIGURG`, `SIGRTMIN+N`, or its number; not the sampling signal", default: "none" },
        meaning: "each delivery pauses or resumes sampling (as gperftools' `CPUPROFILESIGNAL`); a handler the program installs for it later wins (one line)",
    },
    Variable {
        name: DRAIN_MS.name,
        values: Values::NumberOrUnset { number: DRAIN_MS, unset: "adaptive" },
        meaning: "how often the drain thread empties the rings; unset, it adapts between 2 and 100 ms to how full they get",
    },
    Variable::choice::<DrainThreadChoice>(
        "SIGTRACE_DRAIN_THREAD",
        "`with-program-threads`: while the program has one thread, sigtrace adds none (`unshare(CLONE_NEWUSER)` works, `/proc/self/task` lists one task); its samples are written at its waiting calls, `fork`, `exec` and exit, and by the signal handler when a ring fills in between (docs/DESIGN.md); `always`: a drain thread from start-up (`SIGTRACE_MODE=wall` and `SIGTRACE_ROTATE` take it)",
    ),
    Variable {
        name: "SIGTRACE_ROTATE",
        values: Values::Described { values: "a duration (`500ms`, `10s`, `10m`, `1h`, `1d`) or a size (`512KB`, `100MB`, `1GB`)", default: "none" },
        meaning: "at the first generation boundary past it, the file ends and the trace goes on in the next of a numbered series (`app.1234.sigtrace`, `app.1234.r2.sigtrace`, …), each file a complete trace; commands read a series as one (docs/USAGE.md, \"Rotation\")",
    },
    Variable {
        name: KEEP.name,
        values: Values::NumberOrUnset { number: KEEP, unset: "all" },
        meaning: "with `SIGTRACE_ROTATE`: the oldest files of the series beyond N are deleted (only files sigtrace wrote, checked by device and inode)",
    },
    Variable::number(MAX_THREADS, "thread slots; a slot is reused once its thread has exited and been drained"),
    Variable::choice::<LogLevel>(
        "SIGTRACE_LOG",
        "which `sigtrace:` lines are printed"),
    Variable { name: "SIGTRACE_FOLLOW_FORK", values: Values::Flag { default: true }, meaning: "0: forked children are not traced" },
    Variable {
        name: "SIGTRACE_FOLLOW_EXEC",
        values: Values::Flag { default: true },
        meaning: "0: sigtrace's library is removed from the `LD_PRELOAD` passed to exec'd programs (nothing else changes)",
    },
];

/// The names of [`VARIABLES`].
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().map(|variable| variable.name)
}

/// Whether `name` is one of [`VARIABLES`].
pub fn is_known(name: &str) -> bool {
    variable_names().any(|known| known == name)
}

/// Names users reach for, after the prefix, with the variable each means: the closest name is
/// looked for among these as well as among the names themselves (`FREQ` is as far from `HZ`
/// as from `LOG` by edits alone).
const ALIASES: [(&str, &str); 20] = [
    ("FREQ", "SIGTRACE_HZ"),
    ("FREQUENCY", "SIGTRACE_HZ"),
    ("RATE", "SIGTRACE_HZ"),
    ("SAMPLE_RATE", "SIGTRACE_HZ"),
    ("MAX_DEPTH", "SIGTRACE_DEPTH"),
    ("STACK_DEPTH", "SIGTRACE_DEPTH"),
    ("OUT", "SIGTRACE_OUTPUT"),
    ("FILE", "SIGTRACE_OUTPUT"),
    ("PATH", "SIGTRACE_OUTPUT"),
    ("LOG_LEVEL", "SIGTRACE_LOG"),
    ("VERBOSE", "SIGTRACE_LOG"),
    ("BUFFER", "SIGTRACE_BUFFER_KB"),
    ("BUFFER_SIZE", "SIGTRACE_BUFFER_KB"),
    ("GENERATION", "SIGTRACE_GENERATION_MS"),
    ("FORK", "SIGTRACE_FOLLOW_FORK"),
    ("EXEC", "SIGTRACE_FOLLOW_EXEC"),
    ("PAUSE", "SIGTRACE_PAUSED"),
    ("ROTATION", "SIGTRACE_ROTATE"),
    ("RETENTION", "SIGTRACE_KEEP"),
    ("SIGNAL_TOGGLE", "SIGTRACE_TOGGLE_SIGNAL"),
];

/// The known variable whose name (after the prefix, case-insensitive) or alias is the fewest
/// edits away from `name`'s; on a tie, the first in [`VARIABLES`] order, names before aliases.
pub fn closest_variable(name: &str) -> &'static str {
    let wanted = name.strip_prefix(PREFIX).unwrap_or(name).to_ascii_uppercase();
    let names = variable_names().map(|variable| (variable.strip_prefix(PREFIX).unwrap_or(variable), variable));
    let candidates = names.chain(ALIASES.iter().copied());
    let mut best = (usize::MAX, VARIABLES[0].name);
    for (spelling, variable) in candidates {
        let distance = edit_distance(&wanted, spelling);
        if distance < best.0 {
            best = (distance, variable);
        }
    }
    best.1
}

/// Levenshtein distance between two strings, by bytes (the names are ASCII): the fewest
/// insertions, deletions and substitutions that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // previous[j]: distance between the first i-1 bytes of `a` and the first j of `b`.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &byte_a) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &byte_b) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(byte_a != byte_b);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_is_the_variables_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
        let section = readme.split("\n## Configuration").nth(1).expect("a Configuration section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let rows: Vec<&str> = section.lines().filter(|line| line.starts_with("| `")).collect();
        let expected: Vec<String> = VARIABLES.iter().map(Variable::readme_row).collect();
        assert_eq!(rows, expected, "the README's configuration table is VARIABLES' rows (config/src/variables.rs), in their order:\n{}", expected.join("\n"));
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        for (index, variable) in VARIABLES.iter().enumerate() {
            assert!(variable.name.starts_with(PREFIX), "{}", variable.name);
            assert!(!VARIABLES[..index].iter().any(|earlier| earlier.name == variable.name), "{}", variable.name);
        }
    }

    #[test]
    fn an_unknown_name_finds_the_closest_known_one() {
        for (typo, meant) in [
            ("SIGTRACE_FREQ", "SIGTRACE_HZ"),
            ("SIGTRACE_OUTPT", "SIGTRACE_OUTPUT"),
            ("SIGTRACE_MAX_DEPTH", "SIGTRACE_DEPTH"),
            ("SIGTRACE_GENERATIONS_MS", "SIGTRACE_GENERATION_MS"),
            ("SIGTRACE_FOLLOW_FORKS", "SIGTRACE_FOLLOW_FORK"),
            ("SIGTRACE_FOLOW_EXEC", "SIGTRACE_FOLLOW_EXEC"),
            ("SIGTRACE_timer", "SIGTRACE_TIMER"),
            ("SIGTRACE_", "SIGTRACE_HZ"),
        ] {
            assert_eq!(closest_variable(typo), meant, "{typo}");
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("HZ", ""), 2);
        assert_eq!(edit_distance("KITTEN", "SITTING"), 3);
        assert_eq!(edit_distance("FREQ", "HZ"), 4);
        assert_eq!(edit_distance("DEPTH", "DEPTH"), 0);
    }
}
