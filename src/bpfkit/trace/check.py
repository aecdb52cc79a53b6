"""Type checker: annotates each expression with a :class:`~.types.Type`, types the maps,
resolves ``args->field`` (tracepoint formats) and ``curtask->a->b`` (BTF) through an
:class:`Env`, and rejects what cannot be compiled, pointing at the text.

Pure: everything it needs from the running system comes through ``Env``, so tests and
the fuzzer give it canned tracepoint formats and BTF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import ast as A
from .errors import Span, TraceTypeError, suggest
from .parser import INT_TYPES
from .types import (
    AGGREGATES,
    COMM_LEN,
    NONE,
    S64,
    STRLEN,
    U32,
    U64,
    Type,
    int_t,
    storable,
    str_t,
    tuple_t,
    unify,
)


@dataclass(frozen=True)
class TpField:
    """One field of a tracepoint's format file."""

    name: str
    ctype: str
    offset: int
    size: int
    signed: bool
    data_loc: bool = False
    array: int = 0  # element count of a `char x[16]` field, 0 if not an array


class Env(Protocol):
    """What the checker needs to know about the machine (see runtime.SystemEnv)."""

    def tracepoint_fields(self, category: str, name: str) -> list[TpField] | None: ...

    def btf(self) -> Any: ...

    def kaddr(self, name: str) -> int | None: ...


PROVIDERS = {
    "BEGIN": "BEGIN", "END": "END", "tracepoint": "tracepoint", "t": "tracepoint",
    "rawtracepoint": "rawtracepoint", "rt": "rawtracepoint", "uprobe": "uprobe",
    "u": "uprobe", "uretprobe": "uretprobe", "ur": "uretprobe", "usdt": "usdt", "U": "usdt",
    "profile": "profile", "p": "profile", "interval": "interval", "i": "interval",
    "kprobe": "kprobe", "k": "kprobe", "kretprobe": "kretprobe", "kr": "kretprobe",
    "kfunc": "kfunc", "f": "kfunc", "kretfunc": "kretfunc", "fr": "kretfunc",
}
_PARTS = {"BEGIN": (0, 0), "END": (0, 0), "tracepoint": (2, 2), "rawtracepoint": (1, 1),
          "uprobe": (2, 2), "uretprobe": (2, 2), "usdt": (2, 3), "profile": (2, 2),
          "interval": (2, 2), "kprobe": (1, 2), "kretprobe": (1, 2), "kfunc": (1, 2),
          "kretfunc": (1, 2)}
_REG_PROBES = ("uprobe", "uretprobe", "kprobe", "kretprobe", "usdt")
_RET_PROBES = ("uretprobe", "kretprobe", "kretfunc")
_USER_PROBES = ("uprobe", "uretprobe", "usdt")

BUILTINS = ("pid", "tid", "uid", "gid", "comm", "nsecs", "elapsed", "cpu", "cgroup", "probe",
            "func", "retval", "args", "curtask", "rand", "kstack", "ustack", "ctx", "cpid")
FUNCTIONS = ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist", "str", "ksym",
             "usym", "kaddr", "ntop", "printf", "print", "clear", "zero", "delete", "exit",
             "time", "kstack", "ustack", "uptr", "kptr")
_SIGNED_C = re.compile(r"^(?:const\s+)?(?:signed\s+)?(?:char|short|int|long|long long|"
                       r"s8|s16|s32|s64|__s8|__s16|__s32|__s64|pid_t|ssize_t|loff_t|"
                       r"off_t|clockid_t|time_t|key_serial_t|long int)$")


@dataclass
class ProbeUnit:
    """One program to generate: a probe body for one concrete attach point."""

    probe: A.Probe
    provider: str
    parts: list[str]
    name: str  # the full attach point ('tracepoint:syscalls:sys_enter_read')
    fields: dict[str, TpField] = field(default_factory=dict)
    locals: dict[str, Type] = field(default_factory=dict)
    # usdt: the location's argument specs (bpfkit.attach.usdt.UsdtArg) and file offsets
    usdt_args: tuple[Any, ...] = ()
    usdt_offset: int = 0
    usdt_semaphore: int = 0
    # kfunc/kretfunc: the function's BTF id and its parameters (name, BTF type id)
    btf_id: int = 0
    params: list[tuple[str, int]] = field(default_factory=list)
    ret_type: int = 0


