"""Write BTF as a C header: the ``vmlinux.h`` that libbpf-style CO-RE programs include.

The output is equivalent to ``bpftool btf dump file ... format c``:

* types come in dependency order: a struct is defined before any struct that embeds it,
  and a ``struct foo;`` forward declaration is written where only a pointer to a not yet
  defined struct is needed (that is how reference cycles are broken);
* anonymous structs, unions and enums are written inline where they are used;
  anonymous enums nothing refers to become top-level ``enum { ... };`` constant lists;
* layout is reproduced exactly: bitfields, explicit ``long: 64;``-style padding where
  the compiler would not put a member (or the end of a struct) where BTF says it is,
  ``__attribute__((packed))`` when a member is not naturally aligned or the size is not a
  multiple of the alignment, and ``mode(...)`` attributes for enums whose size is not
  what the compiler would choose;
* enum64 values carry ``ULL``/``LL`` suffixes; type tags become
  ``__attribute__((btf_type_tag("...")))`` (through a macro that is empty when
  ``BPF_NO_PRESERVE_ACCESS_INDEX`` is defined, like the preserve_access_index pragma);
* names that collide (two different ``struct foo``, an enumerator reused by two enums,
  a typedef redefined) get a ``___2``, ``___3`` suffix like bpftool's, which CO-RE
  ignores when it matches names.

Functions, variables and data sections are not written (bpftool does not either).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import BTFError
from .parse import POINTER_SIZE, Spec
from .types import (
    BTF_KIND_DATASEC,
    BTF_KIND_DECL_TAG,
    BTF_KIND_ENUM,
    BTF_KIND_ENUM64,
    BTF_KIND_FUNC,
    BTF_KIND_FWD,
    BTF_KIND_STRUCT,
    BTF_KIND_TYPEDEF,
    BTF_KIND_UNION,
    BTF_KIND_VAR,
    Array,
    BTFType,
    Composite,
    Const,
    Datasec,
    DeclTag,
    EnumBase,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Pointer,
    Qualifier,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    Void,
    Volatile,
)

__all__ = ["CDumper", "dump_c", "dump_raw"]

_DEFINING = frozenset({BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64,
                       BTF_KIND_FWD, BTF_KIND_TYPEDEF})
_SKIPPED = frozenset({BTF_KIND_FUNC, BTF_KIND_VAR, BTF_KIND_DATASEC, BTF_KIND_DECL_TAG})

# order / emit states
_NONE, _BUSY, _DONE = 0, 1, 2

_HEADER = """\
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif
"""
_TAG_MACRO = """
#ifndef __bpfkit_type_tag
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#define __bpfkit_type_tag(x) __attribute__((btf_type_tag(x)))
#else
#define __bpfkit_type_tag(x)
#endif
#endif
"""
_FOOTER = """
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
"""
# Typedefs the compiler already knows: redefining them is an error, and the BPF target's
# own __builtin_va_list (a char *) differs from the kernel's, so they are written out as
# the type they stand for (``typedef struct __va_list_tag va_list[1];``).
_BUILTIN_TYPEDEFS = frozenset({"__builtin_va_list"})
_PADS = (("long", 64), ("int", 32), ("short", 16), ("char", 8))
# Gaps wider than this many bits become one byte array rather than `long: 64;` lines, so
# that the output stays proportional to the input (a 60-byte BTF can declare a 4 GB gap).
_PAD_ARRAY_BITS = 64 * 64
# Nesting (member -> type -> ...) deeper than this is refused: the walks below recurse, and
# untrusted BTF must not be able to reach Python's recursion limit.
MAX_NESTING = 128


class CDumper:
    """One C dump of a Spec; :meth:`dump` returns the header text.

    After :meth:`dump`, :meth:`c_name` gives the name a type got in the header (with
    any ``___N`` suffix), which tests use to refer to the types.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        n = len(spec)
        self._order = bytearray(n)
        self._emit = bytearray(n)
        self._fwd = bytearray(n)
        self._referenced = bytearray(n)
        self._queue: list[int] = []
        self._path: set[int] = set()
        self._names: dict[int, str] = {}
        self._tag_counts: dict[str, int] = {}
        self._ident_counts: dict[str, int] = {}
        self._align: dict[int, int] = {}
        self._align_path: list[int] = []
        self._out: list[str] = []
        self._uses_tags = False

    # ------------------------------------------------------------------ driver
    def dump(self, types: Iterable[int | str] | None = None) -> str:
        spec = self.spec
        self._mark_referenced()
        if types is None:
            roots = [i for i in range(1, len(spec)) if spec.kind_of(i) in _DEFINING]
        else:
            roots = [self._root(x) for x in types]
        for tid in roots:
            self._order_type(tid, False)
        for tid in self._queue:
            self._emit_type(tid, 0)
        body = "".join(self._out)
        return _HEADER + (_TAG_MACRO if self._uses_tags else "") + "\n" + body + _FOOTER

    def _root(self, x: int | str) -> int:
        if isinstance(x, int):
            self.spec.type(x)
            return x
        name = x
        for prefix in ("struct ", "union ", "enum "):
            if x.startswith(prefix):
                name = x[len(prefix):]
        ids = [i for i in self.spec.ids_by_name(name) if self.spec.kind_of(i) in _DEFINING]
        if not ids:
            raise BTFError(f"no BTF struct/union/enum/typedef named {x!r}")
        return ids[0]

    def _mark_referenced(self) -> None:
        """Anonymous enums nothing refers to are written as top-level constant lists."""
        spec = self.spec
        ref = self._referenced
        for tid in range(1, len(spec)):
            if spec.kind_of(tid) == BTF_KIND_FUNC:
                continue  # a FUNC only refers to its FUNC_PROTO
            t = spec.type(tid)
            if isinstance(t, Composite):
                for m in t.members:
                    ref[m.type] = 1
            elif isinstance(t, (Pointer, Typedef, Qualifier, TypeTag, Var, DeclTag)):
                ref[t.type] = 1
            elif isinstance(t, Array):
                ref[t.type] = 1
                ref[t.index_type] = 1
            elif isinstance(t, FuncProto):
                ref[t.return_type] = 1
                for p in t.params:
                    ref[p.type] = 1
            elif isinstance(t, Datasec):
                for v in t.vars:
                    ref[v.type] = 1

    # ------------------------------------------------------------------ ordering
    def _order_type(self, tid: int, through_ptr: bool, depth: int = 0) -> bool:
        """Queue the named definitions ``tid`` needs, in dependency order.

        Returns True when ``tid`` is a "strong" definition (must be complete where used),
        False when a forward declaration would do.
        """
        st = self._order[tid]
        if st == _DONE:
            return True
        t = self.spec.type(tid)
        if depth > MAX_NESTING:
            raise BTFError(f"BTF type id {tid} ({t.kind_name} {t.name!r}) is nested deeper "
                           f"than {MAX_NESTING} levels")
        if not isinstance(t, Composite):
            if tid in self._path:
                raise BTFError(f"BTF type id {tid} ({t.kind_name} {t.name!r}) refers back to "
                               "itself through typedefs, pointers or qualifiers (a cycle C "
                               "cannot express)")
            self._path.add(tid)
            try:
                return self._order_other(tid, t, through_ptr, depth)
            finally:
                self._path.discard(tid)
        if st == _BUSY:
            if isinstance(t, Composite) and through_ptr and t.name:
                return False
            raise BTFError(f"BTF type id {tid} ({t.kind_name} {t.name!r}) is part of a type "
                           "cycle that no forward declaration can break")
        assert isinstance(t, Composite)
        if through_ptr and t.name:
            return False
        self._order[tid] = _BUSY
        # a cycle through a struct is caught by _BUSY; _path only needs the references
        # walked since the last struct (typedef -> pointer -> same typedef never ends)
        outer, self._path = self._path, set()
        try:
            for m in t.members:
                self._order_type(m.type, False, depth + 1)
        finally:
            self._path = outer
        if t.name:
            self._queue.append(tid)
        self._order[tid] = _DONE
        return True

    def _order_other(self, tid: int, t: BTFType, through_ptr: bool, depth: int) -> bool:
        """_order_type for everything but structs and unions."""
        if isinstance(t, (Void, Int, Float)):
            self._order[tid] = _DONE
            return False
        if isinstance(t, Pointer):
            self._order_type(t.type, True, depth + 1)
            self._order[tid] = _DONE
            return False
        if isinstance(t, Array):
            return self._order_type(t.type, False, depth + 1)
        if isinstance(t, (EnumBase, Fwd)):
            if t.name or not self._referenced[tid]:
                self._queue.append(tid)
            self._order[tid] = _DONE
            return True
        if isinstance(t, Typedef):
            if t.name in _BUILTIN_TYPEDEFS:
                return self._order_type(t.type, through_ptr, depth + 1)
            strong = self._order_type(t.type, through_ptr, depth + 1)
            if through_ptr and not strong:
                return False
            if self._order[tid] != _DONE:
                self._queue.append(tid)
                self._order[tid] = _DONE
            return True
        if isinstance(t, (Qualifier, TypeTag)):
            return self._order_type(t.type, through_ptr, depth + 1)
        if isinstance(t, FuncProto):
            strong = self._order_type(t.return_type, through_ptr, depth + 1)
            for p in t.params:
                strong = self._order_type(p.type, through_ptr, depth + 1) or strong
            return strong
        self._order[tid] = _DONE  # func, var, datasec, decl tag: not written
        return False

    # ------------------------------------------------------------------ emission
    def _emit_type(self, tid: int, cont: int, depth: int = 0) -> None:
        """Write ``tid``'s definition (``cont == 0``) or what it needs before use."""
        st = self._emit[tid]
        if st == _DONE:
            return
        t = self.spec.type(tid)
        if depth > MAX_NESTING:
            raise BTFError(f"BTF type id {tid} ({t.kind_name} {t.name!r}) is nested deeper "
                           f"than {MAX_NESTING} levels")
        d = depth + 1
        top = cont == 0
        if st == _BUSY:  # a cycle: a forward declaration breaks it
            if self._fwd[tid]:
                return
            if isinstance(t, Composite) and t.name and tid != cont:
                self._write(self._fwd_decl(t) + ";\n\n")
                self._fwd[tid] = 1
            elif isinstance(t, Typedef):
                self._write(self._typedef_def(t) + ";\n\n")
                self._fwd[tid] = 1
            return
        if isinstance(t, (Void, Int, Float)):
            self._emit[tid] = _DONE
        elif isinstance(t, EnumBase):
            if top:
                self._write(self._enum_def(t, 0) + ";\n\n")
            self._emit[tid] = _DONE
        elif isinstance(t, (Pointer, Qualifier, TypeTag)):
            self._emit_type(t.type, cont, d)
        elif isinstance(t, Array):
            self._emit_type(t.type, cont, d)
        elif isinstance(t, Fwd):
            self._write(self._fwd_decl(t) + ";\n\n")
            self._emit[tid] = _DONE
        elif isinstance(t, Typedef):
            if t.name in _BUILTIN_TYPEDEFS:
                self._emit_type(t.type, cont, d)
                return
            self._emit[tid] = _BUSY
            self._emit_type(t.type, tid, d)
            if not self._fwd[tid]:
                self._write(self._typedef_def(t) + ";\n\n")
            self._emit[tid] = _DONE
        elif isinstance(t, Composite):
            self._emit[tid] = _BUSY
            if top or not t.name:
                inner = cont if not t.name else tid
                for m in t.members:
                    self._emit_type(m.type, inner, d)
            elif not self._fwd[tid] and tid != cont:
                self._write(self._fwd_decl(t) + ";\n\n")
                self._fwd[tid] = 1
            if top:
                self._write(self._struct_def(t, 0) + ";\n\n")
                self._emit[tid] = _DONE
            else:
                self._emit[tid] = _NONE
        elif isinstance(t, FuncProto):
            self._emit_type(t.return_type, cont, d)
            for p in t.params:
                self._emit_type(p.type, cont, d)

    def _write(self, s: str) -> None:
        self._out.append(s)

    # ------------------------------------------------------------------ names
    def c_name(self, tid: int) -> str:
        """The (de-duplicated) name type ``tid`` has in the header."""
        n = self._names.get(tid)
        if n is not None:
            return n
        t = self.spec.type(tid)
        name = t.name
        if not name:
            n = ""
        elif isinstance(t, Fwd) or (isinstance(t, EnumBase) and not t.values):
            n = name
        else:
            counts = self._ident_counts if isinstance(t, Typedef) else self._tag_counts
            c = counts.get(name, 0) + 1
            counts[name] = c
            n = name if c == 1 else f"{name}___{c}"
        self._names[tid] = n
        return n

    def _enumerator(self, name: str) -> str:
        c = self._ident_counts.get(name, 0) + 1
        self._ident_counts[name] = c
        return name if c == 1 else f"{name}___{c}"

    # ------------------------------------------------------------------ layout
    def align(self, tid: int) -> int:
        """Alignment of ``tid`` as a compiler sees the emitted header (1 = packed)."""
        a = self._align.get(tid)
        if a is None:
            if len(self._align_path) > MAX_NESTING:
                raise BTFError(f"BTF type id {tid} is nested deeper than {MAX_NESTING} levels")
            self._align[tid] = 1  # a struct containing itself: _order_type reports the cycle
            self._align_path.append(tid)
            try:
                a = self._align[tid] = self._compute_align(tid)
            finally:
                self._align_path.pop()
        return a

    def _compute_align(self, tid: int) -> int:
        t = self.spec.type(tid)
        if isinstance(t, (Int, EnumBase, Float)):
            return max(1, min(t.size, POINTER_SIZE * 2 if isinstance(t, Int) else POINTER_SIZE))
        if isinstance(t, Pointer):
            return POINTER_SIZE
        if isinstance(t, (Array, Typedef, Qualifier, TypeTag, Var)):
            return self.align(t.type)
        if isinstance(t, Composite):
            best = 1
            for m in t.members:
                a = self.align(m.type)
                best = max(best, a)
                if not m.bitfield_size and m.bit_offset % (8 * a):
                    return 1
            return 1 if t.size % best else best
        return 1

    def _packed(self, t: Composite) -> bool:
        return self.align(t.id) == 1 and any(self.align(m.type) > 1 for m in t.members)

    def _padding(self, cur: int, nxt: int) -> list[str]:
        """Anonymous bitfields that move the position from bit ``cur`` to bit ``nxt``."""
        out: list[str] = []
        if cur % 8:
            k = min(8 - cur % 8, nxt - cur)
            out.append(f"char: {k}")
            cur += k
        if nxt - cur > _PAD_ARRAY_BITS and cur % 8 == 0:
            n = (nxt - cur) // 8
            out.append(f"char __pad_{cur // 8:x}[{n}]")
            cur += n * 8
        while nxt - cur >= 8:
            for tname, bits in _PADS:
                if cur % bits == 0 and nxt - cur >= bits:
                    out.append(f"{tname}: {bits}")
                    cur += bits
                    break
        if cur < nxt:
            out.append(f"char: {nxt - cur}")
        return out

    def _placement(self, cur: int, mtype: int, bitsize: int, packed: bool) -> int:
        """Where a compiler puts the next member given the position ``cur`` (bits)."""
        if bitsize:
            if packed:
                return cur
            unit = self.spec.sizeof(mtype) * 8
            if unit and cur // unit != (cur + bitsize - 1) // unit:
                a = self.align(mtype) * 8
                return (cur + a - 1) // a * a
            return cur
        a = 8 if packed else self.align(mtype) * 8
        return (cur + a - 1) // a * a

    # ------------------------------------------------------------------ definitions
    def _fwd_decl(self, t: Composite | Fwd) -> str:
        if isinstance(t, Fwd):
            kw = "union" if t.is_union else "struct"
        else:
            kw = "union" if isinstance(t, Union) else "struct"
        return f"{kw} {self.c_name(t.id)}"

    def _typedef_def(self, t: Typedef) -> str:
        return "typedef " + self._decl(t.type, self.c_name(t.id), 0)

    def _enum_def(self, t: EnumBase, lvl: int) -> str:
        name = self.c_name(t.id)
        head = f"enum {name}" if name else "enum"
        if not t.values:
            return head
        ind = "\t" * (lvl + 1)
        is64 = t.size == 8 or t.kind == BTF_KIND_ENUM64
        lines = [head + " {"]
        for v in t.values:
            val = v.value
            if t.kind == BTF_KIND_ENUM64:
                sfx = "LL" if t.signed else "ULL"
                if not t.signed and val < 0:
                    val &= (1 << 64) - 1
                lit = f"{val}{sfx}"
            else:
                lit = str(val)
            lines.append(f"{ind}{self._enumerator(v.name)} = {lit},")
        lines.append("\t" * lvl + "}")
        text = "\n".join(lines)
        # the size a compiler would give this enum: 4 unless a value needs 8 bytes
        big = any(not -(1 << 31) <= v.value < (1 << 32) for v in t.values)
        natural = 8 if big else 4
        if t.size != natural:
            mode = {1: "byte", 2: "HI", 4: "SI", 8: "word"}.get(t.size)
            if mode is not None and not (is64 and t.size < natural):
                text += f" __attribute__((mode({mode})))"
        return text

    def _struct_def(self, t: Composite, lvl: int) -> str:
        is_struct = isinstance(t, Struct)
        kw = "struct" if is_struct else "union"
        name = self.c_name(t.id)
        head = f"{kw} {name} {{" if name else f"{kw} {{"
        if not t.members and not t.size:
            return head + "}"
        packed = self._packed(t)
        ind = "\t" * (lvl + 1)
        lines = [head]
        cur = 0
        for m in t.members:
            bs = m.bitfield_size
            if is_struct:
                if m.bit_offset > cur and self._placement(cur, m.type, bs, packed) != m.bit_offset:
                    lines.extend(f"{ind}{p};" for p in self._padding(cur, m.bit_offset))
            decl = self._decl(m.type, m.name, lvl + 1)
            if bs:
                decl += f": {bs}"
            lines.append(f"{ind}{decl};")
            if is_struct:
                end = m.bit_offset + (bs or self.spec.sizeof(m.type) * 8)
                cur = max(cur, end)
        if is_struct:
            a = 8 * (1 if packed else self.align(t.id))
            if (cur + a - 1) // a * a != t.size * 8 and cur < t.size * 8:
                lines.extend(f"{ind}{p};" for p in self._padding(cur, t.size * 8))
        lines.append("\t" * lvl + "}")
        text = "\n".join(lines)
        if packed:
            text += " __attribute__((packed))"
        return text

    # ------------------------------------------------------------------ declarators
    def _decl(self, tid: int, inner: str, lvl: int) -> str:
        """A C declaration of ``inner`` (a name or a partial declarator) with type ``tid``."""
        for _ in range(256):
            t = self.spec.type(tid)
            if isinstance(t, Pointer):
                tgt = self._skip_quals(t.type)
                if isinstance(tgt, (Array, FuncProto)):
                    inner = f"(*{inner})"
                else:
                    inner = f"*{inner}"
                tid = t.type
                continue
            if isinstance(t, (Const, Volatile, Restrict)):
                q = "const" if isinstance(t, Const) else (
                    "volatile" if isinstance(t, Volatile) else "restrict")
                under = self._skip_quals(t.type)
                if isinstance(under, Pointer):
                    inner = f"{q} {inner}" if inner else q
                    tid = t.type
                    continue
                if isinstance(under, FuncProto):
                    tid = t.type
                    continue
                rest = self._decl(t.type, inner, lvl)
                return rest if rest.startswith(q + " ") else f"{q} {rest}"
            if isinstance(t, TypeTag):
                if t.attr:
                    tag = f"__attribute__(({t.name}))"
                else:
                    tag = f'__bpfkit_type_tag("{t.name}")'
                    self._uses_tags = True
                inner = f"{tag} {inner}" if inner else tag
                tid = t.type
                continue
            if isinstance(t, Array):
                inner = f"{inner}[{t.nelems}]"
                tid = t.type
                continue
            if isinstance(t, Typedef) and t.name in _BUILTIN_TYPEDEFS:
                tid = t.type
                continue
            if isinstance(t, FuncProto):
                inner = f"{inner}({self._params(t, lvl)})"
                tid = t.return_type
                continue
            return _join(self._base(t, lvl), inner)
        raise BTFError(f"BTF type id {tid}: declarator nesting too deep (a cycle?)")

    def _skip_quals(self, tid: int) -> BTFType:
        t = self.spec.type(tid)
        for _ in range(64):
            if isinstance(t, (Qualifier, TypeTag)):
                t = self.spec.type(t.type)
            else:
                break
        return t

    def _params(self, t: FuncProto, lvl: int) -> str:
        if not t.params:
            return "void"
        out = []
        for p in t.params:
            if p.type == 0 and not p.name:
                out.append("...")
            else:
                out.append(self._decl(p.type, "", lvl))
        return ", ".join(out)

    def _base(self, t: BTFType, lvl: int) -> str:
        if isinstance(t, Void):
            return "void"
        if isinstance(t, (Int, Float)):
            return t.name
        if isinstance(t, Typedef):
            return self.c_name(t.id)
        if isinstance(t, Composite):
            if t.name:
                return f"{'union' if isinstance(t, Union) else 'struct'} {self.c_name(t.id)}"
            return self._struct_def(t, lvl)
        if isinstance(t, EnumBase):
            if t.name:
                return f"enum {self.c_name(t.id)}"
            return self._enum_def(t, lvl)
        if isinstance(t, Fwd):
            return self._fwd_decl(t)
        if isinstance(t, Func):
            return self.c_name(t.id)
        raise BTFError(f"BTF type id {t.id} ({t.kind_name}) cannot appear in a C declaration")


