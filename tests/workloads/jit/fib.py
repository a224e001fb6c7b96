# Recursive fib for ARGV[1] ms of CPU time (default 1000); prints "fib ok True".
import sys, time
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
budget = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 1.0
start = time.process_time()
total = 0
while time.process_time() - start < budget:
    total += fib(18)
print("fib ok", total > 0)
