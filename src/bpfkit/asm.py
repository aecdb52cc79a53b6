"""The eBPF instruction model: constants, encoder/decoder, assembler helpers, disassembler.

Everything else in bpfkit (ELF loader, relocations, feature probes, verifier-error
reporting) talks about programs as lists of :class:`Instruction`, so this module is
the single place that knows the wire format.

Wire format (one 8-byte *slot*)::

    byte 0      opcode
    byte 1      registers: little endian = src << 4 | dst, big endian = dst << 4 | src
    bytes 2-3   off  (signed 16-bit)
    bytes 4-7   imm  (signed 32-bit)

``ld_imm64`` (opcode 0x18) uses two slots: the first carries the low 32 bits of the
constant, the second (all fields zero but ``imm``) the high 32 bits.  It is modelled as
ONE :class:`Instruction` whose ``size`` is 2, because no valid program can separate the
halves; jump offsets, relocation offsets and line info are in *slots*, which is what
:func:`slot_offsets` is for.

Canonical value rule (what :func:`decode` produces, so ``decode(encode(x)) == x``):

* ``off`` is signed 16-bit (-32768..32767);
* ``imm`` is signed 32-bit (-2**31..2**31-1), except
* the ``imm`` of an ``ld_imm64`` which is the *unsigned* 64-bit constant (0..2**64-1).

:func:`encode` also accepts the other two's-complement spelling of a value (e.g.
``imm=0xffffffff`` for -1, ``off=0xfff8`` for -8, ``ld_imm64`` with a negative value) and
masks it; the assembler helpers always build canonical values.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

from .errors import BpfkitError, ParseError

__all__ = [
    "AsmError", "Instruction", "encode", "decode", "slot_offsets", "assemble",
    "disassemble", "format_instruction", "HELPER_NAMES", "HELPER_IDS", "helper_id",
]


class AsmError(BpfkitError, ValueError):
    """An instruction that cannot be built or encoded (bad register, out-of-range field, unknown label)."""


# --------------------------------------------------------------------------- registers

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10
MAX_REG = 10

# --------------------------------------------------------------------------- opcode fields

# instruction classes (opcode & 0x07)
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# load/store sizes (opcode & 0x18)
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18

# load/store modes (opcode & 0xe0)
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0
BPF_NOSPEC = 0xC0  # with class ST: speculation barrier the kernel inserts (xlated only)

# ALU operations (opcode & 0xf0)
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_END = 0xD0

# jump operations (opcode & 0xf0)
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0
BPF_JSLT = 0xC0
BPF_JSLE = 0xD0
BPF_JCOND = 0xE0  # may_goto (src 0 = BPF_MAY_GOTO), kernel 6.9+
BPF_MAY_GOTO = 0

# operand source (opcode & 0x08)
BPF_K = 0x00
BPF_X = 0x08
# byte-swap direction for BPF_END (shares the source bit)
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08
BPF_FROM_LE = BPF_TO_LE
BPF_FROM_BE = BPF_TO_BE

# atomic operations (imm of BPF_STX | BPF_ATOMIC)
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
BPF_LOAD_ACQ = 0x100  # kernel 6.15+
BPF_STORE_REL = 0x110  # kernel 6.15+

# ld_imm64 src values
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6
# call src values
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

# off of ALU64 MOV X that means addr_space_cast (kernel 6.9+), imm of the per-cpu mov
BPF_ADDR_SPACE_CAST = 1
BPF_ADDR_PERCPU = -1

# Short aliases so probes and tests read naturally: jmp_imm(JEQ, R1, 0, "out").
JA, JEQ, JGT, JGE, JSET, JNE = BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE
JSGT, JSGE, JLT, JLE, JSLT, JSLE = BPF_JSGT, BPF_JSGE, BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE
ADD, SUB, MUL, DIV, OR, AND = BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND
LSH, RSH, MOD, XOR, MOV, ARSH = BPF_LSH, BPF_RSH, BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH

LD_IMM64 = BPF_LD | BPF_DW | BPF_IMM  # 0x18
CALL = BPF_JMP | BPF_CALL  # 0x85
EXIT = BPF_JMP | BPF_EXIT  # 0x95

_COND_JMP_OPS = frozenset({BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE,
                           BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE})
_ALU_BINOPS = frozenset({BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH,
                         BPF_RSH, BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH})
_SIZES = (BPF_W, BPF_H, BPF_B, BPF_DW)
_ATOMIC_OPS = frozenset({BPF_ADD, BPF_OR, BPF_AND, BPF_XOR, BPF_ADD | BPF_FETCH,
                         BPF_OR | BPF_FETCH, BPF_AND | BPF_FETCH, BPF_XOR | BPF_FETCH,
                         BPF_XCHG, BPF_CMPXCHG, BPF_LOAD_ACQ, BPF_STORE_REL})

_M16 = 0xFFFF
_M32 = 0xFFFF_FFFF
_M64 = 0xFFFF_FFFF_FFFF_FFFF

# --------------------------------------------------------------------------- helper names

# Helper ids are frozen UAPI (enum bpf_func_id, ids 1..211; no new helpers are added,
# new functionality comes as kfuncs).  Index in this list == helper id.
_HELPERS = """
    unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk
    get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace
    tail_call clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm
    get_cgroup_classid skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key
    perf_event_read redirect get_route_realm perf_event_output skb_load_bytes get_stackid
    csum_diff skb_get_tunnel_opt skb_set_tunnel_opt skb_change_proto skb_change_type
    skb_under_cgroup get_hash_recalc get_current_task probe_write_user
    current_task_under_cgroup skb_change_tail skb_pull_data csum_update set_hash_invalid
    get_numa_node_id skb_change_head xdp_adjust_head probe_read_str get_socket_cookie
    get_socket_uid set_hash setsockopt skb_adjust_room redirect_map sk_redirect_map
    sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt
    override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes
    msg_pull_data bind xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative
    fib_lookup sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap
    lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown skb_cgroup_id
    get_current_cgroup_id get_local_storage sk_select_reuseport skb_ancestor_cgroup_id
    sk_lookup_tcp sk_lookup_udp sk_release map_push_elem map_pop_elem map_peek_elem
    msg_push_data msg_pop_data rc_pointer_rel spin_lock spin_unlock sk_fullsock tcp_sock
    skb_ecn_set_ce get_listener_sock skc_lookup_tcp tcp_check_syncookie sysctl_get_name
    sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol strtoul
    sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output probe_read_user
    probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack send_signal_thread
    jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie
    get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf seq_write
    sk_cgroup_id sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve ringbuf_submit
    ringbuf_discard ringbuf_query csum_level skc_to_tcp6_sock skc_to_tcp_sock
    skc_to_tcp_timewait_sock skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack
    load_hdr_opt store_hdr_opt reserve_hdr_opt inode_storage_get inode_storage_delete d_path
    copy_from_user snprintf_btf seq_printf_btf skb_cgroup_classid redirect_neigh per_cpu_ptr
    this_cpu_ptr redirect_peer task_storage_get task_storage_delete get_current_task_btf
    bprm_opts_set ktime_get_coarse_ns ima_inode_hash sock_from_file check_mtu for_each_map_elem
    snprintf sys_bpf btf_find_by_name_kind sys_close timer_init timer_set_callback timer_start
    timer_cancel get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot trace_vprintk
    skc_to_unix_sock kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret
    get_func_arg_cnt get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes
    copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem
    skc_to_mptcp_sock dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr
    ringbuf_discard_dynptr dynptr_read dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4
    tcp_raw_gen_syncookie_ipv6 tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6
    ktime_get_tai_ns user_ringbuf_drain cgrp_storage_get cgrp_storage_delete
