"""The quick corpus: short passages of facts about made-up towns, each with a question.

It stands in for the two kinds of data EFPC trains on, which cannot be made offline (both come
from GPT-4):

- **task-agnostic labels** (LLMLingua-2's data): a stated rule, *keep every content word of the
  fact sentences; drop stop words, punctuation and the filler sentences that state no fact*;
- **task-aware labels** (EFPC's added data, compressed *given the question*): keep the content words
  of the one sentence that answers the question, drop everything else.

Passages are generated deterministically from a seed, sentences in random order so that position
gives nothing away, and the held-out split uses town names the training split never contains.

Book section: *EFPC* "The quick corpus".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..compress.words import is_content_word, split_words

# --- what the towns are made of --------------------------------------------------------------

_PREFIXES = ("Ash", "Bram", "Cor", "Dun", "Elm", "Fen", "Gal", "Hol", "Ivy", "Kel", "Lor", "Mar",
             "Nor", "Oak", "Pel", "Quin", "Ros", "Sel", "Tarn", "Wil", "Bex", "Cal", "Dray", "Fal")
_SUFFIXES = ("ford", "wick", "dale", "mere", "ton", "by", "haven", "stead", "field", "moor")
_FIRST = ("Clara", "Tomas", "Ines", "Felix", "Greta", "Omar", "Lena", "Victor", "Maya", "Jonas", "Rosa", "Arun")
_LAST = ("Finch", "Barrow", "Okafor", "Lindqvist", "Moreau", "Castell", "Hale", "Ibarra", "Novak", "Reyes")
_RIVERS = ("Amber", "Silver", "Willow", "Stone", "Heron", "Copper", "Bright", "Otter")
_INDUSTRY = ("fishing", "textiles", "mining", "software", "tourism", "farming", "shipbuilding", "pottery")
_MONTHS = ("January", "March", "April", "June", "July", "August", "October", "December")
_FOODS = ("cheese", "apple", "honey", "bread", "chestnut", "oyster", "pumpkin", "cider")
_CITIES = ("Norhaven", "Castelo", "Brightport", "Umberg", "Kestrel", "Valmora")
_LANDMARKS = ("clock tower", "stone bridge", "lighthouse", "windmill", "observatory", "market hall")
_ANIMALS = ("Foxes", "Herons", "Badgers", "Ravens", "Otters", "Wolves", "Stags", "Hawks")

# Each fact: (sentence templates, question template, answer slot). {S} is the town.
_FACTS = {
    "founded": (("{S} was founded in {year}.", "The first houses of {S} were built in {year}."),
                "When was {S} founded?", "year"),
    "population": (("About {people} people live in {S} today.", "{S} is home to roughly {people} people."),
                   "How many people live in {S}?", "people"),
    "mayor": (("The current mayor of {S} is {person}.", "{person} was elected mayor of {S} last year."),
              "Who is the mayor of {S}?", "person"),
    "river": (("The {river} River runs through the centre of {S}.", "{S} grew up along the banks of the {river} River."),
              "Which river runs through {S}?", "river"),
    "industry": (("Most workers in {S} earn their living from {industry}.", "The main industry of {S} is {industry}."),
                 "What is the main industry of {S}?", "industry"),
    "festival": (("Every {month} the town holds a large {food} festival.", "A famous {food} festival takes place there each {month}."),
                 "Which festival does {S} hold?", "food"),
    "distance": (("{S} lies {km} kilometres north of {city}.", "The road from {city} to {S} is {km} kilometres long."),
                 "How far is {S} from {city}?", "km"),
    "landmark": (("Its best known landmark is the old {landmark}.", "Tourists come to {S} to see the old {landmark}."),
                 "What is the best known landmark of {S}?", "landmark"),
    "team": (("The local football team is called the {animal}.", "Fans of the {animal} fill the stadium every Saturday."),
             "What is the local football team called?", "animal"),
}

# Sentences that state nothing a question could ask; the task-agnostic rule drops them whole.
FILLERS = (
    "Visitors often say that the weather there is quite pleasant in the spring.",
    "As many people have pointed out, it is a rather quiet place for most of the year.",
    "There is, of course, much more that could be said about it.",
    "Some of the older streets are said to be very narrow indeed.",
    "It is perhaps worth mentioning that the town has changed a lot over time.",
    "Many of those who visit once tend to come back again later.",
)


@dataclass
class Example:
    """One passage with one question.

    ``words``: the passage split by :func:`~companion.compress.words.split_words`;
    ``agnostic`` / ``aware``: 0/1 keep labels per word under the two rules;
    ``sentence_of``: the sentence index of every word; ``answer_sentence``: the one that answers.
    """

    town: str
    passage: str
    question: str
    answer: str
    fact: str
    words: list[str]
    agnostic: list[int]
    aware: list[int]
    sentence_of: list[int]
    answer_sentence: int
    facts: dict = field(default_factory=dict)


@dataclass
class Corpus:
    """``train`` and ``test`` examples; test towns never occur in training."""

    train: list[Example]
    test: list[Example]


def _values(rng: random.Random) -> dict:
    return {
        "year": str(rng.randint(1620, 1960)), "people": str(rng.randrange(1200, 98000, 100)),
        "person": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "river": rng.choice(_RIVERS),
        "industry": rng.choice(_INDUSTRY), "month": rng.choice(_MONTHS), "food": rng.choice(_FOODS),
        "km": str(rng.randint(3, 240)), "city": rng.choice(_CITIES), "landmark": rng.choice(_LANDMARKS),
        "animal": rng.choice(_ANIMALS),
    }


def make_example(town: str, rng: random.Random, n_facts: int = 3, n_fillers: int = 1) -> Example:
    """A passage about ``town`` with ``n_facts`` facts and ``n_fillers`` filler sentences, and one question."""
    if not 1 <= n_facts <= len(_FACTS):
        raise ValueError(f"n_facts must be in [1, {len(_FACTS)}], got {n_facts}")
    if not 0 <= n_fillers <= len(FILLERS):
        raise ValueError(f"n_fillers must be in [0, {len(FILLERS)}], got {n_fillers}")
    values = _values(rng)
    values["S"] = town
    facts = rng.sample(sorted(_FACTS), n_facts)
    sentences = [(f, rng.choice(_FACTS[f][0]).format(**values)) for f in facts]
    sentences += [(None, s) for s in rng.sample(FILLERS, n_fillers)]
    rng.shuffle(sentences)
    asked = rng.choice(facts)
    words, agnostic, aware, sentence_of = [], [], [], []
    for i, (fact, sentence) in enumerate(sentences):
        for w in split_words(sentence):
            content = is_content_word(w)
            words.append(w)
            sentence_of.append(i)
            agnostic.append(int(content and fact is not None))
            aware.append(int(content and fact == asked))
    _, question, slot = _FACTS[asked]
    return Example(
        town=town, passage=" ".join(s for _, s in sentences), question=question.format(**values),
        answer=values[slot], fact=asked, words=words, agnostic=agnostic, aware=aware,
        sentence_of=sentence_of, answer_sentence=next(i for i, (f, _) in enumerate(sentences) if f == asked),
        facts={f: values[_FACTS[f][2]] for f in facts},
    )


def make_corpus(n_train: int = 160, n_test: int = 48, seed: int = 0, n_facts: int = 3, n_fillers: int = 1) -> Corpus:
    """A deterministic corpus: the same arguments give the same passages, questions and labels.

    Town names are split first, so no held-out town is ever seen in training. There are
    ``24 x 10 = 240`` names; a town may carry several passages when more are asked for.

    Book section: *EFPC* "The quick corpus".
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    rng = random.Random(seed)
    towns = [p + s for p in _PREFIXES for s in _SUFFIXES]
    rng.shuffle(towns)
    n_test_towns = max(1, len(towns) // 5)
    test_towns, train_towns = towns[:n_test_towns], towns[n_test_towns:]
    train = [make_example(train_towns[i % len(train_towns)], rng, n_facts, n_fillers) for i in range(n_train)]
    test = [make_example(test_towns[i % len(test_towns)], rng, n_facts, n_fillers) for i in range(n_test)]
    return Corpus(train, test)
