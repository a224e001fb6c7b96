# CPU-bound Python for the Python-frames tests: `main SECONDS`, `threads A_SECONDS B_SECONDS`,
# `one_by_one N SECONDS` (N threads in turn, each in work_a), `fork SECONDS`, `generators SECONDS` (half in a generator, half in a coroutine), `sleeps
# SECONDS` (of wall time, in time.sleep under two Python functions; prints slept_ns=N, the wall time spent in sleeper_leaf, on stderr). Work is sized by thread CPU time, never by an iteration count.
import os
import sys
import threading
import time


def spin_leaf(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def spin_middle(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        spin_leaf(500)


def spin_outer(seconds):
    spin_middle(seconds)


def work_a(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(i * 3 for i in range(300))


def work_b(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sorted(range(300, 0, -1))


def produce(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        yield spin_leaf(500)


def consume(seconds):
    for _ in produce(seconds):
        pass


slept_in_leaf = 0.0


def sleeper_leaf(seconds):
    global slept_in_leaf
    start = time.monotonic()
    time.sleep(seconds)
    slept_in_leaf += time.monotonic() - start


def sleeper_outer(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sleeper_leaf(0.02)


async def inner_coroutine(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        spin_leaf(500)
        if time.thread_time() % 0.01 < 0.001:
            await asyncio.sleep(0)


async def outer_coroutine(seconds):
    await inner_coroutine(seconds)


mode = sys.argv[1]
if mode == "main":
    spin_outer(float(sys.argv[2]))
elif mode == "threads":
    threads = [threading.Thread(target=work_a, args=(float(sys.argv[2]),)), threading.Thread(target=work_b, args=(float(sys.argv[3]),))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
elif mode == "one_by_one":
    for _ in range(int(sys.argv[2])):
        thread = threading.Thread(target=work_a, args=(float(sys.argv[3]),))
        thread.start()
        thread.join()
elif mode == "generators":
    import asyncio  # only here (a global of the module): its import costs CPU time

    consume(float(sys.argv[2]) / 2)
    asyncio.run(outer_coroutine(float(sys.argv[2]) / 2))
elif mode == "sleeps":
    sleeper_outer(float(sys.argv[2]))
    print(f"slept_ns={int(slept_in_leaf * 1e9)}", file=sys.stderr)
elif mode == "fork":
    pid = os.fork()
    if pid == 0:
        spin_outer(float(sys.argv[2]))
        os._exit(0)
    os.waitpid(pid, 0)
print("done")
