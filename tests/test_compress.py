"""The LLMLingua-2 toolkit: words, alignment labels, encoding, chunking, selection, metrics, bad inputs."""

import copy
import math

import numpy as np
import pytest
import torch

from companion.compress import (
    IGNORE, Compressor, TopLayers, align_words, answer_recall, answer_retained, chunk_words, compress_with_scores,
    encode_words, first_words_scores, is_content_word, join_kept, join_words, keep_prf, segment, load_token_classifier, pad_batch, quality_filter,
    random_scores, select_words, split_words, token_classification_step, tokenizer_counter,
)
from companion.compress.classifier import MODEL_INPUTS, frozen_features, frozen_layer_count, pad_hidden_batch


@pytest.fixture(scope="module")
def minilm():
    return load_token_classifier("minilm", seed=0)


# --- words ---------------------------------------------------------------------------------------

def test_split_and_join_words():
    text = "It opened in 1893. Dr. Smith's co-op (old) costs 3.50, really!\nSee docs/usage.md, e.g. v1.2.3 --unzip"
    words = split_words(text)
    assert words == ["It", "opened", "in", "1893.", "Dr.", "Smith's", "co-op", "(old)", "costs", "3.50,",
                     "really!", "See", "docs/usage.md,", "e.g.", "v1.2.3", "--unzip"]
    assert join_kept(text, segment(text), [True] * len(words)) == text  # rate 1: the input itself
    assert join_words(["a", "b."]) == "a b."
    assert is_content_word("River") and is_content_word("1893.") and is_content_word("Finch,")
    assert not is_content_word("the") and not is_content_word("There,") and not is_content_word(".")


def test_chinese_is_cut_at_the_tokenizers_tokens_so_rates_hold_in_tokens(minilm):
    tok, model = minilm
    text = "我们今天讨论了新的预算方案，下周二再投票决定是否通过这个计划。会议在三点结束。"
    words = split_words(text, tok)
    assert len(words) > 20 and "".join(words) == text
    out = Compressor(model, tok).compress(text, 0.25, counter=tokenizer_counter(tok))
    assert 3.5 <= out.ratio <= 4.5  # 4x in the compressor's own tokens, not whole clauses
    assert len(tok.tokenize(text)) / len(tok.tokenize(out.text)) >= 3.5


def test_tokenizer_counter_counts_sub_tokens(minilm):
    tok, _ = minilm
    count = tokenizer_counter(tok)
    assert count("river") == 1
    assert count("Velmontshire") == len(tok.tokenize("Velmontshire")) > 1


# --- alignment -----------------------------------------------------------------------------------

def test_alignment_of_an_exact_subsequence_is_exact():
    original = "the old cat sat on the warm mat today".split()
    a = align_words(original, "cat sat warm mat".split())
    assert a.labels == [0, 0, 1, 1, 0, 0, 1, 1, 0]
    assert a.variation_rate == 0 and a.alignment_gap == 0
    assert math.isclose(a.compression_rate, 4 / 9)


def test_alignment_maps_repeated_words_left_to_right():
    original = "the cat and the dog and the bird".split()
    assert align_words(original, "the cat the dog".split()).labels == [1, 1, 0, 1, 1, 0, 0, 0]
    # a word used more often than it occurs is found but cannot be aligned: the gap grows
    a = align_words("a cat sat".split(), "cat cat sat".split())
    assert a.labels == [0, 1, 1] and a.alignment_gap > 0


def test_alignment_handles_reordered_and_missing_words():
    original = "first red then blue then green".split()
    reordered = align_words(original, "green red".split())
    assert reordered.labels == [0, 1, 0, 0, 0, 1]  # both found; order does not matter inside the window
    missing = align_words(original, "red purple green".split())  # "purple" is a paraphrase
    assert missing.labels == [0, 1, 0, 0, 0, 1]
    assert math.isclose(missing.variation_rate, 1 / 3)
    # out of the window a word is not aligned
    far = align_words(["x"] * 10 + ["target"], ["target"], window=3)
    assert far.labels == [0] * 11 and far.alignment_gap > 0


def test_quality_filter_drops_the_worst_pairs():
    good = [align_words("a b c d".split(), "a c".split()) for _ in range(18)]
    paraphrased = align_words("a b c d".split(), "x y z c".split())
    reordered = align_words("a b c d".split(), "a a a b".split())
    keep = quality_filter(good + [paraphrased, reordered])
    assert list(keep) == list(range(18))
    assert len(quality_filter([])) == 0


