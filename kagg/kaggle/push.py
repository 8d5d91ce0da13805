"""Pushing a kernel exactly once, and waiting in kagg's queue while the GPU cap is reached.

There is no idempotency key on SaveKernel, and an accepted push is sometimes answered 5xx or a
reset connection. So: one SaveKernel; if its outcome is unclear, look the (fresh) slug up; if
Kaggle has it, that is the job; only if it does not may the push be sent again. A push that
Kaggle *refused* because the account's GPU sessions are all busy ("Maximum batch GPU session
count of N reached") changed nothing, so it waits and tries again.
"""

from __future__ import annotations

import random
import re
import time
from typing import Callable, Optional

from kagg.errors import BadInput, NotFound, OperationFailed
from kagg.kaggle.client import GpuCapReached, Kaggle, UnclearPush
from kagg.kaggle.jobs import JobId

_GPU_CAP = re.compile(r"maximum .*gpu session", re.I)
_NOT_FOUND = re.compile(r"not found", re.I)
#: pushes sent again after Kaggle confirmed (by the look-up) that the earlier one did not land
UNCLEAR_RETRIES = 3


def push_once(kaggle: Kaggle, metadata: dict, text: str, timeout_s: Optional[int] = None,
              sleep: Callable[[float], None] = time.sleep, before: Optional[int] = None) -> JobId:
    """SaveKernel with the look-up rule; the job (version pinned) that Kaggle now runs.

    ``before``: the kernel's version before this push, for a slug that already exists
    (``kagg kaggle push DIR``); the look-up then counts only a newer version as this push.
    """
    owner, slug = metadata["id"].split("/", 1)
    for attempt in range(UNCLEAR_RETRIES + 1):
        try:
            reply = kaggle.save_kernel(metadata, text, timeout_s)
        except UnclearPush as exc:
            try:
                version = kaggle.current_version(owner, slug)
            except OperationFailed as lookup:
                raise OperationFailed(f"{exc}; and looking {owner}/{slug} up failed too ({lookup}); "
                                      f"it may be running: check with `kagg kaggle status {owner}/{slug}` "
                                      "before running again") from None
            if version is not None and (before is None or version > before):
                return JobId(owner, slug, version)
            if attempt == UNCLEAR_RETRIES:
                raise OperationFailed(f"{exc}; Kaggle does not have {owner}/{slug} after "
                                      f"{attempt + 1} pushes; try again later") from None
            sleep(min(30.0, 2.0 ** attempt) * (0.5 + random.random()))
            continue
        return _job_from_reply(owner, slug, reply)
    raise AssertionError("unreachable")


def _job_from_reply(owner: str, slug: str, reply) -> JobId:
    """The job, or the refusal Kaggle put in a 200 reply as one line naming the cause."""
    if reply.error:
        message = " ".join(reply.error.split())
        if _GPU_CAP.search(message):
            raise GpuCapReached(f"Kaggle refused the push: {message}")
        if _NOT_FOUND.search(message):
            raise NotFound(f"Kaggle refused the push of {owner}/{slug}: {message}")
        raise BadInput(f"Kaggle refused the push of {owner}/{slug}: {message}")
    if reply.invalid:
        named = "; ".join(f"{kind} {', '.join(refs)}" for kind, refs in reply.invalid.items())
        raise BadInput(f"Kaggle refused the push of {owner}/{slug}: no such source ({named}); "
                       "check the names given to --dataset/--competition/--model/--resume-from")
    return JobId(owner, slug, reply.version or 1)


class QueueWaitInterrupted(KeyboardInterrupt):
    """Ctrl-C while waiting in kagg's queue for a GPU session: nothing was pushed."""


def push_waiting_for_gpu(kaggle: Kaggle, metadata: dict, text: str, timeout_s: Optional[int] = None,
                         on_wait: Optional[Callable[[str], None]] = None, most_wait_s: Optional[float] = None,
                         first_s: float = 10.0, most_s: float = 60.0,
                         sleep: Callable[[float], None] = time.sleep) -> JobId:
    """:func:`push_once`, waiting (not failing) while the account's GPU sessions are all in use."""
    started = time.monotonic()
    wait = first_s
    while True:
        try:
            return push_once(kaggle, metadata, text, timeout_s, sleep=sleep)
        except GpuCapReached as exc:
            waited = time.monotonic() - started
            if most_wait_s is not None and waited + wait > most_wait_s:
                raise OperationFailed(f"{exc}; waited {waited:.0f} s for a GPU session to end; "
                                      "stop one (`kagg kaggle jobs`, `kagg kaggle stop JOB`) or try later") from None
            if on_wait:
                on_wait(f"{exc.message}; waiting in kagg's queue for a session to end "
                        f"(next try in {wait:.0f} s)")
            try:
                sleep(wait * (0.8 + 0.4 * random.random()))
            except KeyboardInterrupt:
                raise QueueWaitInterrupted() from None
            wait = min(most_s, wait * 1.5)
