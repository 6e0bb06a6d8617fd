"""Who may see a task and who may make which move on it (DESIGN §8), in one place.

``can_see`` and its SQL mirror ``visible`` decide visibility (another unit's task is not even
acknowledged: ``NotFound``); ``may`` decides a move by role and unit; recusal (回避) is checked
by the guarded write (``tasks.guard``) for every move and extension alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from dispatcher.enums import WORKING, Role, TaskKind
from dispatcher.enums import TaskStatus as S
from dispatcher.errors import NotFound
from dispatcher.models import Task, User
from dispatcher.org.model import Org
from dispatcher.tasks.lifecycle import Move, allowed_moves

#: Not staff roles, but actors all the same: the routing and supervision workers, the scheduler
#: (``system``) and the requester's platform relaying feedback (``source``).
SYSTEM, SOURCE = "system", "source"

#: Tasks the system makes (meetings, trainings, meeting decisions): never routed, never returned.
INTERNAL_KINDS = frozenset({TaskKind.monthly_dispatch, TaskKind.training, TaskKind.follow_up})

#: Roles that work for their own unit: they see the tasks their unit handles, verifies or assists.
UNIT_ROLES = (Role.handler, Role.verifier)

#: Moves a handler of the handling unit makes.
HANDLER_MOVES = frozenset({Move.accept, Move.return_, Move.progress, Move.submit, Move.suspend, Move.resume})
VERIFIER_MOVES = frozenset({Move.verify, Move.reject})
LEADER_MOVES = frozenset({Move.designate, Move.co_handle, Move.route})
#: Moves only the requester's platform or the system makes (not through the staff API).
REQUESTER_MOVES = frozenset({Move.feedback_close, Move.feedback_reopen, Move.feedback_expire})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a staff member, a source (the requester's platform) or the system."""

    login: str
    #: The first of ``roles``: what messages name (``a handler of DXZ-JW may not …``).
    role: str
    unit: str | None = None
    #: Zones this person leads (协作区组长).
    zones: frozenset[str] = field(default_factory=frozenset)
    #: Every role the person holds (DESIGN §8: a zone leader who also verifies); ``{role}`` if not given.
    roles: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.roles:
            object.__setattr__(self, "roles", frozenset({self.role}))

    @classmethod
    def of(cls, user: User, org: Org | None) -> Actor:
        roles = roles_of(user)
        zones: set[str] = set()
        if org is not None and Role.zone_leader in roles:
            zones = {z.code for z in org.zones if user.login in z.leaders}
            unit = org.units_by_code.get(user.unit_code)
            if unit is not None and unit.zone:
                zones.add(unit.zone)
        return cls(login=user.login, role=user.role, unit=user.unit_code, zones=frozenset(zones), roles=roles)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(login=f"{SYSTEM}:{name}", role=SYSTEM)

    @classmethod
    def source(cls, name: str) -> Actor:
        return cls(login=f"{SOURCE}:{name}", role=SOURCE)

    def has(self, *roles: str) -> bool:
        """Whether the person holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    @property
    def sees_everything(self) -> bool:
        return self.has(Role.admin, Role.oncall, SYSTEM)

    def leads(self, task: Task) -> bool:
        """An admin, or a zone leader of the task's zone."""
        return self.has(Role.admin) or (self.has(Role.zone_leader) and task.zone_code in self.zones)


def roles_of(user: User) -> frozenset[str]:
    """Every role ``user`` holds (rows from before several roles: the one in ``role``)."""
    return frozenset(user.roles or [user.role])


def can_see(actor: Actor, task: Task) -> bool:
    if actor.sees_everything or actor.has(SOURCE):  # a source reaches a task only through its own event
        return True
    if actor.login in task.assisting_logins:  # 增派人员: staff a zone leader added by name
        return True
    if actor.has(Role.zone_leader) and task.zone_code in actor.zones:
        return True
    return (
        actor.has(*UNIT_ROLES)
        and actor.unit is not None
        and (actor.unit in (task.handler_unit, task.verifier_unit) or actor.unit in task.assisting_units)
    )


