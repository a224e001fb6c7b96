"""Prints a one-line description of the first line where GOT differs from EXPECTED (nothing
when they are the same), for scripts/stress's reports.

    first_difference.py GOT EXPECTED
"""
import sys


def first_difference(got_path, want_path):
    """The first differing line as `line N: 'got', expected 'want'` (each cut to 120
    characters; a missing line reads `<end>`), or None."""
    got = open(got_path, errors="replace").read().splitlines()
    want = open(want_path, errors="replace").read().splitlines()
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else "<end>"
        w = want[i] if i < len(want) else "<end>"
        if g != w:
            return f"line {i + 1}: {g[:120]!r}, expected {w[:120]!r}"
    return None


if __name__ == "__main__":
    difference = first_difference(sys.argv[1], sys.argv[2])
    if difference:
        print(difference)