""".split()

#: helper id -> "bpf_<name>" for every helper of the UAPI enum (id 0 is not a helper).
HELPER_NAMES: dict[int, str] = {i: "bpf_" + n for i, n in enumerate(_HELPERS) if i}
#: "bpf_<name>" (and bare "<name>") -> helper id.
HELPER_IDS: dict[str, int] = {**{n: i for i, n in HELPER_NAMES.items()},
                              **{n[4:]: i for i, n in HELPER_NAMES.items()}}


def helper_id(name: str) -> int:
    """Return the helper id of ``name`` (``"bpf_map_lookup_elem"`` or ``"map_lookup_elem"``)."""
    try:
        return HELPER_IDS[name]
    except KeyError:
        raise AsmError(f"unknown BPF helper {name!r}") from None


# --------------------------------------------------------------------------- the model


@dataclass
class Instruction:
    """One eBPF instruction; an ``ld_imm64`` is one instruction of two slots.

    Only the five encoding fields take part in ``==``: ``ref``/``ref_kind`` (a symbolic
    reference the loader resolves: map, subprogram, ksym, kfunc, label), ``source`` (line
    info) and ``meta`` ride along for diagnostics and relocation but never change bytes.
    """

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    ref: str | None = field(default=None, compare=False)
    ref_kind: str | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    # --- opcode fields
    @property
    def cls(self) -> int:
        """Instruction class (``BPF_LD`` .. ``BPF_ALU64``)."""
        return self.opcode & 0x07

    @property
    def op(self) -> int:
        """ALU/JMP operation (``opcode & 0xf0``); meaningless for loads and stores."""
        return self.opcode & 0xF0

    @property
    def mode(self) -> int:
        """Load/store mode (``opcode & 0xe0``)."""
        return self.opcode & 0xE0

    @property
    def ldst_size(self) -> int:
        """Load/store size field (``BPF_W``/``H``/``B``/``DW``)."""
        return self.opcode & 0x18

    @property
    def size(self) -> int:
        """Number of 8-byte slots: 2 for ``ld_imm64``, else 1."""
        return 2 if self.opcode == LD_IMM64 else 1

    # --- kinds
    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == LD_IMM64

    @property
    def is_call(self) -> bool:
        return self.opcode == CALL

    @property
    def is_exit(self) -> bool:
        return self.opcode == EXIT

    @property
    def is_jump(self) -> bool:
        """A (conditional or unconditional) branch: JMP/JMP32 except call and exit."""
        return self.cls in (BPF_JMP, BPF_JMP32) and self.op not in (BPF_CALL, BPF_EXIT)

    @property
    def is_helper_call(self) -> bool:
        return self.opcode == CALL and self.src == 0

    @property
    def is_pseudo_call(self) -> bool:
        """A bpf-to-bpf call: ``imm`` is relative to the next slot."""
        return self.opcode == CALL and self.src == BPF_PSEUDO_CALL

    @property
    def is_kfunc_call(self) -> bool:
        return self.opcode == CALL and self.src == BPF_PSEUDO_KFUNC_CALL

    @property
    def jump_offset(self) -> int:
        """Branch offset in slots relative to the next slot (``imm`` for ``gotol``, else ``off``)."""
        if self.opcode == BPF_JMP32 | BPF_JA:
            return _s32(self.imm)
        return _s16(self.off)

    def __str__(self) -> str:
        return format_instruction(self)

    def __repr__(self) -> str:
        parts = [f"opcode=0x{self.opcode:02x}" if isinstance(self.opcode, int) else
                 f"opcode={self.opcode!r}",
                 f"dst={self.dst}", f"src={self.src}", f"off={self.off}",
                 f"imm={self.imm:#x}" if self.is_ld_imm64 else f"imm={self.imm}"]
        for name in ("ref", "ref_kind", "source"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        if self.meta:
            parts.append(f"meta={self.meta!r}")
        return f"Instruction({', '.join(parts)})"


def _s16(v: int) -> int:
    v &= _M16
    return v - 0x1_0000 if v & 0x8000 else v


def _s32(v: int) -> int:
    v &= _M32
    return v - 0x1_0000_0000 if v & 0x8000_0000 else v


# --------------------------------------------------------------------------- encode / decode

_SLOT = {"little": struct.Struct("<BBHI"), "big": struct.Struct(">BBHI")}


def _slot_struct(byteorder: str) -> struct.Struct:
    try:
        return _SLOT[byteorder]
    except KeyError:
        raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}") from None


def _check_range(i: int, insn: Instruction, name: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or not lo <= value <= hi:
        raise AsmError(f"instruction {i} ({insn!r}): {name} {value!r} out of range {lo}..{hi}")
    return value


def encode(insns: Iterable[Instruction], byteorder: str = "little") -> bytes:
    """Encode instructions into the kernel's 8-byte slots (two for ``ld_imm64``)."""
    st = _slot_struct(byteorder)
    little = byteorder == "little"
    out = bytearray()
    for i, insn in enumerate(insns):
        opcode = _check_range(i, insn, "opcode", insn.opcode, 0, 0xFF)
        dst = _check_range(i, insn, "dst", insn.dst, 0, 15)
        src = _check_range(i, insn, "src", insn.src, 0, 15)
        off = _check_range(i, insn, "off", insn.off, -0x8000, _M16) & _M16
        regs = (src << 4 | dst) if little else (dst << 4 | src)
        if opcode == LD_IMM64:
            imm = _check_range(i, insn, "imm", insn.imm, -(1 << 63), _M64) & _M64
            out += st.pack(opcode, regs, off, imm & _M32)
            out += st.pack(0, 0, 0, imm >> 32)
        else:
            imm = _check_range(i, insn, "imm", insn.imm, -(1 << 31), _M32) & _M32
            out += st.pack(opcode, regs, off, imm)
    return bytes(out)


