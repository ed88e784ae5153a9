"""EventBridge filters for the rules' patterns, and the limits EventBridge puts on them.

EventBridge's wildcard matching is AWS's event-ruler (https://github.com/aws/event-ruler): a `wildcard`
value may not hold consecutive `*` ("Consecutive wildcard characters at pos N"), and `\\` escapes only `*`
and `\\` (event-ruler README, "Wildcard matching"). A rule whose wildcards are too complex is refused with
InvalidEventPatternException "Rule is too complex" (EventBridge user guide, "Comparison operators for use
in event patterns", "Wildcards and event pattern complexity",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html).
"""

from __future__ import annotations

# Complexity is event-ruler's MachineComplexityEvaluator measure: the most wildcard-pattern prefixes that one
# value can match at once, over the wildcard filters of one field. AWS publishes no number; this is the
# largest value seen deployed: three `*:stack/NAME/*` filters on one field (complexity 9) deployed, four
# (complexity 12) were refused "Rule is too complex" (https://github.com/vals-ai/Valkyrie/pull/278).
WILDCARD_COMPLEXITY_MAX = 9