@dataclass
class MapInfo:
    name: str
    key: Type | None  # None: a scalar map (@x)
    value: Type
    span: Span


@dataclass
class Checked:
    """What the code generator needs: the units and the map table."""

    units: list[ProbeUnit]
    maps: dict[str, MapInfo]
    source: str


def provider_of(ap: A.AttachPoint, source: str = "") -> str:
    prov = PROVIDERS.get(ap.provider)
    if prov is None:
        raise TraceTypeError(f"unknown probe type {ap.provider!r}"
                             + suggest(ap.provider, [k for k in PROVIDERS if len(k) > 2]),
                             ap.span, source)
    lo, hi = _PARTS[prov]
    if not lo <= len(ap.parts) <= hi:
        want = {"tracepoint": "tracepoint:CATEGORY:NAME", "uprobe": "uprobe:BINARY:SYMBOL",
                "uretprobe": "uretprobe:BINARY:SYMBOL", "usdt": "usdt:BINARY:[PROVIDER:]NAME",
                "profile": "profile:hz:N", "interval": "interval:s:N",
                "rawtracepoint": "rawtracepoint:NAME"}.get(prov, prov)
        raise TraceTypeError(f"malformed {prov} probe: expected {want}", ap.span, source)
    return prov


def tp_type(f: TpField, category: str) -> Type:
    """The type of a tracepoint field as bpftrace 0.17 sees it."""
    ct = f.ctype.strip()
    if f.data_loc:
        return str_t(STRLEN)
    if f.array and ("char" in ct or ct in ("u8", "__u8")):
        return str_t(f.array)  # bytes: what str() and ntop() take
    if "*" in ct:
        return Type("ptr", 8, False, user=category == "syscalls",
                    value="char" if re.search(r"\bchar\s*\*$", ct) else None)
    signed = f.signed or bool(_SIGNED_C.match(ct))
    if ct.startswith("unsigned") or ct.startswith("u") or ct.startswith("__u") or \
            ct in ("size_t", "umode_t", "bool", "gfp_t", "dev_t"):
        signed = False
    size = f.size if f.size in (1, 2, 4, 8) else 8
    return int_t(size, signed)


