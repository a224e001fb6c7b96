# bench-export.sh's workload, profiled by sigtrace under Debian's python3: two threads that
# each serialise, parse, search and sort a list of 2000 small dicts until they have used
# 3 seconds of CPU.
import threading, time, json, re
def churn(seconds):
    data = [{"k": i, "v": str(i) * 3} for i in range(2000)]
    while time.thread_time() < seconds:
        s = json.dumps(data); json.loads(s)
        re.findall(r"\d+", s)
        sorted(data, key=lambda d: d["v"])
threads = [threading.Thread(target=churn, args=(3,), name=f"worker{i}") for i in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
