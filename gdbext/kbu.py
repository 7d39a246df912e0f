# Loads the kbu GDB extension: `source gdbext/kbu.py` (or scripts/kbu-gdb).
# Puts this directory on sys.path and imports the package, which registers
# the `kbu` prefix command and every module's subcommands.
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

import kbu  # noqa: E402,F401  (registers the commands on import)
