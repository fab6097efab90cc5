"""Every config dataclass of the library refuses a nonsense value where it is built, with a message that
names the field: found by introspection (a new config cannot be forgotten), attacked with Hypothesis."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import companion
from companion import validation as v

#: Dataclasses that are results or data records, not settings (they are built by the library itself).
RECORDS = {
    "companion.compress.align.Alignment", "companion.compress.inference.Compression",
    "companion.data.datasets.CUBRecord", "companion.data.datasets.Source", "companion.data.synthetic.Scenes",
    "companion.data.glyphs.Glyphs",
    "companion.efpc.corpus.Corpus", "companion.efpc.corpus.Example", "companion.efpc.experiment.QuickOutcome",
    "companion.efpc.experiment.TrainedPair", "companion.efpc.method.EncodedExamples",
    "companion.efpc.method.LabelledPrompt", "companion.fewshot.data.FewShotData", "companion.fewshot.episodes.Episode",
    "companion.fewshot.experiment.FewShotResult", "companion.nrs.tabular.Table", "companion.psol.ddt.DDT",
    "companion.psol.experiment.Run", "companion.psol.pipeline.PSOLOutput", "companion.results.Interval",
    "companion.results.PaperNumber", "companion.runtime.Runtime", "companion.runtime.TimeEstimate", "companion.s3l.architecture.LoadReport",
    "companion.s3l.schedule.StageResult", "companion.ssl.bench.BenchData", "companion.ssql.experiment.SSQLResult",
    "companion.ssql.experiment.Split", "companion.tobias.localize.LocalizationResult", "companion.train.FitResult",
    "companion.vit2040.data.Split", "companion.vit2040.experiment.Result",
    # a schedule entry, checked where a schedule is given (s3l.check_stages: increasing resolutions, lengths)
    "companion.s3l.schedule.Stage",
}
KNOWN = {"PSOLConfig", "LocalizationConfig", "SSLConfig", "CUBConfig", "Config", "S3LConfig", "FewShotConfig",
         "FineTune", "SSQLConfig", "US3LConfig", "EffSSLConfig", "ViTShape", "Stage", "Crops", "Ablation",
         "EFPCConfig", "ExperimentConfig", "PretrainConfig", "FitConfig"}


def _name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _all_dataclasses() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(companion.__path__, "companion."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == info.name:
                found[_name(obj)] = obj
    return found


ALL = _all_dataclasses()
CONFIGS = {name: cls for name, cls in ALL.items() if name not in RECORDS}


def _presets():
    """Every preset of every chapter (quick, study, full, colab, paper) and the core's own."""
    out = []
    for pkg in ("psol", "tobias", "s3l", "nrs", "fewshot", "ssql", "us3l", "effssl", "vit2040", "efpc", "ssl"):
        module = importlib.import_module(f"companion.{pkg}.config")
        out += [(f"{pkg}.{n}", getattr(module, n)) for n in ("quick", "study", "full", "colab", "paper") if hasattr(module, n)]
    from companion.ssl import PretrainConfig

    return out + [("PretrainConfig.quick", PretrainConfig.quick), ("PretrainConfig.full", PretrainConfig.full)]


def _instances(obj, into):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        into.setdefault(_name(type(obj)), obj)
        for f in dataclasses.fields(obj):
            _instances(getattr(obj, f.name), into)
    return into


def _bases() -> dict[str, object]:
    """A valid instance of every config: the first met inside a quick preset (else a later preset)."""
    bases = {}
    for _, make in _presets():
        _instances(make(), bases)
    from companion.ssl import PretrainConfig

    _instances(PretrainConfig.quick().fit_config(5), bases)
    from companion.nrs.benchmark import RULE  # the real-table benchmark's selection rule

    _instances(RULE, bases)
    return bases


BASES = _bases()


def test_every_dataclass_is_a_checked_config_or_a_listed_record():
    assert len(CONFIGS) >= 20 and KNOWN <= {cls.__name__ for cls in CONFIGS.values()}
    assert not RECORDS - set(ALL), f"records that no longer exist: {RECORDS - set(ALL)}"
    for name, cls in CONFIGS.items():
        assert "__post_init__" in vars(cls), f"{name} has no __post_init__: add v.check(...) or list it in RECORDS"
        assert name in BASES, f"no preset builds a {name}: add it to _bases()"


@pytest.mark.parametrize("make", [m for _, m in _presets()], ids=[n for n, _ in _presets()])
def test_every_preset_still_builds(make):
    make()


def _names_field(message: str, cls, field: str) -> bool:
    return re.search(rf"\b{re.escape(cls.__name__)}\.{re.escape(field)}\b", message) is not None or (
        re.search(rf"\b{re.escape(field)}\b", message) is not None and cls.__name__ in message)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_wrong_type_is_refused_for_every_field(name):
    """No field goes unchecked: an arbitrary object is a TypeError/ValueError naming that field."""
    base = BASES[name]
    for f in dataclasses.fields(base):
        with pytest.raises((TypeError, ValueError)) as err:
            dataclasses.replace(base, **{f.name: object()})
        assert _names_field(str(err.value), type(base), f.name), (f.name, str(err.value))