def decode(data: bytes | bytearray | memoryview, byteorder: str = "little") -> list[Instruction]:
    """Decode 8-byte slots into instructions, joining the two slots of each ``ld_imm64``.

    Raises :class:`~bpfkit.errors.ParseError` when the length is not a multiple of 8,
    an ``ld_imm64`` is cut off, or its second slot has anything but ``imm`` set (the
    kernel rejects such programs, and accepting them would break the round trip).
    """
    st = _slot_struct(byteorder)
    little = byteorder == "little"
    buf = bytes(data)
    if len(buf) % 8:
        raise ParseError(f"BPF instruction stream of {len(buf)} bytes is not a multiple of 8")
    slots = list(st.iter_unpack(buf))
    out: list[Instruction] = []
    n = len(slots)
    k = 0
    while k < n:
        opcode, regs, off, imm = slots[k]
        if little:
            dst, src = regs & 0x0F, regs >> 4
        else:
            dst, src = regs >> 4, regs & 0x0F
        if opcode == LD_IMM64:
            if k + 1 >= n:
                raise ParseError(f"truncated ld_imm64 at slot {k}: second slot missing")
            op2, regs2, off2, hi = slots[k + 1]
            if op2 or regs2 or off2:
                raise ParseError(f"malformed ld_imm64 at slot {k}: second slot has "
                                 f"opcode {op2:#x}, regs {regs2:#x}, off {off2} (must be 0)")
            out.append(Instruction(opcode, dst, src, _s16(off), (hi << 32) | imm))
            k += 2
        else:
            out.append(Instruction(opcode, dst, src, _s16(off), _s32(imm)))
            k += 1
    return out


def slot_offsets(insns: Iterable[Instruction]) -> list[int]:
    """Return the slot index of each instruction (``ld_imm64`` counts as two slots)."""
    result: list[int] = []
    slot = 0
    for insn in insns:
        result.append(slot)
        slot += insn.size
    return result


# --------------------------------------------------------------------------- helpers: checks

Target = Union[int, str]  # a relative offset, or a label / symbol name


def _reg(r: int, what: str = "register") -> int:
    if not isinstance(r, int) or not 0 <= r <= MAX_REG:
        raise AsmError(f"invalid {what} {r!r}: must be R0..R10")
    return r


def _imm32(v: int) -> int:
    if not isinstance(v, int) or not -(1 << 31) <= v <= _M32:
        raise AsmError(f"immediate {v!r} does not fit in 32 bits")
    return _s32(v)


def _off16(v: int) -> int:
    if not isinstance(v, int) or not -0x8000 <= v <= 0x7FFF:
        raise AsmError(f"offset {v!r} does not fit in a signed 16-bit field")
    return v


def _size(size: int, allowed: Sequence[int] = _SIZES) -> int:
    if size not in allowed:
        names = {BPF_W: "BPF_W", BPF_H: "BPF_H", BPF_B: "BPF_B", BPF_DW: "BPF_DW"}
        raise AsmError(f"invalid size {size!r}: expected one of "
                       f"{', '.join(names[s] for s in allowed)}")
    return size


def _alu_op(op: int) -> int:
    if op not in _ALU_BINOPS:
        raise AsmError(f"invalid ALU operation {op!r} (use BPF_ADD..BPF_ARSH; neg/endian have "
                       "their own helpers)")
    return op


def _jmp_op(op: int) -> int:
    if op not in _COND_JMP_OPS:
        raise AsmError(f"invalid conditional jump operation {op!r} (use BPF_JEQ..BPF_JSLE)")
    return op


def _branch(insn: Instruction, target: Target, *, in_imm: bool = False) -> Instruction:
    """Fill a branch target: a number is the offset, a string a label for :func:`assemble`."""
    if isinstance(target, str):
        insn.ref, insn.ref_kind = target, "label"
    elif in_imm:
        insn.imm = _imm32(target)
    else:
        insn.off = _off16(target)
    return insn


# --------------------------------------------------------------------------- helpers: ALU


def alu64_imm(op: int, dst: int, imm: int) -> Instruction:
    """``dst op= imm`` on 64 bits (imm is sign-extended)."""
    return Instruction(BPF_ALU64 | _alu_op(op) | BPF_K, _reg(dst), 0, 0, _imm32(imm))


def alu64_reg(op: int, dst: int, src: int) -> Instruction:
    """``dst op= src`` on 64 bits."""
    return Instruction(BPF_ALU64 | _alu_op(op) | BPF_X, _reg(dst), _reg(src))


def alu32_imm(op: int, dst: int, imm: int) -> Instruction:
    """``wdst op= imm`` on 32 bits (upper half of dst zeroed)."""
    return Instruction(BPF_ALU | _alu_op(op) | BPF_K, _reg(dst), 0, 0, _imm32(imm))


def alu32_reg(op: int, dst: int, src: int) -> Instruction:
    """``wdst op= wsrc`` on 32 bits."""
    return Instruction(BPF_ALU | _alu_op(op) | BPF_X, _reg(dst), _reg(src))


