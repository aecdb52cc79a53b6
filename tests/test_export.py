"""bpfkit export: the YAML subset parser, config validation, text format, decoders, and the
exporter reading real maps in-process."""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest

from bpfkit.export.config import ConfigError, parse_config
from bpfkit.export.decoders import SKIP, DecoderContext, make_decoder
from bpfkit.export.textformat import MetricFamily, format_value, render
from bpfkit.export.yamlite import YamlError, line_of, loads

CONFIGS = Path(__file__).resolve().parent.parent / "src" / "bpfkit" / "export" / "configs"

# ----------------------------------------------------------------------------- yamlite


def test_yaml_subset() -> None:
    doc = loads(textwrap.dedent("""\
        # a comment
        ---
        a: 1            # trailing comment
        b: "x # not a comment"
        c: 'it''s'
        d: [1, 0x10, "two", {k: v}]
        e:
          - x
          - y: 2
            z: [true, false, null, ~, 1.5]
        f: |
          line one
          line two
        g: >
          folded
          text
        h:
        - first
        "quoted key": "\\t\\u00e9"
        """), "t.yaml")
    assert doc["a"] == 1 and doc["b"] == "x # not a comment" and doc["c"] == "it's"
    assert doc["d"] == [1, 16, "two", {"k": "v"}]
    assert doc["e"] == ["x", {"y": 2, "z": [True, False, None, None, 1.5]}]
    assert doc["f"] == "line one\nline two\n" and doc["g"] == "folded text\n"
    assert doc["h"] == ["first"] and doc["quoted key"] == "\t\u00e9"
    assert line_of(doc, "a") == 3 and line_of(doc, "e") == 7
    assert line_of(doc["e"], 1) == 9 and line_of(doc["e"][1], "z") == 10


@pytest.mark.parametrize("text,line,needle", [
    ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
    ("a: [1, 2\n", 1, "unterminated flow"),
    ("a: 'x\n", 1, "unterminated quoted"),
    ("a:\n\tb: 1\n", 2, "tabs"),
    ("a: &anchor 1\n", 1, "anchors"),
    ("a: b: c\n", 1, "own line"),
    ("a:\n  - x\n  y: 1\n", 3, "list item"),
    ("a: 1\n  b: 2\n", 2, "indentation"),
    ('a: "\\q"\n', 1, "escape"),
    ("a: 1\n---\nb: 2\n", 2, "multiple"),
])
def test_yaml_errors_name_the_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(YamlError) as ei:
        loads(text, "bad.yaml")
    assert ei.value.line == line
    assert f"bad.yaml:{line}:" in str(ei.value) and needle in str(ei.value)


