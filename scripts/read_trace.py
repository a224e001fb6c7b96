#!/usr/bin/env python3
"""A reader of sigtrace trace files written from docs/FORMAT.md alone, as its proof: it prints a
summary that tests/tests/integration/trace_format/format_md_reader.rs compares with the Rust reader's.

    scripts/read_trace.py TRACE   ->  one JSON object on stdout
"""
import json
import sys
import zlib


class Broken(Exception):
    pass


class Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def left(self):
        return len(self.data) - self.pos

    def uvarint(self):
        value = 0
        for shift in range(0, 70, 7):
            if self.pos >= len(self.data):
                raise Broken("varint runs past the end")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value & 0xFFFFFFFFFFFFFFFF
        raise Broken("varint longer than 10 bytes")

    def svarint(self):
        raw = self.uvarint()
        return (raw >> 1) ^ -(raw & 1)

    def u32(self):
        value = self.uvarint()
        if value >= 1 << 32:
            raise Broken("value does not fit in 32 bits")
        return value

    def bytes(self):
        n = self.uvarint()
        if n > self.left():
            raise Broken("byte string runs past the end")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def string(self):
        return self.bytes().decode("utf-8", "replace")

    def count(self, least):
        n = self.uvarint()
        if n > self.left() // least:
            raise Broken("element count larger than the bytes left")
        return n


def header(c):
    h = {"pid": c.u32(), "parent_pid": c.u32(), "executable": c.string()}
    h["args"] = [c.string() for _ in range(c.count(1))]
    for key in ("clock",):
        h[key] = c.string()
    h["clock_hz"], h["start_clock_ns"], h["start_unix_ns"] = c.uvarint(), c.uvarint(), c.uvarint()
    h["hz"], h["timer"], h["mode"] = c.u32(), c.string(), c.string()
    h["max_depth"], h["generation_ms"] = c.u32(), c.u32()
    return h


def stack_tree(c):
    """Returns the stacks as (parent, frame) nodes and each stack's node (-1: empty stack)."""
    nodes, stack_nodes, path = [], [-1] * c.uvarint(), []  # path: node indices, root first
    for _ in range(c.count(2)):
        head = c.uvarint()
        up, ends = head // 3, head % 3
        if up > len(path):
            raise Broken("stack node leaves more frames than its path has")
        if up > 0:
            reference = nodes[path[len(path) - up]][1]
        else:
            reference = nodes[path[-1]][1] if path else 0
        del path[len(path) - up:]
        frame = (reference + c.svarint()) & 0xFFFFFFFFFFFFFFFF
        nodes.append((path[-1] if path else -1, frame))
        path.append(len(nodes) - 1)
        ends = c.uvarint() if ends == 2 else ends
        if ends > 256:
            raise Broken("too many stacks end at one node")
        stack_nodes += [len(nodes) - 1] * ends
    return nodes, stack_nodes


