//! The reader: a trace file chunk by chunk, from memory or any byte source, that keeps every
//! complete chunk before a damaged or truncated tail and says why it stopped.

use crate::decode::{decode_end, decode_generation, decode_header};
use crate::jit_symbols::{decode_jit_symbols, JitSymbol};
use crate::pieces::{merge_pieces, INHERITED_MODULES_BUDGET};
use crate::sources::{decode_sources, SourceTable};
use crate::types::{
    End, Generation, Header, Module, CHUNK_OVERHEAD, FORMAT_VERSION, MAGIC, PREAMBLE_LEN, TAG_END, TAG_GENERATION, TAG_HEADER, TAG_JIT_SYMBOLS, TAG_PIECE,
    TAG_SOURCES,
};
use crate::varint::DecodeError;

/// Everything a reader recovered from one trace file.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The version in the file's preamble.
    pub format_version: u16,
    /// The header, when its chunk was read.
    pub header: Option<Header>,
    /// Every complete generation, in file order.
    pub generations: Vec<Generation>,
    /// Bytes at the end of the file that were not part of a complete, valid chunk.
    pub ignored_bytes: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped_because: Option<ReadStop>,
    /// How the traced image ended; `None` when the trace was cut short (killed).
    pub end: Option<End>,
    /// Generations merged from pieces (chunks of the open generation written each drain
    /// period) that no closing generation chunk superseded: the image ended without an exit path.
    pub pieces_recovered: u64,
    /// True when the image ended without any exit path of sigtrace's running: no end record,
    /// yet the file holds generations and ends on a complete chunk (Go's raw `exit_group`,
    /// `SIGKILL`, the OOM killer). A file cut inside a chunk is not such an end.
    pub ended_without_exit_path: bool,
    /// Names of JIT-generated code, in file order (docs/FORMAT.md, "JIT symbols").
    pub jit_symbols: Vec<JitSymbol>,
    /// Which timer sampled each thread: the newest account of each (empty in traces written
    /// before sources were recorded).
    pub sources: SourceTable,
}

/// Why [`read_trace`] stopped before the end of a file (docs/FORMAT.md, "What a reader must do").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStop {
    /// The file does not start with [`MAGIC`].
    NotATrace,
    /// The file is a trace of another format version; nothing was read.
    UnsupportedVersion {
        /// The version the file has.
        found: u16,
    },
    /// The file ends inside a chunk (cut short while it was written).
    Truncated {
        /// Bytes after the last complete chunk.
        ignored: u64,
    },
    /// A chunk's framing is broken (a checksum mismatch, an impossible length).
    Damaged {
        /// Where the chunk starts in the file.
        offset: usize,
        /// What is wrong with it.
        why: &'static str,
        /// Bytes from that chunk to the end of the file.
        ignored: u64,
    },
    /// A chunk's payload does not decode.
    Undecodable {
        /// Where the chunk starts in the file.
        offset: usize,
        /// The decoder's error.
        error: DecodeError,
    },
}

impl std::fmt::Display for ReadStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadStop::NotATrace => write!(f, "not a sigtrace file (no SIGTRACE magic)"),
            ReadStop::UnsupportedVersion { found } => write!(f, "format version {found} is not supported (this reader knows {FORMAT_VERSION})"),
            ReadStop::Truncated { ignored } => write!(f, "trace ends in a partial generation: {ignored} bytes ignored"),
            ReadStop::Damaged { offset, why, ignored } => write!(f, "chunk at byte {offset}: {why}; {ignored} bytes ignored"),
            ReadStop::Undecodable { offset, error } => write!(f, "chunk at byte {offset}: {error}"),
        }
    }
}

/// Decodes a trace file held in memory. Never panics: a damaged or truncated tail ends the
/// trace, and the complete chunks before it are kept. [`TraceReader::read_with`] keeping every
/// generation.
pub fn read_trace(bytes: &[u8]) -> Trace {
    let mut generations = Vec::new();
    let mut trace = TraceReader::new(bytes).read_with(|_, generation, _| generations.push(generation));
    trace.generations = generations;
    trace
}

