"""Prints the CPU seconds (user + system) used so far by a process and all its descendants,
from /proc: `python proc_cpu.py PID`. Children that already exited count only when their parent
reaped them (cutime/cstime), as usual. Used to state each server's CPU per request."""

import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): ppid = 4, utime = 14, stime = 15, cutime = 16, cstime = 17
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def tree_cpu(root):
    parents, cpu = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parents[int(name)], cpu[int(name)] = stat(name)
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / TICKS


if __name__ == "__main__":
    print(f"{tree_cpu(int(sys.argv[1])):.2f}")