def generation(c):
    g = {"sequence": c.uvarint(), "start_time": c.uvarint()}
    g["end_time"] = (g["start_time"] + c.svarint()) & 0xFFFFFFFFFFFFFFFF
    g["process_cpu_ns"] = c.uvarint()
    g["threads"] = [
        {"tid": c.u32(), "name": c.string(), "cpu_ns": c.uvarint(), "dropped": c.uvarint(), "exited": c.uvarint() != 0}
        for _ in range(c.count(5))
    ]
    g["modules"] = []
    for _ in range(c.count(5)):
        path, base, start = c.string(), c.uvarint(), c.uvarint()
        g["modules"].append({"path": path, "base": base, "start": start, "end": start + c.uvarint(), "build_id": c.bytes().hex()})
    nodes, stack_nodes = stack_tree(c)
    samples, time = [], g["start_time"]
    for _ in range(c.count(3)):
        time = (time + c.svarint()) & 0xFFFFFFFFFFFFFFFF
        thread_and_flag, stack = c.uvarint(), c.u32()
        weight = c.u32() if thread_and_flag & 1 else 1
        if thread_and_flag >> 1 >= len(g["threads"]) or stack >= len(stack_nodes):
            raise Broken("sample refers to a missing thread or stack")
        samples.append((time, thread_and_flag >> 1, stack, weight))
    g["counters"] = {c.string(): c.uvarint() for _ in range(c.count(2))}
    walks = c.bytes() if c.left() > 0 else b""
    if walks and len(walks) != len(stack_nodes):
        raise Broken("stack walk codes do not match the stacks")
    events, time = [], g["start_time"]
    if c.left() > 0:
        for _ in range(c.count(5)):
            time = (time + c.svarint()) & 0xFFFFFFFFFFFFFFFF
            thread, kind, category, text = c.u32(), c.uvarint(), c.string(), c.string()
            if kind > 6 or thread >= len(g["threads"]):
                raise Broken("bad event")
            events.append((time, thread, kind, category, text))

    def frames(stack):  # leaf first
        node, out = stack_nodes[stack], []
        while node >= 0:
            out.append(nodes[node][1])
            node = nodes[node][0]
        return out

    g["samples"] = [{"time": t, "tid": g["threads"][th]["tid"], "weight": w, "frames": frames(s)} for t, th, s, w in samples]
    g["walks"] = list(walks)
    g["stack_count"] = len(stack_nodes)  # for merging pieces; not part of the output
    g["events"] = [{"time": t, "tid": g["threads"][th]["tid"], "kind": k, "category": cat, "text": txt} for t, th, k, cat, txt in events]
    return g


def python_code(c):
    """A `Y` chunk: the Python code objects the next generation's stacks name."""
    return [{"name": c.string(), "file": c.string(), "first_line": c.u32()} for _ in range(c.count(3))]


def name_python_frames(g, codes):
    """Gives `g` its code table (when it has one) and each sample with Python frames the list of
    them, in stack order: code name (null when the table has no such entry), line, entry bit."""
    if codes:
        g["python_code"] = codes
    for sample in g["samples"]:
        python = []
        for word in sample["frames"]:
            if word >> 56 == 0xFE:
                index = (word >> 24) & ((1 << 31) - 1)
                name = codes[index]["name"] if index < len(codes) else None
                python.append({"name": name, "line": word & 0xFFFFFF, "entry": bool(word >> 55 & 1)})
        if python:
            sample["python"] = python


def merge_pieces(pieces, inherited):
    """The generation that pieces of one open generation stand for (FORMAT.md, "Piece")."""
    g = {"sequence": pieces[0]["sequence"], "start_time": pieces[0]["start_time"], "end_time": pieces[-1]["end_time"],
         "process_cpu_ns": pieces[-1]["process_cpu_ns"], "threads": [], "modules": inherited, "counters": {},
         "samples": [], "walks": [], "events": []}
    for p in pieces:
        if len(p["threads"]) >= len(g["threads"]):
            g["threads"] = p["threads"]
        if p["modules"]:
            g["modules"] = p["modules"]
        for name, value in p["counters"].items():
            g["counters"][name] = g["counters"].get(name, 0) + value
        g["samples"] += p["samples"]
        g["walks"] += p["walks"] if len(p["walks"]) == p["stack_count"] else [0] * p["stack_count"]
        g["events"] += p["events"]
    g["samples"].sort(key=lambda s: s["time"])
    g["events"].sort(key=lambda e: e["time"])
    return g


def spill_python(c, names):
    """A `Q` chunk (FORMAT.md, "Python frames of spills"): adds what it names to `names`,
    {(address, check): [code, {instr: line}]}, and its lost frames to names["lost"]."""
    names["lost"] = names.get("lost", 0) + c.uvarint()
    for _ in range(c.count(5)):
        address, check = c.uvarint(), c.u32()
        code = {"name": c.string(), "file": c.string(), "first_line": c.u32()}
        lines = {}
        for _ in range(c.count(2)):
            instr = c.u32()
            lines[instr] = c.u32()
        entry = names.setdefault((address, check), [code, {}])
        entry[0] = code
        entry[1].update(lines)


