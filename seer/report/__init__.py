"""seer.report -- a recorded run's pictures: plots of its links and groups, its page.

By job: :mod:`~seer.report.record` reads a run record (stats.csv,
commands.csv, phases.csv; standard library only), :mod:`~seer.report.plots`
draws it (the only module that imports matplotlib), :mod:`~seer.report.page`
writes the HTML page, and :mod:`~seer.report.build` decides which plots a
run gets and puts the report together.  `seer report` (seer/cli/report.py)
is its command; `seer run` starts that command when a run's results come
back.  Nothing is imported here, so that reading a record never loads
matplotlib.
"""
