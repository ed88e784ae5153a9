"""The copy job: what runs in CodeBuild, as `python3 -m workflow.engine copy SOURCE DESTINATION`.

The copy engine (`copier`) and its blob pipeline (`blobs`), the ECR control plane (`ecr`), role sessions and
the one choice of how a destination role is assumed (`roles`), the `copy` command (`copy`) and its progress
lines (`progress`), and a seeded destination's copy inside its Region and the relay's work (`seeds`).

May import: core/, registry/. No pydantic: the copy job's asset (infra/bundling.py) holds only core/, registry/
and engine/, and CodeBuild's images have no pydantic.
"""