# --- encoding and loss ---------------------------------------------------------------------------

def test_labels_spread_to_sub_tokens_and_specials_are_masked(minilm):
    tok, _ = minilm
    words = ["The", "Velmont", "museum", "opened", "."]
    enc = encode_words(tok, words, [0, 1, 1, 1, 0])
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert enc["labels"][0] == IGNORE and enc["labels"][-1] == IGNORE
    n_velmont = len(tok.tokenize("Velmont"))
    assert n_velmont > 1
    assert enc["labels"][2 : 2 + n_velmont] == [1] * n_velmont  # every sub-token inherits its word's label
    assert enc["word_index"][2 : 2 + n_velmont] == [1] * n_velmont


def test_instruction_is_masked_out_of_the_labels(minilm):
    tok, _ = minilm
    enc = encode_words(tok, ["Paris", "is", "big"], [1, 0, 1], instruction=["Where", "?"])
    first_sep = tok.convert_ids_to_tokens(enc["input_ids"]).index("[SEP]")
    assert all(label == IGNORE for label in enc["labels"][: first_sep + 1])
    assert [label for label in enc["labels"] if label != IGNORE] == [1, 0, 1]
    assert sorted(set(enc["word_index"]) - {-1}) == [0, 1, 2]


def test_padding_is_ignored_by_the_loss(minilm):
    tok, model = minilm
    feats = [encode_words(tok, ["a", "long", "sentence", "here"], [1, 0, 1, 1]), encode_words(tok, ["short"], [1])]
    batch = pad_batch(feats, tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, 6)
    assert (batch["labels"][1, 3:] == IGNORE).all() and (batch["attention_mask"][1, 3:] == 0).all()
    model.eval()
    with torch.no_grad():
        loss = token_classification_step(model, batch)["loss"]
        logits = model(**{k: batch[k] for k in MODEL_INPUTS}).logits
    counted = batch["labels"] != IGNORE
    expected = torch.nn.functional.cross_entropy(logits[counted], batch["labels"][counted])
    assert torch.allclose(loss, expected)


def test_top_layers_on_cached_features_match_the_full_model(minilm):
    tok, model = minilm
    model = copy.deepcopy(model)
    assert frozen_layer_count(model) == 0
    model.base_model.embeddings.requires_grad_(False)
    model.base_model.encoder.layer[:2].requires_grad_(False)
    assert frozen_layer_count(model) == 2
    feats = [encode_words(tok, "The Amber River runs through town .".split(), [1] * 7),
             encode_words(tok, ["Hello"], [0], instruction=["Who", "?"])]
    hidden = frozen_features(model, feats, 2)
    top = TopLayers(model, 2).eval()
    batch = pad_hidden_batch([{"hidden": h, "labels": f["labels"]} for h, f in zip(hidden, feats)])
    full = pad_batch(feats)
    model.eval()
    with torch.no_grad():
        a = top(batch["hidden"], batch["attention_mask"])
        b = model(**{k: full[k] for k in MODEL_INPUTS}).logits
    mask = batch["attention_mask"].bool()
    assert torch.allclose(a[mask], b[mask], atol=1e-5)


# --- chunking and selection ----------------------------------------------------------------------

def test_chunks_cover_every_word_and_end_at_sentences():
    words = split_words("One two three. Four five six seven. Eight nine. " + "x " * 12)
    lengths = [1] * len(words)
    chunks = chunk_words(lengths, 5, words)
    flat = [i for s, e in chunks for i in range(s, e)]
    assert flat == list(range(len(words)))
    assert all(e - s <= 5 for s, e in chunks)
    assert words[chunks[0][1] - 1] == "three." and words[chunks[1][1] - 1] == "seven."
    assert chunk_words([12], 5) == [(0, 1)]  # a word longer than the window stays whole
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_words([1, 1], 0)


def test_kept_fraction_matches_the_rate_within_one_word():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 80))
        rate = float(rng.uniform(0.01, 1.0))
        keep = select_words(rng.random(n), np.ones(n, int), rate)
        assert abs(keep.sum() - rate * n) <= 1
    # with token costs the budget is never exceeded by more than rounding
    costs = rng.integers(1, 4, 50)
    keep = select_words(rng.random(50), costs, 0.3)
    assert costs[keep].sum() <= round(0.3 * costs.sum())


