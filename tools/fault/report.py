"""A readable report of a fault run: verdicts, figures, the nemesis schedule, and an SVG
timeline of every operation (one lane per client) under the faults."""
import html

COLORS = {"ok": "#3a3", "fail": "#c33", "info": "#e90"}


def write_html(path, result, history):
    ops, open_ops = [], {}
    for e in history:
        if e["type"] == "invoke":
            open_ops[e["process"]] = e
        else:
            start = open_ops.pop(e["process"], None)
            if start:
                ops.append((start, e))
    end_ns = max((e["time"] for e in history), default=1)
    width, lane = 1200, 14
    procs = sorted({e["process"] for e in history})
    height = (len(procs) + 2) * lane + 30
    x = lambda t: 40 + (width - 60) * t / end_ns
    svg = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
           f'font-family="monospace" font-size="10">']
    for s in result.get("schedule", []):
        a = x(s["start"] * 1e9)
        b = x((s["end"] if s["end"] is not None else end_ns / 1e9) * 1e9)
        svg.append(f'<rect x="{a:.1f}" y="0" width="{max(b - a, 1):.1f}" height="{height}" '
                   f'fill="#99c" opacity="0.25"><title>{html.escape(s["fault"])}</title></rect>')
    for row, p in enumerate(procs):
        y = 20 + row * lane
        svg.append(f'<text x="2" y="{y + 9}">p{p}</text>')
        for start, end in ops:
            if start["process"] != p:
                continue
            a, b = x(start["time"]), x(end["time"])
            title = html.escape(f'{start["f"]} {start["key"]} {start["value"]!r} -> '
                                f'{end["type"]} {end["value"]!r} ({start["node"]})')
            svg.append(f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 1.5):.1f}" height="{lane - 3}" '
                       f'fill="{COLORS[end["type"]]}"><title>{title}</title></rect>')
    svg.append(f'<text x="40" y="{height - 5}">0 s</text>'
               f'<text x="{width - 60}" y="{height - 5}">{end_ns / 1e9:.1f} s</text></svg>')
    verdicts = "".join(
        f'<tr><td>{html.escape(name)}</td><td style="color:{"#3a3" if c["valid"] else "#c33"}">'
        f'{"valid" if c["valid"] else "INVALID"}</td><td><pre>{html.escape(_figures(c))}</pre></td></tr>'
        for name, c in result["checkers"].items())
    schedule = "".join(f'<li>{s["start"]:.1f}s - {(s["end"] or 0):.1f}s: {html.escape(s["fault"])}</li>'
                       for s in result.get("schedule", []))
    conv = result.get("convergence", {})
    converged = (f"Replicas converged {conv['seconds']} s after the final heal (bound {conv['bound_s']} s)."
                 if conv.get("converged") else
                 f"Replicas did NOT converge within {conv.get('bound_s')} s of the final heal.") if conv else ""
    moves = result["checkers"].get("moves_under_nemesis")
    moves_html = ("<h2>Moves</h2><pre>" + html.escape("\n".join(
        [f"{k}: {v}" for k, v in moves.items() if k not in ("progress", "valid")] + [""] + moves["progress"]))
        + "</pre>") if moves else ""
    page = f"""<!doctype html><meta charset="utf-8"><title>itsuka fault run</title>
<h1>{html.escape(result['workload'])} - seed {result['seed']} - {"VALID" if result['valid'] else "INVALID"}</h1>
<p>{result['nodes']} nodes ({result['mode']}), {result['operations']} operations in {result['duration_s']} s;
nemeses: {html.escape(', '.join(result['nemeses']) or 'none')}.
Green: ok, red: failed, orange: outcome unknown; shaded: a fault in effect (hover for details).</p>
<p>{html.escape(converged)}</p>
<table border="1" cellpadding="4">{verdicts}</table>
<h2>Timeline</h2>{''.join(svg)}
{moves_html}
<h2>Nemesis schedule</h2><ul>{schedule}</ul>"""
    with open(path, "w") as f:
        f.write(page)


def _figures(c):
    return "\n".join(f"{k}: {v}" for k, v in c.items() if k != "valid")
