"""backend.controller -- SEER's network controller core.

SEER's documented names live here: :class:`Controller` (the service),
:class:`CommWrapper` (its sending API, also handed to controller modules)
and :func:`returnNone`.  The pieces are modules of this package, one job
each; docs/ARCHITECTURE.md shows how they fit.
"""

from backend.controller.comm import CommWrapper
from backend.controller.service import Controller, returnNone

__all__ = ["Controller", "CommWrapper", "returnNone"]
