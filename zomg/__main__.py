"""``python -m zomg``: the same entry point as the ``zomg`` command."""
import sys

from zomg.cli import main

if __name__ == "__main__":
    sys.exit(main())
