"""``python -m seer.cli``: the `seer` command line, as ``python -m seer``."""

from seer.cli.main import main

raise SystemExit(main())
