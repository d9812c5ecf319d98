"""``python -m seer.cli``: the `seer` command line, as ``python -m seer``."""

from seer.cli.entry import main

raise SystemExit(main())
