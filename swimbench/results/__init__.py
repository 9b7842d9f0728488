"""Where a run's results live: a run directory under reports/ with results.csv (rewritten atomically
after every row), metadata.json, the raw samples and the power trace; `--resume` reads them back.

- `schema`: every column of results.csv, declared once (type, unit, meaning, what older rows get),
            and the intervals (a measured column with its low and high columns);
- `rundir`: the run directory and the writer of results.csv;
- `reader`: a run read back for `swimbench report` and `swimbench gate`: typed rows, samples, trace;
- `atomic`: writes that leave the old file or the new one.
"""
from .atomic import atomic_write_text
from .rundir import DONE, Results, RunDir
from .schema import COLUMNS, COLUMNS_BEFORE

__all__ = ["atomic_write_text", "COLUMNS", "COLUMNS_BEFORE", "DONE", "Results", "RunDir"]
