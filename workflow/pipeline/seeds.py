"""One copy across Regions per Region (`regional_seeds: true`).

The copy job runs in the source Region: every byte it writes to a destination in another Region crosses Regions,
once per destination. With several destinations in one Region, the plan makes the first of them the Region's seed
and gives each other one the seed as a source inside its Region: that destination's copy job waits for the seed to
hold the image, then asks the relay function deployed in that Region (source account) to copy it from the seed's
registry to its own, reading the seed through the seed's destination role and writing through its own; it then
finishes as any copy does (referrers, the newest-push check, the tag), and falls back to copying from the source if
the seed never arrives or the relay fails (workflow/engine/seeds.py). So a push to N destinations in R Regions
crosses Regions R times, not N, and each destination still only ever receives blobs it lacks (HEAD checks).

Seeds go first in the plan's order: a Map starts iterations (a Distributed Map its children) in item order, so a
Region's seed has started before any destination waits for it.
Not seeded: the source's own Region (its copies never cross Regions), a destination in another partition (reached
with a key pair, no relay there), and deletes.
"""

from __future__ import annotations

from workflow.core.partitions import partition_of
from workflow.models.config import FleetDestination, ReplicationConfig
from workflow.models.payloads import SeedSource, Target

RELAY_FUNCTION_NAME = "ecr-replication-relay"


def relay_function_arn(config: ReplicationConfig, region: str) -> str:
    """The relay function the source account deploys in `region`."""
    return partition_of(region).arn(
        "lambda", region, config.source.account, f"function:{RELAY_FUNCTION_NAME}"
    )


def relay_regions(config: ReplicationConfig) -> list[str]:
    """The Regions a relay function is deployed to: every destination Region of the source's partition but its own."""
    if not config.regional_seeds:
        return []
    partition = partition_of(config.source.region).name
    return sorted(
        {
            region
            for rule in config.rules
            for destination in rule.destinations
            if isinstance(destination, FleetDestination) or destination.credentials is None
            for region in destination.regions
            if region != config.source.region and partition_of(region).name == partition
        }
    )


def _eligible(target: Target, config: ReplicationConfig, relays: set[str]) -> bool:
    return target.action == "replicate" and target.credentials is None and target.region in relays


def seeded(targets: list[Target], config: ReplicationConfig) -> list[Target]:
    """`targets` with each seeded Region's seed first and the others pointing at it (unchanged, but for stale
    seeds removed, when `regional_seeds` is off or no Region has two destinations)."""
    plain = [t.model_copy(update={"seed": None}) if t.seed else t for t in targets]
    relays = set(relay_regions(config))
    by_region: dict[str, list[int]] = {}
    for index, target in enumerate(plain):
        if _eligible(target, config, relays):
            by_region.setdefault(target.region, []).append(index)
    seeds: list[int] = []
    sources: dict[int, SeedSource] = {}
    for region, indexes in by_region.items():
        if len(indexes) < 2:
            continue
        first = plain[indexes[0]]
        seeds.append(indexes[0])
        source = SeedSource(
            image=first.destination_reference,
            role_arn=first.role_arn,
            external_id=first.external_id,
            insecure=first.insecure,
            relay_function=relay_function_arn(config, region),
        )
        sources.update(dict.fromkeys(indexes[1:], source))
    rest = [
        plain[i].model_copy(update={"seed": sources[i]}) if i in sources else plain[i]
        for i in range(len(plain))
        if i not in seeds
    ]
    return [plain[i] for i in seeds] + rest
