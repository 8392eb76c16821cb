"""The `reel` command (typer + rich): schema, validate, render, demo."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from chalicelib.errors import Problem, ReelError, TemplateError
from chalicelib.template.bind import bind
from chalicelib.template.library import check_template, load_template, validate_template_file
from chalicelib.template.schema import template_json_schema

app = typer.Typer(
    name="reel",
    help="Reel: one personalized video per recipient, from a template and their data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEMO_DIR = Path(__file__).resolve().parent.parent / "examples" / "demo"


def _print_problems(problems: list[Problem], title: str) -> None:
    err.print(f"[bold red]{title}[/]")
    for p in problems:
        err.print(f"  ✗ {p}", markup=False, highlight=False, style="red")


def _fail(exc: ReelError) -> typer.Exit:
    kind = "render failed" if exc.exit_code == 2 else "invalid input"
    if len(exc.problems) > 1:
        _print_problems(exc.problems, f"{kind}: {len(exc.problems)} problems")
    else:
        err.print(f"{kind}: {exc.problems[0]}", markup=False, highlight=False, style="bold red")
    return typer.Exit(exc.exit_code)


def _load_checked(template: Path) -> Any:
    lt = load_template(template)
    problems = check_template(lt)
    if problems:
        raise TemplateError(f"{len(problems)} problem(s) in the template", problems=problems)
    return lt


def _read_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TemplateError(f"data file not found: {path}", field="--data")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"{path.name}: invalid JSON at line {exc.lineno}: {exc.msg}", field="--data"
        ) from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path.name}: a data record is a JSON object", field="--data")
    return data


@app.command()
def schema() -> None:
    """Print the JSON Schema of templates (point your editor's YAML/JSON plugin at it)."""
    sys.stdout.write(json.dumps(template_json_schema(), indent=2, ensure_ascii=False) + "\n")


@app.command()
def validate(
    template: Annotated[Path, typer.Argument(help="Template file (.yaml, .yml or .json)")],
) -> None:
    """Check a template and its scene library; print every problem with its path."""
    problems = validate_template_file(template)
    if problems:
        _print_problems(problems, f"{template}: {len(problems)} problem(s)")
        raise typer.Exit(1)
    out.print(f"[green]✓[/] {template} is valid")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@app.command()
def render(
    template: Annotated[Path, typer.Argument(help="Template file (.yaml, .yml or .json)")],
    data: Annotated[
        Path, typer.Option("--data", "-d", help="The recipient's record (JSON object)")
    ],
    output: Annotated[Path, typer.Option("--out", "-o", help="Output MP4")] = Path("out.mp4"),
    poster: Annotated[Path | None, typer.Option(help="Also write a poster JPEG here")] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Low resolution and frame rate, for a quick look")
    ] = False,
) -> None:
    """Render one personalized video from a template and one data record."""
    from chalicelib.render.engine import render as render_plan

    try:
        lt = _load_checked(template)
        plan = bind(lt, _read_record(data))
        started = time.monotonic()
        with _progress() as bar:
            task = bar.add_task(f"rendering {output.name}", total=None)

            def step(_stage: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            render_plan(plan, output, poster=poster, preview=preview, progress=step)
    except ReelError as exc:
        raise _fail(exc) from exc
    took = time.monotonic() - started
    out.print(f"[green]✓[/] {output} ({plan.duration:.1f} s video, rendered in {took:.1f} s)")
    if poster:
        out.print(f"[green]✓[/] {poster}")


def read_csv_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV as dicts; empty cells are missing values."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--out", "-o", help="Output folder")] = Path("out/demo"),
    preview: Annotated[bool, typer.Option("--preview", help="Low-resolution quick look")] = False,
    limit: Annotated[int | None, typer.Option(help="Render only the first N recipients")] = None,
) -> None:
    """Render the demo campaign: one video and poster per recipient of examples/demo."""
    from chalicelib.render.engine import render as render_plan

    try:
        lt = _load_checked(DEMO_DIR / "template.yaml")
    except ReelError as exc:
        raise _fail(exc) from exc
    rows = read_csv_records(DEMO_DIR / "recipients.csv")[:limit]
    output.mkdir(parents=True, exist_ok=True)
    table = Table(title=f"Demo campaign → {output}")
    for col in ("recipient", "first name", "seconds", "status"):
        table.add_column(col)
    failures = 0
    started = time.monotonic()
    with _progress() as bar:
        task = bar.add_task("rendering the demo", total=len(rows))
        for row in rows:
            rid = str(row.get("recipient_id", "?"))
            try:
                plan = bind(lt, row)
                render_plan(
                    plan, output / f"{rid}.mp4", poster=output / f"{rid}.jpg", preview=preview
                )
                table.add_row(rid, row.get("first_name", ""), f"{plan.duration:.1f}", "✓")
            except ReelError as exc:
                failures += 1
                table.add_row(rid, row.get("first_name", ""), "", f"✗ {exc.problems[0]}")
            bar.advance(task)
    out.print(table)
    took = time.monotonic() - started
    out.print(
        f"{len(rows) - failures}/{len(rows)} videos and posters in [bold]{output.resolve()}[/]"
        f" ({took:.0f} s)"
    )
    if failures:
        raise typer.Exit(2)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
