"""A worker killed (SIGKILL, with its work-horse) in the middle of a large referral import: its
transaction dies with it; the sweep, once the worker's heartbeat has lapsed, sends the job again,
and a new worker imports the file exactly once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import uuid

import sqlalchemy as sa
import time_machine
from rq.registry import StartedJobRegistry

from cases.case import Case
from cases.clients import Client
from cases.referrals import ReferralBatch
from shell.job_runner import sweep
from tests.faults.conftest import staff_login, wait_for
from tests.faults.test_redis_away import confirm, referral_file, upload

ROWS = 1500
# RQ counts a worker gone once its heartbeat lapses: the job's monitoring interval + 60 s.
HEARTBEAT_LAPSED = dt.timedelta(minutes=5)


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


def test_a_worker_killed_mid_import_loses_nothing_and_imports_once(world, seed):
    code = seed.client(f"W{uuid.uuid4().hex[:6].upper()}")
    client_user = staff_login(world, seed.user("client", code))
    batch_page = upload(world, client_user, referral_file(ROWS, uuid.uuid4().hex[:6]))
    assert confirm(client_user, batch_page).status_code == 200

    worker = world.spawn("worker", "imports", log="worker-killed.log")
    with world.local.app_context():
        imports = world.local.extensions["recourse.jobs"].queue("imports")
    wait_for(lambda: StartedJobRegistry(queue=imports).count, "the worker to start the import")
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work-horse
    worker.wait()
    assert batch(world, batch_page)[0] in ("queued", "importing")
    assert cases_of(world, code) == 0  # the import's transaction died with it

    with time_machine.travel(dt.datetime.now(dt.UTC) + HEARTBEAT_LAPSED, tick=True):
        with world.local.app_context():
            sweep()
    assert StartedJobRegistry(queue=imports).count == 0

    again = world.flask("worker", "--burst", "imports", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert batch(world, batch_page) == ("imported", ROWS)
    assert cases_of(world, code) == ROWS
