"""Files written whole or not at all: a run's records, a sweep's summary, figures and predictions."""

import json
import math
from pathlib import Path


def write_whole(path: Path, write) -> None:
    """write(tmp) to a file beside path, then renamed to it: path is written whole or not at all (a full disk,
    Ctrl-C), and what it held stays until then. The file's suffix is kept (new.tmp.csv.gz), for writers that read
    it as the format."""
    path = Path(path)
    tmp = path.with_name(f"{path.name.partition('.')[0]}.tmp{''.join(path.suffixes)}")
    try:
        write(tmp)
    except BaseException:  # no half-written file left beside the whole one
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_json(path: Path, content: dict) -> None:
    """Strict JSON (a metric that is not a finite number is null), written whole or not at all."""
    finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in content.items()}
    write_whole(path, lambda tmp: tmp.write_text(json.dumps(finite, indent=2, allow_nan=False) + "\n"))
