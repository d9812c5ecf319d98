"""The dashboard: the experiment's topology with live traffic, in a browser.

Served by the controller on its HTTP port under ``/dashboard/``, behind a
random token per start; see docs/DASHBOARD.md.  :class:`Dashboard` is the
service the Controller builds; the page's own files are in ``static/``.
"""

from backend.controller.dashboard.service import Dashboard

__all__ = ["Dashboard"]