def test_selection_keeps_the_most_probable_and_forced_words():
    probs = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.05])
    assert select_words(probs, np.ones(6, int), 2 / 6).tolist() == [False, True, False, True, False, False]
    forced = np.array([False, False, False, False, False, True])
    keep = select_words(probs, np.ones(6, int), 2 / 6, forced)
    assert keep[5] and keep[1] and keep.sum() == 2
    for method in ("topk", "percentile"):
        assert select_words(probs, np.ones(6, int), 0.01, forced, method)[5]
        assert select_words(probs, np.ones(6, int), 1.0, method=method).all()
    # LLMLingua-2: tau = 51st percentile (linear interpolation) = 0.255, so three of six words stay
    assert select_words(probs, np.ones(6, int), 0.5, method="percentile").tolist() == [0, 1, 0, 1, 1, 0]


def test_long_prompt_is_chunked_without_losing_text(minilm):
    tok, model = minilm
    prompt = "The Amber River runs through Galby. " * 12 + "An endless sentence " + "and on " * 30
    comp = Compressor(model, tok, max_length=24, batch_size=4)
    out = comp.compress(prompt, 1.0)
    assert len(out.chunks) > 5
    assert out.text == prompt
    half = comp.compress(prompt, 0.5, force_tokens=["."], force_digits=True)
    words = split_words(prompt, force_tokens=["."])
    assert half.words == words
    assert half.kept[[i for i, w in enumerate(words) if w == "."]].all()
    for s, e in half.chunks:  # every chunk at the rate, forced words counted first
        assert half.kept[s:e].sum() <= max(round(0.5 * (e - s)), half.kept[s:e][np.array(words[s:e]) == "."].sum())


def test_instruction_never_appears_in_the_output(minilm):
    tok, model = minilm
    comp = Compressor(model, tok, max_length=32)
    prompt = "Most workers in Galby earn their living from fishing. The mayor is Clara Finch."
    for rate in (0.3, 1.0):
        out = comp.compress(prompt, rate, instruction="Zebrafinch quokka question?")
        assert "Zebrafinch" not in out.text and "quokka" not in out.text
        assert out.words == split_words(prompt)


def test_loading_keeps_and_freezes_the_asked_blocks():
    _, model = load_token_classifier("minilm", trainable_layers=1, num_layers=3)
    assert len(model.base_model.encoder.layer) == 3 and model.config.num_hidden_layers == 3
    assert frozen_layer_count(model) == 2
    assert not any(p.requires_grad for p in model.base_model.embeddings.parameters())
    assert all(p.requires_grad for p in model.base_model.encoder.layer[2].parameters())
    with pytest.raises(ValueError, match="trainable_layers"):
        load_token_classifier("minilm", trainable_layers=9)


def test_aggregation_mean_and_first(minilm):
    tok, model = minilm
    words = ["Velmontshire", "is", "old"]
    enc = pad_batch([encode_words(tok, words)])
    model.eval()
    with torch.no_grad():
        p = model(**{k: enc[k] for k in MODEL_INPUTS}).logits.softmax(-1)[0, :, 1].numpy()
    index = enc["word_index"][0].numpy()
    mean, _ = Compressor(model, tok, aggregation="mean").word_probabilities(words)
    first, _ = Compressor(model, tok, aggregation="first").word_probabilities(words)
    assert np.isclose(mean[0], p[index == 0].mean()) and np.isclose(first[0], p[index == 0][0])
    assert np.isclose(mean[2], first[2])


def test_batched_scoring_matches_one_by_one(minilm):
    tok, model = minilm
    comp = Compressor(model, tok, max_length=20, batch_size=3)
    prompts = [split_words("A short one."), split_words("The Amber River runs through Galby. It is long. " * 3)]
    together = comp.score_prompts(prompts, [["Why", "?"], None])
    alone = [comp.word_probabilities(prompts[0], ["Why", "?"]), comp.word_probabilities(prompts[1])]
    for (a, ca), (b, cb) in zip(together, alone):
        assert ca == cb and np.allclose(a, b, atol=1e-5)


# --- metrics and baselines -----------------------------------------------------------------------

