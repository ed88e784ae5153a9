"""`sync --local` in the local runtime: it copies from the process itself, as the reconcile role does by hand.

Its registry requests are made with registry tokens it gets through its own credentials (the source) and the
destination roles' (the destinations), so the IAM coverage test (tests/iam) checks them as the reconcile role.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import E2E, EU, US
from workflow.models.config import parse_config
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync

pytestmark = pytest.mark.e2e


def test_sync_local_backfills_an_ungated_image_no_event_replicated(e2e: E2E) -> None:
    # Given an image of the ungated `app` repository that no push event replicated
    tag = e2e.new_tag()
    image = e2e.push(tag)
    config = parse_config(json.loads((e2e.runtime.workdir / "replication.json").read_text()))
    # When `sync --local` runs for `app`
    report = sync(config, SyncOptions(local=True, repository_glob="app"))
    # Then it copied the image to both destinations itself, with its digest, and nothing failed
    copies = [a for a in report.actions if a.tag == tag]
    assert sorted((a.kind, a.status, tuple(a.destinations)) for a in copies) == [
        ("copy", "done", ("222222222222/eu-west-1",)),
        ("copy", "done", ("333333333333/us-west-2",)),
    ]
    assert report.failed == 0
    assert e2e.digest_at(EU, tag) == image.digest
    assert e2e.digest_at(US, tag) == image.digest
