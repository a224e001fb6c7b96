# Python frames read by fault-recovering loads beside the program's own SIGSEGV handling
# (tests/tests/integration/python_fault_reads.rs). Work is sized by CPU or wall time.
#   deep SECONDS     spin 60 Python calls deep
#   toggle SECONDS   a thread spins 60 calls deep while the main thread enables and disables
#                    faulthandler (its SIGSEGV/SIGBUS handlers) in a loop; then faults on purpose
#                    with faulthandler enabled: its handler reports the fault and the process
#                    dies of SIGSEGV
#   fault SECONDS    spin, then fault on purpose with no handler: the process dies of SIGSEGV
#   blocked SECONDS  spin with SIGSEGV and SIGBUS blocked
import ctypes
import signal
import faulthandler
import sys
import threading
import time

DEPTH = 60


def recurse(depth, seconds):
    if depth > 1:
        return recurse(depth - 1, seconds)
    end = time.thread_time() + seconds
    total = 0
    while time.thread_time() < end:
        for i in range(500):
            total += i * i
    return total


def fault():
    sys.stdout.flush()
    ctypes.string_at(0)


mode, seconds = sys.argv[1], float(sys.argv[2])
if mode == "deep":
    recurse(DEPTH, seconds)
elif mode == "toggle":
    spinner = threading.Thread(target=recurse, args=(DEPTH, seconds))
    spinner.start()
    toggles = 0
    while spinner.is_alive():
        faulthandler.enable()
        faulthandler.disable()
        toggles += 1
    spinner.join()
    print(f"toggled {'yes' if toggles > 0 else 'no'}")
    faulthandler.enable(all_threads=False)
    fault()
elif mode == "fault":
    recurse(DEPTH, seconds)
    print("faulting")
    fault()
elif mode == "blocked":
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGSEGV, signal.SIGBUS])
    recurse(DEPTH, seconds)
