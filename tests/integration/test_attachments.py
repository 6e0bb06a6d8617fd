"""Attachments (issue 11): type judged by content, size limited, kept in the database, seen by those
who may see the task and never by a recused person, every download logged."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from dispatcher.db import unit_of_work
from dispatcher.org.model import Org
from tests.integration.tasking import Desk, error_of, open_desk

HANDLER = "deng.xiaoming"  # 大兴镇纪委
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2000
PDF = b"%PDF-1.4\n" + b"1 0 obj <<>> endobj\n" * 50


def xlsx() -> bytes:
    out = io.BytesIO()
    Workbook().save(out)
    return out.getvalue()


@pytest.fixture
def desk(api_url: str, engine: sa.Engine, loaded_org: Org) -> Iterator[Desk]:
    with open_desk(api_url, engine) as d:
        yield d


def upload(desk: Desk, task: int, login: str, name: str, content: bytes):  # type: ignore[no-untyped-def]
    return desk.http.post(
        f"{desk.api}/api/v1/tasks/{task}/attachments", headers=desk.who(login),
        files={"file": (name, content, "application/octet-stream")},
    )  # fmt: skip


def test_files_are_kept_by_their_content_and_served_back_with_each_download_logged(desk: Desk) -> None:
    task = desk.task()
    photo = upload(desk, task, HANDLER, "现场照片.jpg", JPEG)
    assert photo.status_code == 201, photo.text
    assert photo.json()["media_type"] == "image/jpeg" and photo.json()["filename"] == "现场照片.jpg"
    sheet = upload(desk, task, HANDLER, "../../统计表", xlsx())  # no extension, a path: cleaned
    assert sheet.status_code == 201 and sheet.json()["filename"] == "统计表.xlsx"
    assert upload(desk, task, HANDLER, "报告.pdf", PDF).status_code == 201

    listed = desk.get(task, "fang.liqun").json()["attachments"]  # the verifier sees them
    assert [a["filename"] for a in listed] == ["现场照片.jpg", "统计表.xlsx", "报告.pdf"]
    got = desk.http.get(f"{desk.api}{listed[0]['url']}", headers=desk.who("fang.liqun"))
    assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    assert (
        "attachment;" in got.headers["content-disposition"]
        and got.headers["x-content-type-options"] == "nosniff"
    )
    with unit_of_work(desk.engine) as s:
        logged = s.execute(sa.text("SELECT login FROM attachment_downloads")).scalars().all()
    assert logged == ["fang.liqun"]


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("setup.jpg", b"MZ" + b"\x00" * 500, 422),  # a program named like a photo
        ("note.txt", "就是一段文字".encode(), 422),
        ("empty.pdf", b"", 422),
        ("huge.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024 + 10), 422),
    ],
)
def test_what_is_not_an_allowed_file_is_refused_naming_why(
    desk: Desk, name: str, content: bytes, status: int
) -> None:
    task = desk.task()
    error = error_of(upload(desk, task, HANDLER, name, content), status)
    assert error["details"][0]["path"] == "file"


def test_a_body_far_over_the_limit_is_413_before_anything_is_read(desk: Desk) -> None:
    task = desk.task()
    r = upload(desk, task, HANDLER, "big.pdf", b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024))
    assert r.status_code == 413


def test_a_recused_person_and_another_unit_see_no_file(desk: Desk) -> None:
    task = desk.task()
    aid = upload(desk, task, HANDLER, "a.pdf", PDF).json()["id"]
    desk.ok(task, "recuse", "wei.chunyan", reason="与投诉人系亲属")
    assert desk.get(task, "wei.chunyan").json()["attachments"] == []  # not even listed
    r = desk.http.get(f"{desk.api}/api/v1/tasks/{task}/attachments/{aid}", headers=desk.who("wei.chunyan"))
    assert r.status_code == 403 and "回避" in r.text
    other = desk.http.get(
        f"{desk.api}/api/v1/tasks/{task}/attachments/{aid}", headers=desk.who("xu.dongsheng")
    )
    assert other.status_code == 404
    assert upload(desk, task, "xu.dongsheng", "x.pdf", PDF).status_code == 404
    wrong = desk.http.get(f"{desk.api}/api/v1/tasks/{task}/attachments/999", headers=desk.who(HANDLER))
    assert wrong.status_code == 404


def test_nothing_is_added_to_a_closed_task(desk: Desk) -> None:
    task = desk.task()
    with unit_of_work(desk.engine) as s:
        s.execute(sa.text("UPDATE tasks SET status = 'closed' WHERE id = :id"), {"id": task})
    error_of(upload(desk, task, HANDLER, "a.pdf", PDF), 409)