def visibility(actor: Actor) -> list[Any] | None:
    """The SQL conditions any one of which lets ``actor`` see a task (mirror of ``can_see``), the
    widest first; None when ``actor`` sees everything. ``queries.state_tally`` counts them apart."""
    if actor.sees_everything:
        return None
    conditions: list[Any] = []
    if actor.has(Role.zone_leader):
        conditions.append(col(Task.zone_code).in_(sorted(actor.zones)))
    # Assisting units and logins are JSON lists: match the quoted code inside (portable across backends).
    if actor.has(*UNIT_ROLES) and actor.unit:
        conditions += [
            col(Task.handler_unit) == actor.unit,
            col(Task.verifier_unit) == actor.unit,
            sa.cast(Task.assisting_units, sa.String).contains(f'"{actor.unit}"', autoescape=True),
        ]
    conditions.append(sa.cast(Task.assisting_logins, sa.String).contains(f'"{actor.login}"', autoescape=True))
    return conditions


def visible(actor: Actor) -> Any:
    """The SQL condition matching the tasks ``actor`` may see (mirror of ``can_see``)."""
    conditions = visibility(actor)
    return sa.true() if conditions is None else sa.or_(*conditions)


def get_task(session: Session, actor: Actor, task_id: int) -> Task:
    """The task, if ``actor`` may see it; ``NotFound`` otherwise (another unit's task is not acknowledged)."""
    task = session.get(Task, task_id)
    if task is None or not can_see(actor, task):
        raise NotFound(f"no task {task_id}")
    return task


def may(actor: Actor, task: Task, move: Move) -> bool:
    """Whether ``actor``'s role and unit allow ``move`` on ``task`` (recusal is checked apart)."""
    if actor.has(SYSTEM):
        return True
    if move in REQUESTER_MOVES:
        return actor.has(SOURCE)
    if move is Move.recuse:  # 自行回避: anyone of the staff who has the task before them
        return actor.has(*Role) and can_see(actor, task)
    if move is Move.review:  # 复查 of a held clue: its zone's leader or its handling unit
        return actor.leads(task) or (actor.has(Role.handler) and actor.unit == task.handler_unit)
    if move in LEADER_MOVES:
        return actor.leads(task) or (move is Move.route and actor.has(Role.oncall))
    if move in VERIFIER_MOVES:
        return actor.has(Role.verifier) and actor.unit == task.verifier_unit
    if move is Move.return_ and task.kind in INTERNAL_KINDS:
        return False  # it was not routed: there is nothing to return it to (the leader may designate)
    if task.kind == TaskKind.monthly_dispatch and move in HANDLER_MOVES and actor.leads(task):
        return True  # the zone leader holds the zone's dispatch meeting
    if move is Move.progress and actor.has(Role.handler):
        return (
            actor.unit == task.handler_unit
            or actor.unit in task.assisting_units
            or actor.login in task.assisting_logins
        )
    return actor.has(Role.handler) and actor.unit == task.handler_unit


def moves_for(actor: Actor, task: Task) -> list[Move]:
    """The moves ``actor`` could make on ``task`` right now (the buttons a page shows)."""
    if actor.login in task.recused_logins:
        return []
    return [m for m in allowed_moves(S(task.status)) if m not in REQUESTER_MOVES and may(actor, task, m)]


def may_reveal(actor: Actor, task: Task) -> bool:
    """Only the handling unit's staff and the zone's leader may see who reported or complained."""
    if actor.login in task.recused_logins:
        return False
    if actor.has(Role.zone_leader) and task.zone_code in actor.zones:
        return True
    return actor.has(Role.handler, Role.verifier) and actor.unit == task.handler_unit


def may_see_history(actor: Actor, task: Task) -> bool:
    """廉政档案 of a clue's subject: those who work the clue itself (its handling and verifying
    units, the zone's leaders, admins); not on-call, not assisting units, never a recused person."""
    if actor.login in task.recused_logins:
        return False
    if actor.has(Role.admin):
        return True
    if actor.has(Role.zone_leader) and task.zone_code in actor.zones:
        return True
    return (
        actor.has(*UNIT_ROLES)
        and actor.unit is not None
        and actor.unit in (task.handler_unit, task.verifier_unit)
    )


def may_request_extension(actor: Actor, task: Task) -> bool:
    """延期申请: a handler of the handling unit."""
    return actor.has(Role.handler) and actor.unit is not None and actor.unit == task.handler_unit


def may_decide_extension(actor: Actor, task: Task) -> bool:
    """延期审批: the zone leader of the task's zone, or an admin."""
    return actor.leads(task)


def extension_open(task: Task) -> bool:
    """Whether the resolve clock runs, the only time an extension can be asked for or granted."""
    return task.status in WORKING
