"""An archived source image through the whole workflow: each destination fails as ImageArchived, no copy build
starts, and the summary names the error and its runbook section (the local runtime, with ECR's archive storage
class: workflow/local/archive.py)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, EU, SOURCE, US, statuses
from workflow.local.archive import applied, archive_in_registry
from workflow.pipeline.runbook import section_url

pytestmark = pytest.mark.e2e


def test_an_archived_source_image_fails_each_destination_as_image_archived_without_a_build(e2e: E2E) -> None:
    # Given a release pushed to the source, then archived there (listed ARCHIVED, its pull a 404)
    tag = e2e.new_tag()
    image = e2e.push(tag)
    ecr = e2e.runtime.client("ecr")
    builds = e2e.builds()
    with applied():
        if not ecr.describe_repositories()["repositories"]:
            ecr.create_repository(repositoryName="app")
        ecr.put_image(
            repositoryName="app",
            imageTag=tag,
            imageManifest=image.top.data.decode(),
            imageManifestMediaType=image.top.media_type,
            imageDigest=image.digest,
        )
        ecr.update_image_storage_class(
            repositoryName="app", imageId={"imageTag": tag}, targetStorageClass="ARCHIVE"
        )
        registry = e2e.runtime.registry_of(SOURCE["account"], SOURCE["region"])
        archive_in_registry(registry.storage, "app", image.digest, [tag])
        # When it is replicated by hand
        execution = e2e.run_manual({"repository": "app", "tag": tag})
    # Then every destination failed as ImageArchived at the Precheck, and no copy build started
    assert execution.error == "ReplicationFailed"
    assert statuses(execution) == {f"{p['account']}/{p['region']}": "failed" for p in (EU, US)}
    summary = execution.state_outputs("Summarize")[-1]["summary"]
    assert {line["error"] for line in summary["lines"]} == {"ImageArchived"}
    assert {line["runbook"] for line in summary["lines"]} == {section_url("ImageArchived")}
    assert "is ARCHIVED" in summary["lines"][0]["cause"]
    assert e2e.builds() == builds
