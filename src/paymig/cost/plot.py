"""`paymig cost --plot`: the month table as a PNG, stacked by service against the budget."""

from __future__ import annotations

from pathlib import Path

from paymig.cost.prices import PricingError
from paymig.cost.timeline import MonthTable

#: Services drawn on their own; the rest are summed as "other".
PLOTTED_SERVICES = 8


def plot_month_table(table: MonthTable, budget: float, path: Path, title: str) -> Path:
    """Draw each month's bill stacked by service, with the budget as a line."""
    try:
        import matplotlib
    except ImportError:
        raise PricingError(
            "--plot: matplotlib is not installed (it comes with paymig's rehearse extra)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    services = table.services()
    shown, rest = services[:PLOTTED_SERVICES], services[PLOTTED_SERVICES:]
    labels = [str(r.month) for r in table.rows]
    figure, axis = plt.subplots(figsize=(11, 6))
    bottom = [0.0] * len(table.rows)
    series = [(s, [r.by_service.get(s, 0.0) for r in table.rows]) for s in shown]
    if rest:
        series.append(("other", [sum(r.by_service.get(s, 0.0) for s in rest) for r in table.rows]))
    for name, values in series:
        axis.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.axhline(budget, color="tab:red", linestyle="--", linewidth=2, label="budget")
    axis.set_ylabel("USD per month")
    axis.set_xlabel("month")
    axis.set_title(title)
    axis.tick_params(axis="x", rotation=45)
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise PricingError(f"--plot {path}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
    return path
