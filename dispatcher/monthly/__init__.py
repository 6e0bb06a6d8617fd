"""The monthly rhythm (一月一调度、一月一培训): the dispatch meeting and the training tasks (DESIGN §7).

Not built yet (issue 8). Will own the ``DD-`` dispatch-meeting task per zone with its agenda and
follow-up decisions, the ``PX-`` training task per unit with its curriculum rotation, and the
``(job, period)`` record that makes each run once.
"""