def mov64_imm(dst: int, imm: int) -> Instruction:
    return alu64_imm(BPF_MOV, dst, imm)


def mov64_reg(dst: int, src: int) -> Instruction:
    return alu64_reg(BPF_MOV, dst, src)


def mov32_imm(dst: int, imm: int) -> Instruction:
    return alu32_imm(BPF_MOV, dst, imm)


def mov32_reg(dst: int, src: int) -> Instruction:
    return alu32_reg(BPF_MOV, dst, src)


def movsx64_reg(dst: int, src: int, bits: int) -> Instruction:
    """``dst = (s<bits>)src`` sign-extending move (ISA v4); bits is 8, 16 or 32."""
    if bits not in (8, 16, 32):
        raise AsmError(f"movsx64 width must be 8, 16 or 32, not {bits!r}")
    return Instruction(BPF_ALU64 | BPF_MOV | BPF_X, _reg(dst), _reg(src), bits)


def movsx32_reg(dst: int, src: int, bits: int) -> Instruction:
    """``wdst = (s<bits>)wsrc`` sign-extending move (ISA v4); bits is 8 or 16."""
    if bits not in (8, 16):
        raise AsmError(f"movsx32 width must be 8 or 16, not {bits!r}")
    return Instruction(BPF_ALU | BPF_MOV | BPF_X, _reg(dst), _reg(src), bits)


def addr_space_cast(dst: int, src: int, dst_as: int, src_as: int) -> Instruction:
    """``dst = addr_space_cast(src, dst_as, src_as)`` for arena pointers (kernel 6.9+)."""
    for v in (dst_as, src_as):
        if not 0 <= v <= _M16:
            raise AsmError(f"address space {v!r} out of range 0..65535")
    return Instruction(BPF_ALU64 | BPF_MOV | BPF_X, _reg(dst), _reg(src), BPF_ADDR_SPACE_CAST,
                       (dst_as << 16) | src_as)


def neg64(dst: int) -> Instruction:
    return Instruction(BPF_ALU64 | BPF_NEG | BPF_K, _reg(dst))


def neg32(dst: int) -> Instruction:
    return Instruction(BPF_ALU | BPF_NEG | BPF_K, _reg(dst))


def _bits(bits: int) -> int:
    if bits not in (16, 32, 64):
        raise AsmError(f"byte swap width must be 16, 32 or 64, not {bits!r}")
    return bits


def to_le(dst: int, bits: int) -> Instruction:
    """``dst = le<bits> dst``: convert to little endian (truncates on a little-endian host)."""
    return Instruction(BPF_ALU | BPF_END | BPF_TO_LE, _reg(dst), 0, 0, _bits(bits))


def to_be(dst: int, bits: int) -> Instruction:
    """``dst = be<bits> dst``: convert to big endian (``htons``/``htonl`` on x86)."""
    return Instruction(BPF_ALU | BPF_END | BPF_TO_BE, _reg(dst), 0, 0, _bits(bits))


def bswap(dst: int, bits: int) -> Instruction:
    """``dst = bswap<bits> dst``: unconditional byte swap (ISA v4)."""
    return Instruction(BPF_ALU64 | BPF_END | BPF_TO_LE, _reg(dst), 0, 0, _bits(bits))


def endian(dst: int, bits: int, order: str) -> Instruction:
    """Byte-order conversion by name: ``order`` is ``"le"``, ``"be"`` or ``"swap"``."""
    makers = {"le": to_le, "be": to_be, "swap": bswap, "bswap": bswap}
    if order not in makers:
        raise AsmError(f"endian order must be 'le', 'be' or 'swap', not {order!r}")
    return makers[order](dst, bits)


def _make_alu(op: int, alu64: bool, reg: bool, signed: bool = False) -> Callable[[int, int], Instruction]:
    cls = BPF_ALU64 if alu64 else BPF_ALU
    width = 64 if alu64 else 32

    if reg:
        def fn(dst: int, src: int) -> Instruction:
            return Instruction(cls | op | BPF_X, _reg(dst), _reg(src), 1 if signed else 0)
    else:
        def fn(dst: int, imm: int) -> Instruction:  # type: ignore[misc]
            return Instruction(cls | op | BPF_K, _reg(dst), 0, 1 if signed else 0, _imm32(imm))
    fn.__doc__ = (f"{'Signed ' if signed else ''}{width}-bit ALU op {op:#x} with a "
                  f"{'register' if reg else 'immediate'} operand.")
    return fn


