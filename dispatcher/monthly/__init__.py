"""The monthly rhythm (一月一调度、一月一培训) and the runs of every monthly job (DESIGN §7).

``periods`` (months and when each job falls due, on the policy's cron and working-day calendar),
``runs`` (the ``(job, period)`` record that makes each run once), ``meeting`` (the ``DD-`` dispatch
meeting per zone: agenda, decisions as follow-up tasks), ``training`` (the ``PX-`` training per
unit: curriculum rotation, suggested topic, attendance), ``service`` (the use cases the
scheduler, the actor, the CLI, the API and the pages call), ``policy`` (the policy file's
monthly sections).
"""
