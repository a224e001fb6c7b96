# bench-unwind.sh's workload, profiled by sigtrace under Debian's python3: a pure-Python loop
# (the sum of the squares below 8 million).
def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
print(work(8_000_000))
