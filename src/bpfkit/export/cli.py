"""``bpfkit export CONFIG.yaml...``: run the Prometheus exporter.

Registered by appending to :data:`bpfkit.cli._EXTENSIONS` (imported through the module
list in ``bpfkit.cli._load_extensions``), so the core CLI does not import the exporter.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from .. import cli

BUILTIN_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def _parse_const(text: str) -> tuple[str, Any]:
    from ..spec import ConstText
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: want NAME=VALUE")
    return name, ConstText(value)  # parsed by the variable's BTF type when it is set


def _resolve(path: str) -> str:
    """A config path, or the name of a built-in config (``syscalls`` -> configs/syscalls.yaml)."""
    if os.path.exists(path):
        return path
    for cand in (os.path.join(BUILTIN_CONFIGS, path), os.path.join(BUILTIN_CONFIGS,
                                                                   path + ".yaml")):
        if os.path.exists(cand):
            return cand
    return path


def builtin_configs() -> list[str]:
    return sorted(n[:-5] for n in os.listdir(BUILTIN_CONFIGS) if n.endswith(".yaml"))


def cmd_export(a: argparse.Namespace) -> int:
    from .collector import Exporter
    from .config import load_config
    from .server import MetricsServer, builtin_renderer, client_renderer, drop_privileges
    from .textformat import render

    if a.config_dir or a.config_names:
        return _cmd_ebpf_exporter(a)
    if a.list:
        for n in builtin_configs():
            print(n)
        return 0
    if not a.config:
        print("bpfkit export: name at least one config (or a built-in: "
              f"{', '.join(builtin_configs())})", file=sys.stderr)
        return cli.EXIT_USAGE
    configs = [load_config(_resolve(p), use_pyyaml=a.pyyaml) for p in a.config]
    if a.check:
        for c in configs:
            print(f"{c.source}: ok ({len(c.objects)} objects, {len(c.metrics())} metrics)")
        return 0
    renderer: Any = builtin_renderer
    if a.backend in ("auto", "prometheus_client"):
        r = client_renderer()
        if r is None and a.backend == "prometheus_client":
            print("bpfkit export: prometheus_client is not installed (pip install "
                  "'bpfkit[prometheus]')", file=sys.stderr)
            return cli.EXIT_ERROR
        renderer = r or builtin_renderer
    exporter = Exporter(configs, constants=dict(a.const or []), bpf_stats=a.bpf_stats)

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    prev = signal.signal(signal.SIGTERM, on_term)
    server = None
    try:
        exporter.start()
        for lo in exporter.objects:
            for st in lo.manager.report():
                state = f"attached to {st.hook or '?'}" if st.attached else \
                    f"NOT attached: {st.reason}"
                print(f"bpfkit export: {lo.cfg.name}: {st.program or st.requested}: {state}",
                      file=sys.stderr)
        if a.once:
            sys.stdout.write(render(exporter.collect()))
            return 0
        server = MetricsServer(exporter.collect, a.listen, renderer=renderer)
        if a.user:
            drop_privileges(a.user)
        print(f"bpfkit export: serving {server.url}", file=sys.stderr, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.close()
        exporter.close()
        signal.signal(signal.SIGTERM, prev)
    return 0


def _cmd_ebpf_exporter(a: argparse.Namespace) -> int:
    """ebpf_exporter's command line: --config.dir + --config.names, its yaml format."""
    from .ebpf_exporter import EbpfExporter, load_configs, render_go
    from .server import MetricsServer, drop_privileges

    if not (a.config_dir and a.config_names):
        print("bpfkit export: --config.dir and --config.names go together (ebpf_exporter's "
              "format: DIR/NAME.yaml beside DIR/NAME.bpf.o)", file=sys.stderr)
        return cli.EXIT_USAGE
    if a.config:
        print("bpfkit export: give either bpfkit configs or --config.dir/--config.names, "
              "not both", file=sys.stderr)
        return cli.EXIT_USAGE
    configs = load_configs(a.config_dir, a.config_names)
    if a.check:
        for c in configs:
            print(f"{c.source}: ok ({len(c.metrics())} metrics)")
        return 0
    exporter = EbpfExporter(configs, strict=a.config_strict, constants=dict(a.const or []))

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    prev = signal.signal(signal.SIGTERM, on_term)
    server = None
    try:
        exporter.start()
        if a.once:
            sys.stdout.write(render_go(exporter.collect()))
            return 0
        listen = a.web_listen_address or a.listen
        if listen.startswith(":"):
            listen = "0.0.0.0" + listen
        server = MetricsServer(exporter.collect, listen,
                               renderer=lambda fams: (render_go(fams).encode(),
                                                      "text/plain; version=0.0.4; "
                                                      "charset=utf-8"))
        if a.user:
            drop_privileges(a.user)
        print(f"bpfkit export: serving {server.url}", file=sys.stderr, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.close()
        exporter.close()
        signal.signal(signal.SIGTERM, prev)
    return 0


def _register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    if "export" in sub.choices:
        return
    ex = add(sub, "export", cmd_export, "serve BPF map contents as Prometheus metrics "
             "(configs name objects, probes and metrics; see docs/export.md)")
    ex.add_argument("config", nargs="*", help="config file(s), or built-in config names "
                    "(--list)")
    ex.add_argument("--listen", default="127.0.0.1:9435", metavar="HOST:PORT",
                    help="address to serve /metrics on (default 127.0.0.1:9435)")
    ex.add_argument("--const", "-C", action="append", type=_parse_const, metavar="NAME=VALUE",
                    help="set a const volatile global in every object that has it "
                         "(e.g. target_tgid=1234)")
    ex.add_argument("--user", metavar="NAME", help="after loading and attaching, drop to this "
                    "user (the BPF fds stay usable)")
    ex.add_argument("--bpf-stats", action="store_true", help="turn on the kernel's BPF "
                    "run-time stats while running, to export run counts and run times")
    ex.add_argument("--check", action="store_true", help="only validate the config(s)")
    ex.add_argument("--once", action="store_true", help="load, attach, print the metrics once "
                    "and exit")
    ex.add_argument("--list", action="store_true", help="list the built-in configs")
    ex.add_argument("--backend", choices=("auto", "builtin", "prometheus_client"),
                    default="auto", help="text format writer (auto: prometheus_client when "
                    "installed)")
    ee = ex.add_argument_group("ebpf_exporter compatibility (its config format and flags)")
    ee.add_argument("--config.dir", dest="config_dir", metavar="DIR",
                    help="directory of NAME.yaml + NAME.bpf.o pairs in ebpf_exporter's format")
    ee.add_argument("--config.names", dest="config_names", metavar="A,B",
                    help="comma-separated config names to load from --config.dir")
    ee.add_argument("--config.strict", dest="config_strict", action="store_true",
                    help="fail when a program does not attach (default: log it and export "
                         "ebpf_exporter_ebpf_program_attached 0)")
    ee.add_argument("--web.listen-address", dest="web_listen_address", metavar="[HOST]:PORT",
                    help="ebpf_exporter's spelling of --listen (e.g. :9435)")
    ex.add_argument("--pyyaml", action="store_true", help="parse configs with PyYAML when "
                    "installed (default: bpfkit's own YAML subset parser)")


if _register not in cli._EXTENSIONS:
    cli._EXTENSIONS.append(_register)