def test_metrics_known_values():
    assert keep_prf([1, 1, 0, 0], [1, 0, 1, 0]) == (0.5, 0.5, 0.5)
    assert keep_prf([0, 0], [0, 0]) == (1.0, 1.0, 1.0)
    assert keep_prf([0, 0], [1, 0])[2] == 0.0
    assert answer_retained(["founded", "in", "1893"], "1893")
    assert answer_retained(["mayor", "Clara", "Finch"], "clara finch")
    assert not answer_retained(["Clara", "is", "Finch"], "Clara Finch")
    c = compress_with_scores(list("abcdefgh"), first_words_scores(list("abcdefgh")), 0.25)
    assert c.kept_words == ["a", "b"] and c.rate == 0.25 and c.ratio == 4.0
    assert not np.array_equal(random_scores(list("abcd"), 0), random_scores(list("abcd"), 1))
    assert answer_retained(["mayor", "Clara", "Finch."], "Clara Finch")  # punctuation around words ignored
    assert answer_recall(["Clara", "was", "here"], "Clara Finch") == 0.5


def test_force_newline_keeps_speaker_turns_and_rate_one_is_the_input(minilm):
    tok, model = minilm
    comp = Compressor(model, tok)
    prompt = "Chair: We move to item four.\nOrtega: The quote is 48,000 dollars.\nPark: Split it?\n"
    assert comp.compress(prompt, 1.0).text == prompt
    out = comp.compress(prompt, 0.5, force_tokens=["\n", "?"])
    assert out.text.count("\n") == prompt.count("\n")  # no two turns merge into one line
    assert "?" in out.kept_words


def test_llmlingua_shaped_adapter(minilm):
    tok, model = minilm
    comp = Compressor(model, tok)
    prompt = "The server listens on port 8080. Logs go to /var/log/app.log every night. " * 3
    res = comp.compress_prompt(prompt, rate=0.5, force_tokens=["\n", "."], drop_consecutive=True)
    assert set(res) >= {"compressed_prompt", "origin_tokens", "compressed_tokens", "ratio", "rate"}
    assert res["origin_tokens"] == sum(tokenizer_counter(tok)(w) for w in split_words(prompt, tok, ["."]))
    assert res["ratio"] == f"{res['origin_tokens'] / res['compressed_tokens']:.1f}x"
    assert res["rate"].endswith("%") and res["compressed_prompt"] == res["compression"].text
    assert comp.compress_prompt(prompt, target_token=10)["compressed_tokens"] <= 10
    with pytest.raises(TypeError, match="context"):
        comp.compress_prompt(3)


def test_a_rate_that_keeps_nothing_is_refused(minilm):
    tok, model = minilm
    with pytest.raises(ValueError, match="keeps nothing"):
        Compressor(model, tok).compress("Hello there.", 0.1)


# --- bad inputs ----------------------------------------------------------------------------------

def test_bad_inputs_get_clear_errors(minilm):
    tok, model = minilm
    comp = Compressor(model, tok)
    with pytest.raises(ValueError, match="empty"):
        comp.compress("   ", 0.5)
    with pytest.raises(TypeError, match="prompt must be a str"):
        comp.compress(["a", "list"], 0.5)
    for rate in (0, -0.2, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"rate must be in \(0, 1\]"):
            comp.compress("Some words here.", rate)
    with pytest.raises(TypeError, match="rate must be a number"):
        comp.compress("Some words here.", "0.5")
    with pytest.raises(ValueError, match="target_tokens"):
        comp.compress("Some words here.", target_tokens=0)
    with pytest.raises(TypeError, match="force_tokens"):
        comp.compress("Some words here.", 0.5, force_tokens=".")
    with pytest.raises(TypeError, match="instruction"):
        comp.compress("Some words here.", 0.5, instruction=["why"])
    with pytest.raises(ValueError, match="aggregation"):
        Compressor(model, tok, aggregation="max")
    with pytest.raises(ValueError, match="max_length"):
        Compressor(model, tok, max_length=4096)
    with pytest.raises(TypeError):
        split_words(None)
    with pytest.raises(TypeError, match="sequence of word strings"):
        align_words("a b c", ["a"])
    with pytest.raises(TypeError, match="list of word strings"):
        encode_words(tok, "not split")
    with pytest.raises(ValueError, match="labels"):
        encode_words(tok, ["a", "b"], [1])
    with pytest.raises(ValueError, match="same length"):
        keep_prf([1, 0], [1])
    with pytest.raises(ValueError, match="answer is empty"):
        answer_retained(["a"], " ")
    with pytest.raises(ValueError, match="method"):
        select_words(np.ones(3), np.ones(3, int), 0.5, method="median")
    with pytest.raises(ValueError, match="trainable_layers"):
        load_token_classifier("minilm", trainable_layers=-1)
