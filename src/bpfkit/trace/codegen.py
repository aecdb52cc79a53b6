"""Code generation: a checked probe unit -> bpfkit.asm instructions.

Conventions that keep the verifier happy and the generator simple:

* R9 holds the context for the whole program; helpers clobber R0-R5 only.
* Scalar expressions evaluate into R0; a binary operator spills its left operand to a
  stack slot while the right one is evaluated (no register allocation to get wrong).
* Strings, tuples and other non-scalars are built in stack buffers that are zeroed
  first, so every byte a helper reads (map keys, ring buffer records) is initialised.
* Every map lookup is checked for NULL; every pointer read goes through
  ``bpf_probe_read_{kernel,user}[_str]``; there are no backward jumps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .. import asm
from ..asm import FP, R0, R1, R2, R3, R4, R5, R9
from . import ast as A
from .check import Checked, MapInfo, ProbeUnit
from .errors import Span, TraceTypeError
from .types import STRLEN, Type

MAX_STACK = 512
BPF_ANY, BPF_NOEXIST = 0, 1
BPF_F_USER_STACK = 1 << 8
PT_REGS = {"arg0": 112, "arg1": 104, "arg2": 96, "arg3": 88, "arg4": 72, "arg5": 64,
           "retval": 80, "ip": 128, "sp": 152}
_ARITH = {"+": asm.ADD, "-": asm.SUB, "*": asm.MUL, "/": asm.DIV, "%": asm.MOD,
          "&": asm.AND, "|": asm.OR, "^": asm.XOR, "<<": asm.LSH, ">>": asm.RSH}
_CMP = {"==": (asm.JEQ, asm.JEQ), "!=": (asm.JNE, asm.JNE), "<": (asm.JLT, asm.JSLT),
        ">": (asm.JGT, asm.JSGT), "<=": (asm.JLE, asm.JSLE), ">=": (asm.JGE, asm.JSGE)}
_USER_PROVIDERS = ("uprobe", "uretprobe", "usdt")


def stx(size: int, base: int, off: int, src: int) -> asm.Instruction:
    """``*(size *)(base + off) = src`` (arguments in the order they are read)."""
    return asm.stx_mem(size, base, src, off)


@dataclass
class Event:
    """What user space does with a ring buffer record whose first u64 is this event's id."""

    kind: str  # printf print_map print_value clear zero exit time
    fmt: str = ""
    types: list[Type] = field(default_factory=list)
    map: str = ""


@dataclass
class MapLayout:
    """A BPF map backing a bpftrace map: hist/lhist keys end with a u64 bucket index."""

    info: MapInfo
    key_size: int
    value_size: int

    @property
    def user_key_size(self) -> int:
        return self.info.key.stored if self.info.key is not None else 0


def map_layout(mi: MapInfo) -> MapLayout:
    k = mi.key.stored if mi.key is not None else 0
    kind = mi.value.kind
    if kind in ("hist", "lhist"):
        k += 8
    value = 16 if kind in ("avg", "stats") else mi.value.stored
    return MapLayout(mi, max(k, 8), value)


@dataclass
class Generated:
    unit: ProbeUnit
    insns: list[asm.Instruction]
    spans: list[Span | None]  # per slot


class Program:
    """Events shared by all units (one ring buffer), built while generating each unit."""

    def __init__(self, checked: Checked, start_ns: int, params: list[str],
                 cpid: int = 0) -> None:
        self.checked = checked
        self.layouts = {n: map_layout(mi) for n, mi in checked.maps.items()}
        self.events: list[Event] = []
        self.start_ns = start_ns
        self.params = params
        self.cpid = cpid
        self.stack_depths: set[int] = set()  # one STACK_TRACE map per depth, as bpftrace

    def event(self, ev: Event) -> int:
        self.events.append(ev)
        return len(self.events) - 1


