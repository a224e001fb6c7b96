#!/usr/bin/env python3
"""Run one command and measure it: wall time and the CPU time (user + sys) of the command and
everything it waited for, from wait4(2).

    run.py --out FILE [--env NAME=VALUE]... [--timeout S] [--stdout F] [--stderr F] -- CMD ARGS...
    run.py --print FIELD [options as above] -- CMD ARGS...   # e.g. --print cpu_s

The --env variables are set in the child only (so a preloaded profiler never lands in this
runner). FILE receives one JSON object: pid (the command's pid), status (exit code, or minus
the signal number), wall_s, user_s, sys_s, cpu_s, and self_cpu_s (this runner's own CPU, so a
caller that nests runners can subtract it). --print FIELD prints that field of the object on
stdout (bench-unwind.sh's cpu_seconds: --print cpu_s). A non-zero exit status of the command
is recorded, not an error: some workloads exit non-zero on purpose. The command runs in a
process group of its own (unless --same-group); on a timeout or when this runner is
interrupted the whole group is killed, so nothing is left behind.
"""
import argparse
import json
import os
import resource
import signal
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--print", dest="print_field", metavar="FIELD",
                        help="print this field of the result (e.g. cpu_s) on stdout")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--stdout", default=os.devnull)
    parser.add_argument("--stderr", default=os.devnull)
    parser.add_argument("--same-group", action="store_true",
                        help="keep the command in this runner's process group (for a runner nested "
                             "under another one, whose group kill must reach the command)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    if not (args.out or args.print_field):
        parser.error("--out or --print is needed")
    env = dict(os.environ)
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        env[name] = value

    stdout = os.open(args.stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    stderr = os.open(args.stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    stdin = os.open(os.devnull, os.O_RDONLY)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            if not args.same_group:
                os.setpgid(0, 0)
            os.dup2(stdin, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            os.execvpe(command[0], command, env)
        finally:
            os._exit(127)
    if not args.same_group:
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child already did it, or already exec'd
    os.close(stdout)
    os.close(stderr)
    os.close(stdin)

    def on_timeout(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, on_timeout)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    timed_out = False
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    try:
        _, status, usage = os.wait4(pid, 0)
    except BaseException as error:  # timeout, Ctrl-C, SIGTERM: kill the whole group, reap
        timed_out = isinstance(error, TimeoutError)
        try:
            os.kill(pid, signal.SIGKILL) if args.same_group else os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status, usage = os.wait4(pid, 0)
        if isinstance(error, KeyboardInterrupt):
            sys.exit(130)
        if not timed_out:
            raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    wall = time.monotonic() - start
    # Anything the command left running in its group (it should be nothing) goes too.
    if not args.same_group:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    me = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "pid": pid,
        "status": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status),
        "timed_out": timed_out,
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "self_cpu_s": me.ru_utime + me.ru_stime,
    }
    if args.out:
        with open(args.out, "w") as out:
            json.dump(result, out)
            out.write("\n")
    if args.print_field:
        print(result[args.print_field])


if __name__ == "__main__":
    main()
