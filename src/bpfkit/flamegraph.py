"""A small flame graph writer: folded stacks in, a self-contained SVG out.

Why our own: the classic ``flamegraph.pl`` is Perl and not installed everywhere; a
profiler that ships as pure Python should hand the user a file a browser opens.  Layout
follows Brendan Gregg's flame graphs: x is the share of samples (alphabetical order, not
time), y the stack depth, root at the bottom; each box has a tooltip with its samples.
Clicking a box zooms into it (a few lines of inline script; the SVG works without it).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import ParseError

__all__ = ["Frame", "build_tree", "parse_folded", "render_svg", "write_svg"]


@dataclass
class Frame:
    """One box: a function at a depth, with the samples of every stack through it."""

    name: str
    count: int = 0
    children: dict[str, Frame] = field(default_factory=dict)

    def child(self, name: str) -> Frame:
        c = self.children.get(name)
        if c is None:
            c = self.children[name] = Frame(name)
        return c

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children.values()), default=0)


def parse_folded(text: str) -> list[tuple[list[str], int]]:
    """``a;b;c 12`` lines (root first) into (frames, count); blank lines are skipped."""
    out: list[tuple[list[str], int]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        stack, sep, cnt = line.rpartition(" ")
        if not sep or not stack:
            raise ParseError(f"folded stacks line {n}: want 'frame;frame;... count', "
                             f"got {line[:60]!r}")
        try:
            count = int(cnt)
        except ValueError:
            raise ParseError(f"folded stacks line {n}: count {cnt!r} is not an integer") from None
        if count < 0:
            raise ParseError(f"folded stacks line {n}: negative count {count}")
        out.append((stack.split(";"), count))
    return out


def build_tree(stacks: Iterable[tuple[Sequence[str], int]] | Mapping[str, int],
               root: str = "all") -> Frame:
    """A frame tree from (root-first frames, count) pairs or a {folded line: count} map."""
    items: Iterable[tuple[Sequence[str], int]]
    if isinstance(stacks, Mapping):
        items = [(k.split(";"), v) for k, v in stacks.items()]
    else:
        items = stacks
    top = Frame(root)
    for frames, count in items:
        if count <= 0:
            continue
        top.count += count
        node = top
        for f in frames:
            node = node.child(f or "[unknown]")
            node.count += count
    return top


def _color(name: str) -> str:
    """A stable warm colour per function (kernel frames ``_[k]`` in orange, like perl's)."""
    h = hashlib.blake2s(name.encode(), digest_size=3).digest()
    if name.endswith("_[k]"):
        return f"rgb({200 + h[0] % 55},{100 + h[1] % 60},{h[2] % 40})"
    return f"rgb({205 + h[0] % 50},{h[1] % 180},{h[2] % 55})"


_SCRIPT = """
function fgzoom(e){var g=e.currentTarget,x=+g.getAttribute('data-x'),w=+g.getAttribute('data-w'),
y=+g.getAttribute('data-y'),s=document.querySelectorAll('g.f');for(var i=0;i<s.length;i++){
var n=s[i],nx=+n.getAttribute('data-x'),nw=+n.getAttribute('data-w'),ny=+n.getAttribute('data-y');
var inside=nx>=x-1e-9&&nx+nw<=x+w+1e-9,below=ny>=y&&nx<=x&&nx+nw>=x+w;
n.style.display=(inside||below)?'':'none';var sc=W/w,X=(inside?(nx-x)*sc:0)+PAD,
WW=inside?nw*sc:W;var r=n.querySelector('rect'),t=n.querySelector('text');
r.setAttribute('x',X);r.setAttribute('width',Math.max(WW-0.5,0.1));t.setAttribute('x',X+3);
var lab=n.getAttribute('data-n'),m=Math.floor((WW-6)/7);t.textContent=m<3?'':(lab.length>m?
lab.slice(0,m-2)+'..':lab);}}
function fgreset(){var s=document.querySelectorAll('g.f');for(var i=0;i<s.length;i++){
s[i].style.display='';}var g=document.querySelector('g.f');if(g)fgzoom({currentTarget:g});}
"""


def _label(name: str, width: float) -> str:
    room = int((width - 6) // 7)
    if room < 3:
        return ""
    return name if len(name) <= room else name[: room - 2] + ".."


def render_svg(stacks: Iterable[tuple[Sequence[str], int]] | Mapping[str, int] | Frame, *,
               title: str = "Flame Graph", width: int = 1200, frame_height: int = 16,
               min_width: float = 0.1, subtitle: str = "") -> str:
    """The SVG text of a flame graph of ``stacks`` (root-first frames with counts)."""
    tree = stacks if isinstance(stacks, Frame) else build_tree(stacks)
    pad, top_pad, bottom_pad = 10, 50 if subtitle else 36, 20
    inner = width - 2 * pad
    depth = tree.depth()
    height = top_pad + depth * frame_height + bottom_pad
    total = tree.count or 1
    boxes: list[str] = []

    def walk(node: Frame, x: float, level: int) -> None:
        w = inner * node.count / total
        if w < min_width:
            return
        y = height - bottom_pad - (level + 1) * frame_height
        pct = 100.0 * node.count / total
        name = html.escape(node.name, quote=True)
        tip = html.escape(f"{node.name} ({node.count} samples, {pct:.2f}%)")
        boxes.append(
            f'<g class="f" data-n="{name}" data-x="{x - pad:.3f}" data-w="{w:.3f}" '
            f'data-y="{level}" onclick="fgzoom(evt)"><title>{tip}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{max(w - 0.5, 0.1):.2f}" '
            f'height="{frame_height - 1}" fill="{_color(node.name)}" rx="2"/>'
            f'<text x="{x + 3:.2f}" y="{y + frame_height - 4}">'
            f'{html.escape(_label(node.name, w))}</text></g>')
        cx = x
        for c in sorted(node.children.values(), key=lambda f: f.name):
            walk(c, cx, level + 1)
            cx += inner * c.count / total

    walk(tree, float(pad), 0)
    sub = (f'<text x="{width / 2}" y="40" text-anchor="middle" class="s">'
           f'{html.escape(subtitle)}</text>') if subtitle else ""
    return (
        f'<?xml version="1.0" standalone="no"?>\n'
        f'<svg version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">\n'
        f'<style>text{{font-family:Verdana,sans-serif;font-size:12px;fill:#000}}'
        f'.t{{font-size:17px}}.s{{font-size:12px;fill:#555}}g.f{{cursor:pointer}}'
        f'g.f:hover rect{{stroke:#000;stroke-width:0.5}}</style>\n'
        f'<script type="text/ecmascript"><![CDATA[var W={inner},PAD={pad};{_SCRIPT}]]>'
        f'</script>\n'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f4ec"/>\n'
        f'<text x="{width / 2}" y="24" text-anchor="middle" class="t">{html.escape(title)}'
        f'</text>{sub}\n'
        f'<text x="{pad}" y="24" onclick="fgreset()" style="cursor:pointer">Reset zoom</text>\n'
        + "\n".join(boxes) + "\n</svg>\n")


def write_svg(path: str, stacks: Iterable[tuple[Sequence[str], int]] | Mapping[str, int] | Frame,
              **kw: object) -> None:
    """Write :func:`render_svg` output to ``path``."""
    svg = render_svg(stacks, **kw)  # type: ignore[arg-type]
    with open(path, "w", encoding="utf-8") as f:
        f.write(svg)
