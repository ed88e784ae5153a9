"""The base every package builds on: the error names (`exceptions`: Step Functions error names and runbook
anchors), the ECR/OCI grammars (`grammar`), AWS partitions (`partitions`), console links (`links`), and what
every command line shares (`commandline`: argument types, one-line failures, exit codes).

May import: nothing of workflow outside core/. No pydantic: the copy job's asset ships core/.
"""
