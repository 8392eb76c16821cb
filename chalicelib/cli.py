"""The `reel` command (typer + rich): schema, validate, render, batch, demo, serve."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from chalicelib.errors import (
    DataError,
    Problem,
    ReelError,
    RenderError,
    StorageError,
    TemplateError,
)
from chalicelib.pipeline.jobs import JobState, RecipientResult, Status, TemplateRecord
from chalicelib.template.bind import bind
from chalicelib.template.documents import DocumentError, decode, load_json
from chalicelib.template.library import (
    LoadedTemplate,
    check_template,
    load_template,
    validate_template_file,
)
from chalicelib.template.schema import template_json_schema

if TYPE_CHECKING:
    from chalicelib.backends import Backends
    from chalicelib.pipeline.folder import BatchSummary
    from chalicelib.server import LocalServer
    from chalicelib.settings import Settings

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
EXAMPLES_DIR = DEMO_DIR.parent


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


def _load_checked(template: Path) -> LoadedTemplate:
    lt = load_template(template)
    problems = check_template(lt)
    if problems:
        raise TemplateError(f"{len(problems)} problem(s) in the template", problems=problems)
    return lt


def _read_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"data file not found: {path}", field="--data")
    try:
        data = load_json(decode(path.read_bytes()))
    except DocumentError as exc:
        raise DataError(f"{path.name}: {exc.message}", field=exc.field or "--data") from None
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise DataError(f"{path.name}: cannot read it: {exc.strerror}", "--data") from None
    if not isinstance(data, dict):
        raise DataError(f"{path.name}: a data record is a JSON object", field="--data")
    return data


@app.command()
def schema() -> None:
    """Print the JSON Schema of templates (point your editor's YAML/JSON plugin at it)."""
    sys.stdout.write(json.dumps(template_json_schema(), indent=2, ensure_ascii=False) + "\n")


@app.command()
def validate(
    template: Annotated[Path, typer.Argument(help="Template file (.yaml, .yml or .json)")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            help="Recipients (CSV or JSONL): also report whose voice lines would overflow",
        ),
    ] = None,
) -> None:
    """Check a template and its scene library; print every problem with its path."""
    problems = validate_template_file(template)
    if not problems:
        problems = _voice_problems(template)
    if problems:
        _print_problems(problems, f"{template}: {len(problems)} problem(s)")
        raise typer.Exit(1)
    from chalicelib.template.library import load_template, template_warnings

    for warning in template_warnings(load_template(template)):
        out.print(f"[yellow]warning[/] {warning.field}: {warning.message}")
    out.print(f"[green]✓[/] {template} is valid")
    if data is not None and _voice_overflows(template, data):
        raise typer.Exit(1)


def _voice_problems(template: Path) -> list[Problem]:
    """The template's voices asked of the configured speech engine (when it speaks at all)."""
    from chalicelib import bootstrap
    from chalicelib.render.voice import voice_problems
    from chalicelib.services.templates import _has_voice_lines

    lt = load_template(template)
    if not _has_voice_lines(lt):
        return []
    return voice_problems(lt, bootstrap.lazy_speech(bootstrap.settings()))


