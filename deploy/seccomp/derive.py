#!/usr/bin/env python3
"""Derives bpf-inventory-exporter.json from a container runtime's default
seccomp profile (Docker / containers-common format):
    deploy/seccomp/derive.py /usr/share/containers/seccomp.json > deploy/seccomp/bpf-inventory-exporter.json
Everything stays as the runtime has it, except that bpf and perf_event_open
leave the rules that allow them only with CAP_SYS_ADMIN (and refuse them with
EPERM without it) for one rule that allows them: the kernel itself still
checks CAP_BPF and CAP_PERFMON, which is all the exporter is granted."""
import json
import sys

OURS = {"bpf", "perf_event_open"}

profile = json.load(open(sys.argv[1]))
rules = []
for rule in profile["syscalls"]:
    names = set(rule["names"]) & OURS
    caps = rule.get("includes", {}).get("caps", []) + rule.get("excludes", {}).get("caps", [])
    if names and caps:
        if not set(caps) <= {"CAP_SYS_ADMIN"}:
            sys.exit(f"unexpected condition on {sorted(names)}: {rule}")
        rule = dict(rule, names=[n for n in rule["names"] if n not in OURS])
        if not rule["names"]:
            continue
    rules.append(rule)
rules.append({
    "names": sorted(OURS),
    "action": "SCMP_ACT_ALLOW",
    "args": [],
    "comment": "bpf-inventory-exporter: bpf() with CAP_BPF, perf_event_open() with CAP_PERFMON, no CAP_SYS_ADMIN",
    "includes": {},
    "excludes": {},
})
profile["syscalls"] = rules
json.dump(profile, sys.stdout, indent="\t")
sys.stdout.write("\n")
