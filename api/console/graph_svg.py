"""The trust graph drawn on the server as one SVG document: no script needed to
see it, nothing loaded from elsewhere.

The bridge sits in the centre; member roots (and recognised trusted lists)
on a ring around it, grouped by jurisdiction; a root's issuing CAs just
outside it. Cross- and reverse certificates are curves that each bend to
the left of their own direction, so the two between the same pair sit side
by side like the lanes of a road, each with its arrowhead near the member.
The colour (and, for the statuses a colour-blind reader could confuse, the
dash pattern) says the status; the legend says which is which, in English
or Chinese.

Two layouts: up to ``BOXES_UP_TO`` members, each node is a box with its name
and status and the policy mappings are written on the edges; above that,
nodes are dots with their names written outwards along the radius (so 60
members need only a 15-pixel slot each) and the mappings are in each edge's
tooltip (``<title>``). In both, every node and edge carries ``id``,
``data-kind`` and ``data-id`` (a member's enrollment id, a certificate's
serial, a reverse certificate's SHA-256, a list's id) for the console's
detail panel and for tests, and every text is escaped.

Ids and classes start with ``fg-``: the SVG is inlined into the console's
pages and must not collide with their own.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from bridge.federation_graph import Edge, FederationGraph, Node

BOXES_UP_TO = 16
EDGE_LABELS_UP_TO = 8

# The console's palette (static/console.css) for the four statuses its legend names.
COLOURS = {
    "active": "#1e7d32", "expiring": "#7b1fa2", "suspended": "#d08a00", "revoked": "#c62828",
    "superseded": "#8d96a3", "expired": "#5b6575", "pending": "#1f5fa8", "inactive": "#b8bfc9",
}
DASHES = {"suspended": "6 3", "pending": "2 3", "superseded": "1 3", "expired": "8 3 1 3", "inactive": "1 3"}
MEMBER_FILL = {"active": "#1e7d32", "suspended": "#d08a00", "revoked": "#c62828", "pending": "#1f5fa8",
               "withdrawn": "#8d96a3", "expired": "#8d96a3"}
ALWAYS_IN_LEGEND = ("active", "expiring", "suspended", "revoked")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Trust graph of the federation", "legend": "Legend", "bridge": "Bridge CA",
        "cross": "cross-certificate: bridge → member root (thick)", "reverse": "reverse certificate: member root → bridge (thin)",
        "issuing": "issuing CA under its root", "trust_list": "recognised trusted list", "lists": "TL", "list": "trusted list",
        "serial": "serial", "until": "valid until", "mappings": "policy mappings", "constraints": "name constraints",
        "status": "status", "members": "{n} members",
        "s.active": "active", "s.expiring": "expiring within {days} days", "s.suspended": "suspended", "s.revoked": "revoked",
        "s.superseded": "superseded (renewed)", "s.expired": "expired", "s.pending": "waiting for approval",
        "s.inactive": "no longer published", "s.withdrawn": "withdrawn",
        "k.cross": "cross-certificate", "k.reverse": "reverse certificate", "k.pending": "enrollment waiting for approval",
        "k.issuing": "issuing CA certificate", "k.recognition": "recognition of a trusted list",
    },
    "zh": {
        "title": "联盟信任关系图", "legend": "图例", "bridge": "桥CA",
        "cross": "交叉证书：桥CA → 成员根（粗线）", "reverse": "反向证书：成员根 → 桥CA（细线）",
        "issuing": "根下的签发CA", "trust_list": "已承认的可信列表", "lists": "列表", "list": "可信列表",
        "serial": "序列号", "until": "有效期至", "mappings": "策略映射", "constraints": "名称约束",
        "status": "状态", "members": "{n} 个成员",
        "s.active": "有效", "s.expiring": "{days} 天内到期", "s.suspended": "已暂停", "s.revoked": "已撤销",
        "s.superseded": "已被取代（已续期）", "s.expired": "已过期", "s.pending": "待审批",
        "s.inactive": "已停止发布", "s.withdrawn": "已退出",
        "k.cross": "交叉证书", "k.reverse": "反向证书", "k.pending": "待审批的加入申请",
        "k.issuing": "签发CA证书", "k.recognition": "对可信列表的承认",
    },
}

STYLE = """
.fg-edge{fill:none}.fg-edge .fg-line{fill:none;stroke-width:1.3}.fg-cross .fg-line{stroke-width:2.4}
.fg-edge .fg-hit{fill:none;stroke:transparent;stroke-width:9;pointer-events:stroke}
.fg-node text,.fg-node-label text,.fg-legend text,.fg-group text,.fg-edge text{font:12px system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;fill:#1d2430}
.fg-edge text{font-size:10.5px;fill:#3c4656;stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
.fg-node .fg-box{fill:#fff;stroke-width:2}.fg-node .fg-sub{font-size:10.5px;fill:#5b6575}
.fg-bridge .fg-box{fill:#16324f;stroke:#16324f}.fg-bridge text{fill:#fff;font-weight:600}
.fg-issuing_ca .fg-box{stroke:#8d96a3;stroke-width:1}.fg-trust_list .fg-box{fill:#eef4fb;stroke:#1f5fa8}
.fg-group path{fill:none;stroke:#c9d0d9;stroke-width:3}
.fg-group text{font-size:11px;font-weight:600;fill:#5b6575;stroke:#fff;stroke-width:3px;paint-order:stroke}
.fg-legend .fg-title{font-weight:600}
.fg-highlight .fg-line{stroke-width:4}.fg-highlight .fg-box,.fg-highlight circle{stroke:#1f5fa8;stroke-width:4}
"""


@dataclass
class _Box:
    """A node's place: centre, size, and shape ("rect" or "dot")."""

    x: float
    y: float
    w: float
    h: float
    shape: str = "rect"
    angle: float = 0.0  # radians, on the ring

    def overlaps(self, other: _Box, margin: float = 2.0) -> bool:
        return (abs(self.x - other.x) * 2 < self.w + other.w + 2 * margin
                and abs(self.y - other.y) * 2 < self.h + other.h + 2 * margin)

    def boundary(self, towards: tuple[float, float]) -> tuple[float, float]:
        """Where the ray from the centre towards ``towards`` leaves the shape."""
        dx, dy = towards[0] - self.x, towards[1] - self.y
        if dx == 0 and dy == 0:
            return self.x, self.y
        if self.shape == "dot":
            d = math.hypot(dx, dy)
            return self.x + dx / d * self.w / 2, self.y + dy / d * self.w / 2
        scale = min((self.w / 2) / abs(dx) if dx else math.inf, (self.h / 2) / abs(dy) if dy else math.inf)
        return self.x + dx * scale, self.y + dy * scale


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text_width(text: str, size: float) -> float:
    return sum(size if ord(ch) > 0x2E80 else size * 0.58 for ch in text)


def _fit(text: str, width: float, size: float) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _oid_pair(a: str, b: str) -> str:
    """``a → b`` without the arcs both share (the tooltip has them whole)."""
    pa, pb = a.split("."), b.split(".")
    common = 0
    while common < min(len(pa), len(pb)) - 1 and pa[common] == pb[common]:
        common += 1
    if common < 2:
        return f"{a} → {b}"
    return f"…{'.'.join(pa[common:])} → …{'.'.join(pb[common:])}"


def _split_quadratic(p0, c, p2, t):
    """De Casteljau: the quadratic curve (p0, c, p2) as two, split at ``t``."""
    def lerp(p, q):
        return p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t

    c1, c2 = lerp(p0, c), lerp(c, p2)
    return c1, lerp(c1, c2), c2


def _group_of(node: Node) -> str:
    """Members are grouped by jurisdiction; the lists make a group of their own."""
    return node.jurisdiction if node.kind == "member" else "\0lists"


class _Renderer:
    def __init__(self, graph: FederationGraph, lang: str, highlight: set[str]) -> None:
        self.graph = graph
        self.t = TEXT[lang]
        self.lang = lang
        self.highlight = highlight
        self.days = graph.expiring_days
        self.ring = [n for n in graph.nodes if n.kind in ("member", "trust_list")]
        self.boxes_mode = sum(1 for n in self.ring if n.kind == "member") <= BOXES_UP_TO
        self.boxes: dict[str, _Box] = {}
        self.out: list[str] = []
        self.label_ends: list[tuple[float, float]] = []  # where they end, for the picture's bounds

    # ---------------------------------------------------------------- words

    def status_word(self, status: str) -> str:
        return self.t.get(f"s.{status}", status).format(days=_n(self.days))

    def classes(self, item: Node | Edge, *extra: str) -> str:
        names = ["fg-node" if isinstance(item, Node) else "fg-edge", f"fg-{item.kind}", f"fg-{item.status}", *extra]
        if {item.id, item.key} & self.highlight:
            names.append("fg-highlight")
        return " ".join(names)

    # ---------------------------------------------------------------- layout

    def layout(self) -> None:
        groups: list[list[Node]] = []
        for node in self.ring:
            if not groups or _group_of(groups[-1][0]) != _group_of(node):
                groups.append([])
            groups[-1].append(node)
        self.groups = groups
        gap = 1.5 if len(groups) > 1 and not self.boxes_mode else 0.0
        slots = len(self.ring) + gap * len(groups)
        angles: dict[str, float] = {}
        position = gap / 2
        for members in groups:
            for node in members:
                angles[node.id] = -math.pi / 2 + 2 * math.pi * (position + 0.5) / max(slots, 1)
                position += 1
            position += gap
        self.angles = angles
        children: dict[str, list[Node]] = {}
        for node in self.graph.nodes:
            if node.kind == "issuing_ca" and node.parent in angles:
                children.setdefault(node.parent, []).append(node)
        self.children = children

        if self.boxes_mode:
            radius = 230.0
            for _attempt in range(40):
                self._place_boxes(radius)
                if not self._overlapping():
                    break
                radius *= 1.08
        else:
            # One slot of the ring holds a 12-pixel line of text at the labels' inner end.
            self.label_gap = 18 + 11 * max((len(c) for c in children.values()), default=0)
            radius = max(240.0, 15.5 * slots / (2 * math.pi) - self.label_gap)
            for _attempt in range(40):
                self._place_dots(radius)
                if not self._overlapping():
                    break
                radius *= 1.05
        self.radius = radius

    def _place_boxes(self, radius: float) -> None:
        self.boxes = {"bridge": _Box(0, 0, 150, 46)}
        for node in self.ring:
            a = self.angles[node.id]
            # An ellipse wider than tall: the boxes are.
            width = max(180.0, min(250.0, _text_width(node.label, 12) + 24))  # a longer name, a wider box (to a point)
            parent = self.boxes[node.id] = _Box(radius * 1.45 * math.cos(a), radius * math.sin(a), width, 44, angle=a)
            for i, child in enumerate(self.children.get(node.id, ())):
                w, h, gap = max(150.0, min(250.0, _text_width(child.label, 11) + 20)), 26.0, 14.0 + 32.0 * i
                # Outwards along the radius, just far enough to clear the root's box.
                t = min(((parent.w + w) / 2 + gap) / abs(math.cos(a)) if abs(math.cos(a)) > 1e-6 else math.inf,
                        ((parent.h + h) / 2 + gap) / abs(math.sin(a)) if abs(math.sin(a)) > 1e-6 else math.inf)
                self.boxes[child.id] = _Box(parent.x + t * math.cos(a), parent.y + t * math.sin(a), w, h, angle=a)

    def _place_dots(self, radius: float) -> None:
        self.boxes = {"bridge": _Box(0, 0, 132, 40)}
        for node in self.ring:
            a = self.angles[node.id]
            size = 13.0 if node.kind == "member" else 12.0
            self.boxes[node.id] = _Box(radius * math.cos(a), radius * math.sin(a), size, size,
                                       "dot" if node.kind == "member" else "rect", a)
            for i, child in enumerate(self.children.get(node.id, ())):
                r = radius + 18 + 11 * i
                self.boxes[child.id] = _Box(r * math.cos(a), r * math.sin(a), 7, 7, "dot", a)

    def _overlapping(self) -> bool:
        boxes = list(self.boxes.values())
        return any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))

    # ---------------------------------------------------------------- drawing

    def render(self) -> str:
        self.layout()
        self.out.append("<defs>" + "".join(
            f'<marker id="fg-arrow-{s}" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="9" markerHeight="9" '
            f'markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0.5 L10,5 L0,9.5 z" fill="{c}"/></marker>'
            for s, c in COLOURS.items()) + f"<style>{STYLE}</style></defs>")
        if not self.boxes_mode:
            self.draw_groups()
        for edge in self.graph.edges:
            self.draw_edge(edge)
        for node in self.graph.nodes:
            if node.id in self.boxes:
                self.draw_node(node)
        legend, legend_height = self.legend()
        min_x, min_y, max_x, max_y = self.bounds()
        legend_x = min_x - 270
        self.out.append(f'<g class="fg-legend" transform="translate({_n(legend_x)},{_n(min_y)})">{legend}</g>')
        width, height = max_x - legend_x + 20, max(max_y - min_y, legend_height) + 20
        title = escape(self.t["title"])
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="fg-graph" viewBox="{_n(legend_x - 10)} {_n(min_y - 10)} '
                f'{_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" lang="{"zh-CN" if self.lang == "zh" else "en"}" '
                f'data-layout="{"boxes" if self.boxes_mode else "radial"}" aria-labelledby="fg-title">'
                f'<title id="fg-title">{title}</title>' + "".join(self.out) + "</svg>")

    def bounds(self) -> tuple[float, float, float, float]:
        xs: list[float] = []
        ys: list[float] = []
        for box in self.boxes.values():
            xs += [box.x - box.w / 2, box.x + box.w / 2]
            ys += [box.y - box.h / 2, box.y + box.h / 2]
        for x, y in self.label_ends:
            xs += [x - 6, x + 6]
            ys += [y - 8, y + 8]
        return min(xs) - 10, min(ys) - 10, max(xs) + 10, max(ys) + 10

    def tooltip(self, item: Node | Edge) -> str:
        t = self.t
        lines = [item.label if isinstance(item, Node) else t.get(f"k.{item.kind}", item.kind)]
        if isinstance(item, Node) and item.subject:
            lines.append(item.subject)
        lines.append(f"{t['status']}: {self.status_word(item.status)}")
        if item.serial:
            lines.append(f"{t['serial']}: {item.serial}")
        if item.not_after is not None:
            lines.append(f"{t['until']}: {item.not_after:%Y-%m-%d}")
        if isinstance(item, Edge) and item.policy_mappings:
            lines.append(f"{t['mappings']}: " + "; ".join(f"{a} → {b}" for a, b in item.policy_mappings))
        constraints = item.name_constraints
        if constraints.permitted or constraints.excluded:
            lines.append(f"{t['constraints']}: " + "; ".join([*("+" + c for c in constraints.permitted),
                                                              *("−" + c for c in constraints.excluded)]))
        return f"<title>{escape(chr(10).join(lines))}</title>"

    def attributes(self, item: Node | Edge, prefix: str) -> str:
        return (f'id="fg-{prefix}-{escape(item.id)}" class="{self.classes(item)}" data-kind="{escape(item.kind)}" '
                f'data-id="{escape(item.key)}" data-status="{escape(item.status)}"')

    def draw_node(self, node: Node) -> None:
        box = self.boxes[node.id]
        parts = [f"<g {self.attributes(node, 'node')}>", self.tooltip(node)]
        if node.kind == "bridge":
            parts.append(self.rect(box, 8, "fg-box"))
            parts.append(self.text(box.x, box.y + 4.5, _fit(self.t["bridge"], box.w - 16, 13), "middle"))
        elif box.shape == "dot":
            colour = MEMBER_FILL.get(node.status, "#8d96a3")
            parts.append(f'<circle cx="{_n(box.x)}" cy="{_n(box.y)}" r="{_n(box.w / 2)}" fill="{colour}" stroke="#fff" stroke-width="1.5"/>')
            if node.kind == "member":
                parts.append(self.radial_label(node, box))
        elif node.kind == "trust_list" and not self.boxes_mode:
            parts.append(self.rect(box, 2, "fg-box"))
            parts.append(self.radial_label(node, box))
        else:
            colour = MEMBER_FILL.get(node.status, "#8d96a3") if node.kind == "member" else ""
            parts.append(self.rect(box, 6, "fg-box", colour))
            if node.kind == "issuing_ca":
                parts.append(self.text(box.x, box.y + 4, _fit(node.label, box.w - 12, 11), "middle", "fg-sub"))
            else:
                sub = (f"{node.jurisdiction} · {self.status_word(node.status)}" if node.kind == "member"
                       else f"{self.t['list']} · {self.status_word(node.status)}")
                parts.append(self.text(box.x, box.y - 3, _fit(node.label, box.w - 14, 12), "middle"))
                parts.append(self.text(box.x, box.y + 13, _fit(sub, box.w - 14, 10.5), "middle", "fg-sub"))
        parts.append("</g>")
        self.out.append("".join(parts))

    def rect(self, box: _Box, radius: float, cls: str, stroke: str = "") -> str:
        colour = f' stroke="{stroke}"' if stroke else ""
        return (f'<rect class="{cls}" x="{_n(box.x - box.w / 2)}" y="{_n(box.y - box.h / 2)}" width="{_n(box.w)}" '
                f'height="{_n(box.h)}" rx="{_n(radius)}"{colour}/>')

    @staticmethod
    def text(x: float, y: float, content: str, anchor: str = "start", cls: str = "", transform: str = "") -> str:
        attrs = f' class="{cls}"' if cls else ""
        attrs += f' transform="{transform}"' if transform else ""
        return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{attrs}>{escape(content)}</text>'

    def radial_label(self, node: Node, box: _Box) -> str:
        """The name written outwards along the node's radius, after its issuing CAs; upright on either side.
        Part of the node's group: a click on the name is a click on the node."""
        a = box.angle
        r = self.radius + self.label_gap
        x, y = r * math.cos(a), r * math.sin(a)
        degrees = math.degrees(a)
        right = math.cos(a) >= 0
        rotation = degrees if right else degrees + 180
        label = _fit(node.label, 170, 12)
        reach = r + _text_width(label, 12)
        self.label_ends += [(x, y), (reach * math.cos(a), reach * math.sin(a))]
        return (f'<g class="fg-node-label" data-angle="{_n(degrees)}" data-radius="{_n(r)}">'
                + self.text(x, y + 4, label, "start" if right else "end", transform=f"rotate({_n(rotation)} {_n(x)} {_n(y)})")
                + "</g>")

    def draw_groups(self) -> None:
        r = self.radius - 16
        for group in self.groups:
            first, last = self.angles[group[0].id], self.angles[group[-1].id]
            half = math.pi / max(len(self.ring), 1) * 0.6
            a0, a1 = first - half, last + half
            large = 1 if a1 - a0 > math.pi else 0
            name = group[0].jurisdiction if group[0].kind == "member" else self.t["lists"]
            mid = (a0 + a1) / 2
            lx, ly = (r - 16) * math.cos(mid), (r - 16) * math.sin(mid) + 4
            self.out.append(
                f'<g class="fg-group" data-jurisdiction="{escape(name)}"><path d="M{_n(r * math.cos(a0))},{_n(r * math.sin(a0))} '
                f'A{_n(r)},{_n(r)} 0 {large} 1 {_n(r * math.cos(a1))},{_n(r * math.sin(a1))}"/>'
                + self.text(lx, ly, name, "middle") + "</g>")

    def draw_edge(self, edge: Edge) -> None:
        source, target = self.boxes.get(edge.source), self.boxes.get(edge.target)
        if source is None or target is None:
            return
        p0 = source.boundary((target.x, target.y))
        p2 = target.boundary((source.x, source.y))
        dx, dy = p2[0] - p0[0], p2[1] - p0[1]
        length = math.hypot(dx, dy) or 1.0
        nx, ny = dy / length, -dx / length  # the left of the direction of travel: opposite edges part
        bend = 0.0 if edge.kind in ("issuing",) else min(34.0, 0.13 * length)
        shift = 3.0 if edge.kind in ("cross", "reverse", "pending") else 0.0
        p0 = (p0[0] + nx * shift, p0[1] + ny * shift)
        p2 = (p2[0] + nx * shift, p2[1] + ny * shift)
        control = ((p0[0] + p2[0]) / 2 + nx * bend, (p0[1] + p2[1]) / 2 + ny * bend)
        # The arrowhead sits at a vertex near the member: towards the end of a
        # bridge -> member edge, towards the start of a member -> bridge one.
        split = 0.62 if edge.source == "bridge" else 0.38
        arrow = f' marker-mid="url(#fg-arrow-{escape(edge.status)})"'
        if edge.kind == "issuing":
            split = 0.7
            arrow = "" if not self.boxes_mode else arrow  # a dot beside its root's: no room for an arrowhead
        c1, middle, c2 = _split_quadratic(p0, control, p2, split)
        d = (f"M{_n(p0[0])},{_n(p0[1])} Q{_n(c1[0])},{_n(c1[1])} {_n(middle[0])},{_n(middle[1])} "
             f"Q{_n(c2[0])},{_n(c2[1])} {_n(p2[0])},{_n(p2[1])}")
        colour = COLOURS.get(edge.status, "#5b6575")
        dash = f' stroke-dasharray="{DASHES[edge.status]}"' if edge.status in DASHES else ""
        parts = [f"<g {self.attributes(edge, 'edge')}>", self.tooltip(edge), f'<path class="fg-hit" d="{d}"/>',
                 f'<path class="fg-line" d="{d}" stroke="{colour}"{dash}{arrow}/>']
        if (self.boxes_mode and len(self.ring) <= EDGE_LABELS_UP_TO and edge.policy_mappings
                and edge.kind in ("cross", "reverse", "pending")):
            label = _oid_pair(*edge.policy_mappings[0]) + (f" (+{len(edge.policy_mappings) - 1})" if len(edge.policy_mappings) > 1 else "")
            at = _split_quadratic(p0, control, p2, 0.5)[1]
            # On the outer side of its own curve: the cross and reverse labels part as their curves do.
            anchor = "middle" if abs(nx) < 0.35 else ("start" if nx > 0 else "end")
            parts.append(self.text(at[0] + nx * 7, at[1] + ny * 9 + 4, label, anchor))
        parts.append("</g>")
        self.out.append("".join(parts))

    def legend(self) -> tuple[str, float]:
        t = self.t
        present = {e.status for e in self.graph.edges}
        statuses = [s for s in COLOURS if s in ALWAYS_IN_LEGEND or s in present]
        rows = [self.text(0, 14, t["legend"], cls="fg-title")]
        y = 36.0
        for status in statuses:
            dash = f' stroke-dasharray="{DASHES[status]}"' if status in DASHES else ""
            rows.append(f'<g class="fg-legend-status" data-status="{status}"><line x1="0" y1="{_n(y - 4)}" x2="34" y2="{_n(y - 4)}" '
                        f'stroke="{COLOURS[status]}" stroke-width="2.4"{dash}/>' + self.text(44, y, self.status_word(status)) + "</g>")
            y += 20
        y += 6
        kinds = [("cross", 2.4), ("reverse", 1.3)]
        for kind, width in kinds:
            rows.append(f'<line x1="0" y1="{_n(y - 4)}" x2="34" y2="{_n(y - 4)}" stroke="#5b6575" stroke-width="{width}" '
                        f'marker-end="url(#fg-arrow-expired)"/>' + self.text(44, y, t[kind]))
            y += 20
        if any(n.kind == "issuing_ca" for n in self.graph.nodes):
            rows.append(f'<circle cx="17" cy="{_n(y - 4)}" r="3.5" fill="#8d96a3"/>' + self.text(44, y, t["issuing"]))
            y += 20
        if any(n.kind == "trust_list" for n in self.graph.nodes):
            rows.append(f'<rect x="11" y="{_n(y - 10)}" width="12" height="12" fill="#eef4fb" stroke="#1f5fa8"/>'
                        + self.text(44, y, t["trust_list"]))
            y += 20
        members = sum(1 for n in self.graph.nodes if n.kind == "member")
        rows.append(self.text(0, y + 8, t["members"].format(n=members), cls="fg-sub"))
        return "".join(rows), y + 20


def render_federation_svg(graph: FederationGraph, lang: str = "en", highlight: str | Iterable[str] | None = None) -> str:
    """The graph as an SVG document (a string, UTF-8 text). ``lang``: "en" or
    "zh" (anything else is English). ``highlight``: node or edge ids, or the
    keys they carry in ``data-id`` (an enrollment id, a serial), drawn thicker:
    the member a page is about, the certificate a verification failed on."""
    wanted: Sequence[str]
    if highlight is None:
        wanted = ()
    elif isinstance(highlight, str):
        wanted = (highlight,)
    else:
        wanted = tuple(highlight)
    return _Renderer(graph, lang if lang in TEXT else "en", set(wanted)).render()
