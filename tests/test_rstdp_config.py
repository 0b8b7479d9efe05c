"""snnexp.models.rstdp.config: sections that are the parameter tuples key for key, their
allowed values, the relations between keys, and the renamed keys."""

from __future__ import annotations

import dataclasses

import pytest
from helpers.rstdp import make_learner, rate_encoder
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from snnexp.config import RENAMED_KEYS, check_config
from snnexp.errors import UserError
from snnexp.models.rstdp.config import SECTIONS, YAML, RSTDPConfig, default_config


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_each_section_has_the_fields_of_its_parameter_tuple(section):
    schema, params = SECTIONS[section]
    assert [f.name for f in dataclasses.fields(schema)] == list(params._fields)
    assert {f.name for f in dataclasses.fields(RSTDPConfig)} == {"_target_", "num_steps",
                                                                  *SECTIONS}


def test_the_option_file_sets_every_key(compose_cfg):
    model = compose_cfg("model=rstdp").model
    assert OmegaConf.missing_keys(model) == set()
    assert OmegaConf.to_container(model) == {"_target_": model._target_, **default_config()}
    assert YAML.is_file()


@pytest.mark.parametrize(("override", "message"), [
    ("model.num_steps=0", "model.num_steps=0: must be an integer >= 1"),
    ("model.hidden.mode=magic", "model.hidden.mode=magic: must be one of stdp, random"),
    ("model.readout.normalize=l3", "model.readout.normalize=l3: must be one of l2, l1, none"),
    ("model.neuron.tau_m=-1", "model.neuron.tau_m=-1.0: must be a number > 0"),
    ("model.hidden.filters=0", "model.hidden.filters=0: must be an integer >= 1"),
    ("model.readout.epochs=-1", "model.readout.epochs=-1: must be an integer >= 0"),
    ("model.stdp.a_minus=-0.2", "model.stdp.a_minus=-0.2: must be a number >= 0"),
])
def test_bad_values_are_named_by_check_config(compose_cfg, override, message):
    cfg = compose_cfg("model=rstdp", override)
    with pytest.raises(UserError) as err:
        check_config(cfg)
    assert str(err.value) == message


def test_good_values_pass_check_config(compose_cfg):
    check_config(compose_cfg("model=rstdp", "model.hidden.mode=random", "model.readout.batch=5"))


@pytest.mark.parametrize(("changes", "message"), [
    ({"neuron": {"v_th": -70.0}}, "model.neuron.v_th=-70.0: must be > model.neuron.v_rest="),
    ({"stdp": {"w_min": 1.0}}, "model.stdp.w_max=1.0: must be > model.stdp.w_min=1.0"),
    ({"readout": {"w_init": 1.5}}, "model.readout.w_init=1.5: must be in [model.stdp.w_min, "),
    ({"hidden": {"kernel": 9}}, "model.hidden.kernel=9: must be <= the image side 8"),
    ({"hidden": {"kernel": 3, "pool": 7}}, "model.hidden.pool=7: must be <= 6 hidden "),
])
def test_values_that_do_not_fit_together_or_the_image_raise_user_error(changes, message):
    with pytest.raises(UserError) as err:
        make_learner(rate_encoder(), (1, 8, 8), **changes)
    assert str(err.value).startswith(message)


def test_a_typo_under_a_section_fails_at_compose_time(compose_cfg):
    with pytest.raises(ConfigCompositionException):
        compose_cfg("model=rstdp", "model.readout.gian=2")


def test_every_renamed_key_names_a_key_of_the_rstdp_config(compose_cfg):
    cfg = compose_cfg("model=rstdp")
    for old, new in RENAMED_KEYS.items():
        assert OmegaConf.select(cfg, new) is not None, new
        assert OmegaConf.select(cfg, old) is None, old


def test_no_model_option_uses_a_renamed_key_for_something_else(compose_cfg):
    for model in ("protonet", "rstdp"):
        flat = {f"model.{k}" for k in OmegaConf.to_container(compose_cfg(f"model={model}").model)}
        assert not flat & set(RENAMED_KEYS), model


def test_a_config_saved_with_an_old_key_is_named_by_check_config(compose_cfg):
    saved = OmegaConf.to_container(compose_cfg("model=rstdp"), resolve=True)
    epochs = saved["model"]["epochs"] = saved["model"]["readout"].pop("epochs")
    with pytest.raises(UserError, match=rf"^model.epochs={epochs}: renamed to model.readout."):
        check_config(OmegaConf.create(saved))
