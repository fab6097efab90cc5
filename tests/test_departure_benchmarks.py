"""The scripts that measure a listed departure's effect, and the chapters' prose that quotes them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


class _Spy(nn.Module):
    """Mean brightness as the one feature; remembers every batch it was shown."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.scale = nn.Parameter(torch.ones(1))  # feature extraction reads the device off a parameter

    def forward(self, x):
        self.seen.append(x.clone())
        return self.scale * x.mean(dim=(1, 2, 3)).unsqueeze(1)


def test_augmented_probe_sees_fresh_crops_and_separates_what_crops_keep():
    bench = _script("ssql_probe_augmentation")
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    # dark or bright images with a gradient: a crop changes the pixels, not the class's brightness
    ramp = torch.linspace(-0.05, 0.05, 8).view(1, 1, 1, 8)
    images = (0.25 + 0.5 * labels.view(-1, 1, 1, 1).float() + ramp + 0.01 * torch.randn(64, 1, 8, 8, generator=gen))
    spy = _Spy()
    acc = bench.augmented_probe(spy, images[:48], labels[:48], images[48:], labels[48:], epochs=20)
    assert acc == 100.0
    trained = torch.cat([x for x in spy.seen if len(x) == 48]).flatten(1)  # one batch of 48 an epoch
    assert len(trained) == 20 * 48
    nearest = torch.cdist(trained, images[:48].flatten(1)).min(dim=1).values
    assert (nearest > 1e-4).float().mean() > 0.9  # a fresh crop nearly every time, not the raw image
    again = bench.augmented_probe(_Spy(), images[:48], labels[:48], images[48:], labels[48:], epochs=20)
    assert again == acc


def test_pair_names_parse_and_bad_ones_are_refused():
    import argparse

    bench = _script("ssql_probe_augmentation")
    assert bench.parse_pair("2w4f") == (2, 4)
    with pytest.raises(argparse.ArgumentTypeError, match="2w4f"):
        bench.parse_pair("w2")


@pytest.mark.parametrize("name", ["s3l_finetune_recipe", "ssql_probe_augmentation", "ssl_input_normalization"])
def test_each_departure_measurement_has_an_interval_from_three_seeds_or_more(name):
    record = _record(name)
    assert len(record["seeds"]) >= 3
    intervals = []

    def walk(node):
        if isinstance(node, dict):
            if "ci95" in node:
                intervals.append(node)
            for value in node.values():
                walk(value)

    walk(record)
    assert intervals
    for iv in intervals:
        low, high = iv["ci95"]
        estimate = iv.get("estimate", iv.get("change", iv.get("diff")))
        assert low <= estimate <= high and low < high  # an interval with spread, around its estimate


def _quoted(value: float) -> str:
    return f"{value:+.1f}"


def test_s3l_chapter_quotes_the_fine_tuning_measurement():
    record, page = _record("s3l_finetune_recipe"), (ROOT / "book" / "03_s3l.md").read_text()
    assert "benchmarks/s3l_finetune_recipe.py" in page
    for key in ("claim_short", "claim_long", "claim_change", "pretraining_helps_short", "pretraining_helps_long"):
        c = record[key]
        for value in (c["estimate"], *c["ci95"]):
            assert _quoted(value) in page, f"03_s3l.md does not quote {key} = {value:+.2f} as {_quoted(value)}"


def test_ssql_chapter_quotes_the_probe_measurement():
    record, page = _record("ssql_probe_augmentation"), (ROOT / "book" / "06_ssql.md").read_text()
    assert "benchmarks/ssql_probe_augmentation.py" in page
    rows = record["pairs"]["2w2f"]
    assert rows["equals_study_record"]  # the features-once arm is the chapter's own probe, number for number
    for key in ("claim_once", "claim_augmented"):
        c = rows[key]
        for value in (c["estimate"], *c["ci95"]):
            assert _quoted(value) in page, f"06_ssql.md does not quote {key} = {value:+.2f} as {_quoted(value)}"
    for method in ("simsiam", "ssql"):
        assert _quoted(rows[method]["change"]) in page


def test_intro_quotes_the_input_normalization_measurement():
    record, page = _record("ssl_input_normalization"), (ROOT / "book" / "intro.md").read_text()
    for key, row in record["results"].items():
        for value in (row["diff"], *row["ci95"]):
            text = f"{value:+.1f}"
            assert text in page or text.lstrip("+") in page, f"intro.md does not quote {key} = {value:+.2f}"
