"""`python tests/pause_at_checkpoint.py MARKER dstbench-args...`: run `dstbench` and, right after it writes its first
checkpoint.pt, create MARKER and stop for good (until killed).

The kill tests wait for MARKER, then kill: the process dies at a known point, after a checkpoint and before the
end, however loaded the machine is (a sleep before the kill raced with the run finishing).
"""

import sys
import threading
from pathlib import Path

from dstbench import store
from dstbench.cli import main

CHECKPOINT = store.CHECKPOINT  # a run's, and a run group's (train/group.py names it the same)


def _pausing(write):
    def atomic_write_bytes(path, data):
        write(path, data)
        if Path(path).name == CHECKPOINT:
            Path(sys.argv[1]).touch()
            threading.Event().wait()  # the test kills us here

    return atomic_write_bytes


if __name__ == "__main__":
    store.atomic_write_bytes = _pausing(store.atomic_write_bytes)
    sys.exit(main(sys.argv[2:]))