def _voice_overflows(template: Path, data: Path) -> bool:
    """Print the recipients of `data` whose voice lines do not fit their windows (each line
    spoken, into the segment cache: the render finds it there); True if one would fail."""
    import tempfile

    from chalicelib import bootstrap
    from chalicelib.data.mapping import apply_mapping, recipient_id
    from chalicelib.data.readers import read_rows
    from chalicelib.render.voice import overflows
    from chalicelib.services.templates import campaign_mapping_file

    lt = load_template(template)
    speech = bootstrap.lazy_speech(bootstrap.settings())
    store = bootstrap.segment_cache().store
    mapping = campaign_mapping_file(lt.root)
    found = failing = 0
    with tempfile.TemporaryDirectory(prefix="reel-validate-") as tmp:
        for row in read_rows(data):
            if row.fields is None:
                continue  # a bad row is `reel batch`'s report, not this one's
            rid = recipient_id(mapping, row.fields, f"line-{row.line}")
            try:
                plan = bind(lt, apply_mapping(mapping, row.fields))
                if not plan.voices:
                    continue
                problems = overflows(plan, speech, store, Path(tmp))
            except ReelError as exc:
                err.print(f"  ✗ line {row.line} ({rid}): {exc}", markup=False, style="red")
                failing += 1
                continue
            for p, fails in problems:
                found += 1
                failing += fails
                style = "red" if fails else "yellow"
                err.print(
                    f"  {'✗' if fails else '!'} line {row.line} ({rid}): {p}",
                    markup=False,
                    style=style,
                )
    if found or failing:
        err.print(f"{found} voice line(s) overflow; {failing} recipient(s) would fail")
    else:
        out.print("[green]✓[/] every voice line fits its window")
    return failing > 0


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
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Single pass, no segment cache (the reference)")
    ] = False,
) -> None:
    """Render one personalized video from a template and one data record."""
    from chalicelib import bootstrap
    from chalicelib.render.engine import render as render_plan
    from chalicelib.render.localize import localize

    started = time.monotonic()
    settings = bootstrap.settings()
    try:
        lt = _load_checked(template)
        # URLs in the record fetched (and every medium checked) before anything renders.
        plan = localize(bind(lt, _read_record(data)), bootstrap.fetcher(settings))
        cache = None if no_cache else bootstrap.segment_cache()
        with _progress() as bar:
            task = bar.add_task(f"rendering {output.name}", total=None)

            def step(_stage: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = render_plan(
                plan,
                output,
                poster=poster,
                preview=preview,
                cache=cache,
                progress=step,
                config=bootstrap.render_config(settings),
                speech=bootstrap.lazy_speech(settings),
            )
    except ReelError as exc:
        raise _fail(exc) from exc
    took = time.monotonic() - started
    reused = f", {result.segments_cached}/{result.segments} segments from cache" if cache else ""
    out.print(
        f"[green]✓[/] {output} ({plan.duration:.1f} s video, rendered in {took:.1f} s{reused})"
    )
    if poster:
        out.print(f"[green]✓[/] {poster}")


def _batch_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )


def _run_batch(
    template: Path,
    data: Path,
    output: Path,
    *,
    workers: int,
    mapping: Path | None,
    preview: bool,
) -> BatchSummary:
    from chalicelib import bootstrap
    from chalicelib.data.mapping import load_mapping
    from chalicelib.pipeline.folder import run_batch

    _load_checked(template)
    field_map = load_mapping(mapping) if mapping else None
    started = time.monotonic()
    with _batch_progress() as bar:
        task = bar.add_task(f"{template.stem} → {output}", total=None, rate="")

        def step(result: RecipientResult, done: int, total: int) -> None:
            rate = done / max(1e-6, time.monotonic() - started)
            bar.update(task, completed=done, total=total, rate=f"{rate * 60:.1f}/min")
            if result.status is Status.failed:
                bar.console.print(
                    f"✗ line {result.line} {result.recipient_id}: {result.reason}",
                    markup=False,
                    highlight=False,
                    style="red",
                )

        with bootstrap.folder(output, workers=workers) as b:
            return run_batch(
                b, template, data, output, mapping=field_map, preview=preview, progress=step
            )


def _report(summary: BatchSummary, started: float) -> None:
    c = summary.counts
    out.print(
        f"[green]{c['rendered']} rendered[/], {c['cached']} already done, "
        f"[red]{c['failed']} failed[/] in {time.monotonic() - started:.0f} s → "
        f"{summary.out_dir} (per-recipient results: {summary.results_path.name})"
    )
    fell_back = sum(1 for r in summary.results if r.fallbacks)
    if fell_back:
        out.print(
            f"[yellow]{fell_back} of {len(summary.results)}[/] recipients lack translations in "
            f"their locale: those strings "
            f"were said in the template's (`fallbacks` in {summary.results_path.name})"
        )


