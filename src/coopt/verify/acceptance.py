"""The one acceptance rule: a speed-up interval against the configured minimum gain gives the verdict's code.

Both judges use it: the TU-level pipeline (verify/pipeline.py) and the optimizer's program-level A/B
(optimize/run.py). The rule is the project's promise about speed: a variant counts as faster only when the lower
bound of the interval clears `min_gain`, as slower only when its upper bound lies below it; anything between is
"not shown" and is never stored.
"""

from __future__ import annotations

from coopt.verify.evidence import Interval
from coopt.verify.verdict import Code


def speed_code(interval: Interval, min_gain: float) -> Code:
    """ACCEPTED when `interval.low >= min_gain`, REJECTED when `interval.high < min_gain`, else INCONCLUSIVE."""
    if interval.low >= min_gain:
        return Code.ACCEPTED
    if interval.high < min_gain:
        return Code.REJECTED
    return Code.INCONCLUSIVE
