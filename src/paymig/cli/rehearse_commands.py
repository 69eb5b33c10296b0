"""`paymig rehearse`: the whole migration rehearsed end to end on this machine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from paymig.errors import StoppedError
from paymig.rehearsal.options import DEFAULT_CLIENTS, DEFAULT_RATE, DEFAULT_ROWS, Display, Options
from paymig.rehearsal.report import RehearsalReport, summary_rows
from paymig.rehearsal.run import Rehearsal
from paymig.rehearsal.scenarios import DEFAULT_SCENARIO, SCENARIOS


class RichDisplay(Display):
    """Live progress: the current step, bars, and the live weights and lag."""

    def __init__(self, console: Console) -> None:
        """Prepare the live view (started by :meth:`__enter__`)."""
        self.console = console
        self.current = "starting"
        self.weights: dict[str, int] = {}
        self.lag: float | None = None
        self.written = 0
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)
        self._lock = threading.Lock()

    def _render(self) -> Group:
        """The live view."""
        weights = ", ".join(f"{k} {v}" for k, v in sorted(self.weights.items())) or "-"
        lag = "-" if self.lag is None else f"{self.lag:.2f} s"
        status = Text.assemble(
            ("step: ", "bold"), self.current, "\n",
            ("Route 53 weights: ", "bold"), weights, "   ",
            ("replication lag: ", "bold"), lag, "   ",
            ("payments acknowledged: ", "bold"), str(self.written),
        )  # fmt: skip
        return Group(status, self.progress)

    def _refresh(self) -> None:
        """Redraw."""
        self.live.update(self._render())

    def step(self, name: str) -> None:
        """Show the new step."""
        with self._lock:
            self.current = name
            self.live.console.print(f"[bold cyan]>> {name}[/]", highlight=False)
            self._refresh()

    def info(self, message: str) -> None:
        """Print a line above the live view."""
        self.live.console.print(f"   {message}", highlight=False, markup=False)

    def bar(self, name: str, total: int) -> Callable[[int], None]:
        """Add a bar."""
        task: TaskID = self.progress.add_task(name, total=total)
        return lambda n: self.progress.advance(task, n)

    def signals(self, weights: dict[str, int], lag: float | None, written: int) -> None:
        """Update the live figures."""
        with self._lock:
            self.weights, self.lag, self.written = weights, lag, written
            self._refresh()


def print_summary(console: Console, report: RehearsalReport, workdir: Path) -> None:
    """The final summary with the measured figures."""
    table = Table(title="paymig rehearse: measured")
    table.add_column("figure")
    table.add_column("value")
    for name, value in summary_rows(report):
        table.add_row(name, value)
    console.print(table)
    if report.not_rehearsed:
        console.print(f"not rehearsed ({len(report.not_rehearsed)}): see {workdir / 'report.md'}")
    timeline = workdir / "timeline.png"
    console.print(
        f"report: {workdir / 'report.md'}"
        + (f", timeline: {timeline}" if timeline.is_file() else ""),
        highlight=False,
    )


def rehearse(
    *,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Folder of the report, the timeline and the cache.")
    ] = Path("rehearsal"),
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="Payments in the seed dataset.")
    ] = DEFAULT_ROWS,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, max=1000, help="Payments sent per second.")
    ] = DEFAULT_RATE,
    clients: Annotated[
        int,
        typer.Option(
            "--clients",
            min=1,
            max=10_000,
            help="Virtual clients; each resolves the API name through DNS.",
        ),
    ] = DEFAULT_CLIENTS,
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help="Fault to inject: "
            + "; ".join(f"{name}: {item.description}" for name, item in sorted(SCENARIOS.items())),
        ),
    ] = DEFAULT_SCENARIO,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the work files (state, logs, acknowledged ids)."),
    ] = False,
) -> None:
    """Rehearse the migration end to end on this machine; no AWS account needed."""
    console = Console()
    display = RichDisplay(console)
    options = Options(workdir=workdir, rows=rows, rate=rate, clients=clients, scenario=scenario,
                      keep=keep)  # fmt: skip
    rehearsal = Rehearsal(options, display)
    try:
        with display.live:
            report = rehearsal.run()
    except KeyboardInterrupt:
        print_summary(console, rehearsal.report, workdir)
        still = rehearsal.report.processes_still_running
        state = f"still running: {still}" if still else "every process it started was stopped"
        raise StoppedError(f"rehearsal interrupted; {state}") from None
    except BaseException:
        if rehearsal.report.steps:
            print_summary(console, rehearsal.report, workdir)
        raise
    print_summary(console, report, workdir)
    if report.outcome != "passed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("rehearse")(rehearse)
