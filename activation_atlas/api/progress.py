"""Progress of a Python API call: one tqdm.auto bar over its steps (a widget in Jupyter, a line in a
terminal) whose text is the stage's latest log line; with verbose, every log line printed as well."""

from __future__ import annotations

from contextlib import contextmanager


class Progress:
    def __init__(self, bar, verbose: bool):
        self.bar, self.verbose, self.started, self.pending = bar, verbose, 0, ""

    def __call__(self, line: str) -> None:
        """A stage's log line: the bar's text, and printed when verbose."""
        self.bar.set_postfix_str(line.splitlines()[0][:80] if line else "", refresh=True)
        if self.verbose:
            self.bar.write(line)

    def write(self, text: str) -> None:
        """Printed text (umap-learn's progress, printed a piece at a time) taken as log lines."""
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.strip():
                self(line.strip())

    def flush(self) -> None:
        pass

    def step(self, name: str) -> None:
        """The next step begins."""
        if self.started:
            self.bar.update(1)
        self.started += 1
        self.bar.set_description_str(name)


@contextmanager
def progress(steps: int, verbose: bool, enabled: bool = True):
    """A Progress over `steps` steps; the bar is closed complete when the call returns."""
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, disable=not enabled, leave=True, bar_format="{desc}: {n_fmt}/{total_fmt} {postfix}")
    try:
        yield Progress(bar, verbose)
        bar.update(bar.total - bar.n)
    finally:
        bar.close()