/// A decoded chunk of a trace file.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// The header (only the first header chunk of a file is returned).
    Header(Header),
    /// A generation.
    Generation(Generation),
    /// An end record. A generation after it means the image went on (a failed exec).
    End(End),
    /// A piece of the open generation (see [`crate::TAG_PIECE`]), as written: its `modules`
    /// may be empty, meaning those of the chunk before. [`TraceReader::read_with`] resolves
    /// that and drops pieces a generation superseded.
    Piece(Generation),
    /// Names of JIT-generated code.
    JitSymbols(Vec<JitSymbol>),
    /// Which timer sampled the threads whose account changed.
    Sources(SourceTable),
    /// Samples of one thread's ring, spilled raw by its signal handler (see
    /// [`crate::ring_record`]). [`TraceReader::read_with`] makes each a generation of its own,
    /// its addresses named by the modules of the next chunk that carries them.
    Spill(crate::ring_record::Spill),
}

/// Reads a trace file chunk by chunk from any byte source, holding one chunk in memory at a
/// time: a reader's memory follows the largest generation, not the file. Never panics; a
/// damaged or truncated tail ends the chunks, and [`TraceReader::stopped_because`] says why.
pub struct TraceReader<R> {
    source: R,
    /// File offset of the next chunk.
    offset: usize,
    /// The version in the preamble, once read.
    format_version: u16,
    /// Whether the preamble has been read (and found to be a trace of this version).
    started: bool,
    header_seen: bool,
    stopped: Option<ReadStop>,
    /// Bytes after the last complete chunk that were not read as one.
    ignored: u64,
    /// Set when the reader has stopped, cleanly or not.
    done: bool,
    /// The Python code table of the generation chunk that follows (a `Y` chunk precedes it).
    pending_python_code: Vec<crate::PythonCode>,
    /// What the `Q` chunks read so far name: the raw Python frames of spills.
    spill_python: crate::spill_python::SpillPythonNames,
}

impl<R: std::io::Read> TraceReader<R> {
    /// A reader at the start of a trace file.
    pub fn new(source: R) -> TraceReader<R> {
        TraceReader {
            source,
            offset: 0,
            format_version: 0,
            started: false,
            header_seen: false,
            stopped: None,
            ignored: 0,
            done: false,
            pending_python_code: Vec::new(),
            spill_python: crate::spill_python::SpillPythonNames::default(),
        }
    }

    /// The names of spilled Python frames read so far (`Q` chunks), for a caller that reads a
    /// growing file in several passes and keeps them between passes.
    pub fn spill_python_mut(&mut self) -> &mut crate::spill_python::SpillPythonNames {
        &mut self.spill_python
    }

    /// The version in the file's preamble (0 until it has been read).
    pub fn format_version(&self) -> u16 {
        self.format_version
    }

    /// Why reading stopped before the end of the file, once it has.
    pub fn stopped_because(&self) -> Option<&ReadStop> {
        self.stopped.as_ref()
    }

    /// Bytes at the end of the file that were not part of a complete, valid chunk.
    pub fn ignored_bytes(&self) -> u64 {
        self.ignored
    }

