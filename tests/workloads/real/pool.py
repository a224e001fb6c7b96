"""A multiprocessing Pool of 2 workers started by the method named in argv[1] (fork or spawn)
mapping 12 tasks of TASK_SECONDS (argv[2], default 0.04) of CPU each.

stdout holds only the deterministic results; each task prints "worker pid=<pid>" on stderr.
The pool is closed and joined (not terminated), so every worker ends by itself.
"""
import multiprocessing
import os
import sys
import time


def task(x):
    start = time.process_time()
    value = sum(i * x % 97 for i in range(20000))
    while time.process_time() - start < TASK_SECONDS:
        sum(i * x % 97 for i in range(20000))
    print(f"worker pid={os.getpid()}", file=sys.stderr, flush=True)
    return x, value


TASK_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 0.04

if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    pool = context.Pool(2)
    results = pool.map(task, range(12), chunksize=1)
    pool.close()
    pool.join()
    for x, value in results:
        print(f"task {x}: {value}")
    print(f"pool done ({context.get_start_method()})")
