"""The inline stylesheet of ``report.html`` (system fonts, no external resources)."""

CSS = """
:root {
  --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --panel: #ffffff; --page: #f5f7fa;
  --accent: #0b5394; --good: #1b7f4b; --bad: #b3261e; --chip: #eef2f7;
}
* { box-sizing: border-box; }
html { background: var(--page); }
body {
  margin: 0 auto; max-width: 1120px; padding: 32px 28px 48px; color: var(--ink);
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
    Arial, "Noto Sans", sans-serif;
  font-variant-numeric: tabular-nums;
}
header { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 22px; }
header .kicker { text-transform: uppercase; letter-spacing: .08em; font-size: 12px;
  color: var(--accent); font-weight: 700; }
h1 { font-size: 28px; line-height: 1.2; margin: 4px 0 6px; }
h2 { font-size: 19px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 16px 0 8px; color: var(--muted); }
.sub { color: var(--muted); margin: 0; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 20px 22px; margin: 18px 0; }
section > .note { color: var(--muted); font-size: 13px; margin: 0 0 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 14px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 18px; border-top: 4px solid var(--accent); }
.card .label { font-size: 13px; color: var(--muted); font-weight: 600; }
.card .value { font-size: 34px; font-weight: 700; line-height: 1.15; margin: 4px 0 2px; }
.card .ci { font-size: 13px; color: var(--muted); }
.operating { margin: 12px 2px 0; font-size: 13.5px; color: var(--muted); }
.operating b { color: var(--ink); }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  font-weight: 700; background: #fafbfc; }
td.num, th.num { text-align: right; }
td.ci, span.ci { color: var(--muted); text-align: right; white-space: nowrap; }
span.ci { font-size: 12.5px; }
tr.total td { font-weight: 700; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px;
  align-items: start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0;
  font-size: 14px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--chip); padding: 1px 5px; border-radius: 4px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
ul.errors { margin: 8px 0 0; padding-left: 18px; } ul.errors li { margin: 6px 0; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: #fff; }
.tile.wide { grid-column: span 2; }
.tile img { width: 100%; height: auto; border-radius: 4px; background: #000; display: block;
  image-rendering: auto; }
.tile .cap { font-size: 12.5px; margin-top: 6px; line-height: 1.4; }
.tag { display: inline-block; font-size: 11px; font-weight: 700; padding: 1px 7px;
  border-radius: 10px; color: #fff; }
.tag.ok { background: var(--good); } .tag.err { background: var(--bad); }
.pill { display: inline-block; background: var(--chip); border-radius: 12px; padding: 2px 10px;
  margin: 2px 4px 2px 0; font-size: 13px; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 28px; }
@media print { html { background: #fff; } section, .card { break-inside: avoid; } }
"""