add64_imm = _make_alu(BPF_ADD, True, False)
add64_reg = _make_alu(BPF_ADD, True, True)
add32_imm = _make_alu(BPF_ADD, False, False)
add32_reg = _make_alu(BPF_ADD, False, True)
sub64_imm = _make_alu(BPF_SUB, True, False)
sub64_reg = _make_alu(BPF_SUB, True, True)
sub32_imm = _make_alu(BPF_SUB, False, False)
sub32_reg = _make_alu(BPF_SUB, False, True)
mul64_imm = _make_alu(BPF_MUL, True, False)
mul64_reg = _make_alu(BPF_MUL, True, True)
mul32_imm = _make_alu(BPF_MUL, False, False)
mul32_reg = _make_alu(BPF_MUL, False, True)
div64_imm = _make_alu(BPF_DIV, True, False)
div64_reg = _make_alu(BPF_DIV, True, True)
div32_imm = _make_alu(BPF_DIV, False, False)
div32_reg = _make_alu(BPF_DIV, False, True)
mod64_imm = _make_alu(BPF_MOD, True, False)
mod64_reg = _make_alu(BPF_MOD, True, True)
mod32_imm = _make_alu(BPF_MOD, False, False)
mod32_reg = _make_alu(BPF_MOD, False, True)
or64_imm = _make_alu(BPF_OR, True, False)
or64_reg = _make_alu(BPF_OR, True, True)
or32_imm = _make_alu(BPF_OR, False, False)
or32_reg = _make_alu(BPF_OR, False, True)
and64_imm = _make_alu(BPF_AND, True, False)
and64_reg = _make_alu(BPF_AND, True, True)
and32_imm = _make_alu(BPF_AND, False, False)
and32_reg = _make_alu(BPF_AND, False, True)
xor64_imm = _make_alu(BPF_XOR, True, False)
xor64_reg = _make_alu(BPF_XOR, True, True)
xor32_imm = _make_alu(BPF_XOR, False, False)
xor32_reg = _make_alu(BPF_XOR, False, True)
lsh64_imm = _make_alu(BPF_LSH, True, False)
lsh64_reg = _make_alu(BPF_LSH, True, True)
lsh32_imm = _make_alu(BPF_LSH, False, False)
lsh32_reg = _make_alu(BPF_LSH, False, True)
rsh64_imm = _make_alu(BPF_RSH, True, False)
rsh64_reg = _make_alu(BPF_RSH, True, True)
rsh32_imm = _make_alu(BPF_RSH, False, False)
rsh32_reg = _make_alu(BPF_RSH, False, True)
arsh64_imm = _make_alu(BPF_ARSH, True, False)
arsh64_reg = _make_alu(BPF_ARSH, True, True)
arsh32_imm = _make_alu(BPF_ARSH, False, False)
arsh32_reg = _make_alu(BPF_ARSH, False, True)
# signed division and modulo (ISA v4): off = 1
sdiv64_imm = _make_alu(BPF_DIV, True, False, signed=True)
sdiv64_reg = _make_alu(BPF_DIV, True, True, signed=True)
sdiv32_imm = _make_alu(BPF_DIV, False, False, signed=True)
sdiv32_reg = _make_alu(BPF_DIV, False, True, signed=True)
smod64_imm = _make_alu(BPF_MOD, True, False, signed=True)
smod64_reg = _make_alu(BPF_MOD, True, True, signed=True)
smod32_imm = _make_alu(BPF_MOD, False, False, signed=True)
smod32_reg = _make_alu(BPF_MOD, False, True, signed=True)


# --------------------------------------------------------------------------- helpers: ld_imm64


def _ld64(dst: int, src: int, value: int, ref: str | None = None,
          ref_kind: str | None = None) -> Instruction:
    return Instruction(LD_IMM64, _reg(dst), src, 0, value & _M64, ref=ref, ref_kind=ref_kind)


def _u32(v: int, what: str) -> int:
    if not isinstance(v, int) or not -(1 << 31) <= v <= _M32:
        raise AsmError(f"{what} {v!r} does not fit in 32 bits")
    return v & _M32


def ld_imm64(dst: int, value: int) -> Instruction:
    """``dst = value ll``: load a 64-bit constant (two slots)."""
    if not isinstance(value, int) or not -(1 << 63) <= value <= _M64:
        raise AsmError(f"ld_imm64 value {value!r} does not fit in 64 bits")
    return _ld64(dst, 0, value)


def ld_map_fd(dst: int, map_: int | str) -> Instruction:
    """``dst = map`` pointer: an fd, or a map name the loader replaces with the map's fd."""
    if isinstance(map_, str):
        return _ld64(dst, BPF_PSEUDO_MAP_FD, 0, map_, "map")
    return _ld64(dst, BPF_PSEUDO_MAP_FD, _u32(map_, "map fd"))


def ld_map_value(dst: int, map_: int | str, offset: int = 0) -> Instruction:
    """``dst = &map_value[0] + offset`` (global data); map is an fd or a map name."""
    if not isinstance(offset, int) or not 0 <= offset <= _M32:
        raise AsmError(f"map value offset {offset!r} out of range 0..2**32-1")
    if isinstance(map_, str):
        return _ld64(dst, BPF_PSEUDO_MAP_VALUE, offset << 32, map_, "map_value")
    return _ld64(dst, BPF_PSEUDO_MAP_VALUE, offset << 32 | _u32(map_, "map fd"))


def ld_map_idx(dst: int, idx: int) -> Instruction:
    """``dst = map`` by index into the ``fd_array`` passed at load time (kernel 5.14+)."""
    return _ld64(dst, BPF_PSEUDO_MAP_IDX, _u32(idx, "map index"))


def ld_map_idx_value(dst: int, idx: int, offset: int = 0) -> Instruction:
    """``dst = &map_value + offset`` with the map given by ``fd_array`` index."""
    if not isinstance(offset, int) or not 0 <= offset <= _M32:
        raise AsmError(f"map value offset {offset!r} out of range 0..2**32-1")
    return _ld64(dst, BPF_PSEUDO_MAP_IDX_VALUE, offset << 32 | _u32(idx, "map index"))


def ld_btf_id(dst: int, btf_id: int | str, btf_obj_fd: int = 0) -> Instruction:
    """``dst = &ksym``: a kernel variable by BTF id (or name, resolved by the loader)."""
    if isinstance(btf_id, str):
        return _ld64(dst, BPF_PSEUDO_BTF_ID, _u32(btf_obj_fd, "BTF fd") << 32, btf_id, "ksym")
    return _ld64(dst, BPF_PSEUDO_BTF_ID,
                 _u32(btf_obj_fd, "BTF fd") << 32 | _u32(btf_id, "BTF id"))


ld_ksym = ld_btf_id


def ld_func(dst: int, target: Target) -> Instruction:
    """``dst = &subprog`` (callback for bpf_loop etc.): slot offset relative to next slot, or name."""
    if isinstance(target, str):
        return _ld64(dst, BPF_PSEUDO_FUNC, 0, target, "func")
    return _ld64(dst, BPF_PSEUDO_FUNC, _imm32(target) & _M32)


# --------------------------------------------------------------------------- helpers: memory


def ldx_mem(size: int, dst: int, src: int, off: int) -> Instruction:
    """``dst = *(u<size> *)(src + off)``."""
    return Instruction(BPF_LDX | _size(size) | BPF_MEM, _reg(dst), _reg(src), _off16(off))


def ldx_memsx(size: int, dst: int, src: int, off: int) -> Instruction:
    """``dst = *(s<size> *)(src + off)`` sign-extending load (ISA v4; B, H or W)."""
    return Instruction(BPF_LDX | _size(size, (BPF_W, BPF_H, BPF_B)) | BPF_MEMSX, _reg(dst),
                       _reg(src), _off16(off))


