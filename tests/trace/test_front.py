"""The pure front end: parser and type checker, with canned tracepoint formats (no
kernel, no privileges), their caret errors, and a bounded fuzz of both."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfkit.errors import BpfkitError
from bpfkit.trace import TraceError, TraceSyntaxError, TraceTypeError, parse
from bpfkit.trace import ast as A
from bpfkit.trace.check import TpField
from bpfkit.trace.runtime import compile_program, parse_format

OPENAT = """name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;
"""
EXEC = """format:
\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;
"""


class FakeEnv:
    """Two tracepoints, no BTF, one kernel symbol."""

    formats = {("syscalls", "sys_enter_openat"): parse_format(OPENAT),
               ("sched", "sched_process_exec"): parse_format(EXEC)}

    def tracepoint_fields(self, category: str, name: str) -> list[TpField] | None:
        return self.formats.get((category, name))

    def btf(self) -> None:
        return None

    def kaddr(self, name: str) -> int | None:
        return 0xFFFFFFFF81000000 if name == "do_sys_open" else None

    def tracepoints(self) -> list[tuple[str, str]]:
        return sorted(self.formats)


def compile_(src: str, params: list[str] | None = None):  # type: ignore[no-untyped-def]
    return compile_program(src, FakeEnv(), params)


def test_format_file_fields() -> None:
    f = {x.name: x for x in parse_format(OPENAT)}
    assert (f["filename"].ctype, f["filename"].offset, f["filename"].size) == \
        ("const char *", 24, 8)
    e = {x.name: x for x in parse_format(EXEC)}
    assert e["filename"].data_loc and e["comm"].array == 16 and e["pid"].signed


def test_parse_shapes() -> None:
    p = parse('uretprobe:/bin/bash:readline, BEGIN /pid > 1 && $1 == 2/ '
              '{ @x[comm, 1] = count(); $y = @x[comm, 1] ? "a" : "b"; if (1) { exit() } '
              'else { @h = hist(2 / 1); } }')
    pr = p.probes[0]
    assert [a.text for a in pr.attach_points] == ["uretprobe:/bin/bash:readline", "BEGIN"]
    assert isinstance(pr.predicate, A.Binop) and pr.predicate.op == "&&"
    assert isinstance(pr.body[0], A.AssignMap) and len(pr.body[0].target.keys) == 2
    assert isinstance(pr.body[2], A.If) and pr.body[2].other


def test_predicate_with_division() -> None:
    p = parse("BEGIN / 10 / 2 == 5 / { @ = count(); }")
    assert isinstance(p.probes[0].predicate, A.Binop)


@pytest.mark.parametrize("src,where,msg", [
    ("BEGIN { @x = ; }", "             ^", "expected an expression"),
    ('BEGIN { printf("x) }', "               ^~~~~", "unterminated string"),
    ("BEGIN { @x = 1 ", "               ^", "found the end of the program"),
    ("BEGIN @x = 1; }", "      ^", "expected '{'"),
])
def test_syntax_errors_have_a_caret(src: str, where: str, msg: str) -> None:
    with pytest.raises(TraceSyntaxError) as ei:
        parse(src)
    text = str(ei.value)
    assert msg in text and "stdin:1:" in text
    if where:
        assert where in text.splitlines()


@pytest.mark.parametrize("src,msg", [
    ("tracepoint:syscalls:sys_enter_openat { @ = args->filenme; }",
     "has no field 'filenme' (did you mean filename?)"),
    ("tracepoint:syscalls:sys_enter_nope { @ = count(); }", "unknown tracepoint"),
    ("kprobes:foo { @ = count(); }", "unknown probe type 'kprobes' (did you mean kprobe"),
    ("BEGIN { @ = cnt(); }", "unknown function cnt() (did you mean count?)"),
    ("BEGIN { @ = pdi; }", "unknown builtin 'pdi' (did you mean pid"),
    ("BEGIN { @ = retval; }", "retval is only available"),
    ("BEGIN { @x = 1; @x = \"s\"; }", "map @x holds"),
    ('BEGIN { printf("%d %d\\n", 1); }', "2 conversions but 1 argument"),
    ("BEGIN { @x = $y; }", "variable $y is used before"),
    ("BEGIN { count(); }", "must be assigned to a map"),
    ("BEGIN { @ = lhist(1, 10, 0, 1); }", "lhist(value, min, max, step)"),
    ("BEGIN { @ = kaddr(\"nope\"); }", "no kernel symbol"),
    ("BEGIN { @ = curtask->pid; }", "needs the kernel's BTF"),
    ('BEGIN { @ = "a" + 1; }', "needs integers"),
])
def test_type_errors(src: str, msg: str) -> None:
    with pytest.raises(TraceTypeError) as ei:
        compile_(src)
    text = str(ei.value)
    assert msg in text, text
    assert "^" in text


def test_types_of_tracepoint_fields() -> None:
    c = compile_("tracepoint:syscalls:sys_enter_openat { @[str(args->filename)] = "
                 "sum(args->dfd); } tracepoint:sched:sched_process_exec "
                 "{ @e[str(args->filename), args->comm] = count(); }")
    assert str(c.maps["@"].key) == "string[64]" and c.maps["@"].value.kind == "sum"
    assert str(c.maps["@e"].key) == "(string[64], string[16])"
    assert c.maps["@e"].key is not None


def test_wildcards_expand_per_tracepoint() -> None:
    c = compile_("tracepoint:*:* { @[probe] = count(); }")
    assert sorted(u.name for u in c.units) == ["tracepoint:sched:sched_process_exec",
                                               "tracepoint:syscalls:sys_enter_openat"]


def test_positional_parameters() -> None:
    c = compile_("BEGIN { @a = $1; @b = $2; }", ["5", "text"])
    assert c.maps["@a"].value.kind == "int" and c.maps["@b"].value.kind == "str"


_ATOMS = ["1", "0x10", "pid", "comm", "$1", "@m", "@m[1]", '"s"', "args->flags", "nsecs",
          "(int32)2", "str(args->filename)", "-3", "!1", "~7"]
_OPS = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", ">", "&&", "||"]


@st.composite
def _expr(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(st.sampled_from(_ATOMS))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return f"({draw(_expr(depth + 1))} {draw(st.sampled_from(_OPS))} {draw(_expr(depth + 1))})"
    if kind == 1:
        return f"{draw(_expr(depth + 1))} ? {draw(_expr(depth + 1))} : {draw(_expr(depth + 1))}"
    return f"count({draw(_expr(depth + 1))})"


@settings(max_examples=300, deadline=None)
@given(_expr(), st.sampled_from(["@x = {};", "@x[{}] = count();", "$v = {}; @y = $v;",
                                 'printf("%d\\n", {});', "if ({}) {{ @z = 1; }}"]))
def test_fuzz_generated_programs(e: str, stmt: str) -> None:
    src = "tracepoint:syscalls:sys_enter_openat { @m[1] = 1; " + stmt.format(e) + " }"
    try:
        compile_(src, ["3"])
    except TraceError as err:
        assert "^" in str(err)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("BEGIN{}()[]@$/;:,\"'\\ -+*=<>!&|?x1_.\n")
                                + ["tracepoint", "printf", "count", "args->", "if", "else"]),
                max_size=40).map("".join))
def test_fuzz_text_raises_only_bpfkit_errors(src: str) -> None:
    try:
        compile_(src)
    except BpfkitError:
        pass