@app.command()
def batch(
    template: Annotated[Path, typer.Argument(help="Template file (.yaml, .yml or .json)")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Recipients: .csv or .jsonl")],
    output: Annotated[Path, typer.Option("--out", "-o", help="Output folder")],
    workers: Annotated[int, typer.Option(min=1, help="Render processes")] = max(
        1, (os.cpu_count() or 1)
    ),
    mapping: Annotated[
        Path | None, typer.Option(help="Field mapping (YAML/JSON): columns → variables")
    ] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Low-resolution quick look")] = False,
) -> None:
    """Render one video per recipient. Reruns skip what is done; a bad row fails alone.

    Exit code: 0 all done, 1 some rows were bad input, 2 some renders failed.
    """
    started = time.monotonic()
    try:
        summary = _run_batch(
            template, data, output, workers=workers, mapping=mapping, preview=preview
        )
    except ReelError as exc:
        raise _fail(exc) from exc
    _report(summary, started)
    _exit_for(summary)


def _exit_for(summary: BatchSummary) -> None:
    failures = [r for r in summary.results if r.status is Status.failed]
    if any(r.code in (RenderError.code, StorageError.code, "internal_error") for r in failures):
        raise typer.Exit(2)
    if failures:
        raise typer.Exit(1)


def _template_folders(root: Path) -> list[Path]:
    """Campaign folders under `root` (itself, or its children up to two levels down)."""
    names = ("template.yaml", "template.yml", "template.json")
    found = {f.parent for n in names for f in [*root.glob(n), *root.glob(f"*/{n}")]}
    found |= {f.parent for n in names for f in root.glob(f"*/*/{n}")}
    return sorted(found)


WorkersOption = Annotated[int, typer.Option(min=1, help="Render processes")]
DEFAULT_WORKERS = max(1, os.cpu_count() or 1)


@dataclass
class _Local:
    """The API on this machine: the Chalice app on a socket, over the local backends."""

    server: LocalServer
    url: str
    dev_key: str | None
    b: Backends
    settings: Settings

    @classmethod
    def start(
        cls, host: str, port: int, data_dir: Path | None, workers: int, **more: Any
    ) -> _Local:
        """Listen on `host:port`, and wire the app with settings that say so (they win over
        the environment): the data folder, the workers, the URL, an API key, and `more`."""
        import secrets

        from app import app as chalice_app
        from chalicelib import bootstrap
        from chalicelib.server import LocalServer
        from chalicelib.settings import get_settings

        server = LocalServer(chalice_app, host, port)
        overrides: dict[str, Any] = {"workers": workers, "public_url": server.url, **more}
        if data_dir is not None:
            overrides["data_dir"] = data_dir.resolve()
        base = get_settings()
        dev_key = None
        if not base.api_key_list:
            dev_key = overrides["api_keys"] = "dev-" + secrets.token_urlsafe(24)
        settings = base.model_copy(update=overrides)
        wiring = bootstrap.use(settings)
        return cls(server, server.url, dev_key, wiring.backends, settings)

    def register(self, folder: Path) -> TemplateRecord | None:
        from chalicelib.services import templates

        try:
            record = templates.register_folder(self.b, folder)
        except ReelError as exc:
            err.print(f"template {folder}: {exc}", markup=False, highlight=False, style="red")
            return None
        out.print(f"template [bold]{record.id}[/] version {record.version}  ({folder})")
        return record

    def announce(self) -> None:
        out.print(f"Reel serving on [bold]{self.url}[/] · data in {self.settings.data_dir}")
        if self.dev_key:
            out.print(f"dev API key (x-api-key): [bold]{self.dev_key}[/]")

    def serve_forever(self) -> None:
        """Serve until Ctrl-C, with the relay worker draining the outbox to the connectors."""
        from chalicelib import bootstrap

        wiring = bootstrap.current()
        worker = wiring.relay_worker()
        if worker is not None:
            worker.start()
            names = ", ".join(wiring.connectors) or "none configured"
            out.print(f"relay: delivering to {names}")
        from chalicelib.services.privacy import SweepWorker

        sweeper = SweepWorker(wiring.backends)  # the campaigns' retention, every hour
        sweeper.start()
        out.print("Ctrl-C to stop")
        sys.stdout.flush()
        try:
            self.server.serve_forever()
        except KeyboardInterrupt:
            out.print("stopping")
        finally:
            sweeper.stop()
            if worker is not None:
                worker.stop()
            bootstrap.reset()  # stops the render processes


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--out", "-o", help="Data folder")] = Path("out/demo"),
    preview: Annotated[bool, typer.Option("--preview", help="Low-resolution quick look")] = False,
    workers: WorkersOption = DEFAULT_WORKERS,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any)")] = 8000,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the pages when rendered")
    ] = True,
) -> None:
    """Render the demo campaign of examples/demo through the local API — a video, a poster and
    a landing page per recipient — then serve the pages and the dashboard."""
    from chalicelib.services import batches

    started = time.monotonic()
    local = _Local.start("127.0.0.1", port, output, workers)
    template = local.register(DEMO_DIR)
    if template is None:
        raise typer.Exit(1)
    source = "uploads/demo/recipients.csv"
    local.b.blobs.put_file(source, DEMO_DIR / "recipients.csv")
    from chalicelib.services.templates import campaign_mapping_file

    mapping = campaign_mapping_file(DEMO_DIR)  # its `opt_in` column is the tracking consent
    request = batches.BatchRequest(
        template_id=template.id, source=source, preview=preview, mapping=mapping
    )
    batch = batches.create_batch(local.b, request)
    with _batch_progress() as bar:
        task = bar.add_task("rendering", total=None, rate="")
        while True:
            record = batches.get_batch(local.b, batch.id)
            counts = local.b.results.count_results(batch.id)
            done = sum(counts.values())
            rate = f"{done / (time.monotonic() - started):.2f}/s" if done else ""
            bar.update(task, total=record.total, completed=done, rate=rate)
            if record.state in (JobState.done, JobState.failed):
                break
            time.sleep(0.2)
    if record.state is JobState.failed:
        raise _fail(ReelError(record.error or "the batch failed"))
    elapsed = time.monotonic() - started
    out.print(
        f"[bold]{counts['rendered'] + counts['cached']}[/] videos ready "
        f"({counts['rendered']} rendered, {counts['cached']} already there), "
        f"[bold]{counts['failed']}[/] failed, in {elapsed:.1f} s"
    )
    results = local.b.results.list_results(batch.id, limit=3)
    out.print(f"dashboard: [bold]{local.url}/dashboard/{template.id}[/]")
    for _, result in results:
        if result.page:
            out.print(f"  ▶ {result.recipient_id}: {result.page}")
    hint = "make it yours, every frame previewed as you type: [bold]reel studio examples/demo[/]"
    if serve:
        local.announce()
        out.print(hint)
        local.serve_forever()
    else:
        out.print(hint)
        from chalicelib import bootstrap

        bootstrap.reset()
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free one)")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Blobs and the SQLite file (REEL_DATA_DIR)")
    ] = None,
    templates: Annotated[
        Path, typer.Option("--templates", help="Folder of campaigns registered at start")
    ] = EXAMPLES_DIR,
    workers: WorkersOption = DEFAULT_WORKERS,
) -> None:
    """Run the HTTP API on this machine: local files, SQLite and a process pool; no AWS."""
    local = _Local.start(host, port, data_dir, workers)
    for folder in _template_folders(templates):
        local.register(folder)
    if resumed := local.b.orchestrator.resume():
        out.print(f"resuming {resumed} unfinished render(s) and batch(es)")
    local.announce()
    out.print(
        f"try: curl -s -X POST {local.url}/renders -H 'x-api-key: …' "
        "-H 'content-type: application/json' "
        """-d '{"template_id": "welcome", "data": {"first_name": "Ada"}}'""",
        markup=False,
        highlight=False,
    )
    local.serve_forever()