HOSTILE = st.sampled_from([
    -1, 0, 1, -(2**70), 2**70, 1.5, -0.5, math.nan, math.inf, -math.inf, 1e308, True, False, None, "", "x", "mine",
    (), [], (0, 0), (1, 1), (0, -1), (math.nan,), (0.5, 0.5), {}, {"x": 1}, 2**32,
])


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_are_refused_naming_the_field_or_accepted_as_valid(name, data):
    base = BASES[name]
    fields = [f.name for f in dataclasses.fields(base)]
    field = data.draw(st.sampled_from(fields), label="field")
    value = data.draw(HOSTILE, label="value")
    try:
        built = dataclasses.replace(base, **{field: value})
    except (TypeError, ValueError) as e:
        assert _names_field(str(e), type(base), field), (field, value, str(e))
        return
    # accepted: the value really is allowed, and rebuilding it is stable
    assert dataclasses.replace(built) == built
    if isinstance(value, float) and not math.isfinite(value):
        raise AssertionError(f"{name}.{field} accepted {value}")


# ----------------------------------------------------------------- the cases the issue names


def _refused(make, field, error=ValueError):
    with pytest.raises(error, match=rf"\.{field} must"):
        make()


def test_psol_and_tobias_configs_validate():
    from companion import psol
    from companion.tobias.config import CUBConfig, LocalizationConfig, SSLConfig

    _refused(lambda: psol.quick(n_train=0), "n_train")
    _refused(lambda: psol.quick(encoder_lr=math.nan), "encoder_lr")
    _refused(lambda: psol.quick(ddt_arch="vgg19"), "ddt_arch")
    _refused(lambda: psol.quick(flip=1.5), "flip")
    _refused(lambda: LocalizationConfig(threshold=-1.0), "threshold")
    _refused(lambda: LocalizationConfig(layer4_stride=3), "layer4_stride")
    _refused(lambda: SSLConfig(p=2.0), "p")
    _refused(lambda: SSLConfig(knn_k=0), "knn_k")
    _refused(lambda: SSLConfig(dataset="stl11"), "dataset")
    _refused(lambda: CUBConfig(limit=0), "limit")


def test_fewshot_configs_validate():
    from companion.fewshot import config
    from companion.fewshot.finetune import FineTune

    q = config.quick()
    for field, value in (("n_way", 1), ("q_query", 0), ("members", 0), ("n_way", 6)):
        _refused(lambda: dataclasses.replace(q, **{field: value}), field)
    _refused(lambda: dataclasses.replace(q, preset="mine"), "preset")
    _refused(lambda: config.FewShotConfig(preset="mine", dataset="digits", backbone="mlp", widths=(8,)), "preset")
    _refused(lambda: FineTune(members=0), "members")
    _refused(lambda: FineTune(lr=math.inf), "lr")


def test_effssl_pretrain_and_fit_configs_validate():
    from companion import effssl
    from companion.ssl import PretrainConfig
    from companion.train import FitConfig

    _refused(lambda: effssl.config.quick(steps=-1), "steps")
    _refused(lambda: effssl.config.quick(bank_momentum=1.5), "bank_momentum")
    _refused(lambda: effssl.config.quick(lr=math.nan), "lr")
    _refused(lambda: PretrainConfig.quick(steps=5, epochs=5), "epochs")
    _refused(lambda: PretrainConfig.quick(steps=None), "epochs")
    _refused(lambda: FitConfig(steps=5, seed=2**70), "seed")
    _refused(lambda: FitConfig(steps=5, weight_decay=math.inf), "weight_decay")
    _refused(lambda: FitConfig(steps=5, lr=True), "lr", TypeError)  # bool is not a number
    _refused(lambda: FitConfig(steps=5, batch_size=True), "batch_size", TypeError)


def test_efpc_and_ssl_evaluation_settings_validate():
    from companion.efpc import config as efpc
    from companion.ssl import config as ssl

    _refused(lambda: efpc.quick(random_draws=0), "random_draws")
    _refused(lambda: efpc.quick(rates=(0.5,)), "claim_rate")
    _refused(lambda: dataclasses.replace(ssl.quick(), knn_k=0), "knn_k")
    from companion.s3l import config as s3l
    from companion.ssql import config as ssql
    from companion.us3l import config as us3l

    _refused(lambda: s3l.quick(knn_k=0), "knn_k")
    _refused(lambda: ssql.quick(knn_k=0), "knn_k")
    _refused(lambda: us3l.quick(knn_k=0), "knn_k")