def st_mem(size: int, dst: int, off: int, imm: int) -> Instruction:
    """``*(u<size> *)(dst + off) = imm``."""
    return Instruction(BPF_ST | _size(size) | BPF_MEM, _reg(dst), 0, _off16(off), _imm32(imm))


def stx_mem(size: int, dst: int, src: int, off: int) -> Instruction:
    """``*(u<size> *)(dst + off) = src``."""
    return Instruction(BPF_STX | _size(size) | BPF_MEM, _reg(dst), _reg(src), _off16(off))


def atomic_op(size: int, op: int, dst: int, src: int, off: int) -> Instruction:
    """Atomic read-modify-write on ``*(size *)(dst + off)`` with ``src`` (W or DW).

    ``op`` is BPF_ADD/OR/AND/XOR (optionally ``| BPF_FETCH``: old value into ``src``),
    BPF_XCHG, BPF_CMPXCHG (compares with and returns into R0), or BPF_LOAD_ACQ /
    BPF_STORE_REL (which also allow B and H).
    """
    if op not in _ATOMIC_OPS:
        raise AsmError(f"invalid atomic operation {op!r}")
    allowed = _SIZES if op in (BPF_LOAD_ACQ, BPF_STORE_REL) else (BPF_W, BPF_DW)
    return Instruction(BPF_STX | _size(size, allowed) | BPF_ATOMIC, _reg(dst), _reg(src),
                       _off16(off), op)


def load_acquire(size: int, dst: int, src: int, off: int) -> Instruction:
    """``dst = load_acquire((size *)(src + off))`` (kernel 6.15+)."""
    # The kernel encodes it as an STX-class atomic whose *dst* field is the loaded register.
    return atomic_op(size, BPF_LOAD_ACQ, dst, src, off)


def store_release(size: int, dst: int, src: int, off: int) -> Instruction:
    """``store_release((size *)(dst + off), src)`` (kernel 6.15+)."""
    return atomic_op(size, BPF_STORE_REL, dst, src, off)


def ld_abs(size: int, imm: int) -> Instruction:
    """Legacy ``r0 = *(size *)skb[imm]`` (socket filters; packet bytes in network order)."""
    return Instruction(BPF_LD | _size(size, (BPF_W, BPF_H, BPF_B)) | BPF_ABS, 0, 0, 0,
                       _imm32(imm))


def ld_ind(size: int, src: int, imm: int) -> Instruction:
    """Legacy ``r0 = *(size *)skb[src + imm]``."""
    return Instruction(BPF_LD | _size(size, (BPF_W, BPF_H, BPF_B)) | BPF_IND, 0, _reg(src), 0,
                       _imm32(imm))


# --------------------------------------------------------------------------- helpers: jumps


def ja(off: Target) -> Instruction:
    """``goto pc+off`` (16-bit offset) or ``goto label``."""
    return _branch(Instruction(BPF_JMP | BPF_JA), off)


def ja32(off: Target) -> Instruction:
    """``gotol pc+off``: unconditional jump with a 32-bit offset in ``imm`` (ISA v4)."""
    return _branch(Instruction(BPF_JMP32 | BPF_JA), off, in_imm=True)


gotol = ja32


def may_goto(off: Target) -> Instruction:
    """``may_goto pc+off``: bounded-loop escape hatch (kernel 6.9+)."""
    return _branch(Instruction(BPF_JMP | BPF_JCOND | BPF_K, 0, BPF_MAY_GOTO), off)


def jmp_imm(op: int, dst: int, imm: int, off: Target) -> Instruction:
    """``if dst <op> imm goto off`` comparing 64 bits (imm sign-extended)."""
    return _branch(Instruction(BPF_JMP | _jmp_op(op) | BPF_K, _reg(dst), 0, 0, _imm32(imm)), off)


def jmp_reg(op: int, dst: int, src: int, off: Target) -> Instruction:
    """``if dst <op> src goto off`` comparing 64 bits."""
    return _branch(Instruction(BPF_JMP | _jmp_op(op) | BPF_X, _reg(dst), _reg(src)), off)


def jmp32_imm(op: int, dst: int, imm: int, off: Target) -> Instruction:
    """``if wdst <op> imm goto off`` comparing the low 32 bits."""
    return _branch(Instruction(BPF_JMP32 | _jmp_op(op) | BPF_K, _reg(dst), 0, 0, _imm32(imm)),
                   off)


def jmp32_reg(op: int, dst: int, src: int, off: Target) -> Instruction:
    """``if wdst <op> wsrc goto off`` comparing the low 32 bits."""
    return _branch(Instruction(BPF_JMP32 | _jmp_op(op) | BPF_X, _reg(dst), _reg(src)), off)


def call(helper: int | str) -> Instruction:
    """Call a BPF helper by id or by name (``"bpf_map_lookup_elem"`` or ``"map_lookup_elem"``)."""
    if isinstance(helper, str):
        helper = helper_id(helper)
    return Instruction(CALL, 0, 0, 0, _imm32(helper))


def call_pseudo(target: Target) -> Instruction:
    """bpf-to-bpf call: ``imm`` is the callee's slot offset relative to the next slot, or a name."""
    if isinstance(target, str):
        return Instruction(CALL, 0, BPF_PSEUDO_CALL, 0, 0, ref=target, ref_kind="call")
    return Instruction(CALL, 0, BPF_PSEUDO_CALL, 0, _imm32(target))


def call_kfunc(btf_id: int | str, btf_fd_idx: int = 0) -> Instruction:
    """Call a kernel function by BTF id (or name, resolved by the loader).

    ``btf_fd_idx`` is the ``off`` field: 0 for vmlinux, else the index of a module
    BTF fd in the ``fd_array`` passed at load time.
    """
    off = _off16(btf_fd_idx)
    if isinstance(btf_id, str):
        return Instruction(CALL, 0, BPF_PSEUDO_KFUNC_CALL, off, 0, ref=btf_id, ref_kind="kfunc")
    return Instruction(CALL, 0, BPF_PSEUDO_KFUNC_CALL, off, _imm32(btf_id))


def exit() -> Instruction:
    """``exit``: return R0."""
    return Instruction(EXIT)