class Checker:
    def __init__(self, env: Env, source: str, params: list[str]) -> None:
        self.env = env
        self.source = source
        self.params = params
        self.maps: dict[str, MapInfo] = {}
        self.unit: ProbeUnit | None = None

    def err(self, msg: str, span: Span) -> TraceTypeError:
        return TraceTypeError(msg, span, self.source)

    # ----------------------------------------------------------------- units
    def check_unit(self, unit: ProbeUnit) -> None:
        self.unit = unit
        if unit.provider == "tracepoint":
            fields = self.env.tracepoint_fields(unit.parts[0], unit.parts[1])
            if fields is None:
                ap = unit.probe.attach_points[0]
                raise self.err(f"unknown tracepoint {unit.parts[0]}:{unit.parts[1]} (see "
                               "`bpfkit trace -l 'tracepoint:*'`)", ap.span)
            unit.fields = {f.name: f for f in fields if not f.name.startswith("common_")}
        if unit.provider in ("kfunc", "kretfunc"):
            self.resolve_kfunc(unit)
        if unit.probe.predicate is not None:
            self.expr(unit.probe.predicate)
        self.block(unit.probe.body)

    def resolve_kfunc(self, unit: ProbeUnit) -> None:
        """The kernel function's BTF id and parameters (fentry/fexit read them as u64s)."""
        from ..btf import Func, FuncProto
        ap = unit.probe.attach_points[0]
        btf = self.env.btf()
        if btf is None:
            raise self.err(f"{unit.provider} needs the kernel's BTF (/sys/kernel/btf/vmlinux)",
                           ap.span)
        name = unit.parts[-1]
        ids = [i for i in btf.ids_by_name(name) if isinstance(btf.type(i), Func)]
        if not ids:
            raise self.err(f"no kernel function {name!r} in the kernel's BTF", ap.span)
        unit.btf_id = ids[0]
        proto = btf.type(btf.type(ids[0]).type)
        assert isinstance(proto, FuncProto)
        unit.params = [(p.name, p.type) for p in proto.params]
        unit.ret_type = proto.return_type

    def block(self, stmts: list[A.Stmt]) -> None:
        for st in stmts:
            self.stmt(st)

    def stmt(self, st: A.Stmt) -> None:
        if isinstance(st, A.ExprStmt):
            t = self.expr(st.expr, statement=True)
            if t.kind in AGGREGATES:
                raise self.err(f"{t.kind}() must be assigned to a map: @x = {t.kind}(...)",
                               st.span)
        elif isinstance(st, A.AssignMap):
            self.assign_map(st)
        elif isinstance(st, A.AssignVar):
            assert self.unit is not None
            t = self.expr(st.value)
            if t.kind in AGGREGATES:
                raise self.err(f"{t.kind}() can only be assigned to a map", st.value.span)
            if t.kind in ("none", "args"):
                raise self.err(f"cannot assign a value of type {t} to a variable", st.value.span)
            old = self.unit.locals.get(st.target.name)
            if st.op != "=":
                if old is None or old.kind != "int" or t.kind != "int":
                    raise self.err(f"'{st.op}' needs an integer variable that already has a "
                                   "value", st.span)
                st.target.type = old
                return
            new = storable(t)
            if old is not None and (old.kind != new.kind or
                                    (new.kind == "str" and old.size != new.size) or
                                    (new.kind == "tuple" and old != new)):
                raise self.err(f"variable {st.target.name} was {old}, cannot assign {t}",
                               st.span)
            if old is None:
                self.unit.locals[st.target.name] = new
            st.target.type = self.unit.locals[st.target.name]
        elif isinstance(st, A.If):
            t = self.expr(st.cond)
            if t.kind not in ("int", "ptr"):
                raise self.err(f"an if condition must be an integer, not {t}", st.cond.span)
            self.block(st.then)
            self.block(st.other)
        elif isinstance(st, A.Unroll):
            self.block(st.body)

    def key_type(self, ref: A.MapRef) -> Type | None:
        if not ref.keys:
            return None
        types = []
        for k in ref.keys:
            t = self.expr(k)
            if t.kind in AGGREGATES or t.kind in ("none", "args"):
                raise self.err(f"a map key cannot be {t}", k.span)
            types.append(storable(t))
        return types[0] if len(types) == 1 else tuple_t(types)

    def declare(self, ref: A.MapRef, key: Type | None, value: Type) -> MapInfo:
        mi = self.maps.get(ref.name)
        if mi is None:
            mi = self.maps[ref.name] = MapInfo(ref.name, key, value, ref.span)
            return mi
        if (mi.key is None) != (key is None):
            raise self.err(f"map {ref.name} is keyed by {mi.key or 'nothing'}, not by "
                           f"{key or 'nothing'}", ref.span)
        if key is not None and mi.key is not None:
            k = unify(mi.key, key)
            if k is None:
                raise self.err(f"map {ref.name} is keyed by {mi.key}, not by {key}", ref.span)
            mi.key = k
        if mi.value.kind != value.kind or (value.kind == "lhist" and
                                           value.params != mi.value.params):
            raise self.err(f"map {ref.name} holds {mi.value}, cannot also hold {value}",
                           ref.span)
        if value.kind in ("str", "tuple", "int"):
            v = unify(mi.value, value)
            if v is None:
                raise self.err(f"map {ref.name} holds {mi.value}, cannot also hold {value}",
                               ref.span)
            mi.value = v
        return mi

    def assign_map(self, st: A.AssignMap) -> None:
        key = self.key_type(st.target)
        t = self.expr(st.value)
        if t.kind in ("none", "args"):
            raise self.err(f"cannot store a value of type {t} in a map", st.value.span)
        if st.op != "=":
            if t.kind != "int":
                raise self.err(f"'{st.op}' needs an integer", st.value.span)
            mi = self.maps.get(st.target.name)
            if mi is not None and mi.value.kind not in ("int", "count", "sum"):
                raise self.err(f"'{st.op}' on map {st.target.name} that holds {mi.value}",
                               st.span)
            # bpftrace 0.17: @x++/@x-- make a signed map, @x += v takes v's signedness.
            incdec = isinstance(st.value, A.Int) and \
                self.source[st.value.span.start:st.value.span.end] in ("++", "--")
            value = mi.value if mi is not None else (S64 if incdec else int_t(8, t.signed))
        else:
            value = t if t.kind in AGGREGATES else storable(t)
        mi = self.declare(st.target, key, value)
        st.target.type = mi.value

    # ----------------------------------------------------------------- expressions
    def expr(self, e: A.Expr, statement: bool = False) -> Type:
        t = self._expr(e, statement)
        e.type = t
        return t

    def _expr(self, e: A.Expr, statement: bool) -> Type:
        if isinstance(e, A.Int):
            return int_t(8, e.value < 0) if -(1 << 63) <= e.value < 1 << 64 else \
                self._bad_int(e)
        if isinstance(e, A.Str):
            if len(e.value.encode()) >= 200:
                raise self.err("string literal longer than 200 bytes", e.span)
            return str_t(len(e.value.encode()) + 1, e.value)
        if isinstance(e, A.Positional):
            return self.positional(e)
        if isinstance(e, A.Builtin):
            return self.builtin(e)
        if isinstance(e, A.Var):
            assert self.unit is not None
            t = self.unit.locals.get(e.name)
            if t is None:
                raise self.err(f"variable {e.name} is used before it is assigned"
                               + suggest(e.name, self.unit.locals), e.span)
            return t
        if isinstance(e, A.MapRef):
            key = self.key_type(e)
            mi = self.maps.get(e.name)
            if mi is None:
                raise self.err(f"map {e.name} is read before anything is stored in it"
                               + suggest(e.name, self.maps), e.span)
            if (mi.key is None) != (key is None):
                raise self.err(f"map {e.name} is keyed by {mi.key or 'nothing'}", e.span)
            if mi.value.kind in ("count", "sum", "min", "max"):
                return S64 if mi.value.kind != "count" else U64
            if mi.value.kind in AGGREGATES:
                raise self.err(f"map {e.name} holds {mi.value.kind}(), which cannot be read "
                               "in a probe", e.span)
            return mi.value
        if isinstance(e, A.Call):
            return self.call(e, statement)
        if isinstance(e, A.Binop):
            return self.binop(e)
        if isinstance(e, A.Unop):
            t = self.expr(e.operand)
            if e.op == "*":
                if t.kind != "ptr":
                    raise self.err(f"cannot dereference {t}", e.span)
                return self.deref_type(t, e.span)
            if e.op == "&":
                raise self.err("'&' (address of) is not supported", e.span)
            if t.kind not in ("int", "ptr"):
                raise self.err(f"'{e.op}' needs an integer, not {t}", e.span)
            if e.op == "!":
                return U64
            return int_t(8, True)  # bpftrace: -x and ~x are signed
        if isinstance(e, A.Ternary):
            c = self.expr(e.cond)
            if c.kind not in ("int", "ptr"):
                raise self.err(f"a condition must be an integer, not {c}", e.cond.span)
            a, b = self.expr(e.then), self.expr(e.other)
            if a.kind != b.kind or a.kind not in ("int", "str"):
                raise self.err(f"both branches of '?:' must be integers or strings, not {a} "
                               f"and {b}", e.span)
            if a.kind == "str":
                return str_t(max(a.size, b.size))
            return int_t(8, a.signed or b.signed)
        if isinstance(e, A.Field):
            return self.field(e)
        if isinstance(e, A.Index):
            t = self.expr(e.base)
            it = self.expr(e.index)
            if it.kind != "int":
                raise self.err("an index must be an integer", e.index.span)
            if t.kind == "ptr" and t.value == "array":
                e.elem_size = t.params[0]  # type: ignore[attr-defined]
                return self.btf_value(t.btf, e.span, t.user)
            if t.kind == "ptr":
                et = self.deref_type(t, e.span)
                e.elem_size = et.size if et.kind == "int" else 8  # type: ignore[attr-defined]
                return et
            raise self.err(f"cannot index {t}", e.span)
        if isinstance(e, A.Cast):
            t = self.expr(e.operand)
            if e.type_name.startswith("struct "):
                if not e.ptr:
                    raise self.err("only pointer casts to structs are supported", e.span)
                return self.struct_ptr(e.type_name[7:], e.ptr, e.span, user=t.user)
            size, signed = INT_TYPES[e.type_name]
            if e.ptr:
                return Type("ptr", 8, False, user=t.user)
            if t.kind not in ("int", "ptr"):
                raise self.err(f"cannot cast {t} to {e.type_name}", e.span)
            return int_t(size, signed)
        if isinstance(e, A.Tuple):
            return tuple_t([storable(self.expr(i)) for i in e.items])
        raise self.err("unsupported expression", e.span)

    def _bad_int(self, e: A.Int) -> Type:
        raise self.err("integer literal out of 64-bit range", e.span)

    def positional(self, e: A.Positional) -> Type:
        if e.index == 0 or e.index > len(self.params):
            if e.index > len(self.params):
                return int_t(8)  # bpftrace: a missing positional is 0 / ""
            raise self.err("$0 is not a positional parameter ($1 is the first)", e.span)
        v = self.params[e.index - 1]
        try:
            int(v, 0)
            return int_t(8, v.strip().startswith("-"))
        except ValueError:
            return str_t(len(v.encode()) + 1, v)

    def builtin(self, e: A.Builtin) -> Type:
        u = self.unit
        assert u is not None
        n = e.name
        if n in ("pid", "tid", "uid", "gid", "cpu", "cpid"):
            return int_t(8)
        if n in ("nsecs", "elapsed", "cgroup"):
            return U64
        if n == "rand":
            return U32
        if n == "comm":
            return str_t(COMM_LEN)
        if n in ("probe", "func"):
            if n == "func" and u.provider not in _REG_PROBES + ("kfunc", "kretfunc"):
                raise self.err(f"func is not available in {u.provider} probes", e.span)
            text = u.name if n == "probe" else u.parts[-1]
            return str_t(max(STRLEN, len(text.encode()) + 1), text)
        if n == "retval":
            if u.provider not in _RET_PROBES:
                raise self.err("retval is only available in uretprobe/kretprobe/kretfunc "
                               "probes", e.span)
            if u.provider == "kretfunc" and u.ret_type:
                t = self.btf_value(u.ret_type, e.span, False)
                return t if t.kind == "ptr" else int_t(8, t.signed)
            return S64
        if re.fullmatch(r"arg\d+", n):
            if u.provider not in _REG_PROBES + ("rawtracepoint",):
                raise self.err(f"{n} is only available in uprobe/kprobe/usdt/rawtracepoint "
                               "probes"
                               + (" (use args->field in tracepoints)"
                                  if u.provider == "tracepoint" else ""), e.span)
            if u.provider == "usdt":
                i = int(n[3:])
                if i >= len(u.usdt_args):
                    raise self.err(f"{n}: USDT probe {u.name} has {len(u.usdt_args)} "
                                   "argument(s)", e.span)
                return int_t(8, bool(u.usdt_args[i].signed))
            if int(n[3:]) > 5:
                raise self.err(f"{n}: only arg0..arg5 are passed in registers", e.span)
            return U64
        if n == "args":
            if u.provider not in ("tracepoint", "kfunc", "kretfunc"):
                raise self.err("args is only available in tracepoint and kfunc probes",
                               e.span)
            return Type("args")
        if n == "curtask":
            return self.struct_ptr("task_struct", 1, e.span)
        if n == "kstack":
            return Type("kstack")
        if n == "ustack":
            return Type("ustack", 16)
        if n == "ctx":
            return Type("ptr", 8)
        raise self.err(f"unknown builtin {n!r}" + suggest(n, BUILTINS + ("arg0",)), e.span)

    # ----------------------------------------------------------------- BTF
    def struct_ptr(self, name: str, ptr: int, span: Span, user: bool = False) -> Type:
        btf = self.env.btf()
        if btf is None:
            raise self.err(f"struct {name} needs the kernel's BTF (/sys/kernel/btf/vmlinux)",
                           span)
        try:
            from ..btf import Struct, Union
            ids = [i for i in btf.ids_by_name(name)
                   if isinstance(btf.type(i), (Struct, Union))]
        except Exception:
            ids = []
        if not ids:
            raise self.err(f"unknown struct {name} in the kernel's BTF", span)
        return Type("ptr", 8, btf=ids[0], user=user, params=(ptr,))

    def deref_type(self, t: Type, span: Span) -> Type:
        btf = self.env.btf()
        if not t.btf or btf is None:
            return int_t(8)
        return self.btf_value(t.btf, span, t.user)

    def btf_value(self, tid: int, span: Span, user: bool) -> Type:
        """The type of a value of BTF type ``tid`` read from memory."""
        from ..btf import Array, Enum, Int, Pointer, Struct, Union
        btf = self.env.btf()
        t = btf.resolve_type(tid)
        if isinstance(t, Int):
            return int_t(t.size, t.signed)
        if isinstance(t, Enum):
            return int_t(getattr(t, "size", 4) or 4, False)
        if isinstance(t, Pointer):
            target = btf.resolve(t.type)
            tt = btf.type(target)
            name = getattr(tt, "name", "")
            if isinstance(tt, Int) and tt.size == 1:
                return Type("ptr", 8, user=user, value="char")
            if isinstance(tt, (Struct, Union)):
                return Type("ptr", 8, btf=target, user=user, params=(1,), value=name)
            return Type("ptr", 8, user=user)
        if isinstance(t, Array):
            et = btf.resolve_type(t.type)
            if isinstance(et, Int) and et.size == 1:
                return Type("str", t.nelems, value=None)
            # Other arrays: their address; `[i]` picks an element (see Index).
            return Type("ptr", 8, btf=btf.resolve(t.type), user=user, value="array",
                        params=(btf.sizeof(t.type), t.nelems))
        if isinstance(t, (Struct, Union)):
            # An embedded struct: its address, so that `.member` reads inside it.
            return Type("ptr", 8, btf=btf.resolve(tid), user=user, value="embedded")
        return int_t(8)

    def field(self, e: A.Field) -> Type:
        base = self.expr(e.base)
        span = e.name_span or e.span
        if base.kind == "args" and self.unit is not None and self.unit.params:
            names = [n for n, _ in self.unit.params]
            if e.name not in names:
                raise self.err(f"{self.unit.parts[-1]}() has no parameter {e.name!r}"
                               + suggest(e.name, names) + "; parameters: "
                               + ", ".join(names), span)
            t = self.btf_value(self.unit.params[names.index(e.name)][1], span, False)
            e.offset = 8 * names.index(e.name)  # type: ignore[attr-defined]
            return t if t.kind == "ptr" else int_t(8, t.signed) if t.kind == "int" else t
        if base.kind == "args":
            assert self.unit is not None
            f = self.unit.fields.get(e.name)
            if f is None:
                raise self.err(f"tracepoint {':'.join(self.unit.parts)} has no field "
                               f"{e.name!r}" + suggest(e.name, self.unit.fields)
                               + "; fields: " + ", ".join(self.unit.fields), span)
            return tp_type(f, self.unit.parts[0])
        if base.kind == "ptr" and base.btf:
            from ..btf import Struct, Union
            btf = self.env.btf()
            st = btf.type(base.btf)
            if not isinstance(st, (Struct, Union)):
                raise self.err(f"{e.name}: not a struct", span)
            found = self.find_member(btf, st, e.name)
            if found is None:
                names = [m.name for m in st.members if m.name]
                raise self.err(f"struct {st.name} has no member {e.name!r}"
                               + suggest(e.name, names), span)
            offset, mtid, bits = found
            if bits:
                raise self.err(f"{e.name} is a bit field, which cannot be read yet", span)
            t = self.btf_value(mtid, span, base.user)
            e.offset = offset  # type: ignore[attr-defined]
            return t
        if base.kind == "tuple" and not e.arrow and e.name.isdigit():
            i = int(e.name)
            if i >= len(base.items):
                raise self.err(f"tuple index {i} out of range", span)
            return base.items[i]
        raise self.err(f"cannot access field {e.name!r} of {base}", span)

    def find_member(self, btf: Any, st: Any, name: str) -> tuple[int, int, int] | None:
        from ..btf import Struct, Union
        for m in st.members:
            if m.name == name:
                return m.bit_offset // 8, m.type, m.bitfield_size
            if not m.name:
                inner = btf.resolve_type(m.type)
                if isinstance(inner, (Struct, Union)):
                    r = self.find_member(btf, inner, name)
                    if r is not None:
                        return m.bit_offset // 8 + r[0], r[1], r[2]
        return None

    # ----------------------------------------------------------------- operators
    def binop(self, e: A.Binop) -> Type:
        a, b = self.expr(e.left), self.expr(e.right)
        if e.op in ("==", "!=") and a.kind == "str" and b.kind == "str":
            return U64
        if a.kind not in ("int", "ptr") or b.kind not in ("int", "ptr"):
            raise self.err(f"'{e.op}' needs integers, not {a} and {b}", e.span)
        if e.op in ("==", "!=", "<", ">", "<=", ">=", "&&", "||"):
            return U64
        return int_t(8, a.signed or b.signed)

    def call(self, e: A.Call, statement: bool) -> Type:
        n, args = e.name, e.args
        if n not in FUNCTIONS:
            raise self.err(f"unknown function {n}()" + suggest(n, FUNCTIONS), e.span)

        def want(lo: int, hi: int) -> None:
            if not lo <= len(args) <= hi:
                rng = str(lo) if lo == hi else f"{lo} to {hi}"
                raise self.err(f"{n}() takes {rng} argument{'s' if hi != 1 else ''}, "
                               f"not {len(args)}", e.span)

        def integer(i: int) -> Type:
            t = self.expr(args[i])
            if t.kind not in ("int", "ptr"):
                raise self.err(f"{n}() needs an integer, not {t}", args[i].span)
            return t

        def const(i: int) -> int:
            a = args[i]
            if isinstance(a, A.Positional):
                self.expr(a)
                try:
                    return int(self.params[a.index - 1], 0)
                except (ValueError, IndexError):
                    pass
            if isinstance(a, A.Int):
                self.expr(a)
                return a.value
            raise self.err(f"{n}() needs a constant integer here", a.span)

        if n == "count":
            want(0, 0)
            return Type("count")
        if n in ("sum", "min", "max", "avg", "stats", "hist"):
            want(1, 1)
            t = integer(0)
            return Type(n, 8, signed=t.signed or n in ("sum", "min", "max", "avg", "stats"))
        if n == "lhist":
            want(4, 4)
            integer(0)
            lo, hi, step = const(1), const(2), const(3)
            if step <= 0 or hi <= lo or (hi - lo) // step > 1000 or lo < 0:
                raise self.err("lhist(value, min, max, step) needs 0 <= min < max, step > 0 "
                               "and at most 1000 buckets", e.span)
            return Type("lhist", 8, params=(lo, hi, step))
        if n == "str":
            want(1, 2)
            t = self.expr(args[0])
            size = STRLEN
            if len(args) == 2:
                size = max(1, min(const(1) + 1, STRLEN))
            if t.kind == "str":
                return str_t(min(size, t.size) if len(args) == 2 else t.size)
            if t.kind not in ("ptr", "int"):
                raise self.err(f"str() needs a pointer, not {t}", args[0].span)
            return str_t(size)
        if n == "ksym":
            want(1, 1)
            integer(0)
            return Type("ksym")
        if n == "usym":
            want(1, 1)
            integer(0)
            return Type("usym", 16)
        if n == "kaddr":
            want(1, 1)
            a = args[0]
            if not isinstance(a, A.Str):
                raise self.err("kaddr() needs a symbol name in quotes", a.span)
            self.expr(a)
            addr = self.env.kaddr(a.value)
            if addr is None:
                raise self.err(f"kaddr(): no kernel symbol {a.value!r}", a.span)
            e.value = addr  # type: ignore[attr-defined]
            return U64
        if n == "ntop":
            want(1, 2)
            for i in range(len(args)):
                t = self.expr(args[i])
                if t.kind not in ("int", "ptr", "str"):
                    raise self.err(f"ntop() needs an address, not {t}", args[i].span)
            return Type("inet", 24)
        if n in ("kstack", "ustack"):
            want(0, 1)
            limit = (max(1, min(const(0), 127)),) if args else ()
            return Type("kstack", params=limit) if n == "kstack" else \
                Type("ustack", 16, params=limit)
        if n in ("uptr", "kptr"):
            want(1, 1)
            t = integer(0)
            return Type(t.kind, t.size, t.signed, t.btf, n == "uptr", t.items, t.params,
                        t.value)
        if not statement:
            raise self.err(f"{n}() returns nothing and can only be a statement", e.span)
        if n == "printf":
            if not args or not isinstance(args[0], A.Str):
                raise self.err("printf() needs a format string first", e.span)
            self.expr(args[0])
            specs = format_specs(args[0].value)
            if len(specs) != len(args) - 1:
                raise self.err(f"printf(): the format has {len(specs)} conversion"
                               f"{'s' if len(specs) != 1 else ''} but {len(args) - 1} "
                               f"argument{'s' if len(args) != 2 else ''} follow", e.span)
            for spec, a in zip(specs, args[1:], strict=True):
                t = self.expr(a)
                if t.kind in AGGREGATES or t.kind in ("none", "args"):
                    raise self.err(f"printf() cannot print {t}", a.span)
                if spec[-1] in "dixXuoc" and t.kind not in ("int", "ptr"):
                    raise self.err(f"printf(): %{spec} needs an integer, not {t}", a.span)
            return NONE
        if n == "time":
            want(0, 1)
            if args:
                if not isinstance(args[0], A.Str):
                    raise self.err("time() needs a format string", args[0].span)
                self.expr(args[0])
            return NONE
        if n == "exit":
            want(0, 0)
            return NONE
        if n in ("clear", "zero"):
            want(1, 1)
            a = args[0]
            if not isinstance(a, A.MapRef) or a.keys:
                raise self.err(f"{n}() needs a whole map: {n}(@name)", a.span)
            if a.name not in self.maps:
                raise self.err(f"map {a.name} is not used before {n}()"
                               + suggest(a.name, self.maps), a.span)
            return NONE
        if n == "delete":
            want(1, 1)
            a = args[0]
            if not isinstance(a, A.MapRef):
                raise self.err("delete() needs a map element: delete(@name[key])", a.span)
            key = self.key_type(a)
            mi = self.maps.get(a.name)
            if mi is None:
                raise self.err(f"map {a.name} is not used before delete()", a.span)
            if (mi.key is None) != (key is None):
                raise self.err(f"map {a.name} is keyed by {mi.key or 'nothing'}", a.span)
            return NONE
        if n == "print":
            want(1, 1)
            a = args[0]
            if isinstance(a, A.MapRef) and not a.keys:
                if a.name not in self.maps:
                    raise self.err(f"map {a.name} is not used before print()", a.span)
                return NONE
            t = self.expr(a)
            if t.kind in AGGREGATES or t.kind in ("none", "args"):
                raise self.err(f"print() cannot print {t}", a.span)
            return NONE
        raise self.err(f"{n}() is not supported", e.span)


_SPEC = re.compile(r"%(%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?[diouxXcsprfeEgG])")


def format_specs(fmt: str) -> list[str]:
    """The conversions of a printf format, '%%' excluded."""
    return [m for m in _SPEC.findall(fmt) if m != "%"]


def check(program: A.Program, units: list[ProbeUnit], env: Env, source: str = "",
          params: list[str] | None = None) -> Checked:
    """Type-check every unit (BEGIN first, END last, as they run)."""
    c = Checker(env, source, params or [])
    order = sorted(units, key=lambda u: {"BEGIN": 0, "END": 2}.get(u.provider, 1))
    for u in order:
        c.check_unit(u)
    return Checked(units, c.maps, source)
