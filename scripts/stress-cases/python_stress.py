# Python stress case (scripts/stress, cases python-3.X): for 1.5 s of wall time, threads started
# and ended in waves, code compiled and dropped in a loop (compile/exec), generators, asyncio
# coroutines, exceptions raised and caught; a forked child does some of the same. Sized by
# the clock; prints only deterministic lines.
import asyncio
import os
import sys
import threading
import time
import warnings

# CPython 3.12+ warns at fork when /proc/self/task shows other threads: sigtrace's drain thread
# is one (a difference of the shim's lifecycle, not of Python frames), so the warning is off.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def squares(n):
    for i in range(n):
        yield i * i


def raise_and_catch(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            raise ValueError("caught")
        except ValueError:
            pass
        sum(squares(100))


def compile_and_drop(end):
    round_ = 0
    while time.monotonic() < end:
        source = f"def made_{round_ % 50}(x):\n    return sum(i for i in range(x))\nresult = made_{round_ % 50}(200)\n"
        namespace = {}
        exec(compile(source, f"<made {round_}>", "exec"), namespace)
        round_ += 1


def thread_waves(end):
    while time.monotonic() < end:
        wave = [threading.Thread(target=raise_and_catch, args=(0.01,)) for _ in range(4)]
        for thread in wave:
            thread.start()
        for thread in wave:
            thread.join()


async def count(n):
    total = 0
    for i in range(n):
        total += i
        if i % 100 == 0:
            await asyncio.sleep(0)
    return total


async def coroutines(end):
    while time.monotonic() < end:
        await asyncio.gather(*(count(500) for _ in range(8)))


pid = os.fork()
if pid == 0:
    raise_and_catch(0.3)
    asyncio.run(coroutines(time.monotonic() + 0.2))
    print("child done")
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
end = time.monotonic() + 1.5
workers = [threading.Thread(target=compile_and_drop, args=(end,)), threading.Thread(target=thread_waves, args=(end,))]
for worker in workers:
    worker.start()
asyncio.run(coroutines(end))
for worker in workers:
    worker.join()
print("parent done")
