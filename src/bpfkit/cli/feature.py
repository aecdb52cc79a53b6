"""``bpfkit feature``: what this kernel supports, with the section names that use each.

Answers "which program/map/attach/link types does this kernel have?" and "which helpers
can my kprobe program call?" from real feature probes (cached per process).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import features as F
from .._consts import AttachType, HelperId, LinkType, MapType, ProgramType
from ..sections import SECTION_DEFS

_SKIP_PROG = {"UNSPEC"}


def _sections_for_prog(pt: int) -> list[str]:
    return sorted({d.prefix for d in SECTION_DEFS if int(d.prog_type) == pt})


def _sections_for_attach(at_name: str) -> list[str]:
    return sorted({d.prefix for d in SECTION_DEFS if d.expected_attach_type == at_name})


def isa_version() -> str:
    """Highest eBPF ISA (cpu=v1..v4) the verifier accepts, by loading a v3/v4 instruction."""
    from .. import asm
    from ..errors import BpfkitError
    from ..program import Program
    probes = [("v4", [asm.mov64_imm(asm.R1, 1), asm.movsx64_reg(asm.R0, asm.R1, 8), asm.exit()]),
              ("v3", [asm.mov64_imm(asm.R0, 0), asm.jmp32_imm(asm.BPF_JEQ, asm.R0, 0, 0),
                      asm.exit()]),
              ("v2", [asm.mov64_imm(asm.R0, 0), asm.jmp_imm(asm.BPF_JLT, asm.R0, 1, 0),
                      asm.exit()])]
    for name, insns in probes:
        try:
            with Program.load(ProgramType.SOCKET_FILTER, insns):
                return name
        except BpfkitError:
            continue
    return "v1"


def collect(helpers_for: list[int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kernel": ".".join(map(str, F.kernel_version()))}
    progs = []
    for pt in ProgramType:
        if pt.name in _SKIP_PROG:
            continue
        f = F.has_program_type(pt)
        progs.append({"name": pt.name.lower(), "supported": f.supported, "reason": f.reason,
                      "sections": _sections_for_prog(pt)})
    out["program_types"] = progs
    maps = []
    for mt in MapType:
        if mt.name == "UNSPEC":
            continue
        f = F.has_map_type(mt)
        maps.append({"name": mt.name.lower(), "supported": f.supported, "reason": f.reason})
    out["map_types"] = maps
    attach = []
    for d in SECTION_DEFS:
        if not d.expected_attach_type:
            continue
        try:
            at = AttachType[d.expected_attach_type]
        except KeyError:
            continue
        f = F.has_attach_type(d.prog_type, at)
        attach.append({"name": at.name.lower(), "program_type": d.prog_type.name.lower(),
                       "supported": f.supported, "reason": f.reason, "section": d.prefix})
    seen: set[str] = set()
    unique = []
    for a in attach:
        if a["name"] not in seen:
            seen.add(a["name"])
            unique.append(a)
    out["attach_types"] = unique
    links = []
    for lt in LinkType:
        if lt.name == "UNSPEC":
            continue
        f = F.has_link_type(lt)
        links.append({"name": lt.name.lower(), "supported": f.supported, "reason": f.reason})
    out["link_types"] = links
    misc = [F.has_kprobes(), F.has_uprobes(), F.has_kprobe_multi(), F.has_uprobe_multi(),
            F.has_tcx(), F.has_bpf_cookie(), F.has_syscall_wrapper()]
    out["features"] = [{"name": f.name, "supported": f.supported, "reason": f.reason}
                       for f in misc]
    out["isa"] = isa_version()
    if helpers_for:
        out["helpers"] = {}
        for ptv in helpers_for:
            pt = ProgramType(ptv)
            hs = []
            for h in HelperId:
                if h.value == 0:
                    continue
                f = F.has_helper(pt, h)
                if f.supported:
                    hs.append(f"bpf_{h.name}")
            out["helpers"][ProgramType(pt).name.lower()] = hs
    return out


def _mark(ok: bool) -> str:
    return "yes" if ok else "no "


def print_report(data: dict[str, Any], out: Any = sys.stdout) -> None:
    print(f"kernel {data['kernel']}, eBPF ISA {data['isa']}", file=out)
    print("\nprogram types:", file=out)
    for p in data["program_types"]:
        secs = ", ".join(p["sections"][:6])
        why = "" if p["supported"] else f"  ({p['reason']})"
        print(f"  {_mark(p['supported'])} {p['name']:<24} {secs}{why}", file=out)
    print("\nattach types (probed per attach type):", file=out)
    for a in data["attach_types"]:
        why = "" if a["supported"] else f"  ({a['reason']})"
        print(f"  {_mark(a['supported'])} {a['name']:<28} SEC(\"{a['section']}\"){why}", file=out)
    print("\nmap types:", file=out)
    for m in data["map_types"]:
        why = "" if m["supported"] else f"  ({m['reason']})"
        print(f"  {_mark(m['supported'])} {m['name']}{why}", file=out)
    print("\nlink types:", file=out)
    for li in data["link_types"]:
        why = "" if li["supported"] else f"  ({li['reason']})"
        print(f"  {_mark(li['supported'])} {li['name']}{why}", file=out)
    print("\nhooks and features:", file=out)
    for f in data["features"]:
        why = "" if f["supported"] else f"  ({f['reason']})"
        print(f"  {_mark(f['supported'])} {f['name']}{why}", file=out)
    for pt, hs in data.get("helpers", {}).items():
        print(f"\nhelpers a {pt} program can call ({len(hs)}):", file=out)
        for i in range(0, len(hs), 4):
            print("  " + "  ".join(f"{h:<30}" for h in hs[i:i + 4]).rstrip(), file=out)


def cmd_feature(a: argparse.Namespace) -> int:
    helpers: list[int] = []
    for name in a.helpers or []:
        key = name.upper().replace("-", "_")
        aliases = {"TRACEPOINT": "TRACEPOINT", "TP": "TRACEPOINT", "RAW_TP": "RAW_TRACEPOINT",
                   "UPROBE": "KPROBE", "XDP": "XDP", "TC": "SCHED_CLS", "SOCKET": "SOCKET_FILTER",
                   "FENTRY": "TRACING", "CGROUP_SKB": "CGROUP_SKB"}
        key = aliases.get(key, key)
        try:
            helpers.append(int(ProgramType[key]))
        except KeyError:
            print(f"bpfkit: unknown program type {name!r} (e.g. kprobe, xdp, tracepoint, "
                  "sched_cls)", file=sys.stderr)
            return 2
    data = collect(helpers)
    if a.json:
        from ._output import emit_json
        emit_json(data)
    else:
        print_report(data)
    return 0