@app.command("studio")
def studio_command(
    campaign: Annotated[
        Path, typer.Argument(help="The campaign folder (template.yaml, scenes/, assets/)")
    ] = DEMO_DIR,
    data: Annotated[
        Path | None, typer.Option("--data", help="Recipients (CSV/JSONL); default: the campaign's")
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free one)")] = 8100,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Renders and versions (default: DIR/.reel)")
    ] = None,
    workers: WorkersOption = 1,
    browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser if one is here")
    ] = True,
) -> None:
    """Edit a campaign in the browser, with every frame drawn as you type (on 127.0.0.1)."""
    from chalicelib.studio.watch import watcher

    folder = campaign.resolve()
    if not any((folder / n).is_file() for n in ("template.yaml", "template.yml", "template.json")):
        raise _fail(ReelError(f"{campaign}: no template.yaml in this folder", "CAMPAIGN"))
    if data is not None and not data.is_file():
        raise _fail(ReelError(f"{data}: no such file", "--data"))
    studio_data = data.resolve() if data is not None else None
    local = _Local.start(
        "127.0.0.1",
        port,
        data_dir or folder / ".reel",
        workers,
        studio_dir=folder,
        studio_data=studio_data,
    )
    watcher(folder)  # before the page can load: no edit made after it is missed
    url = f"{local.url}/studio" + (f"#key={local.dev_key}" if local.dev_key else "")
    out.print(f"Reel Studio on [bold]{url}[/] · editing {folder}", soft_wrap=True)
    if browser:
        import webbrowser

        try:
            webbrowser.get().open(url)
        except webbrowser.Error:
            out.print("(no browser here: open the URL above)")
    local.serve_forever()


