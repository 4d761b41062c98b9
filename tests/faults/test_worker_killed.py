"""A worker killed (SIGKILL, and its work-horse with it) in the middle of a large referral import: its
transaction dies with it; the sweep, once the worker's heartbeat has lapsed, sends the job again,
and a new worker imports the file exactly once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from rq.registry import FailedJobRegistry, StartedJobRegistry

from cases.case import Case
from cases.clients import Client
from cases.referrals import ReferralBatch
from shell.job_runner import sweep
from tests.faults.conftest import staff_login, wait_for
from tests.faults.test_redis_away import confirm, referral_file, upload

ROWS = 1500
# RQ counts a worker gone once its heartbeat lapses: the job's monitoring interval + 60 s.
HEARTBEAT_LAPSED = dt.timedelta(minutes=5)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def batch(world, batch_page: str) -> tuple[str, int | None]:
    batch_id = int(batch_page.rsplit("/", 1)[1])
    return world.read(
        lambda s: (
            s.get(ReferralBatch, batch_id).status,
            s.get(ReferralBatch, batch_id).accepted_count,
        )
    )


def cases_of(world, code: str) -> int:
    return world.read(
        lambda s: s.scalar(
            sa.select(sa.func.count())
            .select_from(Case)
            .join(Client, Case.client_id == Client.id)
            .where(Client.code == code)
        )
    )


@pytest.mark.parametrize("first", ["our sweep", "RQ's maintenance"])
def test_a_worker_killed_mid_import_loses_nothing_and_imports_once(world, seed, first):
    code = seed.client(f"W{uuid.uuid4().hex[:6].upper()}")
    client_user = staff_login(world, seed.user("client", code))
    batch_page = upload(world, client_user, referral_file(ROWS, uuid.uuid4().hex[:6]))
    assert confirm(client_user, batch_page).status_code == 200

    worker = world.spawn("worker", "imports", log="worker-killed.log")
    with world.local.app_context():
        imports = world.local.extensions["recourse.jobs"].queue("imports")

    def running():
        started = StartedJobRegistry(queue=imports)
        return [j for j in map(imports.fetch_job, started.get_job_ids()) if j and j.is_started]

    wait_for(running, "the worker to start the import")
    horses = children(worker.pid)  # RQ runs each job in a forked work-horse of its own
    assert horses
    for pid in (worker.pid, *horses):  # as when the machine goes down: all at once
        os.kill(pid, signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not any(alive(pid) for pid in horses), "the work-horse to die")
    assert batch(world, batch_page)[0] in ("queued", "importing")
    assert cases_of(world, code) == 0  # the import's transaction died with it

    with time_machine.travel(dt.datetime.now(dt.UTC) + HEARTBEAT_LAPSED, tick=True):
        if first == "RQ's maintenance":  # another worker's cleanup files the job as failed
            StartedJobRegistry(queue=imports).cleanup()
            assert FailedJobRegistry(queue=imports).count == 1
        with world.local.app_context():
            sweep()
    assert FailedJobRegistry(queue=imports).count == 0
    assert StartedJobRegistry(queue=imports).count == 0

    again = world.flask("worker", "--burst", "imports", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert batch(world, batch_page) == ("imported", ROWS)
    assert cases_of(world, code) == ROWS