    /// Bytes read as complete chunks (and the preamble) so far.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Reads the rest of the file, handing each generation to `each` with the header read before
    /// it (`None`: none yet) and the bytes read so far, so that one generation at a time is in
    /// memory. Returns everything else the file held — the header, how the image ended (an end
    /// record followed by a generation is dropped: the image went on after a failed exec), why
    /// reading stopped — with `generations` left empty.
    ///
    /// Pieces of the open generation are held until the generation's own chunk supersedes
    /// them; those left at an end record, at a piece of another generation or at the end of
    /// the file are merged into the generation they stand for (`pieces_recovered` counts them),
    /// with the modules of the chunk before them when they carry none.
    pub fn read_with(mut self, mut each: impl FnMut(Option<&Header>, Generation, usize)) -> Trace {
        let mut trace = Trace::default();
        let mut pieces: Vec<Generation> = Vec::new();
        let mut modules: Vec<Module> = Vec::new();
        let mut budget = INHERITED_MODULES_BUDGET;
        let mut any_generation = false;
        // Spills wait for the module list of the chunk after them (the writer lists the modules
        // only at its drain rounds, which may all come after).
        let mut spills: Vec<crate::ring_record::Spill> = Vec::new();
        let emit_spills = |spills: &mut Vec<crate::ring_record::Spill>,
                           python: &mut crate::spill_python::SpillPythonNames,
                           modules: &[Module],
                           threads: &[crate::Thread],
                           trace: &Trace,
                           offset: usize,
                           each: &mut dyn FnMut(Option<&Header>, Generation, usize)| {
            let clock_hz = trace.header.as_ref().map_or(1_000_000_000, |header| header.clock_hz);
            for spill in spills.drain(..) {
                let name = threads.iter().find(|thread| thread.tid == spill.tid).map_or("", |thread| thread.name.as_str());
                each(trace.header.as_ref(), spill.into_generation(clock_hz, modules, name, python), offset);
            }
        };
        // Merges the held pieces and hands them over as a generation.
        let mut recover =
            |pieces: &mut Vec<Generation>, modules: &[Module], trace: &mut Trace, offset: usize, each: &mut dyn FnMut(Option<&Header>, Generation, usize)| {
                if let Some(merged) = merge_pieces(std::mem::take(pieces), modules, &mut budget) {
                    trace.pieces_recovered += 1;
                    each(trace.header.as_ref(), merged, offset);
                }
            };
        while let Some(chunk) = self.next_chunk() {
            match chunk {
                Chunk::Header(header) => trace.header = Some(header),
                Chunk::Generation(generation) => {
                    trace.end = None;
                    any_generation = true;
                    if pieces.first().is_some_and(|piece| piece.sequence > generation.sequence) {
                        recover(&mut pieces, &modules, &mut trace, self.offset, &mut each);
                    }
                    pieces.clear();
                    modules.clone_from(&generation.modules);
                    emit_spills(&mut spills, &mut self.spill_python, &modules, &generation.threads, &trace, self.offset, &mut each);
                    each(trace.header.as_ref(), generation, self.offset);
                }
                Chunk::Piece(piece) => {
                    trace.end = None;
                    any_generation = true;
                    if pieces.first().is_some_and(|held| held.sequence != piece.sequence) {
                        recover(&mut pieces, &modules, &mut trace, self.offset, &mut each);
                    }
                    if !piece.modules.is_empty() {
                        modules.clone_from(&piece.modules);
                        emit_spills(&mut spills, &mut self.spill_python, &modules, &piece.threads, &trace, self.offset, &mut each);
                    }
                    pieces.push(piece);
                }
                Chunk::JitSymbols(symbols) => trace.jit_symbols.extend(symbols),
                Chunk::Spill(spill) => {
                    trace.end = None;
                    any_generation = true;
                    spills.push(spill);
                }
                Chunk::End(end) => {
                    emit_spills(&mut spills, &mut self.spill_python, &modules, &[], &trace, self.offset, &mut each);
                    recover(&mut pieces, &modules, &mut trace, self.offset, &mut each);
                    trace.end = Some(end);
                }
                Chunk::Sources(sources) => trace.sources.merge(sources),
            }
        }
        emit_spills(&mut spills, &mut self.spill_python, &modules, &[], &trace, self.offset, &mut each);
        recover(&mut pieces, &modules, &mut trace, self.offset, &mut each);
        trace.ended_without_exit_path = trace.end.is_none() && any_generation && self.stopped.is_none();
        trace.format_version = self.format_version;
        trace.ignored_bytes = self.ignored;
        trace.stopped_because = self.stopped;
        trace
    }

    /// The JIT symbols of the rest of the file, in file order, decoding no other chunk: a
    /// reader that streams generations needs them before the first one. Stops where the file
    /// is damaged or cut short, as [`TraceReader::next_chunk`] does.
    pub fn jit_symbols_only(mut self) -> Vec<JitSymbol> {
        let mut symbols = Vec::new();
        if !self.started && !self.read_preamble() {
            return symbols;
        }
        while let Ok(Some((tag, payload))) = self.read_framed_chunk() {
            if tag == TAG_JIT_SYMBOLS {
                match decode_jit_symbols(&payload) {
                    Ok(more) => symbols.extend(more),
                    Err(_) => break,
                }
            }
        }
        symbols
    }

