"""The `seer` command line: one module per command family and an entry point.

``seer.cli.entry`` assembles the parser and maps errors to exit codes;
``common`` has what the families share; the families are ``services``
(`seer controller`, `seer daemon`), ``certs`` (`seer certs init`),
``info`` (`nodes`, `agents`, `status`, `watch`), ``messages`` (`set`,
`start`, `stop`, `command`, `put`, `get`), ``jobs`` (`jobs`, `job`),
``stats`` and ``run`` (`seer run`);
`seer testbed` lives with the testbed (:mod:`seer.testbed.cli`).

``seer.cli:main`` is the console script; ``python -m seer`` and
``python -m seer.cli`` run it too.
"""

from seer.cli.entry import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNCONFIRMED,
    EXIT_UNREACHABLE,
    build_parser,
    main,
)

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_REFUSED", "EXIT_UNCONFIRMED", "EXIT_UNREACHABLE",
           "build_parser", "main"]
