//! Reads a trace file that is still being written, a poll at a time: each poll returns the
//! generations completed since the last one. The file is reopened at each poll and read from the
//! end of the last complete chunk (a chunk cut short by the writer is read again, whole, at a
//! later poll), so memory follows one generation, never the file.
//!
//! Spills (a single-threaded program's samples written by its signal handler) become
//! generations of one thread as they arrive: their addresses are named by the trace's last
//! module list or, before the trace has one, by the modules the live process maps now
//! (`live_modules`); while neither is known they wait.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use format::ring_record::Spill;
use format::{Chunk, End, Generation, Header, Module, TraceReader, PREAMBLE_LEN};

use super::live_modules::LiveModules;

/// A trace file being followed.
pub struct TraceTail {
    path: PathBuf,
    /// The file's first bytes (magic and version), put in front of each later read.
    preamble: Option<Vec<u8>>,
    /// File offset of the first chunk not yet read whole.
    offset: u64,
    pub header: Option<Header>,
    /// The end record, once the image ended.
    pub end: Option<End>,
    /// Why the file cannot be followed (not a trace, damaged), once known.
    pub broken: Option<String>,
    /// The last module list the file held.
    modules: Vec<Module>,
    /// Spills waiting for modules to name their addresses.
    held_spills: Vec<Spill>,
    /// The names of spilled Python frames (`Q` chunks) read so far.
    spill_python: format::spill_python::SpillPythonNames,
    live_modules: LiveModules,
}

impl TraceTail {
    pub fn new(path: &Path) -> TraceTail {
        TraceTail {
            path: path.to_path_buf(),
            preamble: None,
            offset: 0,
            header: None,
            end: None,
            broken: None,
            modules: Vec::new(),
            held_spills: Vec::new(),
            spill_python: Default::default(),
            live_modules: LiveModules::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the header alone, when the file has one yet.
    pub fn poll_header(&mut self) -> Option<&Header> {
        if self.header.is_none() {
            let file = std::fs::File::open(&self.path).ok()?;
            if let Some(Chunk::Header(header)) = TraceReader::new(std::io::BufReader::new(file)).next_chunk() {
                self.header = Some(header);
            }
        }
        self.header.as_ref()
    }

    /// The generations completed since the last poll (none when the file is not there yet).
    pub fn poll(&mut self) -> Vec<Generation> {
        let mut generations = Vec::new();
        if self.broken.is_some() {
            return generations;
        }
        let Ok(mut file) = std::fs::File::open(&self.path) else { return generations };
        let preamble = match &self.preamble {
            Some(preamble) => preamble.clone(),
            None => {
                let mut preamble = vec![0u8; PREAMBLE_LEN];
                if file.read_exact(&mut preamble).is_err() {
                    return generations; // not written yet
                }
                self.offset = PREAMBLE_LEN as u64;
                self.preamble = Some(preamble.clone());
                preamble
            }
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return generations;
        }
        let source = std::io::Cursor::new(preamble).chain(std::io::BufReader::with_capacity(1 << 16, file));
        let mut reader = TraceReader::new(source);
        *reader.spill_python_mut() = std::mem::take(&mut self.spill_python);
        while let Some(chunk) = reader.next_chunk() {
            match chunk {
                Chunk::Header(header) => {
                    self.header.get_or_insert(header);
                }
                Chunk::Generation(generation) => {
                    self.end = None;
                    self.modules.clone_from(&generation.modules);
                    self.release_spills(&mut generations, reader.spill_python_mut());
                    generations.push(generation);
                }
                Chunk::Piece(piece) if !piece.modules.is_empty() => {
                    self.modules = piece.modules;
                    self.release_spills(&mut generations, reader.spill_python_mut());
                }
                Chunk::Spill(spill) => {
                    self.end = None;
                    self.held_spills.push(spill);
                    if !self.modules.is_empty() {
                        self.release_spills(&mut generations, reader.spill_python_mut());
                    }
                }
                Chunk::End(end) => self.end = Some(end),
                // Pieces are superseded by their closing generation (counting both would count
                // twice); JIT symbols and sources do not change the view.
                Chunk::Piece(_) | Chunk::JitSymbols(_) | Chunk::Sources(_) => {}
            }
        }
        if !self.held_spills.is_empty() && self.end.is_none() {
            if let Some(live) = self.header.as_ref().and_then(|header| self.live_modules.read(header.pid, &header.executable)) {
                let known = std::mem::replace(&mut self.modules, live);
                self.release_spills(&mut generations, reader.spill_python_mut());
                self.modules = known;
            }
        }
        self.spill_python = std::mem::take(reader.spill_python_mut());
        match reader.stopped_because() {
            // A chunk the writer has not finished: read again at the next poll.
            None | Some(format::ReadStop::Truncated { .. }) => {}
            Some(why) => self.broken = Some(why.to_string()),
        }
        // The reader's offset counts the preamble it was given in front of the chunks.
        self.offset += (reader.offset() as u64).saturating_sub(PREAMBLE_LEN as u64);
        generations
    }

    /// The held spills as generations, named by `self.modules` and the spilled Python frames'
    /// names read so far.
    fn release_spills(&mut self, generations: &mut Vec<Generation>, python: &mut format::spill_python::SpillPythonNames) {
        let clock_hz = self.header.as_ref().map_or(1_000_000_000, |header| header.clock_hz);
        let pid = self.header.as_ref().map_or(0, |header| header.pid);
        for spill in self.held_spills.drain(..) {
            let name = thread_name(pid, spill.tid);
            generations.push(spill.into_generation(clock_hz, &self.modules, &name, python));
        }
    }
}

/// The name of thread `tid` of process `pid` while it runs (a spill's chunk carries none).
fn thread_name(pid: u32, tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).map(|name| name.trim_end().to_string()).unwrap_or_default()
}
