"""School targets of schools that are not scored are named, not ignored silently."""

import logging
from pathlib import Path

from ontrack.config import load_config
from training._jobs import _warn_unknown_target_schools

DEMO_CONFIG = Path(__file__).parents[2] / "configs" / "demo.toml"


def test_targets_of_unscored_schools_are_named_per_kpi(caplog):
    demo = load_config(DEMO_CONFIG)
    kpis = [
        demo.kpis[0].model_copy(update={"school_targets": {"9999": 0.1, "0001": 0.2}}),
        demo.kpis[1].model_copy(update={"school_targets": {"1": 0.1}}),
        demo.kpis[2],
    ]
    config = demo.model_copy(update={"kpis": kpis})

    with caplog.at_level(logging.WARNING, logger="training._jobs"):
        _warn_unknown_target_schools(config, ["0001", "0002"])

    assert caplog.messages == [
        "[kpis.chronic_absence] school_targets: no scored student at school(s) "
        "9999; their targets are not used (ids are strings, leading zeros count)",
        "[kpis.course_failure] school_targets: no scored student at school(s) 1; "
        "their targets are not used (ids are strings, leading zeros count)",
    ]
