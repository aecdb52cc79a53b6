"""``prog.attach()``: infer the hook from the section name, as libbpf's auto-attach does.

Sections name most tracing hooks (``tp/syscalls/sys_enter_openat``,
``uprobe//usr/bin/bash:readline``); network and cgroup hooks need a target the section
cannot name (an interface, a cgroup, a socket), which the caller passes as keywords.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .._consts import AttachType, ProgramType
from ..errors import AttachError
from ..link import Link

__all__ = ["attach_program", "auto_attachable"]

_OFFSET = re.compile(r"^(?P<func>[^+]+?)(?:\+(?P<off>0x[0-9a-fA-F]+|\d+))?$")

_CGROUP_TYPES = {ProgramType.CGROUP_SKB, ProgramType.CGROUP_SOCK, ProgramType.CGROUP_SOCK_ADDR,
                 ProgramType.SOCK_OPS, ProgramType.CGROUP_DEVICE, ProgramType.CGROUP_SYSCTL,
                 ProgramType.CGROUP_SOCKOPT}


def _info(prog: Any) -> Any:
    spec = getattr(prog, "spec", None)
    return getattr(spec, "info", None)


def _section(prog: Any) -> str:
    return getattr(prog, "section", "") or getattr(getattr(prog, "spec", None), "section", "")


def auto_attachable(prog: Any) -> bool:
    """True when the section alone names the hook (what ``attach_all`` attaches)."""
    info = _info(prog)
    if info is None or not info.auto_attach:
        return False
    kind = info.auto_attach
    if kind in ("kprobe", "uprobe", "tracepoint", "raw_tp", "ksyscall", "kprobe_multi",
                "kprobe_session", "uprobe_multi", "usdt"):
        return bool(info.attach_target)
    return True


def _func_off(target: str) -> tuple[str, int]:
    m = _OFFSET.match(target)
    if not m:
        raise AttachError(f"cannot parse probe target {target!r} (want func or func+offset)")
    return m.group("func"), int(m.group("off") or "0", 0)


def _cgroup_default() -> str:
    from .cgroup import cgroup2_mount
    return cgroup2_mount()


def attach_program(prog: Any, **kw: Any) -> Link | list[Link]:
    """Attach ``prog`` to the hook its section names, with keyword targets where needed.

    Keywords: ``ifname``/``direction`` (tc/xdp), ``cgroup`` (cgroup programs, default the
    cgroup2 root), ``sock`` (socket filter), ``netns`` (sk_lookup, flow dissector),
    ``map`` (sk_msg/sk_skb, iterators), ``pid`` (uprobes, usdt), ``binary``/``symbol``
    (uprobes when the section has no target), ``target_prog`` (freplace, fentry on a program),
    ``cookie``.
    """
    info = _info(prog)
    kind = info.auto_attach if info is not None else None
    target = info.attach_target if info is not None else ""
    retprobe = bool(info is not None and info.is_return)
    cookie = kw.pop("cookie", 0)
    ptype = int(prog.type)
    name = f"program {prog.name!r} (section {_section(prog)!r})"

    if kind == "tracepoint":
        target = kw.pop("tracepoint", None) or target
        if "/" not in target:
            raise AttachError(f"{name}: tracepoint section needs 'tp/<category>/<name>'")
        from .tracing import attach_tracepoint
        cat, _, tp = target.partition("/")
        return attach_tracepoint(prog, cat, tp, cookie)
    if kind == "raw_tp":
        from .tracing import attach_raw_tracepoint
        return attach_raw_tracepoint(prog, kw.pop("name", None) or target, cookie)
    if kind in ("trace", "lsm"):
        from .tracing import attach_trace
        if int(prog.expected_attach_type) == AttachType.TRACE_ITER:
            from .tracing import attach_iter
            return attach_iter(prog, **kw)
        return attach_trace(prog, kw.pop("target_prog", None), cookie=cookie)
    if kind == "iter":
        from .tracing import attach_iter
        return attach_iter(prog, **kw)
    if kind == "kprobe":
        from .tracing import attach_kprobe
        kfunc, koff = _func_off(kw.pop("func", None) or target)
        return attach_kprobe(prog, kfunc, koff, retprobe=retprobe, cookie=cookie,
                             maxactive=kw.pop("maxactive", 0))
    if kind == "ksyscall":
        from .tracing import attach_ksyscall
        return attach_ksyscall(prog, kw.pop("name", None) or target, retprobe=retprobe,
                               cookie=cookie)
    if kind in ("kprobe_multi", "kprobe_session"):
        from .tracing import attach_kprobe_multi
        return attach_kprobe_multi(prog, [kw.pop("pattern", None) or target], retprobe=retprobe)
    if kind in ("uprobe", "uprobe_multi"):
        binary = kw.pop("binary", None)
        symbol = kw.pop("symbol", None)
        if binary is None:
            if ":" not in target:
                raise AttachError(f"{name}: give binary= and symbol= (the section names no "
                                  "'path:function')")
            binary, _, symbol = target.rpartition(":")
        pid = kw.pop("pid", -1)
        if kind == "uprobe_multi":
            from .uprobe import attach_uprobe_multi
            return attach_uprobe_multi(prog, binary, [symbol] if symbol else None,
                                       retprobe=retprobe, pid=pid)
        from .uprobe import attach_uprobe
        func: str | None = None
        off = 0
        if symbol:
            func, off = _func_off(symbol)
        if func and func.startswith("0x"):
            return attach_uprobe(prog, binary, None, 0, address=int(func, 16), retprobe=retprobe,
                                 pid=pid, cookie=cookie)
        return attach_uprobe(prog, binary, func, off, retprobe=retprobe, pid=pid, cookie=cookie)
    if kind == "usdt":
        from .usdt import attach_usdt
        parts = target.split(":") if target else []
        binary = kw.pop("binary", None)
        if binary is None:
            if len(parts) != 3:
                raise AttachError(f"{name}: usdt section needs 'usdt/<path>:<provider>:<name>' "
                                  "or binary=, provider=, name=")
            binary, provider, probe = parts
        else:
            provider, probe = kw.pop("provider"), kw.pop("name")
        coll = getattr(prog, "collection", None)
        specs_map = kw.pop("specs_map", None) or (coll.maps.get("__bpf_usdt_specs") if coll
                                                  else None)
        ip_map = kw.pop("ip_map", None) or (coll.maps.get("__bpf_usdt_ip_to_spec_id") if coll
                                            else None)
        if specs_map is None:
            raise AttachError(f"{name}: no __bpf_usdt_specs map (include <bpf/usdt.bpf.h>)")
        return attach_usdt(prog, binary, provider, probe, specs_map=specs_map, ip_map=ip_map,
                           pid=kw.pop("pid", -1), cookie=cookie)

    # Hooks a section cannot name: by program type, with keyword targets.
    if ptype == ProgramType.XDP:
        from .net import attach_xdp
        ifname = kw.pop("ifname", None) or kw.pop("interface", None)
        if ifname is None:
            raise AttachError(f"{name}: XDP needs an interface: attach(ifname='eth0')")
        return attach_xdp(prog, ifname, **kw)
    if ptype == ProgramType.SCHED_CLS:
        from .net import attach_tc, attach_tcx
        ifname = kw.pop("ifname", None) or kw.pop("interface", None)
        if ifname is None:
            raise AttachError(f"{name}: tc needs an interface: attach(ifname='eth0', "
                              "direction='ingress')")
        at = int(prog.expected_attach_type)
        direction = kw.pop("direction", None) or (
            "egress" if at == AttachType.TCX_EGRESS else "ingress")
        if kw.pop("legacy", False) or _section(prog) in ("tc", "classifier"):
            return attach_tc(prog, ifname, direction, **kw)
        return attach_tcx(prog, ifname, direction, **kw)
    if ptype in _CGROUP_TYPES:
        from .cgroup import attach_cgroup
        cg = kw.pop("cgroup", None)
        if cg in (None, "auto"):
            cg = _cgroup_default()
        return attach_cgroup(prog, cg, **kw)
    if ptype == ProgramType.SOCKET_FILTER:
        from .net import attach_socket_filter
        if "sock" not in kw:
            raise AttachError(f"{name}: a socket filter needs sock= (a socket or fd)")
        return attach_socket_filter(prog, kw.pop("sock"))
    if ptype == ProgramType.SK_LOOKUP:
        from .net import attach_sk_lookup
        return attach_sk_lookup(prog, kw.pop("netns", f"/proc/{os.getpid()}/ns/net"))
    if ptype == ProgramType.FLOW_DISSECTOR:
        from .net import attach_flow_dissector
        return attach_flow_dissector(prog, kw.pop("netns", f"/proc/{os.getpid()}/ns/net"))
    if ptype == ProgramType.NETFILTER:
        from .net import attach_netfilter
        return attach_netfilter(prog, **kw)
    if ptype in (ProgramType.SK_MSG, ProgramType.SK_SKB):
        from .net import attach_sockmap
        if "map" not in kw:
            raise AttachError(f"{name}: sk_msg/sk_skb programs attach to a sockmap: "
                              "attach(map=coll.maps['sock_map'])")
        return attach_sockmap(prog, kw.pop("map"), int(prog.expected_attach_type))
    if ptype == ProgramType.PERF_EVENT:
        from .cgroup import attach_perf_event_all_cpus
        if not kw.get("sample_freq") and not kw.get("sample_period"):
            kw["sample_freq"] = 49
        return attach_perf_event_all_cpus(prog, cookie=cookie, **kw)
    raise AttachError(f"{name} cannot be attached automatically: use an explicit attach_* "
                      "call with its target")