def _join(base: str, inner: str) -> str:
    if not inner:
        return base
    if inner[0] == "[":
        return base + inner
    return f"{base} {inner}"


def dump_c(spec: Spec, *, types: Iterable[int | str] | None = None) -> str:
    """The C header for ``spec`` (all its types, or ``types`` and what they need)."""
    return CDumper(spec).dump(types)


# ---------------------------------------------------------------------- raw listing
def _raw_lines(spec: Spec, t: BTFType) -> list[str]:
    """One type in ``bpftool btf dump`` raw style."""
    name = f"'{t.name or '(anon)'}'"
    head = f"[{t.id}] {t.kind_name} {name}"
    if isinstance(t, Int):
        enc = "|".join(n for bit, n in ((1, "SIGNED"), (2, "CHAR"), (4, "BOOL"))
                       if t.encoding & bit) or "(none)"
        return [f"{head} size={t.size} bits_offset={t.offset} nr_bits={t.bits} encoding={enc}"]
    if isinstance(t, Array):
        return [f"{head} type_id={t.type} index_type_id={t.index_type} nr_elems={t.nelems}"]
    if isinstance(t, Composite):
        out = [f"{head} size={t.size} vlen={len(t.members)}"]
        for m in t.members:
            bf = f" bitfield_size={m.bitfield_size}" if m.bitfield_size else ""
            out.append(f"\t'{m.name or '(anon)'}' type_id={m.type} bits_offset={m.bit_offset}{bf}")
        return out
    if isinstance(t, EnumBase):
        sfx = ("LL" if t.signed else "ULL") if t.kind == BTF_KIND_ENUM64 else ""
        out = [f"{head} encoding={'SIGNED' if t.signed else 'UNSIGNED'} size={t.size} "
               f"vlen={len(t.values)}"]
        out.extend(f"\t'{v.name}' val={v.value}{sfx}" for v in t.values)
        return out
    if isinstance(t, Fwd):
        return [f"{head} fwd_kind={'union' if t.is_union else 'struct'}"]
    if isinstance(t, Func):
        linkage = {0: "static", 1: "global", 2: "extern"}.get(t.linkage, str(t.linkage))
        return [f"{head} type_id={t.type} linkage={linkage}"]
    if isinstance(t, FuncProto):
        out = [f"{head} ret_type_id={t.return_type} vlen={len(t.params)}"]
        out.extend(f"\t'{p.name or '(anon)'}' type_id={p.type}" for p in t.params)
        return out
    if isinstance(t, Var):
        linkage = {0: "static", 1: "global", 2: "extern"}.get(t.linkage, str(t.linkage))
        return [f"{head} type_id={t.type}, linkage={linkage}"]
    if isinstance(t, Datasec):
        out = [f"{head} size={t.size} vlen={len(t.vars)}"]
        out.extend(f"\ttype_id={v.type} offset={v.offset} size={v.size} "
                   f"({spec.type(v.type).kind_name} '{spec.type(v.type).name}')" for v in t.vars)
        return out
    if isinstance(t, Float):
        return [f"{head} size={t.size}"]
    if isinstance(t, DeclTag):
        return [f"{head} type_id={t.type} component_idx={t.component_idx}"]
    if isinstance(t, (Pointer, Typedef, Qualifier, TypeTag)):
        return [f"{head} type_id={t.type}"]
    return [head]


def dump_raw(spec: Spec) -> str:
    """Every type of ``spec`` (its own ids for split BTF), one bpftool-style entry each."""
    out: list[str] = []
    for tid in spec.own_ids():
        out.extend(_raw_lines(spec, spec.type(tid)))
    return "\n".join(out) + "\n"
