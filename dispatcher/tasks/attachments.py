"""Evidence on a task (附件: 照片、文书), DESIGN §9.

Stored in the database: every API replica on every machine sees the same files, and the
database's backups carry them — the simple choice at a county's volumes (a few thousand files a
year, a few MB each). The limits keep it so: at most ``MAX_PER_TASK`` files a task and
``settings.max_attachment_bytes`` (10 MiB) each; a file is read whole into memory once.

A file's type is what its content says (``filetype`` reads the magic numbers), never its name or
what the client claims: JPEG, PNG, PDF, Word (.docx) and Excel (.xlsx) only. Those who may see the
task see its files; a recused person sees neither the list nor a file; every download is logged.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from typing import Any

import filetype
from sqlmodel import Session, col, func, select

from dispatcher.enums import TaskStatus
from dispatcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from dispatcher.models import Attachment, AttachmentDownload, Task
from dispatcher.tasks.access import Actor, get_task

#: What a file may be, by its content: media type → the extension it is served with.
ALLOWED: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
MAX_PER_TASK = 50
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def clean_name(name: str | None, extension: str) -> str:
    """A file name safe to store and to send back: no path, no control or reserved characters,
    at most 120 characters, ending in the extension its content earned."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE.sub("_", base).strip(" .") or "附件"
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem[:110]}.{extension}"


def _may_see(actor: Actor, task: Task) -> None:
    if actor.login in task.recused_logins:
        raise Forbidden(f"回避: {actor.login} is recused from task {task.ledger_no}; its files are not shown")


def add_attachment(
    session: Session,
    actor: Actor,
    task_id: int,
    *,
    name: str | None,
    content: bytes,
    max_bytes: int,
    now: datetime,
) -> Attachment:
    """Keep ``content`` on the task, if its type and size are allowed."""
    task = get_task(session, actor, task_id)
    _may_see(actor, task)
    if task.status == TaskStatus.closed:
        raise Conflict(
            f"task {task.ledger_no} is closed; nothing more is added to it", details={"current": task.status}
        )
    if not content:
        raise ValidationFailed("the file is empty", details=[{"path": "file", "message": "empty"}])
    if len(content) > max_bytes:
        raise ValidationFailed(
            f"the file is over {max_bytes // (1024 * 1024)} MiB",
            details=[{"path": "file", "message": "too large"}],
        )
    kind = filetype.guess(content)
    media = kind.mime if kind is not None else None
    if media not in ALLOWED:
        raise ValidationFailed(
            "only JPEG, PNG, PDF, Word (.docx) and Excel (.xlsx) files are kept (judged by content)",
            details=[{"path": "file", "message": f"type {media or 'unknown'} is not allowed"}],
        )
    count = session.exec(
        select(func.count()).select_from(Attachment).where(Attachment.task_id == task.id)
    ).one()
    if count >= MAX_PER_TASK:
        raise Conflict(
            f"task {task.ledger_no} already has {MAX_PER_TASK} files", details={"attachments": count}
        )
    attachment = Attachment(
        task_id=task.id,  # type: ignore[arg-type]
        filename=clean_name(name, ALLOWED[media]),
        media_type=media,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by=actor.login,
        uploaded_at=now,
    )
    session.add(attachment)
    session.flush()
    return attachment


def attachments_of(session: Session, actor: Actor, task: Task) -> list[dict[str, Any]]:
    """The task's files as ``actor`` may list them (none for a recused person)."""
    if actor.login in task.recused_logins:
        return []
    rows = session.exec(
        select(Attachment.id, Attachment.filename, Attachment.media_type, Attachment.size,  # type: ignore[call-overload]
               Attachment.uploaded_by, Attachment.uploaded_at)
        .where(Attachment.task_id == task.id)
        .order_by(col(Attachment.id))
    ).all()  # fmt: skip
    return [
        {"id": r[0], "filename": r[1], "media_type": r[2], "size": r[3], "uploaded_by": r[4],
         "uploaded_at": r[5].isoformat(), "url": f"/api/v1/tasks/{task.id}/attachments/{r[0]}"}
        for r in rows
    ]  # fmt: skip


def download(
    session: Session, actor: Actor, task_id: int, attachment_id: int, *, now: datetime
) -> Attachment:
    """One file of the task, for someone who may see the task and is not recused; logged."""
    task = get_task(session, actor, task_id)
    _may_see(actor, task)
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.task_id != task.id:
        raise NotFound(f"task {task.ledger_no} has no file {attachment_id}")
    session.add(AttachmentDownload(attachment_id=attachment_id, login=actor.login, at=now))
    return attachment