    /// The next chunk, or `None` at the end of the file or of its readable part. Chunks of
    /// unknown kinds (from a newer writer) and repeated headers are skipped.
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        if self.done {
            return None;
        }
        if !self.started && !self.read_preamble() {
            self.done = true;
            return None;
        }
        loop {
            let chunk_offset = self.offset;
            let (tag, payload) = match self.read_framed_chunk() {
                Ok(Some(framed)) => framed,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err((why, read)) => {
                    let ignored = read.saturating_add(self.count_rest());
                    self.ignored = ignored;
                    self.stopped =
                        Some(if why == TRUNCATED { ReadStop::Truncated { ignored } } else { ReadStop::Damaged { offset: chunk_offset, why, ignored } });
                    self.done = true;
                    return None;
                }
            };
            let decoded = match tag {
                TAG_HEADER if !self.header_seen => decode_header(&payload).map(|header| {
                    self.header_seen = true;
                    Some(Chunk::Header(header))
                }),
                TAG_GENERATION => decode_generation(&payload).map(|mut generation| {
                    generation.python_code = std::mem::take(&mut self.pending_python_code);
                    Some(Chunk::Generation(generation))
                }),
                crate::python::TAG_PYTHON_CODE => crate::python::decode_python_codes(&payload).map(|codes| {
                    self.pending_python_code = codes;
                    None
                }),
                TAG_END => decode_end(&payload).map(|end| Some(Chunk::End(end))),
                TAG_PIECE => decode_generation(&payload).map(|piece| Some(Chunk::Piece(piece))),
                TAG_JIT_SYMBOLS => decode_jit_symbols(&payload).map(|symbols| Some(Chunk::JitSymbols(symbols))),
                TAG_SOURCES => decode_sources(&payload).map(|sources| Some(Chunk::Sources(sources))),
                crate::ring_record::TAG_SPILL => crate::ring_record::decode_spill(&payload).map(|spill| Some(Chunk::Spill(spill))),
                crate::spill_python::TAG_SPILL_PYTHON => crate::spill_python::decode_spill_python(&payload).map(|names| {
                    self.spill_python.add(names);
                    None
                }),
                _ => Ok(None), // an unknown chunk kind from a newer writer, or a second header: skip it
            };
            match decoded {
                Ok(Some(chunk)) => return Some(chunk),
                Ok(None) => continue,
                Err(error) => {
                    // The chunk was complete: it and the rest of the file are not read.
                    let chunk_len = CHUNK_OVERHEAD as u64 + payload.len() as u64;
                    self.ignored = chunk_len.saturating_add(self.count_rest());
                    self.offset = chunk_offset;
                    self.stopped = Some(ReadStop::Undecodable { offset: chunk_offset, error });
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// Reads and checks the magic and the version; false (with the reason set) when the file is
    /// not a trace of this version.
    fn read_preamble(&mut self) -> bool {
        self.started = true;
        let mut preamble = [0u8; PREAMBLE_LEN];
        let read = self.read_up_to(&mut preamble);
        if read < PREAMBLE_LEN || preamble[..MAGIC.len()] != MAGIC {
            self.ignored = (read as u64).saturating_add(self.count_rest());
            self.stopped = Some(ReadStop::NotATrace);
            return false;
        }
        self.format_version = u16::from_le_bytes([preamble[8], preamble[9]]);
        if self.format_version != FORMAT_VERSION {
            self.ignored = self.count_rest();
            self.stopped = Some(ReadStop::UnsupportedVersion { found: self.format_version });
            return false;
        }
        self.offset = PREAMBLE_LEN;
        true
    }

    /// The next chunk's tag and payload, checksum checked: `Ok(None)` at a clean end of file,
    /// `Err((why, bytes read of the chunk))` when it is cut short or damaged.
    fn read_framed_chunk(&mut self) -> Result<Option<(u8, Vec<u8>)>, ChunkFault> {
        let mut framing = [0u8; 5];
        let read = self.read_up_to(&mut framing);
        if read == 0 {
            return Ok(None);
        }
        if read < framing.len() {
            return Err((TRUNCATED, read as u64));
        }
        let len = u32::from_le_bytes([framing[1], framing[2], framing[3], framing[4]]) as usize;
        // Grown as bytes arrive (not reserved from the length): a damaged length costs no memory.
        let mut body = Vec::new();
        let wanted = len as u64 + 4;
        // A read error ends the chunk where it happened: what was read counts as a cut-short tail.
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(&mut self.source, wanted), &mut body);
        let got = body.len() as u64;
        if got < wanted {
            return Err((TRUNCATED, 5 + got));
        }
        let stored = u32::from_le_bytes([body[len], body[len + 1], body[len + 2], body[len + 3]]);
        body.truncate(len);
        let mut checksum = crate::varint::Crc32::new();
        checksum.update(&framing);
        checksum.update(&body);
        if checksum.finish() != stored {
            return Err(("checksum mismatch (damaged chunk)", 5 + wanted));
        }
        self.offset += CHUNK_OVERHEAD + len;
        Ok(Some((framing[0], body)))
    }

    /// Fills as much of `buffer` as the source has; returns the bytes read.
    fn read_up_to(&mut self, buffer: &mut [u8]) -> usize {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.source.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        filled
    }

    /// Reads the rest of the source, returning how many bytes it had.
    fn count_rest(&mut self) -> u64 {
        std::io::copy(&mut self.source, &mut std::io::sink()).unwrap_or(0)
    }
}

const TRUNCATED: &str = "truncated chunk (file cut short)";

/// Why a chunk could not be read, and how many of its bytes were read.
type ChunkFault = (&'static str, u64);
