"""Runs a command and appends its CPU time (user + system of it and the children it waited for,
getrusage RUSAGE_CHILDREN) as JSON to a file: `python cpu_time.py OUT.json -- CMD ARGS...`.
Exits with the command's status. Measures h2load's and `fulcrum loadtest`'s whole-process CPU
from outside, start-up and report writing included."""

import json
import resource
import subprocess
import sys
import time


def main():
    out = sys.argv[1]
    assert sys.argv[2] == "--", "usage: cpu_time.py OUT.json -- CMD ARGS..."
    command = sys.argv[3:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    status = subprocess.call(command)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        json.dump({"user_s": after.ru_utime - before.ru_utime, "system_s": after.ru_stime - before.ru_stime,
                   "wall_s": wall, "status": status}, f)
    sys.exit(status)


if __name__ == "__main__":
    main()
