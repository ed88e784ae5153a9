"""The one place for Powertools Logger, Tracer and metrics, for the handlers' config file, and for the warm
container's Organizations directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any, TypeVar

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from workflow.core.redaction import redact
from workflow.models.config import ReplicationConfig, load_config
from workflow.pipeline.fanout import FanOutStore
from workflow.pipeline.metrics import NAMESPACE, SERVICE, SERVICE_DIMENSION, DataPoint, Metric
from workflow.pipeline.organizations import BOTO_CONFIG as ORGANIZATIONS_CONFIG
from workflow.pipeline.organizations import OrganizationDirectory, needs_organizations

CONFIG_ENV = "REPLICATION_CONFIG_FILE"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "replication.yaml"
CORRELATION_ID_PATH = "execution"
# The fan-out bucket (set by CDK on the Plan, Gate and Summarize functions): where a run past the inline Map's
# limit keeps its targets, results and events (workflow/pipeline/fanout.py).
FANOUT_BUCKET_ENV = "FANOUT_BUCKET"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
Handler = TypeVar("Handler", bound=Callable[..., Any])


def redacted_errors(handler: Handler) -> Handler:
    """The handler, its errors' messages redacted (workflow.core.redaction) under the same class (the Step
    Functions error name): Lambda puts the message in the execution history as the task's cause, and the
    tracer and the logger record it. Innermost of a handler's decorators, so they see it redacted too."""

    @wraps(handler)
    def wrapped(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        except Exception as error:
            text = str(error)
            if redact(text) != text:
                error.args = (redact(text),)
                error.__cause__, error.__suppress_context__ = None, True  # the chain may quote it too
            raise

    return wrapped  # type: ignore[return-value]


def config_path() -> Path:
    """The packaged config file: $REPLICATION_CONFIG_FILE, else replication.yaml beside the package."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_handler_config() -> ReplicationConfig:
    """The packaged config, validated once per warm container (again only if the file changes).

    Raises InvalidConfig naming the file and every problem.
    """
    path = config_path()
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (0, 0)
    return _load_config(path, version)


@lru_cache(maxsize=4)
def _load_config(path: Path, version: tuple[int, int]) -> ReplicationConfig:
    return load_config(path)


@lru_cache(maxsize=1)
def _directory(region: str) -> OrganizationDirectory:
    return OrganizationDirectory(
        boto3.client("organizations", region_name=region, config=ORGANIZATIONS_CONFIG)
    )


def organization_directory(config: ReplicationConfig) -> OrganizationDirectory | None:
    """The warm container's Organizations directory (its cache outlives one invocation, nothing more), or None
    when no destination names organizational units or the organization."""
    return _directory(config.source.region) if needs_organizations(config) else None


def fanout_store() -> FanOutStore | None:
    """The fan-out bucket's store, or None when none is configured (runs past the inline limit then fail)."""
    bucket = os.environ.get(FANOUT_BUCKET_ENV)
    return FanOutStore(boto3.client("s3"), bucket) if bucket else None


def emit_metric(name: Metric, value: float, unit: str = "Count", **dimensions: str) -> None:
    """Emit one EMF metric now (names and units from workflow.pipeline.metrics, the list the dashboard reads).

    Each metric is flushed on its own (`single_metric`), so concurrent Map iterations running
    in-process (local runtime) never share a metric set.
    """
    with single_metric(
        name=name.value,
        unit=MetricUnit(unit),
        value=value,
        namespace=NAMESPACE,
        default_dimensions={SERVICE_DIMENSION: SERVICE},
    ) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


def emit(points: list[DataPoint]) -> None:
    """Emit each data point."""
    for point in points:
        emit_metric(point.metric, point.value, point.unit, **point.dimensions)