exit_ = exit


# --------------------------------------------------------------------------- label assembler

Item = Union[Instruction, str, Iterable["Item"]]


def assemble(items: Iterable[Item]) -> list[Instruction]:
    """Lay out instructions, resolving labels into slot offsets.

    ``items`` holds instructions, label strings (marking the next instruction) and
    nested lists of either.  Branches built with a string target (``ja("out")``,
    ``jmp_imm(JEQ, R1, 0, "out")``) get their offset; ``call_pseudo(name)`` and
    ``ld_func(dst, name)`` are resolved when ``name`` is a label here and otherwise
    keep their ``ref`` for the loader.  A label may also mark the end of the program.
    """
    insns: list[Instruction] = []
    labels: dict[str, int] = {}
    slot = 0

    def walk(seq: Iterable[Item]) -> None:
        nonlocal slot
        for item in seq:
            if isinstance(item, Instruction):
                insns.append(item)
                slot += item.size
            elif isinstance(item, str):
                if item in labels:
                    raise AsmError(f"label {item!r} defined twice")
                labels[item] = slot
            elif isinstance(item, Iterable):
                walk(item)
            else:
                raise AsmError(f"cannot assemble {item!r}: expected an Instruction or a label")

    walk(items)
    out: list[Instruction] = []
    for insn, at in zip(insns, slot_offsets(insns), strict=True):
        name, kind = insn.ref, insn.ref_kind
        if name is None or kind not in ("label", "call", "func") or \
                (kind != "label" and name not in labels):
            out.append(insn)
            continue
        if name not in labels:
            raise AsmError(f"instruction at slot {at} jumps to undefined label {name!r}")
        rel = labels[name] - (at + insn.size)
        if kind == "label":
            if insn.opcode == BPF_JMP32 | BPF_JA:
                out.append(replace(insn, imm=rel, ref=None, ref_kind=None))
                continue
            if not insn.is_jump:
                raise AsmError(f"label target {name!r} on a non-branch instruction {insn!r}")
            if not -0x8000 <= rel <= 0x7FFF:
                raise AsmError(f"jump at slot {at} to {name!r} is {rel} slots away: too far for "
                               "a 16-bit offset (use ja32/gotol)")
            out.append(replace(insn, off=rel, ref=None, ref_kind=None))
        elif kind == "call":
            out.append(replace(insn, imm=rel, ref=None, ref_kind=None))
        else:  # func: ld_imm64 whose low 32 bits hold the relative offset
            rel = labels[name] - (at + 1)
            out.append(replace(insn, imm=rel & _M32, ref=None, ref_kind=None))
    return out


# --------------------------------------------------------------------------- disassembler

_ALU_STR = {BPF_ADD: "+=", BPF_SUB: "-=", BPF_MUL: "*=", BPF_DIV: "/=", BPF_OR: "|=",
            BPF_AND: "&=", BPF_LSH: "<<=", BPF_RSH: ">>=", BPF_MOD: "%=", BPF_XOR: "^=",
            BPF_MOV: "=", BPF_ARSH: "s>>="}
_JMP_STR = {BPF_JEQ: "==", BPF_JGT: ">", BPF_JGE: ">=", BPF_JSET: "&", BPF_JNE: "!=",
            BPF_JSGT: "s>", BPF_JSGE: "s>=", BPF_JLT: "<", BPF_JLE: "<=", BPF_JSLT: "s<",
            BPF_JSLE: "s<="}
_SIZE_STR = {BPF_W: "u32", BPF_H: "u16", BPF_B: "u8", BPF_DW: "u64"}
_SSIZE_STR = {BPF_W: "s32", BPF_H: "s16", BPF_B: "s8", BPF_DW: "s64"}
_ATOMIC_STR = {BPF_ADD: "add", BPF_AND: "and", BPF_OR: "or", BPF_XOR: "xor"}


def _invalid(i: Instruction) -> str:
    return f"invalid insn dst={i.dst} src={i.src} off={i.off} imm={i.imm}"


def _target(i: Instruction, rel: int) -> str:
    if i.ref_kind == "label" and i.ref is not None:
        return i.ref
    return f"pc{rel:+d}"


def _fmt_alu(i: Instruction) -> str:
    r = "r" if i.cls == BPF_ALU64 else "w"
    op, x = i.op, i.opcode & BPF_X
    d = i.dst
    if op == BPF_END:
        if i.cls == BPF_ALU64:
            return f"r{d} = bswap{i.imm} r{d}" if not x else _invalid(i)
        return f"r{d} = {'be' if x else 'le'}{i.imm} r{d}"
    if op == BPF_NEG:
        return f"{r}{d} = -{r}{d}"
    if op not in _ALU_STR:
        return _invalid(i)
    if op == BPF_MOV and x and i.cls == BPF_ALU64:
        if i.off == BPF_ADDR_SPACE_CAST:
            imm = i.imm & _M32
            return f"r{d} = addr_space_cast(r{i.src}, {imm >> 16}, {imm & _M16})"
        if i.off == 0 and i.imm == BPF_ADDR_PERCPU:
            return f"r{d} = &(void __percpu *)(r{i.src})"
    opstr = _ALU_STR[op]
    if op in (BPF_DIV, BPF_MOD) and i.off == 1:
        opstr = "s" + opstr
    if x:
        cast = ""
        if op == BPF_MOV and i.off in (8, 16, 32):
            cast = f"(s{i.off})"
        return f"{r}{d} {opstr} {cast}{r}{i.src}"
    return f"{r}{d} {opstr} {_s32(i.imm)}"


def _fmt_ld64(i: Instruction) -> str:
    v = i.imm & _M64
    lo, hi = v & _M32, v >> 32
    src, ref = i.src, i.ref
    if src == BPF_PSEUDO_MAP_FD:
        what = f"map[{ref}]" if ref else f"map[id:{lo}]"
    elif src == BPF_PSEUDO_MAP_VALUE:
        what = f"map[{ref}][0]+{hi}" if ref else f"map[id:{lo}][0]+{hi}"
    elif src == BPF_PSEUDO_MAP_IDX:
        what = f"map[idx:{lo}]"
    elif src == BPF_PSEUDO_MAP_IDX_VALUE:
        what = f"map[idx:{lo}][0]+{hi}"
    elif src == BPF_PSEUDO_FUNC:
        what = f"subprog[{ref}]" if ref else f"subprog[{_s32(lo):+d}]"
    elif src == BPF_PSEUDO_BTF_ID and ref:
        what = f"ksym[{ref}]"
    else:
        what = f"{v:#x}"
    return f"r{i.dst} = {what}"


