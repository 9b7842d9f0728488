"""Where a run's results live: a run directory under reports/ with results.csv (rewritten atomically
after every row), metadata.json, the raw samples and the power trace; `--resume` reads them back."""
from .atomic import atomic_write_text
from .rundir import COLUMNS, COLUMNS_BEFORE, DONE, Results, RunDir

__all__ = ["atomic_write_text", "COLUMNS", "COLUMNS_BEFORE", "DONE", "Results", "RunDir"]