class Gen:
    def __init__(self, prog: Program, unit: ProbeUnit) -> None:
        self.p = prog
        self.unit = unit
        self.items: list[Any] = []
        self.spans: list[Span | None] = []
        self.span: Span | None = None
        self.sp = 0
        self.max_sp = 0
        self._labels = itertools.count()
        self.vars: dict[str, int] = {}

    # ----------------------------------------------------------------- emitting
    def emit(self, *insns: asm.Instruction) -> None:
        for i in insns:
            self.items.append(i)
            self.spans.append(self.span)

    def label(self, name: str) -> None:
        self.items.append(name)

    def new_label(self, what: str) -> str:
        return f"{what}_{next(self._labels)}"

    def err(self, msg: str, span: Span | None) -> TraceTypeError:
        return TraceTypeError(msg, span, self.p.checked.source)

    def alloc(self, size: int, zero: bool = True) -> int:
        size = (size + 7) // 8 * 8
        self.sp += size
        if self.sp > MAX_STACK:
            raise self.err(f"this statement needs more than {MAX_STACK} bytes of BPF stack "
                           "(strings take 64 bytes each: use fewer or str(x, N))", self.span)
        self.max_sp = max(self.max_sp, self.sp)
        off = -self.sp
        if zero:
            for i in range(0, size, 8):
                self.emit(asm.st_mem(asm.BPF_DW, FP, off + i, 0))
        return off

    def imm(self, reg: int, value: int) -> None:
        if -(1 << 31) <= value < (1 << 31):
            self.emit(asm.mov64_imm(reg, value))
        else:
            self.emit(asm.ld_imm64(reg, value & ((1 << 64) - 1)))

    def fp_addr(self, reg: int, off: int) -> None:
        self.emit(asm.mov64_reg(reg, FP), asm.alu64_imm(asm.ADD, reg, off))

    def map_fd(self, reg: int, name: str) -> None:
        self.emit(asm.ld_map_fd(reg, name))

    def call(self, helper: str) -> None:
        self.emit(asm.call(helper))

    # ----------------------------------------------------------------- program
    def generate(self) -> Generated:
        self.emit(asm.mov64_reg(R9, R1))
        for name, t in self.unit.locals.items():
            self.vars[name] = self.alloc(t.stored)
        base = self.sp
        pred = self.unit.probe.predicate
        if pred is not None:
            self.span = pred.span
            self.scalar(pred)
            self.emit(asm.jmp_imm(asm.JEQ, R0, 0, "out"))
            self.sp = base
        self.block(self.unit.probe.body)
        self.span = None
        self.label("out")
        self.emit(asm.mov64_imm(R0, 0), asm.exit())
        insns = asm.assemble(self.items)
        spans: list[Span | None] = []
        for insn, sp in zip(insns, self.spans, strict=True):
            spans.extend([sp] * insn.size)
        return Generated(self.unit, insns, spans)

    def block(self, stmts: list[A.Stmt]) -> None:
        for st in stmts:
            mark = self.sp
            self.span = st.span
            self.stmt(st)
            self.sp = mark

    def stmt(self, st: A.Stmt) -> None:
        if isinstance(st, A.ExprStmt):
            e = st.expr
            if isinstance(e, A.Call):
                self.call_stmt(e)
            elif e.type is not None and e.type.scalar:
                self.scalar(e)
            else:
                self.addr(e)
        elif isinstance(st, A.AssignVar):
            slot = self.vars[st.target.name]
            t = self.unit.locals[st.target.name]
            if st.op != "=":
                self.scalar(st.value)
                self.emit(asm.mov64_reg(R1, R0), asm.ldx_mem(asm.BPF_DW, R0, FP, slot))
                self.arith(st.op[:-1], t.signed)
                self.emit(stx(asm.BPF_DW, FP, slot, R0))
            elif t.scalar:
                self.scalar(st.value)
                self.emit(stx(asm.BPF_DW, FP, slot, R0))
            else:
                for i in range(0, t.stored, 8):
                    self.emit(asm.st_mem(asm.BPF_DW, FP, slot + i, 0))
                self.into(st.value, slot, t)
        elif isinstance(st, A.AssignMap):
            self.assign_map(st)
        elif isinstance(st, A.If):
            self.branch(st.cond, lambda: self.block(st.then), lambda: self.block(st.other))
        elif isinstance(st, A.Unroll):
            for _ in range(st.count):
                self.block(st.body)

    def branch(self, cond: A.Expr, then: Callable[[], None],
               other: Callable[[], None]) -> None:
        """if (cond) then() else other(): forward jumps only."""
        else_, end = self.new_label("else"), self.new_label("endif")
        self.scalar(cond)
        self.emit(asm.jmp_imm(asm.JEQ, R0, 0, else_))
        then()
        self.emit(asm.ja(end))
        self.label(else_)
        other()
        self.label(end)

    # ----------------------------------------------------------------- maps
    def key(self, ref: A.MapRef, extra: int = 0) -> int:
        """Build ref's key in a zeroed buffer (plus ``extra`` bytes); return its offset."""
        lay = self.p.layouts[ref.name]
        off = self.alloc(lay.key_size)
        kt = lay.info.key
        if kt is not None:
            if len(ref.keys) == 1:
                self.into(ref.keys[0], off, kt)
            else:
                for k, t, o in zip(ref.keys, kt.items, kt.offsets(), strict=True):
                    self.into(k, off + o, t)
        return off

    def lookup(self, name: str, key_off: int) -> None:
        self.map_fd(R1, name)
        self.fp_addr(R2, key_off)
        self.call("map_lookup_elem")

    def update(self, name: str, key_off: int, val_off: int, flags: int) -> None:
        self.map_fd(R1, name)
        self.fp_addr(R2, key_off)
        self.fp_addr(R3, val_off)
        self.emit(asm.mov64_imm(R4, flags))
        self.call("map_update_elem")

    def assign_map(self, st: A.AssignMap) -> None:
        ref = st.target
        lay = self.p.layouts[ref.name]
        vt = lay.info.value
        kind = vt.kind
        if kind in ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist"):
            call = st.value
            assert isinstance(call, A.Call)
            val = self.alloc(8)
            if kind == "count":
                self.emit(asm.st_mem(asm.BPF_DW, FP, val, 1))
            else:
                self.scalar(call.args[0])
                self.emit(stx(asm.BPF_DW, FP, val, R0))
            key = self.key(ref)
            if kind in ("hist", "lhist"):
                self.emit(asm.ldx_mem(asm.BPF_DW, R0, FP, val))
                if kind == "hist":
                    self.log2_bucket()
                else:
                    self.linear_bucket(*vt.params)
                self.emit(stx(asm.BPF_DW, FP, key + lay.user_key_size, R0))
                self.emit(asm.st_mem(asm.BPF_DW, FP, val, 1))
                kind = "count"
            self.upsert(ref.name, key, val, kind)
            return
        if st.op != "=":
            key = self.key(ref)
            val = self.alloc(8)
            self.lookup(ref.name, key)
            done = self.new_label("rd")
            self.emit(asm.jmp_imm(asm.JEQ, R0, 0, done),
                      asm.ldx_mem(asm.BPF_DW, R1, R0, 0),
                      stx(asm.BPF_DW, FP, val, R1))
            self.label(done)
            self.scalar(st.value)
            self.emit(asm.mov64_reg(R1, R0), asm.ldx_mem(asm.BPF_DW, R0, FP, val))
            self.arith(st.op[:-1], vt.signed)
            self.emit(stx(asm.BPF_DW, FP, val, R0))
            self.update(ref.name, key, val, BPF_ANY)
            return
        val = self.alloc(lay.value_size)
        self.into(st.value, val, vt)
        key = self.key(ref)
        self.update(ref.name, key, val, BPF_ANY)

    def upsert(self, name: str, key: int, val: int, kind: str) -> None:
        """Add/fold the u64 at ``val`` into the element at ``key`` (created if missing)."""
        found, done, again = self.new_label("found"), self.new_label("done"), \
            self.new_label("again")
        self.lookup(name, key)
        self.emit(asm.jmp_imm(asm.JNE, R0, 0, found))
        init = val
        if kind in ("avg", "stats"):
            init = self.alloc(16)
            self.emit(asm.st_mem(asm.BPF_DW, FP, init, 1),
                      asm.ldx_mem(asm.BPF_DW, R1, FP, val),
                      stx(asm.BPF_DW, FP, init + 8, R1))
        self.update(name, key, init, BPF_NOEXIST)
        self.emit(asm.jmp_imm(asm.JEQ, R0, 0, done))
        # Another CPU created it between our lookup and update: fold into theirs.
        self.label(again)
        self.lookup(name, key)
        self.emit(asm.jmp_imm(asm.JEQ, R0, 0, done))
        self.label(found)
        self.emit(asm.ldx_mem(asm.BPF_DW, R1, FP, val))
        if kind in ("count", "sum"):
            self.emit(asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, R0, R1, 0))
        elif kind in ("avg", "stats"):
            self.emit(asm.mov64_imm(R2, 1),
                      asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, R0, R2, 0),
                      asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, R0, R1, 8))
        else:
            op = asm.JSLE if kind == "max" else asm.JSGE
            self.emit(asm.ldx_mem(asm.BPF_DW, R2, R0, 0),
                      asm.jmp_reg(op, R1, R2, done),
                      stx(asm.BPF_DW, R0, 0, R1))
        self.label(done)

    def log2_bucket(self) -> None:
        """R0 = bpftrace's hist() index: 0 for negatives, 1 for 0, 2 + log2(v) otherwise."""
        neg, zero, done = self.new_label("neg"), self.new_label("zero"), self.new_label("l2")
        self.emit(asm.jmp_imm(asm.JSLT, R0, 0, neg), asm.jmp_imm(asm.JEQ, R0, 0, zero),
                  asm.mov64_imm(R1, 2))
        for shift in (32, 16, 8, 4, 2, 1):
            skip = self.new_label("b")
            self.emit(asm.mov64_reg(R2, R0), asm.alu64_imm(asm.RSH, R2, shift),
                      asm.jmp_imm(asm.JEQ, R2, 0, skip), asm.mov64_reg(R0, R2),
                      asm.alu64_imm(asm.ADD, R1, shift))
            self.label(skip)
        self.emit(asm.mov64_reg(R0, R1), asm.ja(done))
        self.label(neg)
        self.emit(asm.mov64_imm(R0, 0), asm.ja(done))
        self.label(zero)
        self.emit(asm.mov64_imm(R0, 1))
        self.label(done)

    def linear_bucket(self, lo: int, hi: int, step: int) -> None:
        """R0 = lhist index: 0 below min, n+1 at or above max, else (v - min) / step + 1."""
        below, above, done = self.new_label("lo"), self.new_label("hi"), self.new_label("lh")
        n = (hi - lo) // step
        self.imm(R1, lo)
        self.emit(asm.jmp_reg(asm.JSLT, R0, R1, below))
        self.imm(R1, hi)
        self.emit(asm.jmp_reg(asm.JSGE, R0, R1, above))
        self.imm(R1, lo)
        self.emit(asm.alu64_reg(asm.SUB, R0, R1), asm.alu64_imm(asm.DIV, R0, step),
                  asm.alu64_imm(asm.ADD, R0, 1), asm.ja(done))
        self.label(below)
        self.emit(asm.mov64_imm(R0, 0), asm.ja(done))
        self.label(above)
        self.emit(asm.mov64_imm(R0, n + 1))
        self.label(done)

    # ----------------------------------------------------------------- statements: calls
    def send(self, rec: int, size: int) -> None:
        self.map_fd(R1, "__events")
        self.fp_addr(R2, rec)
        self.emit(asm.mov64_imm(R3, size), asm.mov64_imm(R4, 0))
        self.call("ringbuf_output")
        ok = self.new_label("sent")
        self.emit(asm.jmp_imm(asm.JEQ, R0, 0, ok))
        key = self.alloc(8)
        self.lookup("__lost", key)
        self.emit(asm.jmp_imm(asm.JEQ, R0, 0, ok), asm.mov64_imm(R1, 1),
                  asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, R0, R1, 0))
        self.label(ok)

    def simple_event(self, ev: Event) -> None:
        rec = self.alloc(8)
        self.emit(asm.st_mem(asm.BPF_DW, FP, rec, self.p.event(ev)))
        self.send(rec, 8)

    def call_stmt(self, e: A.Call) -> None:
        n = e.name
        if n == "printf":
            fmt = e.args[0]
            assert isinstance(fmt, A.Str)
            self.record(Event("printf", fmt.value), e.args[1:])
        elif n == "print":
            a = e.args[0]
            if isinstance(a, A.MapRef) and not a.keys:
                self.simple_event(Event("print_map", map=a.name))
            else:
                self.record(Event("print_value"), [a])
        elif n in ("clear", "zero"):
            a = e.args[0]
            assert isinstance(a, A.MapRef)
            self.simple_event(Event(n, map=a.name))
        elif n == "exit":
            self.simple_event(Event("exit"))
            # A conditional jump, so code after exit() stays reachable for check_cfg.
            self.emit(asm.mov64_imm(R0, 0), asm.jmp_imm(asm.JEQ, R0, 0, "out"))
        elif n == "time":
            a0 = e.args[0] if e.args else None
            self.simple_event(Event("time", a0.value if isinstance(a0, A.Str)
                                    else "%H:%M:%S\n"))
        elif n == "delete":
            a = e.args[0]
            assert isinstance(a, A.MapRef)
            key = self.key(a)
            self.map_fd(R1, a.name)
            self.fp_addr(R2, key)
            self.call("map_delete_elem")
        else:
            if e.type is not None and e.type.scalar:
                self.scalar(e)
            else:
                self.addr(e)

    def record(self, ev: Event, args: list[A.Expr]) -> None:
        ev.types = [a.type for a in args]
        size = 8 + sum(t.stored for t in ev.types)
        rec = self.alloc(size)
        self.emit(asm.st_mem(asm.BPF_DW, FP, rec, self.p.event(ev)))
        at = rec + 8
        for a, t in zip(args, ev.types, strict=True):
            self.into(a, at, t)
            at += t.stored
        self.send(rec, size)

    # ----------------------------------------------------------------- expressions
    def arith(self, op: str, signed: bool) -> None:
        """R0 = R0 op R1."""
        if op == ">>" and signed:
            self.emit(asm.alu64_reg(asm.ARSH, R0, R1))
        else:
            self.emit(asm.alu64_reg(_ARITH[op], R0, R1))

    def spill(self) -> int:
        off = self.alloc(8, zero=False)
        self.emit(stx(asm.BPF_DW, FP, off, R0))
        return off

    def extend(self, size: int, signed: bool) -> None:
        if size >= 8:
            return
        bits = 64 - size * 8
        if signed:
            self.emit(asm.alu64_imm(asm.LSH, R0, bits), asm.alu64_imm(asm.ARSH, R0, bits))
        elif size == 4:
            self.emit(asm.mov32_reg(R0, R0))
        else:
            self.emit(asm.alu64_imm(asm.AND, R0, (1 << (size * 8)) - 1))

    def read_mem(self, size: int, user: bool, str_: bool = False) -> str:
        return f"probe_read_{'user' if user else 'kernel'}{'_str' if str_ else ''}"

    def scalar(self, e: A.Expr) -> None:
        """Evaluate a scalar expression into R0."""
        t = e.type
        if isinstance(e, A.Int):
            self.imm(R0, e.value)
        elif isinstance(e, A.Positional):
            v = self.p.params[e.index - 1] if e.index <= len(self.p.params) else "0"
            self.imm(R0, int(v, 0))
        elif isinstance(e, A.Builtin):
            self.builtin(e)
        elif isinstance(e, A.Var):
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, FP, self.vars[e.name]))
        elif isinstance(e, A.MapRef):
            key = self.key(e)
            self.lookup(e.name, key)
            z = self.new_label("miss")
            self.emit(asm.jmp_imm(asm.JEQ, R0, 0, z), asm.ldx_mem(asm.BPF_DW, R0, R0, 0))
            self.label(z)
        elif isinstance(e, A.Binop):
            self.binop(e)
        elif isinstance(e, A.Unop):
            self.scalar(e.operand)
            if e.op == "-":
                self.emit(asm.neg64(R0))
            elif e.op == "~":
                self.emit(asm.alu64_imm(asm.XOR, R0, -1))
            elif e.op == "!":
                self.truth(asm.JEQ)
            elif e.op == "*":
                self.deref(t, 0, e.operand.type)
        elif isinstance(e, A.Ternary):
            self.branch(e.cond, lambda: self.scalar(e.then), lambda: self.scalar(e.other))
        elif isinstance(e, A.Field):
            self.field_scalar(e)
        elif isinstance(e, A.Index):
            et = e.type
            self.scalar(e.base)
            base = self.spill()
            self.scalar(e.index)
            self.emit(asm.alu64_imm(asm.MUL, R0, e.elem_size),  # type: ignore[attr-defined]
                      asm.ldx_mem(asm.BPF_DW, R1, FP, base), asm.alu64_reg(asm.ADD, R0, R1))
            if not (et.kind == "ptr" and et.value == "embedded"):
                self.deref(et, 0, e.base.type)
        elif isinstance(e, A.Cast):
            self.scalar(e.operand)
            if t.kind == "int":
                self.extend(t.size, t.signed)
        elif isinstance(e, A.Call):
            self.call_scalar(e)
        else:
            raise self.err(f"cannot compute {t} here", e.span)

    def truth(self, op: int) -> None:
        """R0 = (R0 op 0) as 0/1."""
        self.emit(asm.mov64_reg(R1, R0), asm.mov64_imm(R0, 1), asm.jmp_imm(op, R1, 0, 1),
                  asm.mov64_imm(R0, 0))

    def deref(self, t: Type, off: int, ptr_t: Type | None) -> None:
        """R0 = *(t *)(R0 + off), read through probe_read."""
        user = bool(ptr_t and ptr_t.user) or self.unit.provider in _USER_PROVIDERS and \
            not (ptr_t and ptr_t.btf)
        size = t.size if t.kind == "int" else 8
        tmp = self.alloc(8)
        self.emit(asm.mov64_reg(R3, R0))
        if off:
            self.emit(asm.alu64_imm(asm.ADD, R3, off))
        self.fp_addr(R1, tmp)
        self.emit(asm.mov64_imm(R2, size))
        self.call(self.read_mem(size, user))
        self.emit(asm.ldx_mem(asm.BPF_DW, R0, FP, tmp))
        if t.kind == "int":
            self.extend(size, t.signed)

    def builtin(self, e: A.Builtin) -> None:
        n = e.name
        if n in ("pid", "tid"):
            self.call("get_current_pid_tgid")
            if n == "pid":
                self.emit(asm.alu64_imm(asm.RSH, R0, 32))
            else:
                self.emit(asm.mov32_reg(R0, R0))
        elif n in ("uid", "gid"):
            self.call("get_current_uid_gid")
            if n == "gid":
                self.emit(asm.alu64_imm(asm.RSH, R0, 32))
            else:
                self.emit(asm.mov32_reg(R0, R0))
        elif n == "nsecs":
            self.call("ktime_get_ns")
        elif n == "elapsed":
            self.call("ktime_get_ns")
            self.imm(R1, self.p.start_ns)
            self.emit(asm.alu64_reg(asm.SUB, R0, R1))
        elif n == "cpu":
            self.call("get_smp_processor_id")
        elif n == "cgroup":
            self.call("get_current_cgroup_id")
        elif n == "rand":
            self.call("get_prandom_u32")
        elif n == "curtask":
            self.call("get_current_task")
        elif n == "cpid":
            self.imm(R0, self.p.cpid)
        elif n == "ctx":
            self.emit(asm.mov64_reg(R0, R9))
        elif n == "kstack":
            self.stack(False)
        elif n.startswith("arg") and self.unit.provider == "usdt":
            self.usdt_arg(self.unit.usdt_args[int(n[3:])])
        elif n.startswith("arg") and self.unit.provider == "rawtracepoint":
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, R9, 8 * int(n[3:])))
        elif n == "retval" and self.unit.provider == "kretfunc":
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, R9, 8 * len(self.unit.params)))
        elif n in PT_REGS:
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, R9, PT_REGS[n]))
        else:
            raise self.err(f"{n} is not a number", e.span)

    def usdt_arg(self, a: Any) -> None:
        """R0 = a USDT argument: a constant, a register, or memory at register + offset."""
        from ..attach.usdt import ARG_CONST, ARG_REG
        if a.kind == ARG_CONST:
            self.imm(R0, a.value)
            return
        self.emit(asm.ldx_mem(asm.BPF_DW, R0, R9, a.reg_off))
        if a.kind != ARG_REG:
            tmp = self.alloc(8)
            self.emit(asm.mov64_reg(R3, R0), asm.alu64_imm(asm.ADD, R3, a.value))
            self.fp_addr(R1, tmp)
            self.emit(asm.mov64_imm(R2, a.size))
            self.call("probe_read_user")
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, FP, tmp))
        self.extend(a.size, a.signed)

    def stack(self, user: bool, t: Type | None = None) -> None:
        """R0 = get_stackid() into the stack map of t's depth (the kernel truncates)."""
        depth = t.params[0] if t is not None and t.params else 127
        self.p.stack_depths.add(depth)
        self.emit(asm.mov64_reg(R1, R9))
        self.map_fd(R2, f"__stacks{depth}")
        self.emit(asm.mov64_imm(R3, BPF_F_USER_STACK if user else 0))
        self.call("get_stackid")

    def call_scalar(self, e: A.Call) -> None:
        n = e.name
        if n in ("ksym", "uptr", "kptr"):
            self.scalar(e.args[0])
        elif n == "kaddr":
            self.imm(R0, e.value)  # type: ignore[attr-defined]
        elif n == "kstack":
            self.stack(False, e.type)
        else:
            raise self.err(f"{n}() is not a number", e.span)

    def binop(self, e: A.Binop) -> None:
        op = e.op
        lt, rt = e.left.type, e.right.type
        if op in ("&&", "||"):
            short, end = self.new_label("sc"), self.new_label("endsc")
            self.scalar(e.left)
            self.emit(asm.jmp_imm(asm.JEQ if op == "&&" else asm.JNE, R0, 0, short))
            self.scalar(e.right)
            self.emit(asm.jmp_imm(asm.JEQ if op == "&&" else asm.JNE, R0, 0, short),
                      asm.mov64_imm(R0, 1 if op == "&&" else 0), asm.ja(end))
            self.label(short)
            self.emit(asm.mov64_imm(R0, 0 if op == "&&" else 1))
            self.label(end)
            return
        if lt.kind == "str" and rt.kind == "str":
            self.str_compare(e.left, e.right, op == "!=")
            return
        self.scalar(e.left)
        slot = self.spill()
        self.scalar(e.right)
        self.emit(asm.mov64_reg(R1, R0), asm.ldx_mem(asm.BPF_DW, R0, FP, slot))
        signed = lt.signed or rt.signed
        if op in _CMP:
            jop = _CMP[op][1 if signed else 0]
            self.emit(asm.mov64_reg(R2, R0), asm.mov64_imm(R0, 1), asm.jmp_reg(jop, R2, R1, 1),
                      asm.mov64_imm(R0, 0))
        else:
            self.arith(op, signed)

    def str_compare(self, a: A.Expr, b: A.Expr, negate: bool) -> None:
        if isinstance(a, A.Str) and not isinstance(b, A.Str):
            a, b = b, a
        lit = b.value.encode() + b"\0" if isinstance(b, A.Str) else None
        aoff = self.addr(a)
        ne, end = self.new_label("sne"), self.new_label("send")
        if lit is not None:
            n = min(len(lit), a.type.size)
            for i in range(n):
                self.emit(asm.ldx_mem(asm.BPF_B, R1, FP, aoff + i),
                          asm.jmp_imm(asm.JNE, R1, lit[i], ne))
            if n < len(lit) and lit[n - 1] != 0:
                self.emit(asm.ja(ne))  # the literal is longer than the string can be
        else:
            boff = self.addr(b)
            eq = self.new_label("seq")
            for i in range(min(a.type.size, b.type.size)):
                self.emit(asm.ldx_mem(asm.BPF_B, R1, FP, aoff + i),
                          asm.ldx_mem(asm.BPF_B, R2, FP, boff + i),
                          asm.jmp_reg(asm.JNE, R1, R2, ne),
                          asm.jmp_imm(asm.JEQ, R1, 0, eq))
            self.label(eq)
        self.emit(asm.mov64_imm(R0, 0 if negate else 1), asm.ja(end))
        self.label(ne)
        self.emit(asm.mov64_imm(R0, 1 if negate else 0))
        self.label(end)

    def field_scalar(self, e: A.Field) -> None:
        bt = e.base.type
        t = e.type
        if bt.kind == "args" and self.unit.params:  # fentry/fexit: u64 argument slots
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, R9, e.offset))  # type: ignore[attr-defined]
            if t.kind == "int":
                self.extend(t.size, t.signed)
            return
        if bt.kind == "args":
            f = self.unit.fields[e.name]
            size = f.size if f.size in (1, 2, 4, 8) else 8
            sz = {1: asm.BPF_B, 2: asm.BPF_H, 4: asm.BPF_W, 8: asm.BPF_DW}[size]
            self.emit(asm.ldx_mem(sz, R0, R9, f.offset))
            if t.kind == "int":
                self.extend(size, t.signed)
            return
        if bt.kind == "ptr":
            self.scalar(e.base)
            if t.kind == "ptr" and t.value in ("embedded", "array"):  # the member's address
                self.emit(asm.alu64_imm(asm.ADD, R0, e.offset))  # type: ignore[attr-defined]
                return
            self.deref(t, e.offset, bt)  # type: ignore[attr-defined]
            return
        if bt.kind == "tuple":
            off = self.addr(e.base)
            i = int(e.name)
            self.emit(asm.ldx_mem(asm.BPF_DW, R0, FP, off + bt.offsets()[i]))
            return
        raise self.err(f"cannot read field {e.name}", e.span)

    # ----------------------------------------------------------------- memory values
    def addr(self, e: A.Expr) -> int:
        """A stack offset holding e's stored form (a variable's own slot when it is one)."""
        if isinstance(e, A.Var) and not e.type.scalar:
            return self.vars[e.name]
        off = self.alloc(e.type.stored)
        self.into(e, off, e.type)
        return off

    def store_bytes(self, data: bytes, off: int, size: int) -> None:
        data = data[:max(size - 1, 0)]
        for i in range(0, len(data), 4):
            chunk = data[i:i + 4]
            if len(chunk) == 4:
                self.emit(asm.st_mem(asm.BPF_W, FP, off + i,
                                     int.from_bytes(chunk, "little", signed=True)))
            else:
                for j, b in enumerate(chunk):
                    self.emit(asm.st_mem(asm.BPF_B, FP, off + i + j, b))

    def copy(self, src_reg: int, src_off: int, dst: int, size: int) -> None:
        for i in range(0, size - size % 8, 8):
            self.emit(asm.ldx_mem(asm.BPF_DW, R1, src_reg, src_off + i),
                      stx(asm.BPF_DW, FP, dst + i, R1))
        for i in range(size - size % 8, size):
            self.emit(asm.ldx_mem(asm.BPF_B, R1, src_reg, src_off + i),
                      stx(asm.BPF_B, FP, dst + i, R1))

    def into(self, e: A.Expr, off: int, want: Type) -> None:
        """Write e as ``want`` at fp+off (a zeroed buffer of want.stored bytes)."""
        t = e.type
        if t.scalar:
            self.scalar(e)
            self.emit(stx(asm.BPF_DW, FP, off, R0))
            return
        size = min(want.size, t.size) if want.kind == "str" else want.stored
        if isinstance(e, A.Str):
            self.store_bytes(e.value.encode(), off, want.size)
        elif isinstance(e, A.Positional):
            v = self.p.params[e.index - 1] if e.index <= len(self.p.params) else ""
            self.store_bytes(v.encode(), off, want.size)
        elif isinstance(e, A.Builtin):
            if e.name == "comm":
                self.fp_addr(R1, off)
                self.emit(asm.mov64_imm(R2, min(16, want.size)))
                self.call("get_current_comm")
            elif e.name in ("probe", "func"):
                self.store_bytes((t.value or "").encode(), off, want.size)
            elif e.name == "ustack":
                self.ustack(off)
            else:
                raise self.err(f"cannot store {e.name}", e.span)
        elif isinstance(e, A.Var):
            self.copy(FP, self.vars[e.name], off, min(size, t.stored))
        elif isinstance(e, A.MapRef):
            key = self.key(e)
            self.lookup(e.name, key)
            miss = self.new_label("miss")
            self.emit(asm.jmp_imm(asm.JEQ, R0, 0, miss))
            self.emit(asm.mov64_reg(R5, R0))
            self.copy(R5, 0, off, min(size, self.p.layouts[e.name].value_size))
            self.label(miss)
        elif isinstance(e, A.Ternary):
            self.branch(e.cond, lambda: self.into(e.then, off, want),
                        lambda: self.into(e.other, off, want))
        elif isinstance(e, A.Tuple):
            for item, it, o in zip(e.items, want.items, want.offsets(), strict=True):
                self.into(item, off + o, it)
        elif isinstance(e, A.Field):
            self.field_into(e, off, size)
        elif isinstance(e, A.Call):
            self.call_into(e, off, want)
        else:
            raise self.err(f"cannot store {t} here", e.span)

    def ustack(self, off: int, t: Type | None = None) -> None:
        self.stack(True, t)
        self.emit(stx(asm.BPF_DW, FP, off, R0))
        self.call("get_current_pid_tgid")
        self.emit(asm.alu64_imm(asm.RSH, R0, 32), stx(asm.BPF_DW, FP, off + 8, R0))

    def field_into(self, e: A.Field, off: int, size: int) -> None:
        bt = e.base.type
        if bt.kind == "args":
            f = self.unit.fields[e.name]
            if f.data_loc:
                self.emit(asm.ldx_mem(asm.BPF_W, R3, R9, f.offset),
                          asm.alu64_imm(asm.AND, R3, 0xFFFF), asm.alu64_reg(asm.ADD, R3, R9))
                self.fp_addr(R1, off)
                self.emit(asm.mov64_imm(R2, size))
                self.call("probe_read_kernel_str")
            else:
                self.emit(asm.mov64_reg(R3, R9), asm.alu64_imm(asm.ADD, R3, f.offset))
                self.fp_addr(R1, off)
                self.emit(asm.mov64_imm(R2, min(size, f.size)))
                self.call("probe_read_kernel")
            return
        if bt.kind == "ptr":
            self.scalar(e.base)
            self.emit(asm.mov64_reg(R3, R0),
                      asm.alu64_imm(asm.ADD, R3, e.offset))  # type: ignore[attr-defined]
            self.fp_addr(R1, off)
            self.emit(asm.mov64_imm(R2, size))
            self.call(self.read_mem(size, bt.user))
            return
        if bt.kind == "tuple":
            src = self.addr(e.base)
            i = int(e.name)
            self.copy(FP, src + bt.offsets()[i], off, size)
            return
        raise self.err(f"cannot read field {e.name}", e.span)

    def call_into(self, e: A.Call, off: int, want: Type) -> None:
        n = e.name
        if n == "str":
            a = e.args[0]
            size = min(want.size, e.type.size)
            if a.type.kind == "str":
                src = self.addr(a)
                self.copy(FP, src, off, size)
                if size <= want.size:
                    self.emit(asm.st_mem(asm.BPF_B, FP, off + size - 1, 0))
                return
            self.scalar(a)
            user = a.type.user or (self.unit.provider in _USER_PROVIDERS and not a.type.btf)
            self.emit(asm.mov64_reg(R3, R0))
            self.fp_addr(R1, off)
            self.emit(asm.mov64_imm(R2, size))
            self.call(self.read_mem(size, user, True))
        elif n == "usym":
            self.scalar(e.args[0])
            self.emit(stx(asm.BPF_DW, FP, off, R0))
            self.call("get_current_pid_tgid")
            self.emit(asm.alu64_imm(asm.RSH, R0, 32), stx(asm.BPF_DW, FP, off + 8, R0))
        elif n == "ustack":
            self.ustack(off, e.type)
        elif n == "ntop":
            args = e.args
            addr = args[-1]
            if len(args) == 2:
                self.scalar(args[0])
                self.emit(stx(asm.BPF_DW, FP, off, R0))
            if addr.type.kind == "str":
                n_bytes = min(addr.type.size, 16)
                if len(args) == 1:
                    self.emit(asm.st_mem(asm.BPF_DW, FP, off, 2 if n_bytes == 4 else 10))
                src = self.addr(addr)
                self.copy(FP, src, off + 8, n_bytes)
            else:
                if len(args) == 1:
                    self.emit(asm.st_mem(asm.BPF_DW, FP, off, 2))
                self.scalar(addr)
                self.emit(stx(asm.BPF_W, FP, off + 8, R0))
        else:
            raise self.err(f"{n}() has no value", e.span)


def link(insns: list[asm.Instruction], fds: dict[str, int]) -> list[asm.Instruction]:
    """Replace map names in ld_map_fd instructions by the maps' fds."""
    out = []
    for i in insns:
        if i.ref_kind == "map" and i.ref in fds:
            i = replace(i, imm=fds[i.ref], ref=None, ref_kind=None)
        out.append(i)
    return out


def generate(checked: Checked, start_ns: int, params: list[str] | None = None,
             cpid: int = 0) -> tuple[Program, list[Generated]]:
    """Instructions for every unit (maps referenced by name; see :func:`link`)."""
    prog = Program(checked, start_ns, params or [], cpid)
    out = [Gen(prog, u).generate() for u in checked.units]
    return prog, out


__all__ = ["generate", "link", "Generated", "Program", "Event", "MapLayout", "STRLEN"]
