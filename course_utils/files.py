"""Files written so that an interruption never leaves a broken one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def WriteAtomically(filePath: Path | str, hWrite: Callable[[BinaryIO], None]) -> None:
    """Write a file through ``hWrite(oFile)`` into a temporary file beside it, then rename it into place.

    The rename is atomic on one file system, so readers see the old file or the new one, never half of one;
    the temporary file is removed when ``hWrite`` fails or is interrupted (Ctrl-C).
    """
    filePath = Path(filePath)
    filePath.parent.mkdir(parents=True, exist_ok=True)
    fileDesc, tmpName = tempfile.mkstemp(dir=filePath.parent, prefix=filePath.name, suffix='.tmp')
    try:
        with os.fdopen(fileDesc, 'wb') as oFile:
            hWrite(oFile)
        os.replace(tmpName, filePath)
    except BaseException:
        Path(tmpName).unlink(missing_ok=True)
        raise
