"""The local runtime's places: one per account/Region pair, each with the registry standing for its ECR
registry, behind an ECR front (ecr_front.py); a source's front puts ECR's events on that account's bus."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.events.models import events_backends

from workflow.engine.ecr import TagMutability
from workflow.local.ecr_front import EcrFront, Emit, ecr_event_detail
from workflow.local.registries import LocalRegistry, RegistryProcess, RuntimeSetupError, running_registry


@dataclass(frozen=True)
class Place:
    """An account/Region pair with its registry: its own, or with `registry` the one of the place so named;
    `source` when it is one of the config's sources (its front emits ECR's events there)."""

    name: str
    account: str
    region: str
    readonly: bool = False
    registry: str | None = None
    source: bool = False


def fleet_config(
    source: Mapping[str, str],
    accounts: Sequence[str],
    regions: Sequence[str],
    *,
    repository: str = "{repository}",
    **settings: Any,
) -> dict[str, Any]:
    """A config whose one rule (`fleet`: app, release-*) sends to every account in every Region, each destination's
    repository from `repository` (`{account}` is its account); `settings` are further top-level fields."""
    destinations = [
        {"account": account, "regions": list(regions), "repository": repository.replace("{account}", account)}
        for account in accounts
    ]
    rule = {
        "name": "fleet",
        "repositories": ["app"],
        "tags": {"include": ["release-*"]},
        "destinations": destinations,
    }
    notifications = {"emails": ["platform-team@example.com"], "on": "failure"}
    return {"source": dict(source), "rules": [rule], "notifications": notifications, **settings}


def regional_places(
    source: Mapping[str, str], accounts: Sequence[str], regions: Sequence[str]
) -> list[Place]:
    """The source, one registry per Region, and every account/Region on its Region's registry (a fleet needs a few
    registry processes)."""
    places = [Place("source", source["account"], source["region"], source=True)]
    places += [Place(f"region-{region}", "000000000000", region) for region in regions]
    places += [
        Place(f"{account}-{region}", account, region, registry=f"region-{region}")
        for account in accounts
        for region in regions
    ]
    return places


def places_for(config: Mapping[str, Any]) -> list[Place]:
    """One place per account/Region in a config mapping: "source" (the home source), one per other source
    ("source-<account>-<region>"), then one per destination Region."""
    sources = config.get("sources") or [config["source"]]
    home = next((s for s in sources if s.get("home")), sources[0])
    places = [Place("source", home["account"], home["region"], source=True)]
    for other in sources:
        if (other["account"], other["region"]) != (home["account"], home["region"]):
            name = f"source-{other['account']}-{other['region']}"
            places.append(Place(name, other["account"], other["region"], source=True))
    for rule in config["rules"]:
        for destination in rule["destinations"]:
            for region in destination["regions"]:
                if all((p.account, p.region) != (destination["account"], region) for p in places):
                    places.append(Place(f"{destination['account']}-{region}", destination["account"], region))
    return places


def put_ecr_event(place: Place, action: str, repository: str, tag: str, digest: str) -> None:
    """Put the "ECR Image Action" event ECR emits for a push (or, with DELETE, a deleted tag) on the default bus
    of the place's account and Region."""
    detail = ecr_event_detail(action, repository, tag, digest)
    # ECR puts it on the account's bus itself (no principal's PutEvents): moto's backend of that account
    # and Region, so the event carries them as its `account` and `region`.
    entries = events_backends[place.account][place.region].put_events(
        [{"Source": "aws.ecr", "DetailType": "ECR Image Action", "Detail": json.dumps(detail)}]
    )
    if any("ErrorCode" in entry for entry in entries):
        raise RuntimeSetupError(f"PutEvents failed: {entries}")


class PlaceRegistries:
    """The registry process and ECR front of each place with a registry of its own, and the registry standing
    for every place (its own, or the one it shares)."""

    def __init__(self, places: list[Place]) -> None:
        self.places = places
        self.registries: dict[str, LocalRegistry] = {}
        self.fronts: dict[str, EcrFront] = {}
        self._processes: dict[str, RegistryProcess] = {}
        self._emit_lock = threading.Lock()

    def start(self, stack: contextlib.ExitStack, workdir: Path) -> None:
        """Start every registry and its front under `workdir`; `stack` stops them."""
        for place in self.places:
            if place.registry is not None:
                continue
            process = stack.enter_context(running_registry(place.name, workdir, readonly=place.readonly))
            self._processes[place.name] = process
            front = EcrFront(process.registry, emit=self._emitter(place) if place.source else None)
            stack.callback(front.stop)
            self.fronts[place.name] = front
            self.registries[place.name] = front.registry
        for place in self.places:
            if place.registry is not None:
                self.registries[place.name] = self.registries[place.registry]

    def endpoints(self) -> list[dict[str, Any]]:
        """The config's `endpoints`: the registry (its front) standing for each place."""
        return [
            {
                "account": p.account,
                "region": p.region,
                "registry": self.registries[p.name].host,
                "insecure": True,
            }
            for p in self.places
        ]

    def at(self, account: str, region: str) -> Place:
        """The place of an account/Region pair."""
        for place in self.places:
            if (place.account, place.region) == (account, region):
                return place
        raise KeyError(f"no registry for {account}/{region}")

    def source(self, source: str) -> Place:
        """The place of a source, by place name ("source") or `account/region`."""
        for place in self.places:
            if place.source and source in (place.name, f"{place.account}/{place.region}"):
                return place
        raise KeyError(f"no source {source}")

    def refuse_pushes(self, account: str, region: str, refuse: bool) -> None:
        """Restart the registry of an account/Region read-only (it refuses pushes) or accepting them again."""
        self._processes[self.at(account, region).name].restart(readonly=refuse)

    def set_tag_mutability(
        self, account: str, region: str, repository: str, mutability: TagMutability
    ) -> None:
        """Set a repository's tag mutability in the local ECR of an account/Region (PutImageTagMutability)."""
        self.fronts[self.at(account, region).name].set_tag_mutability(repository, mutability)

    def _emitter(self, place: Place) -> Emit:
        """What a source's ECR does for each tag put or removed: its event on that account's default bus in that
        Region (the fronts serve requests in threads, and boto3 makes clients one at a time)."""

        def emit(detail: dict[str, str]) -> None:
            with self._emit_lock:
                put_ecr_event(
                    place,
                    detail["action-type"],
                    detail["repository-name"],
                    detail["image-tag"],
                    detail["image-digest"],
                )

        return emit
