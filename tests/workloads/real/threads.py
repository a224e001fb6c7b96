"""Four threads, each burning THREAD_SECONDS (argv[1], default 0.25) of its own CPU time.

Each thread first computes a fixed result (printed on stdout, in thread order: deterministic),
then repeats that work until its thread CPU clock has advanced by the set time. On stderr each
thread prints "tid=<native thread id> cpu_ns=<its CPU time>" (the run-to-run varying part).
"""
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
results = [None] * 4
lock = threading.Lock()


def work(index):
    return sum(i * i % (index + 7) for i in range(20000 * (index + 1)))


def burn(index):
    start = time.thread_time_ns()
    results[index] = work(index)
    while time.thread_time_ns() - start < SECONDS * 1e9:
        work(index)
    with lock:
        print(f"tid={threading.get_native_id()} cpu_ns={time.thread_time_ns()}", file=sys.stderr, flush=True)


threads = [threading.Thread(target=burn, args=(i,), name=f"burner-{i}") for i in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for index, result in enumerate(results):
    print(f"thread {index}: {result}")
print("threads done")
