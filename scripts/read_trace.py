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
    before_pieces = []  # the modules of the chunk before the held pieces

    def recover_pieces():
        # Pieces no generation superseded stand for the open generation (FORMAT.md, "Piece").
        if pieces:
            trace["generations"].append(merge_pieces(pieces, before_pieces))
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
                trace["end"] = None
                if pieces and pieces[0]["sequence"] > g["sequence"]:
                    recover_pieces()
                pieces.clear()
                trace["generations"].append(g)
                modules = g["modules"]
            elif tag == ord("P"):
                p = generation(c)
                trace["end"] = None
                if pieces and pieces[0]["sequence"] != p["sequence"]:
                    recover_pieces()
                if not pieces:
                    before_pieces = modules
                if p["modules"]:
                    modules = p["modules"]
                pieces.append(p)
            elif tag == ord("J"):
                symbols = []
                for _ in range(c.count(4)):
                    time, start, size, name = c.uvarint(), c.uvarint(), c.uvarint(), c.string()
                    symbols.append({"time": time, "start": start, "size": size, "name": name})
                trace.setdefault("jit_symbols", []).extend(symbols)
            elif tag == ord("E"):
                recover_pieces()
                trace["end"] = {"reason": c.uvarint(), "signal": c.u32(), "time": c.uvarint()}
                if trace["end"]["reason"] > 6:
                    raise Broken("unknown end reason")
        except Broken as why:
            trace["stopped_because"] = str(why)
            break
        offset += 9 + length
    recover_pieces()
    for g in trace["generations"]:
        g.pop("stack_count", None)
    trace["ignored_bytes"] = len(data) - min(offset, len(data))
    return trace


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        json.dump(read(f.read()), sys.stdout)
