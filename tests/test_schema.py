"""snnexp.schema: allowed values declared beside the field, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf

from snnexp.errors import UserError
from snnexp.schema import allowed_values, bounded, check_section, choice


@dataclass
class Inner:
    tau: float = bounded(0, open_low=True)


@dataclass
class Section:
    neuron: str = choice("lif", "relu")
    beta: float = bounded(0, 1)
    steps: int = bounded(1)
    fraction: float = bounded(0, 1, open_low=True, open_high=True)
    threads: int | None = bounded(1)
    free: str = "anything"
    inner: Inner = field(default_factory=Inner)


def test_allowed_values_read_as_the_messages_say_them():
    fields = {f.name: f for f in Section.__dataclass_fields__.values()}
    assert allowed_values(fields["neuron"]) == "one of lif, relu"
    assert allowed_values(fields["beta"]) == "a number in [0, 1]"
    assert allowed_values(fields["steps"]) == "an integer >= 1"
    assert allowed_values(fields["fraction"]) == "a number in (0, 1)"
    assert allowed_values(fields["threads"]) == "null or an integer >= 1"
    assert allowed_values(fields["free"]) is None


@pytest.mark.parametrize("values, message", [
    ({"neuron": "tanh"}, "x.neuron=tanh: must be one of lif, relu"),
    ({"beta": 1.5}, "x.beta=1.5: must be a number in [0, 1]"),
    ({"steps": 0}, "x.steps=0: must be an integer >= 1"),
    ({"inner": {"tau": 0.0}}, "x.inner.tau=0.0: must be a number > 0"),
    ({"fraction": 1.0}, "x.fraction=1.0: must be a number in (0, 1)"),
    ({"threads": 0}, "x.threads=0: must be null or an integer >= 1"),
])
def test_check_section_names_the_key_the_value_and_what_is_allowed(values, message):
    node = OmegaConf.create({"neuron": "lif", "beta": 0.5, "steps": 3, "fraction": 0.5,
                             "threads": None, "free": "y", "inner": {"tau": 1.0}})
    node.merge_with(values)
    with pytest.raises(UserError) as err:
        check_section(node, Section, "x")
    assert str(err.value) == message


def test_check_section_passes_good_values_and_skips_absent_keys():
    check_section(OmegaConf.create({"neuron": "relu", "beta": 1, "threads": None,
                                    "inner": {"tau": 2}}), Section, "x")


def test_the_top_level_has_no_prefix_and_unconstrained_keys_are_not_resolved():
    node = OmegaConf.create({"steps": 0, "free": "${oc.env:SNNEXP_UNSET_VARIABLE_X}"})
    with pytest.raises(UserError, match=r"^steps=0: must be an integer >= 1$"):
        check_section(node, Section, "")
    check_section(OmegaConf.create({"steps": 2, "free": "${oc.env:SNNEXP_UNSET_VARIABLE_X}"}),
                  Section, "")
