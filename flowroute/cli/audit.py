"""``flowroute audit``: tools for the hash-chained audit log (``audit verify PATH``, ``audit show PATH``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from flowroute import verify_audit_log

from ._common import EXIT_FAILED, EXIT_OK, CliError, print_json


def verify_summary(path: Path, archive_dir: Path | None = None) -> tuple[dict[str, Any], bool]:
    """Verify the audit log at ``path``; ``(summary, ok)``.

    The summary holds ``path``, ``ok``, ``lines``, ``last_seq``, ``anchor_seq`` (None without
    a ``.head`` anchor), ``verdict`` (one sentence), ``problems`` and ``warnings`` (each
    ``{"line", "kind", "message"}``). A missing file, a directory or a file without a single
    audit record is one verdict, not one problem per line.
    """
    if path.is_dir():
        raise CliError(f"{path} is a directory: name the audit log file in it (audit.jsonl)")
    result = verify_audit_log(path, archive_dir=archive_dir)
    problems = [{"line": p.line_no, "kind": p.kind, "message": p.message} for p in result.problems]
    warnings = [{"line": w.line_no, "kind": w.kind, "message": w.message} for w in result.warnings]
    anchor = path.with_name(path.name + ".head")
    if not path.exists():
        verdict = f"{path} does not exist: nothing to verify"
        problems = []
    elif result.lines and result.last_seq == 0 and problems and all(p["kind"] == "malformed" for p in problems):
        first = problems[0]
        verdict = (f"{path} is not a flowroute audit log: none of its {result.lines} line(s) is an audit record "
                   f"(line {first['line']}: {first['message']})")
        problems = problems[:1]
    elif result.ok:
        verdict = f"{result.lines} line(s), last seq {result.last_seq}" + (
            f", anchor seq {result.head_seq}" if result.head_seq is not None else "")
    else:
        verdict = f"{len(problems)} problem(s) in {result.lines} line(s)"
    if path.exists() and result.head_seq is None and not anchor.exists() and result.last_seq > 0:
        warnings.append({"line": 0, "kind": "no_anchor",
                         "message": f"no anchor file {anchor.name}: lines cut from the end of the log would go unnoticed"})
    ok = result.ok and path.exists()
    return {"command": "audit verify", "path": str(path), "ok": ok, "verdict": verdict, "lines": result.lines,
            "last_seq": result.last_seq, "anchor_seq": result.head_seq, "problems": problems,
            "warnings": warnings}, ok


def render_verify(summary: dict[str, Any]) -> None:
    """``ok: PATH: …`` or ``FAILED: PATH: …`` and one line per problem and warning."""
    console = Console(highlight=False, soft_wrap=True)  # one problem per line, never wrapped
    path = summary["path"]
    if summary["ok"]:
        console.print(f"[green]ok[/]: {path}: {summary['verdict']}")
    else:
        console.print(f"[red]FAILED[/]: {summary['verdict'] if summary['verdict'].startswith(path) else path + ': ' + summary['verdict']}")
        if len(summary["problems"]) > 1 or not summary["verdict"].startswith(path):
            for p in summary["problems"]:
                console.print(f"  line {p['line']}: {p['kind']}: {p['message']}")
    for w in summary["warnings"]:
        where = f" line {w['line']}" if w["line"] else ""
        console.print(f"  [yellow]warning[/]{where}: {w['kind']}: {w['message']}")


def show_lines(path: Path, *, order: str | None, since: str | None, event: str | None,
               archive_dir: Path | None = None) -> list[dict[str, Any]]:
    """The audit lines of ``path`` (archived segments included) matching every filter, oldest first,
    each ``{"seq", "ts", "kind", "data"}``. Raises :class:`CliError` for a missing file or a bad time."""
    from actors.audit.log import parse_since, read_records

    try:
        since_dt = parse_since(since) if since is not None else None
    except ValueError as exc:
        raise CliError(f"--since: {exc}") from None
    if path.is_dir():
        raise CliError(f"{path} is a directory: name the audit log file in it (audit.jsonl)")
    if not path.is_file():
        raise CliError(f"audit log {path} does not exist")
    return [{"seq": r.seq, "ts": r.ts.isoformat(), "kind": r.kind, "data": r.data}
            for r in read_records(path, client_order_id=order, since=since_dt, event=event, archive_dir=archive_dir)]


def render_line(line: dict[str, Any]) -> str:
    """One audit line as text: ``seq ts client_order_id FROM -> TO cause key=value …``."""
    data = dict(line["data"])
    who = data.pop("client_order_id", "")
    if line["kind"] == "transition":
        what = f"{data.pop('from', '?')} -> {data.pop('to', '?')}  {data.pop('cause', '')}"
    else:
        what = line["kind"]
    rest = " ".join(f"{k}={v}" for k, v in data.items() if k not in ("ts", "account_id", "seq") and v not in (None, ""))
    return f"{line['seq']:>8} {line['ts']} {who} {what}  {rest}".rstrip()


def add_parser(subparsers: Any, parents: Any) -> argparse.ArgumentParser:
    """Register ``audit`` and its sub-commands (``verify``, ``show``)."""
    p = subparsers.add_parser("audit", help="audit-log tools: verify, show",
                              description="Tools for the hash-chained audit log.")
    tools = p.add_subparsers(dest="audit_command", metavar="TOOL", required=True)
    v = tools.add_parser("verify", parents=[parents.json], help="verify a hash-chained audit log",
                         description="Verify a hash-chained audit log and its anchor: print ok or every "
                                     "problem with its line number. Exit 0 when ok, 1 when not.")
    v.add_argument("path", type=Path, metavar="PATH", help="the audit log (audit.jsonl in a state directory)")
    v.add_argument("--archive-dir", type=Path, metavar="DIR",
                   help="where the archived segments are (default: archive/ beside the log; [retention] archive_dir)")
    v.set_defaults(handler=run_verify)
    sh = tools.add_parser("show", parents=[parents.json], help="show audit lines by order, time or event",
                          description="Show audit lines, oldest first (archived segments too), filtered by order, "
                                      "time and event; the filters combine. Exit 0, or 2 for bad input.")
    sh.add_argument("path", type=Path, metavar="PATH", help="the audit log (audit.jsonl in a state directory)")
    sh.add_argument("--archive-dir", type=Path, metavar="DIR",
                    help="where the archived segments are (default: archive/ beside the log; [retention] archive_dir)")
    sh.add_argument("--order", metavar="ID", help="only lines about this client order id")
    sh.add_argument("--since", metavar="T", help="only lines written at or after this ISO-8601 time or date "
                                                "(UTC unless it carries an offset), e.g. 2026-12-07T05:00:00Z")
    sh.add_argument("--event", metavar="E", help="only this event: a status a transition reached (FILLED, REJECTED, "
                                                 "DENIED, …) or a line kind (fill, attempt_failed, denied, …)")
    sh.set_defaults(handler=run_show)
    return p


def run_show(args: argparse.Namespace) -> int:
    """Run ``audit show`` with parsed ``args``: text lines (a count on stderr), or one JSON object
    ``{"command", "path", "lines": [...]}`` with ``--json``."""
    lines = show_lines(args.path, order=args.order, since=args.since, event=args.event, archive_dir=args.archive_dir)
    if args.json:
        print_json({"command": "audit show", "path": str(args.path), "count": len(lines), "lines": lines})
        return EXIT_OK
    console = Console(highlight=False, soft_wrap=True)
    for line in lines:
        console.print(render_line(line), markup=False)
    Console(stderr=True, highlight=False).print(f"{len(lines)} line(s)")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """Run ``audit verify`` with parsed ``args``."""
    summary, ok = verify_summary(args.path, args.archive_dir)
    if args.json:
        print_json(summary)
    else:
        render_verify(summary)
    return EXIT_OK if ok else EXIT_FAILED