def test_yaml_never_raises_stray_errors() -> None:
    import random
    rnd = random.Random(7)
    alphabet = "ab: -[]{},'\"#|>\n  \t&*!0x1"
    for _ in range(3000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        try:
            loads(text)
        except YamlError:
            pass


# ----------------------------------------------------------------------------- config

GOOD = """\
objects:
  - object: prog.bpf.o
    constants: {target_tgid: 5}
    probes:
      - program: a
        fallbacks: [b]
        ifname: ${IFACE:-eth9}
        direction: egress
    metrics:
      - name: things
        type: counter
        help: Things
        map: counts
        labels:
          - name: what
            field: key.what
            decoders: [uint, {name: static_map, map: {1: one}}]
          - name: raw
            offset: 0
            size: 4
      - name: sizes
        type: histogram
        map: hist
        buckets: {type: exp2, max: 10, sum_bucket: 11}
"""


def test_config_good() -> None:
    cfg = parse_config(GOOD, "good.yaml", "/base", env={})
    (o,) = cfg.objects
    assert o.path == "/base/prog.bpf.o" and o.name == "prog" and o.constants == {"target_tgid": 5}
    assert o.probes is not None and o.probes[0].attach == {"ifname": "eth9", "direction": "egress"}
    assert o.probes[0].fallbacks == ["b"]
    things, sizes = o.metrics
    assert things.name == "things_total"  # counters get _total
    assert things.labels[0].decoders[1].options == {"map": {1: "one"}}
    assert things.labels[1].offset == 0 and things.labels[1].size == 4
    assert sizes.buckets is not None and sizes.buckets.upper_bound(3) == 8.0
    assert parse_config(GOOD, env={"IFACE": "veth0"}).objects[0].probes[0].attach["ifname"] \
        == "veth0"  # type: ignore[index]


def _err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse_config(text, "c.yaml", "/", env={})
    return ei.value


@pytest.mark.parametrize("patch,line,needle", [
    (("type: counter", "type: countr"), 11, "unknown metric type 'countr'"),
    (("help: Things", "hlp: Things"), 12, "unknown key 'hlp'"),
    (("[uint, {name:", "[uint8, {name:"), 17, "unknown decoder 'uint8'"),
    (("name: what", "name: 'bad-name'"), 15, "not a valid label name"),
    (("name: things", "name: 'bad name'"), 10, "not a valid Prometheus metric name"),
    (("direction: egress", "direction: sideways"), 8, "ingress or egress"),
    (("type: exp2, max: 10", "type: exp3, max: 10"), 24, "unknown bucket type"),
    (("max: 10, sum_bucket: 11", "max: 10, sum_bucket: 3"), 24, "outside min..max"),
    (("size: 4", "size: four"), 20, "expected an integer"),
    (("${IFACE:-eth9}", "${IFACE}"), 7, "IFACE is not set"),
    (("object: prog.bpf.o", "object: prog.txt"), 2, "neither a BPF object"),
    (("name: sizes", "name: things_total"), 21, "defined twice"),
    (("buckets: {type: exp2, max: 10, sum_bucket: 11}", "labels: []"), 21, "needs 'buckets'"),
])
def test_config_errors_name_key_and_line(patch: tuple[str, str], line: int, needle: str) -> None:
    text = GOOD.replace(*patch)
    assert text != GOOD
    e = _err(text)
    assert needle in str(e), str(e)
    assert e.line == line, str(e)
    assert str(e).startswith(f"c.yaml:{line}: ")


def test_config_error_key_paths() -> None:
    e = _err(GOOD.replace("type: counter", "type: [counter]"))
    assert e.key == "objects[0].metrics[0].type" and "expected a string" in str(e)
    e = _err("object: x.bpf.o\nmetrics:\n  - name: m\n    type: gauge\n")
    assert "missing required key 'map'" in str(e) and e.line == 3
    e = _err("")
    assert "empty" in str(e)
    e = _err("objects: []\n")
    assert "no objects" in str(e)


def test_builtin_configs_are_valid() -> None:
    names = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert {"syscalls.yaml", "execs.yaml", "tcp_connects.yaml", "write_sizes.yaml",
            "packets.yaml"} <= set(names)
    from bpfkit.export.config import load_config
    for n in names:
        cfg = load_config(str(CONFIGS / n))
        for o in cfg.objects:
            assert os.path.exists(o.path), o.path


# ----------------------------------------------------------------------------- text format


def test_text_format() -> None:
    c = MetricFamily("reqs_total", "counter", 'Requests "quoted" \\ and\nnewline')
    c.add({"path": 'a"b\\c\nd'}, 3)
    c.add({}, 1.5)
    g = MetricFamily("temp", "gauge")
    g.add({"x": "y"}, float("nan"))
    g.add({"x": "z"}, float("-inf"))
    h = MetricFamily("lat", "histogram", "Latency")
    h.add_histogram({"op": "r"}, [(4.0, 2), (1.0, 1), (2.0, 0), (float("inf"), 5)], 42.5)
    assert render([c, g, h]) == (
        '# HELP reqs_total Requests "quoted" \\\\ and\\nnewline\n'
        "# TYPE reqs_total counter\n"
        'reqs_total{path="a\\"b\\\\c\\nd"} 3\n'
        "reqs_total 1.5\n"
        "# TYPE temp gauge\n"
        'temp{x="y"} NaN\n'
        'temp{x="z"} -Inf\n'
        "# HELP lat Latency\n"
        "# TYPE lat histogram\n"
        'lat_bucket{op="r",le="1"} 1\n'
        'lat_bucket{op="r",le="2"} 1\n'
        'lat_bucket{op="r",le="4"} 3\n'
        'lat_bucket{op="r",le="+Inf"} 8\n'
        'lat_sum{op="r"} 42.5\n'
        'lat_count{op="r"} 8\n')
    assert format_value(1e20) == "1e+20" and format_value(0.25) == "0.25"
    assert format_value(float("inf")) == "+Inf" and format_value(7) == "7"


# ----------------------------------------------------------------------------- decoders


def _dec(name: str, **opts):  # type: ignore[no-untyped-def]
    return make_decoder(name, opts, DecoderContext())


def test_decoders() -> None:
    assert _dec("inet_ip")(bytes([127, 0, 0, 1])) == "127.0.0.1"
    assert _dec("inet_ip")([0] * 10 + [255, 255, 10, 1, 2, 3]) == "10.1.2.3"
    assert _dec("inet_ip")(socket.inet_pton(socket.AF_INET6, "2001:db8::1")) == "2001:db8::1"
    assert _dec("inet_ip")(0x0100007F) == "127.0.0.1"  # a __be32 read little-endian
    assert _dec("port")(0x5000) == "80" and _dec("port", byte_order="host")(80) == "80"
    assert _dec("errno")(2) == "ENOENT" and _dec("errno")(-13) == "EACCES"
    assert _dec("syscall")(0) == "read" and _dec("syscall")(257) == "openat"
    assert _dec("syscall")(100000) == "syscall_100000"
    assert _dec("majorminor")((8 << 20) | 1) == "8:1"
    assert _dec("string")(b"bash\0junk") == "bash" and _dec("string")("sh\0") == "sh"
    assert _dec("uint")(b"\x01\x02") == "513" and _dec("int")(b"\xff\xff") == "-1"
    assert _dec("hex")(255) == "0xff"
    sm = _dec("static_map", map={1: "one"}, default="other")
    assert sm(1) == "one" and sm(2) == "other"
    assert _dec("static_map", map={1: "one"}, allow_unknown=False)(2) is SKIP
    assert _dec("regexp", regexp="^wr")("write") == "write"
    assert _dec("regexp", regexps=["^wr", "^re"])("open") is SKIP
    assert _dec("ifname")(socket.if_nametoindex("lo")) == "lo"
    assert _dec("ifname")(999999) == "ifindex999999"
    assert _dec("cgroup")(10 ** 15).startswith("unknown_cgroup_id:")


def test_cgroup_decoder_finds_own_cgroup() -> None:
    from bpfkit.attach.cgroup import cgroup2_mount
    with open("/proc/self/cgroup") as f:
        rel = f.read().strip().rpartition(":")[2]
    ino = os.stat(os.path.join(cgroup2_mount(), rel.lstrip("/"))).st_ino
    assert _dec("cgroup")(ino) == rel


# ----------------------------------------------------------------------------- in-process


@pytest.mark.requires_root
def test_exporter_reads_maps(tmp_path: Path) -> None:
    from bpfkit.export import Exporter
    from bpfkit.export.config import load_config
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(textwrap.dedent(f"""\
        objects:
          - object: {CONFIGS / 'write_sizes.bpf.c'}
            constants: {{target_tgid: {os.getpid()}}}
            metrics:
              - name: w
                type: histogram
                map: write_size_hist
                buckets: {{type: exp2, min: 2, max: 12, sum_bucket: 33}}
              - name: w_slots
                type: gauge
                map: write_size_hist
                labels:
                  - name: slot
                    offset: 0
                    size: 4
                  - name: only_12
                    decoders: [{{name: regexp, regexp: "^12$"}}]
          - object: {CONFIGS / 'syscalls.bpf.c'}
            constants: {{target_tgid: {os.getpid()}}}
            metrics:
              - name: calls
                type: counter
                map: syscall_counts
                labels:
                  - name: syscall
                    decoders: [syscall, {{name: regexp, regexp: "^(write|getppid)$"}}]
        """))
    cfg = load_config(str(cfg_path))
    with Exporter(cfg, bpf_stats=True) as ex:
        fd = os.open("/dev/null", os.O_WRONLY)
        try:
            for _ in range(4):
                os.write(fd, b"y" * 3000)  # bucket 12 (<= 4096)
            os.write(fd, b"z")             # bucket 0: below min, counted in the first
            os.write(fd, b"z" * 100000)    # bucket 17: above max, only in +Inf
        finally:
            os.close(fd)
        for _ in range(3):
            os.getppid()
        fams = {f.name: f for f in ex.collect()}
    h = {(s.name, s.labels.get("le")): s.value for s in fams["w"].samples}
    assert h[("w_bucket", "4")] >= 1
    assert h[("w_bucket", "4096")] - h[("w_bucket", "2048")] >= 4
    assert h[("w_bucket", "+Inf")] - h[("w_bucket", "4096")] >= 1
    assert h[("w_count", None)] == h[("w_bucket", "+Inf")]
    assert h[("w_sum", None)] >= 4 * 3000 + 1 + 100000
    assert [s.labels for s in fams["w_slots"].samples] == [{"slot": "12", "only_12": "12"}]
    calls = {s.labels["syscall"]: s.value for s in fams["calls_total"].samples}
    assert set(calls) <= {"write", "getppid"}
    assert calls["getppid"] == 3 and calls["write"] >= 6
    assert fams["bpfkit_export_programs_loaded"].samples[0].value == 1
    assert sum(s.value for s in fams["bpfkit_export_decode_errors_total"].samples) == 0
    runs = {s.labels["program"]: s.value for s in
            fams["bpfkit_export_program_run_count_total"].samples}
    assert runs["on_write"] >= 6


@pytest.mark.requires_root
def test_exporter_config_errors_at_load(tmp_path: Path) -> None:
    from bpfkit.export import Exporter
    from bpfkit.export.config import load_config
    p = tmp_path / "cfg.yaml"
    p.write_text(f"object: {CONFIGS / 'syscalls.bpf.c'}\nmetrics:\n  - name: x\n"
                 "    type: gauge\n    map: nosuchmap\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:3: map: object 'syscalls' has no map "
                                          r"'nosuchmap'"):
        Exporter(load_config(str(p))).start()
    p.write_text(f"object: {CONFIGS / 'syscalls.bpf.c'}\nmetrics:\n  - name: x\n"
                 "    type: gauge\n    map: syscall_errors\n    labels:\n      - name: a\n"
                 "        field: nosuch\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:7: .*no field 'nosuch' \(fields: nr, err\)"):
        Exporter(load_config(str(p))).start()
    with pytest.raises(ConfigError, match="no loaded object has a global variable named "
                                          "'nope'"):
        Exporter(load_config(str(CONFIGS / "syscalls.yaml")), constants={"nope": 1}).start()


def test_cli_check_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.cli import main
    assert main(["export", "--list"]) == 0
    assert "write_sizes" in capsys.readouterr().out
    assert main(["export", "--check", "syscalls", "execs"]) == 0
    assert "syscalls.yaml: ok" in capsys.readouterr().out
    assert main(["export", "--check", "/nonexistent.yaml"]) == 1
    assert "cannot read YAML file /nonexistent.yaml" in capsys.readouterr().err


@pytest.mark.requires_root
def test_exporter_exposes_events_lost(tmp_path: Path) -> None:
    """An object whose 4 KiB ring buffer nobody reads: every refused record is counted and
    exported as bpfkit_export_events_lost_total."""
    from bpfkit.export import Exporter
    from bpfkit.export.config import load_config
    src = Path(__file__).resolve().parent / "bpf" / "lossy.bpf.c"
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(textwrap.dedent(f"""\
        objects:
          - object: {src}
            constants: {{targ_pid: {os.getpid()}}}
            metrics: []
        """))
    with Exporter(load_config(str(cfg_path))) as ex:
        for _ in range(300):
            os.getppid()
        fams = {f.name: f for f in ex.collect()}
        made = ex.objects[0].manager.collection.variables["made"].value
    (s,) = fams["bpfkit_export_events_lost_total"].samples
    # the ring holds 56 records of 72 bytes: the rest of the 300 were refused
    assert made == 300 and 200 < s.value < 300, s.value
