"""Writes semi-compressible text for the xz workload of scripts/bench: random lines over a
5000-word vocabulary, seeded (the same bytes every run), until the file holds SIZE bytes.

    make_text.py OUT SIZE
"""
import random
import sys


def main():
    out_path, size = sys.argv[1], int(sys.argv[2])
    random.seed(5)
    words = ["".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(random.randint(2, 10))) for _ in range(5000)]
    written = 0
    with open(out_path, "w") as out:
        while written < size:
            line = " ".join(random.choices(words, k=12)) + " %d\n" % random.randint(0, 10**6)
            written += out.write(line)


if __name__ == "__main__":
    main()