def _fmt_ld(i: Instruction) -> str:
    if i.is_ld_imm64:
        return _fmt_ld64(i)
    size = _SIZE_STR[i.ldst_size]
    if i.mode == BPF_ABS:
        return f"r0 = *({size} *)skb[{_s32(i.imm)}]"
    if i.mode == BPF_IND:
        return f"r0 = *({size} *)skb[r{i.src} + {_s32(i.imm)}]"
    return _invalid(i)


def _fmt_stx(i: Instruction) -> str:
    size = _SIZE_STR[i.ldst_size]
    mem = f"({size} *)(r{i.dst} {i.off:+d})"
    if i.mode == BPF_MEM:
        return f"*{mem} = r{i.src}"
    if i.mode != BPF_ATOMIC:
        return _invalid(i)
    op = i.imm
    b64 = "64" if i.ldst_size == BPF_DW else ""
    if op in _ATOMIC_STR and i.ldst_size in (BPF_W, BPF_DW):
        return f"lock *{mem} {_ALU_STR[op]} r{i.src}"
    if op & ~BPF_FETCH in _ATOMIC_STR and op & BPF_FETCH and i.ldst_size in (BPF_W, BPF_DW):
        return f"r{i.src} = atomic{b64}_fetch_{_ATOMIC_STR[op & ~BPF_FETCH]}({mem}, r{i.src})"
    if op == BPF_CMPXCHG:
        return f"r0 = atomic{b64}_cmpxchg({mem}, r0, r{i.src})"
    if op == BPF_XCHG:
        return f"r{i.src} = atomic{b64}_xchg({mem}, r{i.src})"
    if op == BPF_LOAD_ACQ:
        return f"r{i.dst} = load_acquire(({size} *)(r{i.src} {i.off:+d}))"
    if op == BPF_STORE_REL:
        return f"store_release({mem}, r{i.src})"
    return _invalid(i)


def _fmt_jmp(i: Instruction, helper_names: Mapping[int, str] | None) -> str:
    op = i.op
    jmp32 = i.cls == BPF_JMP32
    if op == BPF_CALL and not jmp32:
        if i.src == BPF_PSEUDO_CALL:
            return f"call pc{_s32(i.imm):+d}" + (f"#{i.ref}" if i.ref else "")
        if i.src == BPF_PSEUDO_KFUNC_CALL:
            return f"call {i.ref or 'kernel-function'}#{i.imm}"
        name = None
        if helper_names is not None:
            name = helper_names.get(i.imm)
        name = name or HELPER_NAMES.get(i.imm, "unknown")
        return f"call {name}#{i.imm}"
    if op == BPF_EXIT and not jmp32:
        return "exit"
    if op == BPF_JA:
        if jmp32:
            return f"gotol {_target(i, _s32(i.imm))}"
        return f"goto {_target(i, i.off)}"
    if op == BPF_JCOND and not jmp32 and i.src == BPF_MAY_GOTO:
        return f"may_goto {_target(i, i.off)}"
    if op not in _JMP_STR:
        return _invalid(i)
    r = "w" if jmp32 else "r"
    rhs = f"{r}{i.src}" if i.opcode & BPF_X else f"{i.imm & _M32:#x}"
    return f"if {r}{i.dst} {_JMP_STR[op]} {rhs} goto {_target(i, i.off)}"


def format_instruction(insn: Instruction, helper_names: Mapping[int, str] | None = None) -> str:
    """One bpftool-xlated-style line for ``insn``, without the slot prefix: ``(b7) r0 = 7``."""
    i = insn
    if not isinstance(i.opcode, int) or not 0 <= i.opcode <= 0xFF:
        return f"(??) {_invalid(i)}"
    cls = i.cls
    if cls in (BPF_ALU, BPF_ALU64):
        text = _fmt_alu(i)
    elif cls in (BPF_JMP, BPF_JMP32):
        text = _fmt_jmp(i, helper_names)
    elif cls == BPF_LD:
        text = _fmt_ld(i)
    elif cls == BPF_LDX:
        if i.mode in (BPF_MEM, BPF_MEMSX):
            size = (_SIZE_STR if i.mode == BPF_MEM else _SSIZE_STR)[i.ldst_size]
            text = f"r{i.dst} = *({size} *)(r{i.src} {i.off:+d})"
        else:
            text = _invalid(i)
    elif cls == BPF_ST:
        if i.mode == BPF_MEM:
            text = f"*({_SIZE_STR[i.ldst_size]} *)(r{i.dst} {i.off:+d}) = {_s32(i.imm)}"
        elif i.opcode == BPF_ST | BPF_NOSPEC:
            text = "nospec"
        else:
            text = _invalid(i)
    else:
        text = _fmt_stx(i)
    return f"({i.opcode:02x}) {text}"


def disassemble(insns: Sequence[Instruction] | bytes | bytearray, *,
                helper_names: Mapping[int, str] | None = None,
                show_source: bool = False) -> str:
    """Render a program like ``bpftool prog dump xlated``: ``   0: (b7) r0 = 7`` per line.

    ``insns`` may also be raw little-endian bytes.  ``helper_names`` overrides the
    built-in helper table.  With ``show_source``, each instruction whose ``source``
    differs from the previous one is preceded by a ``; <source>`` line, as bpftool
    does with BTF line info.
    """
    if isinstance(insns, (bytes, bytearray)):
        insns = decode(insns)
    lines: list[str] = []
    last_source: str | None = None
    for insn, slot in zip(insns, slot_offsets(insns), strict=True):
        if show_source and insn.source and insn.source != last_source:
            lines.append(f"; {insn.source}")
            last_source = insn.source
        lines.append(f"{slot: 4d}: {format_instruction(insn, helper_names)}")
    return "\n".join(lines)