def _use_data_dir(data_dir: Path | None) -> None:
    """Point the local backend at `data_dir` (what `reel serve --data-dir` used)."""
    from chalicelib import bootstrap
    from chalicelib.settings import get_settings

    if data_dir is not None:
        bootstrap.use(get_settings().model_copy(update={"data_dir": data_dir.resolve()}))


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="The data of `reel serve` (REEL_DATA_DIR)")
]


@app.command()
def report(
    campaign: Annotated[str, typer.Argument(help="The campaign (its template id)")],
    png: Annotated[Path | None, typer.Option("--png", help="Also draw the charts here")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Recipients listed")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """The campaign's funnel, retention and recipients, from the events of its pages."""
    from chalicelib import bootstrap
    from chalicelib.services import analytics
    from chalicelib.tracking.report import recipients_table, report_table

    _use_data_dir(data_dir)
    try:
        found = analytics.campaign_analytics(bootstrap.backends(), campaign)
    except ReelError as exc:
        raise _fail(exc) from exc
    out.print(report_table(found))
    from chalicelib.tracking.report import experiments_tables, interactions_table

    for table in experiments_tables(found):
        out.print(table)
    if (interactions := interactions_table(found)) is not None:
        out.print(interactions)
    if limit:
        out.print(recipients_table(found, limit=limit))
    if png is not None:
        from chalicelib.landing.charts import report_png

        report_png(found, png)
        out.print(f"[green]✓[/] {png}")


@app.command()
def deliveries(
    status: Annotated[
        str | None, typer.Option(help="pending, delivered, failed or disabled")
    ] = None,
    redeliver: Annotated[
        list[str] | None, typer.Option(help="Put this delivery back in line (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    data_dir: DataDirOption = None,
) -> None:
    """The relay's deliveries to the CRM connectors; dead letters are `--status failed`."""
    from rich.table import Table

    from chalicelib import bootstrap
    from chalicelib.connectors.base import DeliveryStatus

    _use_data_dir(data_dir)
    try:
        wanted = DeliveryStatus(status) if status else None
    except ValueError:
        choices = ", ".join(s.value for s in DeliveryStatus)
        raise _fail(ReelError(f"--status is one of {choices}", field="--status")) from None
    b = bootstrap.backends()
    if redeliver:
        relay = bootstrap.relay()
        for key in redeliver:
            try:
                relay.redeliver(key)
            except ReelError as exc:
                raise _fail(exc) from exc
            out.print(f"[green]✓[/] {key} is due again")
        return
    for name, reason in b.deliveries.disabled().items():
        err.print(f"connector {name} is disabled: {reason}", markup=False, style="yellow")
    table = Table(title=f"Deliveries ({status or 'all'})", title_justify="left")
    for column in ("Key", "Connector", "Action", "Recipient", "Status", "Attempts", "Last error"):
        table.add_column(column, overflow="fold")
    for d in b.deliveries.by_status(wanted, limit):
        table.add_row(
            d.key,
            d.out.connector,
            d.out.action,
            d.out.recipient_id or "",
            d.status.value,
            str(d.attempts),
            d.last_error or "",
        )
    out.print(table)


@app.command("email-snippet")
def email_snippet(
    target: Annotated[str, typer.Argument(help="CAMPAIGN, or CAMPAIGN/RECIPIENT_ID for one")],
    output: Annotated[Path, typer.Option("--out", "-o", help="Folder of .html files")] = Path(
        "out/snippets"
    ),
    data_dir: DataDirOption = None,
) -> None:
    """Write the email HTML of each recipient: an animated GIF (≤ 1 MB) linking to their page."""
    from chalicelib import bootstrap
    from chalicelib.pipeline.steps import slug
    from chalicelib.services import emails

    _use_data_dir(data_dir)
    campaign, _, recipient = target.partition("/")
    b = bootstrap.backends()
    pages = b.recipients.campaign_pages(campaign)
    if recipient:
        pages = [p for p in pages if p.recipient_id == recipient]
    if not pages:
        what = f"recipient {recipient!r} in campaign {campaign!r}" if recipient else campaign
        raise _fail(ReelError(f"no landing page for {what} (render it first)", field="target"))
    output.mkdir(parents=True, exist_ok=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    ) as bar:
        task = bar.add_task("snippets", total=len(pages))
        for page in pages:
            try:
                html = emails.email_snippet(b, page)
            except ReelError as exc:
                raise _fail(exc) from exc
            (output / f"{slug(page.recipient_id)}.html").write_text(html, encoding="utf-8")
            bar.advance(task)
    out.print(f"{len(pages)} snippet(s) in {output}")


@app.command()
def erase(
    recipient: Annotated[str, typer.Argument(help="The recipient's id")],
    campaign: Annotated[
        str | None, typer.Option(help="Only this campaign (default: every campaign)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Erase a recipient: record, pages (410 Gone), media, events, deliveries, batch rows."""
    from chalicelib import bootstrap
    from chalicelib.services import privacy

    _use_data_dir(data_dir)
    try:
        entry = privacy.erase(bootstrap.backends(), recipient, campaign, actor="cli")
    except ReelError as exc:
        raise _fail(exc) from exc
    removed = ", ".join(f"{n} {kind}" for kind, n in entry.removed.items() if n) or "nothing"
    out.print(f"[green]✓[/] erased from {', '.join(entry.campaigns)}: {removed}")
    out.print(f"audit entry {entry.id}")


@app.command("export")
def export_command(
    recipient: Annotated[str, typer.Argument(help="The recipient's id")],
    campaign: Annotated[
        str | None, typer.Option(help="Only this campaign (default: every campaign)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print everything held about a recipient as one JSON document (the right of access)."""
    from chalicelib import bootstrap
    from chalicelib.services import privacy

    _use_data_dir(data_dir)
    try:
        document = privacy.export(bootstrap.backends(), recipient, campaign)
    except ReelError as exc:
        raise _fail(exc) from exc
    sys.stdout.write(document.model_dump_json(indent=2) + "\n")


@app.command()
def sweep(data_dir: DataDirOption = None) -> None:
    """Apply the campaigns' retention periods now (`reel serve` runs it every hour)."""
    from chalicelib import bootstrap
    from chalicelib.services import privacy

    _use_data_dir(data_dir)
    report = privacy.sweep(bootstrap.backends())
    removed = ", ".join(f"{n} {kind}" for kind, n in report.removed.items() if n)
    out.print(f"[green]✓[/] retention sweep: {removed or 'nothing past its period'}")


@app.command()
def failures(
    retry: Annotated[
        list[str] | None, typer.Option(help="Invoke this failure again (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    data_dir: DataDirOption = None,
) -> None:
    """Asynchronous invocations that failed for good (an upload's trigger, a stream's render),
    from their dead-letter queues; the local backend makes none."""
    from rich.table import Table

    from chalicelib import bootstrap

    _use_data_dir(data_dir)
    found = bootstrap.failures()
    if retry:
        for failure_id in retry:
            try:
                failure = found.retry(failure_id)
            except ReelError as exc:
                raise _fail(exc) from exc
            out.print(f"[green]✓[/] {failure_id} invoked again ({failure.function})")
        return
    table = Table(title="Failed asynchronous invocations", title_justify="left")
    for column in ("Id", "Source", "Function", "When", "Attempts", "Error"):
        table.add_column(column, overflow="fold")
    for f in found.recent(limit):
        function = f.function.rsplit(":", 1)[-1]
        table.add_row(f.id, f.source, function, f.at, str(f.attempts), f.error)
    out.print(table)


experiments_app = typer.Typer(help="A campaign's experiments (A/B tests).", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")


@experiments_app.command("promote")
def experiments_promote(
    campaign: Annotated[str, typer.Argument(help="The campaign (its template id)")],
    experiment: Annotated[str, typer.Argument(help="The experiment's id")],
    variant: Annotated[str, typer.Argument(help="The variant everyone gets from now on")],
    data_dir: DataDirOption = None,
) -> None:
    """Make VARIANT the default in a new template version (the experiment ends)."""
    from chalicelib import bootstrap
    from chalicelib.services.experiments import promote

    _use_data_dir(data_dir)
    try:
        record = promote(bootstrap.backends(), campaign, experiment, variant)
    except ReelError as exc:
        raise _fail(exc) from exc
    out.print(
        f"[green]✓[/] {campaign}: {variant} of {experiment} is the default in version "
        f"{record.version}",
        highlight=False,
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
