"""Where a server's cold start goes before it listens, from kernel tracepoints and uprobes (no sampling).

Record a cold_start.py run system-wide with these events, then give this script the perf.data file and the
servers' executable names (how their paths end):

  sudo perf probe -x /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --add '_dl_relocate_object l->l_name:string'
  sudo perf probe -x /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 _dl_init
  sudo perf probe -x /lib/x86_64-linux-gnu/libc.so.6 __libc_start_main
  sudo perf record -a -o /tmp/phases.data -e sched:sched_process_exec,syscalls:sys_enter_listen \
      -e probe_ld:_dl_relocate_object,probe_ld:_dl_init,probe_libc:__libc_start_main -- \
      python3 Benchmarks/ColdStart/cold_start.py --runs 20 --floor /tmp/floor-responder ...
  python3 Benchmarks/ColdStart/phases.py /tmp/phases.data floor-responder go-health-server ping-server
  sudo perf probe -d 'probe_ld:*' -d 'probe_libc:*'

Per server (median / min over its runs, ms): exec -> the loader's first relocation (mapping the
libraries), the relocations (one _dl_relocate_object per object, to _dl_init), constructors
(_dl_init -> __libc_start_main), main -> listen, and exec -> listen; then the relocation time of each object.
A Go binary does not start through __libc_start_main: it gets the loader phases only if it is linked
dynamically (Debian's grpc-go is, for cgo's resolver), and exec -> listen.
"""
import collections
import re
import statistics
import subprocess
import sys

LINE = re.compile(r"\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, names = sys.argv[1], sys.argv[2:]
    script = subprocess.run(["perf", "script", "-i", path, "-F", "comm,pid,tid,time,event,trace"],
                            capture_output=True, text=True, check=True).stdout
    runs = {}  # pid -> events of the server's process image
    for line in script.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        _, pid, _, time, event, trace = match.groups()
        pid, time, event = int(pid), float(time) * 1000, event.split(":")[1]
        if event == "sched_process_exec":
            filename = re.search(r"filename=(\S+)", trace).group(1)
            name = next((n for n in names if filename.endswith(n)), None)
            runs.pop(pid, None)
            if name:
                runs[pid] = {"name": name, "exec": time, "relocations": []}
            continue
        run = runs.get(pid)
        if run is None:
            continue
        if event == "_dl_relocate_object":
            if "_dl_init" not in run:
                object_name = re.search(r'l_name="([^"]*)"', trace)
                run["relocations"].append((time, (object_name.group(1) if object_name else "?") or "(executable)"))
        elif event not in run:
            run[event] = time

    phases = collections.defaultdict(lambda: collections.defaultdict(list))
    objects = collections.defaultdict(lambda: collections.defaultdict(list))
    for run in runs.values():
        name, found = run["name"], phases[run["name"]]
        if "sys_enter_listen" in run:
            found["exec -> listen"].append(run["sys_enter_listen"] - run["exec"])
        relocations = run["relocations"]
        if relocations and "_dl_init" in run:
            found["exec -> 1st relocation"].append(relocations[0][0] - run["exec"])
            found["relocations"].append(run["_dl_init"] - relocations[0][0])
            ends = [t for t, _ in relocations[1:]] + [run["_dl_init"]]
            for (start, object_name), end in zip(relocations, ends):
                objects[name][object_name.rsplit("/", 1)[-1]].append(end - start)
            if "__libc_start_main" in run:
                found["constructors"].append(run["__libc_start_main"] - run["_dl_init"])
                if "sys_enter_listen" in run:
                    found["main -> listen"].append(run["sys_enter_listen"] - run["__libc_start_main"])
    order = ["exec -> 1st relocation", "relocations", "constructors", "main -> listen", "exec -> listen"]
    print(f"{'server':<20}" + "".join(f"{p:>24}" for p in order) + "   (median / min ms)")
    for name in names:
        found = phases.get(name, {})
        cells = [f"{statistics.median(found[p]):.2f} / {min(found[p]):.2f}" if found.get(p) else "-" for p in order]
        count = max((len(v) for v in found.values()), default=0)
        print(f"{name:<20}" + "".join(f"{c:>24}" for c in cells) + f"   n={count}")
    for name in names:
        if objects.get(name):
            parts = [f"{o} {statistics.median(v):.2f}" for o, v in objects[name].items()]
            print(f"{name} relocation by object (median ms): " + ", ".join(parts))


if __name__ == "__main__":
    main()