def test_s3l_budget_fractions_must_share_one_budget():
    from companion.s3l import config

    study = config.study()
    _refused(lambda: study.replace(fractions={"multistage": (0.75, 0.75)}), "fractions")  # 2x the steps
    _refused(lambda: study.replace(fractions={"multistage": (-0.5, 1.5)}), "fractions")
    _refused(lambda: study.replace(fractions={"multistge": (0.5, 0.5)}), "fractions")  # a misspelled arm
    _refused(lambda: study.replace(fractions={"multistage": (0.999, 0.001)}), "fractions")  # a stage of 0 steps
    _refused(lambda: study.replace(arms={"low": (16, 8)}), "arms")
    ok = study.replace(fractions={"multistage": (0.25, 0.75)})
    assert ok.stage_fractions("multistage") == (0.25, 0.75)


REPEATED_SEEDS = {
    "psol": lambda s: importlib.import_module("companion.psol.config").quick(seeds=s),
    "s3l": lambda s: importlib.import_module("companion.s3l.config").quick(seeds=s),
    "ssql": lambda s: importlib.import_module("companion.ssql.config").quick(seeds=s),
    "us3l": lambda s: importlib.import_module("companion.us3l.config").quick(seeds=s),
    "effssl": lambda s: importlib.import_module("companion.effssl.config").quick(seeds=s),
    "vit2040": lambda s: importlib.import_module("companion.vit2040.config").quick(seeds=s),
    "efpc": lambda s: importlib.import_module("companion.efpc.config").quick(seeds=s),
    "fewshot": lambda s: dataclasses.replace(importlib.import_module("companion.fewshot.config").quick(), seeds=s),
    "ssl": lambda s: dataclasses.replace(importlib.import_module("companion.ssl.config").quick(), seeds=s),
    "tobias.localization": lambda s: importlib.import_module("companion.tobias.config").LocalizationConfig(seeds=s),
    "tobias.photo_seeds": lambda s: importlib.import_module("companion.tobias.config").LocalizationConfig(photo_seeds=s),
    "tobias.ssl": lambda s: importlib.import_module("companion.tobias.config").SSLConfig(seeds=s),
}


@pytest.mark.parametrize("where", sorted(REPEATED_SEEDS))
def test_repeated_seeds_are_refused_in_every_config(where):
    make = REPEATED_SEEDS[where]
    with pytest.raises(ValueError, match=r"seeds must be distinct") as err:
        make((0, 0))
    assert "got (0, 0)" in str(err.value)
    make((0, 1))  # distinct seeds are fine


@pytest.mark.parametrize("pkg", ["us3l", "s3l", "ssql", "effssl", "vit2040", "ssl"])
def test_seeds_on_the_command_line_are_checked_before_any_compute(pkg, monkeypatch):
    cli = importlib.import_module(f"companion.{pkg}.__main__")
    monkeypatch.setattr(cli, "run", lambda *a, **k: pytest.fail("ran with repeated seeds"))
    with pytest.raises(ValueError, match=r"\.seeds must be distinct.*got \(3, 3\)"):
        cli.main(["--preset", "quick", "--seeds", "3", "3"])


def test_messages_name_class_field_value_and_what_is_allowed():
    from companion.train import FitConfig

    with pytest.raises(ValueError) as err:
        FitConfig(steps=5, momentum=math.nan)
    assert str(err.value) == "FitConfig.momentum must be in [0, 1), got nan"
    rule = v.sequence(v.positive_int, distinct=True)
    assert rule((1, 2)) is None and rule((1, 1))[0] is ValueError and rule("ab")[0] is TypeError
    assert v.seed(True)[0] is TypeError and v.seed(2**31)[0] is ValueError and v.seed(2**31 - 1) is None
    assert v.one_of(1, 2)(1.0)[0] is TypeError and v.one_of("a")(["a"])[0] is TypeError


def test_a_field_without_a_rule_is_caught_at_once():
    @dataclasses.dataclass
    class Settings:
        steps: int = 1
        forgotten: float = 0.5

        def __post_init__(self):
            v.check(self, steps=v.positive_int)

    with pytest.raises(AssertionError, match=r"no rule for fields \['forgotten'\]"):
        Settings()


# ----------------------------------------------------------------- valid edge values still run


def test_the_smallest_valid_settings_run_one_step():
    import torch

    from companion import ssl, train

    cfg = ssl.PretrainConfig.quick(method="simsiam", steps=1, batch_size=2, resolution=8, encoder_kwargs={"width": 4})
    model, result = ssl.pretrain("simsiam", None, torch.rand(4, 3, 8, 8), cfg)
    assert result.steps == 1
    net = torch.nn.Linear(2, 1)
    # the largest training seed still seeds the data order (seed * 1_000_003 + epoch fits in 64 bits)
    fit_cfg = train.FitConfig(steps=1, batch_size=1, progress=False, seed=v.MAX_TRAIN_SEED)
    data = torch.utils.data.TensorDataset(torch.rand(2, 2), torch.rand(2, 1))
    out = train.fit(net, data, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), fit_cfg)
    assert out.steps == 1