def spill(body, clock_hz, modules, threads, names=None):
    """A spill chunk (FORMAT.md, "Spill") as a generation of its one thread, its raw Python
    frames named by the `Q` chunks read so far (`names`, see `spill_python`)."""
    names = names if names is not None else {}
    codes = {}  # (name, file, first_line) → index in the generation's code table
    unnamed = 0
    if len(body) < 16 or (len(body) - 16) % 8:
        raise Broken("a spill is not its preamble and whole words")
    sequence, tid = int.from_bytes(body[:8], "little"), int.from_bytes(body[8:12], "little")
    words = [int.from_bytes(body[i:i + 8], "little") for i in range(16, len(body), 8)]
    name = next((t["name"] for t in threads if t["tid"] == tid), "")
    g = {"sequence": sequence, "process_cpu_ns": 0, "threads": [{"tid": tid, "name": name, "cpu_ns": 0, "dropped": 0, "exited": False}],
         "modules": modules, "counters": {}, "samples": [], "walks": [], "events": []}
    stacks, at = {}, 0
    while at < len(words):
        total, walk, kind = words[at] & 0xFFFFFFFF, (words[at] >> 32) & 0xFF, (words[at] >> 40) & 0xFF
        if total < 3 or total > len(words) - at or kind != 0:
            raise Broken("a spilled record is impossible")
        frames = words[at + 3:at + total]
        if 0xFEED000000000000 in frames:
            marker = frames.index(0xFEED000000000000)
            raw, frames, python = frames[marker + 1:], frames[:marker], []
            for first, second in zip(raw[0::2], raw[1::2]):
                known = names.get((first & ~(1 << 63), second >> 32))
                if known is None:
                    python = None
                    break
                code, lines = known
                key = (code["name"], code["file"], code["first_line"])
                index = codes.setdefault(key, len(codes))
                line = lines.get(second & 0xFFFFFFFF, 0)
                python.append(0xFE << 56 | (first >> 63) << 55 | (index & ((1 << 31) - 1)) << 24 | (line & 0xFFFFFF))
            if python is None:
                unnamed += 1
            else:
                frames = frames + python
        if (tuple(frames), walk) not in stacks:
            stacks[(tuple(frames), walk)] = len(stacks)
            g["walks"].append(walk)
        end, method = WalkCounters.END_COUNTERS[walk & 0xF] if (walk & 0xF) < 4 else None, WalkCounters.METHOD_COUNTERS[walk >> 4] if (walk >> 4) < 7 else None
        for counter in (end, method):
            if counter:
                g["counters"][counter] = g["counters"].get(counter, 0) + 1
        g["samples"].append({"time": words[at + 1] // (1_000_000_000 // clock_hz), "tid": tid, "weight": max(words[at + 2] & 0xFFFFFFFF, 1), "frames": frames})
        at += total
    g["samples"].sort(key=lambda s: s["time"])
    g["start_time"] = g["samples"][0]["time"] if g["samples"] else 0
    g["end_time"] = g["samples"][-1]["time"] if g["samples"] else 0
    for counter, value in (("python.spilled_samples_unnamed", unnamed), ("python.spill_table_full", names.pop("lost", 0))):
        if value:
            g["counters"][counter] = value
    name_python_frames(g, [{"name": n, "file": f, "first_line": l} for (n, f, l) in codes])
    return g


class WalkCounters:
    """The walk-code counters (FORMAT.md, "Counters")."""
    END_COUNTERS = ["unwind.end.root", "unwind.end.stack_bounds", "unwind.end.bad_frame", "unwind.end.depth_limit"]
    METHOD_COUNTERS = ["unwind.method.fp", "unwind.method.dwarf", "unwind.method.fp_no_cache", "unwind.method.fp_no_stack_room",
                       "unwind.method.fp_not_ready", "unwind.method.pc_only", "unwind.method.pc_only_no_stack_room"]


def read(data):
    trace = {"header": None, "generations": [], "end": None, "stopped_because": None}
    if len(data) < 10 or data[:8] != b"SIGTRACE":
        trace["stopped_because"] = "not a sigtrace file"
        return trace
    version = int.from_bytes(data[8:10], "little")
    if version != 3:
        trace["stopped_because"] = f"format version {version}"
        return trace
    offset = 10
    pieces, modules = [], []
    pending_python_code = []  # the last `Y` read, for the next `G`
    before_pieces = []  # the modules of the chunk before the held pieces

    spills = []  # spill chunks held for the module list of the chunk after them
    spill_names = {}  # what the `Q` chunks read so far name

    def emit_spills(modules, threads):
        clock_hz = (trace["header"] or {}).get("clock_hz", 1_000_000_000) or 1
        for body in spills:
            trace["generations"].append(spill(body, clock_hz, modules, threads, spill_names))
        spills.clear()

    def recover_pieces():
        # Pieces no generation superseded stand for the open generation (FORMAT.md, "Piece").
        if pieces:
            g = merge_pieces(pieces, before_pieces)
            name_python_frames(g, [])
            trace["generations"].append(g)
            trace["pieces_recovered"] = trace.get("pieces_recovered", 0) + 1
            pieces.clear()

    while offset < len(data):
        if len(data) - offset < 9:
            trace["stopped_because"] = "truncated"
            break
        tag, length = data[offset], int.from_bytes(data[offset + 1:offset + 5], "little")
        if offset + 9 + length > len(data):
            trace["stopped_because"] = "truncated"
            break
        body = data[offset:offset + 5 + length]
        if zlib.crc32(body) != int.from_bytes(data[offset + 5 + length:offset + 9 + length], "little"):
            trace["stopped_because"] = "checksum mismatch"
            break
        c = Cursor(body[5:])
        try:
            if tag == ord("H") and trace["header"] is None:
                trace["header"] = header(c)
            elif tag == ord("G"):
                g = generation(c)
                name_python_frames(g, pending_python_code)
                pending_python_code = []
                trace["end"] = None
                if pieces and pieces[0]["sequence"] > g["sequence"]:
                    recover_pieces()
                pieces.clear()
                modules = g["modules"]
                emit_spills(modules, g["threads"])
                trace["generations"].append(g)
            elif tag == ord("P"):
                p = generation(c)
                trace["end"] = None
                if pieces and pieces[0]["sequence"] != p["sequence"]:
                    recover_pieces()
                if not pieces:
                    before_pieces = modules
                if p["modules"]:
                    modules = p["modules"]
                    emit_spills(modules, p["threads"])
                pieces.append(p)
            elif tag == ord("Y"):
                pending_python_code = python_code(c)
            elif tag == ord("R"):
                trace["end"] = None
                spill(body[5:], 1_000_000_000, [], [])  # checked now, decoded when its modules are known
                spills.append(body[5:])
            elif tag == ord("Q"):
                spill_python(c, spill_names)
            elif tag == ord("J"):
                symbols = []
                for _ in range(c.count(4)):
                    time, start, size, name = c.uvarint(), c.uvarint(), c.uvarint(), c.string()
                    symbols.append({"time": time, "start": start, "size": size, "name": name})
                trace.setdefault("jit_symbols", []).extend(symbols)
            elif tag == ord("E"):
                emit_spills(modules, [])
                recover_pieces()
                trace["end"] = {"reason": c.uvarint(), "signal": c.u32(), "time": c.uvarint()}
                if trace["end"]["reason"] > 6:
                    raise Broken("unknown end reason")
                if c.left() > 0 and c.uvarint() == 1:  # appended: written by the parent
                    trace["end"]["seen_by_parent"] = min(c.uvarint(), 255)
        except Broken as why:
            trace["stopped_because"] = str(why)
            break
        offset += 9 + length
    emit_spills(modules, [])
    recover_pieces()
    for g in trace["generations"]:
        g.pop("stack_count", None)
    trace["ignored_bytes"] = len(data) - min(offset, len(data))
    return trace


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        json.dump(read(f.read()), sys.stdout)
