//! The variables that take one of a few names: what is sampled ([`Mode`]), by which source
//! ([`TimerChoice`]), how stacks are walked ([`UnwindChoice`]) and which messages are printed
//! ([`LogLevel`]). Each is declared once, with its names and their help, by [`choice!`].

/// A variable's value chosen by name, for code generic over the choices. Implemented by
/// [`choice!`] only, which also gives each type the same methods as inherent ones.
pub trait Choice: Copy + Eq + 'static {
    /// Every value, in the order the help lists them.
    const ALL: &'static [Self];
    /// The name of each value in [`Choice::ALL`], as the variable spells it.
    const NAMES: &'static [&'static str];
    /// The value of an unset (or empty) variable.
    const DEFAULT: Self;
    /// The name of [`Choice::DEFAULT`].
    const DEFAULT_NAME: &'static str;

    /// The name the variable spells this value with.
    fn name(self) -> &'static str;

    /// One line on what this value does (the CLI's help).
    fn help(self) -> &'static str;

    /// The value named `text` (case-insensitive, surrounding spaces ignored).
    fn from_name(text: &str) -> Option<Self> {
        let wanted = text.trim().to_ascii_lowercase();
        Self::ALL.iter().copied().find(|value| value.name() == wanted)
    }
}

/// Declares a fieldless enum whose values are chosen by name, with [`Choice`] implemented from
/// the same list: `Variant = "name" => "help"`, the default marked `#[default]`.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$default:ident])? $variant:ident = $text:literal => $help:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $name {
            $(#[doc = $help] $(#[$default])? $variant,)+
        }

        impl $name {
            /// The name the variable spells this value with.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// One line on what this value does (the CLI's help).
            pub const fn help(self) -> &'static str {
                match self {
                    $($name::$variant => $help,)+
                }
            }

            /// The value named `text` (case-insensitive, surrounding spaces ignored).
            pub fn from_name(text: &str) -> Option<Self> {
                <Self as Choice>::from_name(text)
            }

            /// The index in `ALL` of the variant marked `#[default]` (`Default` is not const).
            const DEFAULT_INDEX: usize = {
                let marked: &[&str] = &[$(choice!(@default_name $($default)? $text)),+];
                let mut index = 0;
                while marked[index].is_empty() {
                    index += 1;
                }
                index
            };
        }

        impl Choice for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];
            const DEFAULT: Self = Self::ALL[Self::DEFAULT_INDEX];
            const DEFAULT_NAME: &'static str = Self::NAMES[Self::DEFAULT_INDEX];

            fn name(self) -> &'static str {
                $name::name(self)
            }

            fn help(self) -> &'static str {
                $name::help(self)
            }
        }
    };
    (@default_name default $text:literal) => { $text };
    (@default_name $text:literal) => { "" };
}

choice! {
    /// What a sample measures (`SIGTRACE_MODE`).
    pub enum Mode {
        #[default]
        Cpu = "cpu" => "The CPU time of every thread",
        Wall = "wall" => "Also the wall time of threads that wait: runnable, or blocked in a call",
    }
}

choice! {
    /// The sampling source asked for (`SIGTRACE_TIMER`).
    pub enum TimerChoice {
        #[default]
        Auto = "auto" => "Per thread: a perf event while it computes, a POSIX timer while it switches",
        Perf = "perf" => "A perf_event_open task-clock event per thread",
        Posix = "posix" => "A POSIX thread CPU-time timer per thread",
        Itimer = "itimer" => "One process-wide setitimer(ITIMER_PROF)",
    }
}

choice! {
    /// When sigtrace's drain thread runs (`SIGTRACE_DRAIN_THREAD`).
    pub enum DrainThreadChoice {
        Always = "always" => "From start-up: every generation is written on time, a SIGKILL loses at most the open one",
        #[default]
        WithProgramThreads = "with-program-threads" => "Only while the program has threads of its own: a single-threaded program stays single-threaded, is drained on its own thread at safe points and spills a filling ring from the signal handler in between",
    }
}

choice! {
    /// How the handler walks stacks (`SIGTRACE_UNWIND`).
    pub enum UnwindChoice {
        #[default]
        Auto = "auto" => "DWARF CFI where a frame has it, frame pointers elsewhere and whenever DWARF cannot run",
        FramePointers = "fp" => "Frame pointers only",
        Dwarf = "dwarf" => "DWARF only: when it cannot run, only the PC is recorded",
    }
}

choice! {
    /// Which of sigtrace's own `sigtrace:` lines are printed (`SIGTRACE_LOG`); each level
    /// includes the ones before it.
    pub enum LogLevel {
        Off = "off" => "No line at all",
        Error = "error" => "Errors only",
        #[default]
        Warn = "warn" => "Errors and warnings",
        Info = "info" => "Also what sigtrace did",
        Debug = "debug" => "Also the details",
    }
}

impl LogLevel {
    /// The level named `text`, also by the spellings `none` and `warning`.
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Some(LogLevel::Off),
            "warning" => Some(LogLevel::Warn),
            other => <LogLevel as Choice>::from_name(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_values_and_the_default_is_marked() {
        assert_eq!(Mode::NAMES, ["cpu", "wall"]);
        assert_eq!(Mode::ALL, [Mode::Cpu, Mode::Wall]);
        assert_eq!(
            (Mode::DEFAULT, TimerChoice::DEFAULT, UnwindChoice::DEFAULT, LogLevel::DEFAULT),
            (Mode::Cpu, TimerChoice::Auto, UnwindChoice::Auto, LogLevel::Warn)
        );
        assert_eq!(LogLevel::DEFAULT, LogLevel::default());
        assert_eq!(UnwindChoice::FramePointers.name(), "fp");
    }

    #[test]
    fn names_are_read_case_insensitively_and_levels_by_their_other_spellings() {
        assert_eq!(TimerChoice::from_name(" POSIX "), Some(TimerChoice::Posix));
        assert_eq!(TimerChoice::from_name("hpet"), None);
        assert_eq!(LogLevel::parse("Warning"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("none"), Some(LogLevel::Off));
        assert_eq!(LogLevel::parse(""), None);
        assert!(LogLevel::Debug as u8 > LogLevel::Warn as u8 && LogLevel::Off as u8 == 0);
    }
}
