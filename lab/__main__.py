"""The lab's command line (run from the repository root on a GPU machine): `python -m lab runs|replays`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Engine runs for planner validate: record them, replay them (GPU).")


@app.command("runs")
def validation_runs(out: Path = typer.Option(Path("lab/validation/h100")), gpu: str = "H100-SXM",
                    profile: Optional[str] = None, azure: Optional[str] = None, duration: float = 30.0,
                    models: str = "llama-3.2-1b,llama-3.1-8b", kernels: bool = False):
    """Replay the validation traces on this GPU (for `planner validate`)."""
    from lab.validation_runs import run_all
    run_all(out, models=tuple(models.split(",")), profile=profile, azure=azure, duration=duration, gpu=gpu,
            kernels=kernels)


@app.command("replays")
def replay_runs(data: Path = typer.Option(Path("lab/validation/h100"), help="committed runs (trace, meta) to replay"),
                out: Optional[Path] = typer.Option(None, help="where the replays' records go (default: --data)"),
                models: Optional[str] = typer.Option(None, help="comma-separated model names (default: all)"),
                labels: Optional[str] = typer.Option(None, help="comma-separated run labels, e.g. poisson-0.4"),
                repeats: int = typer.Option(1, min=1, help="replays of each run"),
                deadline_s: Optional[float] = typer.Option(None, help="start no replay after this many seconds")):
    """Replay committed validation runs again on this GPU: the engine's own run-to-run spread, and a
    median reference for `planner validate`."""
    from lab.validation_runs import replay_runs as run
    run(data, out or data, models=tuple(models.split(",")) if models else None,
        labels=tuple(labels.split(",")) if labels else None, repeats=repeats, deadline_s=deadline_s)


if __name__ == "__main__":
    app()
