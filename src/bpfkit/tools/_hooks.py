"""Helpers shared by the tools that pick between hook families (fentry, kprobe, tp_btf,
tracepoint): companion probes that only make sense with one family, ``--hook`` to force a
family, and the cgroup-id filter.

Why a Manager subclass: a syscall tracepoint covers one syscall, while ``fentry`` on the
kernel function behind it covers all of them (``do_sys_openat2`` serves open, openat and
openat2).  The extra tracepoints must attach only when the tracepoint family won, or every
event would be reported twice.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from ..errors import BpfkitError
from ..manager import Manager, Probe, ProbeStatus
from .base import Tool, object_path

# program-name prefix -> hook family (what --hook names)
FAMILIES = {"fentry": "fentry", "fexit": "fentry", "kprobe": "kprobe",
            "kretprobe": "kprobe", "tp_btf": "tp_btf", "raw_tp": "raw_tp", "tp": "tracepoint"}


def family(program: str) -> str:
    """The hook family of a program, from its name prefix (``fexit_x`` -> ``fentry``)."""
    for prefix in sorted(FAMILIES, key=len, reverse=True):
        if program.startswith(prefix + "_"):
            return FAMILIES[prefix]
    return "other"


def chain(candidates: Sequence[str], hook: str | None) -> tuple[str, list[str]]:
    """(program, fallbacks) for a Probe: all candidates best first, or only the ``hook``
    family when the user forces one."""
    cands = list(candidates)
    if hook and hook != "auto":
        cands = [c for c in cands if family(c) == hook]
        if not cands:
            have = sorted({family(c) for c in candidates})
            raise BpfkitError(f"--hook {hook}: this tool has no such hook "
                              f"(it has: {', '.join(have)})")
    return cands[0], cands[1:]


def add_hook_arg(p: argparse.ArgumentParser, families: Sequence[str]) -> None:
    p.add_argument("--hook", choices=["auto", *families], default="auto",
                   help="force one hook family instead of the best this kernel has")


class CompanionManager(Manager):
    """A Manager whose probes with ``uid`` ``"companion:<lead>:<family>"`` attach only when
    probe ``lead`` ended up on a program of that hook family (e.g. the extra syscall
    tracepoints a kernel-function hook makes unnecessary).  Companions come after their
    lead in the probe list."""

    def _attach_probe(self, p: Probe) -> ProbeStatus:
        if p.uid.startswith("companion:"):
            _, lead, when = p.uid.split(":", 2)
            chosen = self.chosen(lead)
            if chosen is None or family(chosen) != when:
                st = ProbeStatus(uid=p.uid, requested=p.program,
                                 reason=f"not needed: {lead} is on {chosen or 'nothing'}")
                self.status[p.id] = st
                return st
        return super()._attach_probe(p)

    def _has_alternative(self, prog: str) -> bool:
        # A program only optional probes use may be dropped when the kernel refuses it.
        if super()._has_alternative(prog):
            return True
        users = [p for p in self._all_probes() if prog in p.candidates()]
        return bool(users) and all(p.optional for p in users)


def companions(lead: str, programs: Sequence[str], when: str = "tracepoint") -> list[Probe]:
    """Optional probes that attach only when ``lead`` used the ``when`` hook family."""
    return [Probe(prog, uid=f"companion:{lead}:{when}", optional=True) for prog in programs]


def cgroup_id(path: str) -> int:
    """The id BPF's ``bpf_get_current_cgroup_id()`` returns for a cgroup v2 directory: its
    inode number (absolute path, or relative to the cgroup2 mount)."""
    from ..attach.cgroup import cgroup_path
    try:
        p = cgroup_path(path)
        return os.stat(p).st_ino
    except OSError as e:
        raise BpfkitError(f"--cgroup {path}: {e.strerror}") from None


def filter_constants(args: argparse.Namespace, names: Any) -> dict[str, Any]:
    """``targ_cgid`` for --cgroup when the object has it."""
    out: dict[str, Any] = {}
    if getattr(args, "cgroup", None) and "targ_cgid" in names:
        out["targ_cgid"] = cgroup_id(args.cgroup)
    return out


class HookTool(Tool):
    """A Tool built on :class:`CompanionManager`, with --cgroup as the ``targ_cgid`` constant
    and optional tail-call routes (``{prog_array: {slot: program}}``)."""

    def tail_calls(self, args: argparse.Namespace) -> dict[str, dict[int, str]]:
        return {}

    def all_constants(self, m_spec: Any, args: argparse.Namespace) -> dict[str, Any]:
        c = super().all_constants(m_spec, args)
        c.update(filter_constants(args, set(m_spec.variables)))
        return c

    def manager(self, args: argparse.Namespace) -> Manager:
        from ..spec import CollectionSpec
        spec = CollectionSpec.from_file(object_path(self.obj or self.name))
        return CompanionManager(spec, self.probes(args), constants=self.all_constants(spec, args),
                                tail_calls=self.tail_calls(args))


def kernel_symbol(name: str) -> str:
    """The symbol a kprobe on ``name`` must use: ``name`` itself, or the compiler's clone of
    a static function (``name.constprop.0``, ``name.isra.0``...) when only that exists.
    Clones keep the leading arguments the tools read; the check runs only where kprobes
    exist (reading /proc/kallsyms is not free)."""
    if not (os.path.exists("/sys/bus/event_source/devices/kprobe")
            or os.path.exists("/sys/kernel/tracing/kprobe_events")):
        return name
    clone = None
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                sym = parts[2]
                if sym == name:
                    return name
                if clone is None and sym.startswith(name + "."):
                    clone = sym
    except OSError:
        return name
    return clone or name
