#!/usr/bin/env python3
"""The rooms of userspace/ depend on each other in one direction only.

Reads every #include of userspace/ and fails, naming the file and line, when a room includes one it may not:
a lower room reaching up (the engine including a renderer), or the two command rooms (cli/, agent/) including
each other. main.cpp, at the top, may include any room. A header of the capture room is also recognised when
included by its bare name (its directory is on the include path of the rooms that link it).

Usage: layering_test.py [USERSPACE_DIR]   (default: the userspace/ next to tests/)
"""
import pathlib
import re
import sys

# What each room may include besides itself. Everything a room reaches must be lower in this table.
ALLOWED = {
    "common": set(),
    "netfilter": {"common"},
    "bpf": {"common"},
    "state": {"common"},
    "flows": {"common", "state"},
    "k8s": {"common", "state"},
    "policy": {"common", "state", "flows"},
    "output": {"common", "state", "flows", "policy"},
    "live": {"common", "state", "flows", "k8s", "policy", "output", "bpf", "netfilter"},
    "cli": {"common", "state", "flows", "k8s", "policy", "output", "bpf", "netfilter", "live"},
    "agent": {"common", "state", "flows", "k8s", "policy", "output", "bpf", "netfilter", "live"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main() -> int:
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2] / "userspace"
    rooms = sorted(p.name for p in root.iterdir() if p.is_dir())
    unknown = [r for r in rooms if r not in ALLOWED]
    if unknown:
        print(f"layering: room(s) {', '.join(unknown)} missing from the table in {__file__}: add them", file=sys.stderr)
        return 1
    bare_bpf = {p.name for p in (root / "bpf").glob("*.hpp")}
    violations = []
    checked = 0
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".cpp", ".hpp") or path.parent == root:
            continue
        room = path.relative_to(root).parts[0]
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1)
            checked += 1
            if "/" in target:
                dep = target.split("/", 1)[0]
                if dep not in ALLOWED:  # include/netpol_trace/: the structs shared with the kernel
                    continue
            elif target in bare_bpf:
                dep = "bpf"
            else:
                continue  # a header of the same directory
            if dep != room and dep not in ALLOWED[room]:
                violations.append(f"{path.relative_to(root.parent)}:{lineno}: {room}/ includes {target} ({dep}/ is "
                                  f"not below {room}/)")
    if checked == 0:
        print(f"layering: no #include found under {root}", file=sys.stderr)
        return 1
    for v in violations:
        print(v, file=sys.stderr)
    if violations:
        print(f"layering: {len(violations)} include(s) against the room order (tests/unit/layering_test.py has it)",
              file=sys.stderr)
        return 1
    print(f"layering: {checked} includes of {len(rooms)} rooms follow the room order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
