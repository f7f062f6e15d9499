"""The command line's one progress bar: tqdm on standard error, only when it is a terminal (and never with
``--json``), fed by a job's progress reports or by the training loop."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from core.i18n import cli_language, render


class ProgressBar:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: tqdm | None = None
        self.phase: dict[str, Any] | None = None

    def __call__(self, done: int, total: int, phase: dict[str, Any] | None = None, **postfix: float) -> None:
        """``done`` of ``total`` units, doing what ``phase`` (a stored message) says; a new phase, a new bar."""
        if not self.enabled:
            return
        if self.bar is None or phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=total or None, desc=render(phase, cli_language()), file=sys.stderr, leave=False,
                            dynamic_ncols=True)  # fmt: skip
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        if postfix:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in postfix.items()}, refresh=False)
        self.bar.refresh()

    def line(self, text: str) -> None:
        """A line that stays (an epoch's figures), printed above the bar."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
