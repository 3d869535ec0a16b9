"""The RouterEval corpus: its 12 benchmarks, their subsets and the reference scores.

Names follow the reference code (MilkThink-Lab/RouterEval ``utils.py``): the
official files store each subset ("subscenario") under its own key; routereval
names each benchmark by its short name (``truthfulqa`` for the reference's
``harness_truthfulqa_mc_0``) and each subset by the subscenario's readable part.
"""

from __future__ import annotations

from dataclasses import dataclass

# MMLU test-split sizes per subject (57 subjects, 14,042 prompts)
_MMLU = {
    "abstract_algebra": 100, "anatomy": 135, "astronomy": 152, "business_ethics": 100,
    "clinical_knowledge": 265, "college_biology": 144, "college_chemistry": 100,
    "college_computer_science": 100, "college_mathematics": 100, "college_medicine": 173,
    "college_physics": 102, "computer_security": 100, "conceptual_physics": 235, "econometrics": 114,
    "electrical_engineering": 145, "elementary_mathematics": 378, "formal_logic": 126, "global_facts": 100,
    "high_school_biology": 310, "high_school_chemistry": 203, "high_school_computer_science": 100,
    "high_school_european_history": 165, "high_school_geography": 198,
    "high_school_government_and_politics": 193, "high_school_macroeconomics": 390,
    "high_school_mathematics": 270, "high_school_microeconomics": 238, "high_school_physics": 151,
    "high_school_psychology": 545, "high_school_statistics": 216, "high_school_us_history": 204,
    "high_school_world_history": 237, "human_aging": 223, "human_sexuality": 131, "international_law": 121,
    "jurisprudence": 108, "logical_fallacies": 163, "machine_learning": 112, "management": 103,
    "marketing": 234, "medical_genetics": 100, "miscellaneous": 783, "moral_disputes": 346,
    "moral_scenarios": 895, "nutrition": 306, "philosophy": 311, "prehistory": 324,
    "professional_accounting": 282, "professional_law": 1534, "professional_medicine": 272,
    "professional_psychology": 612, "public_relations": 110, "security_studies": 245, "sociology": 201,
    "us_foreign_policy": 100, "virology": 166, "world_religions": 171,
}
_BBH = {t: 250 for t in (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "formal_fallacies",
    "geometric_shapes", "hyperbaton", "logical_deduction_five_objects", "logical_deduction_seven_objects",
    "logical_deduction_three_objects", "movie_recommendation", "navigate", "object_counting",
    "penguins_in_a_table", "reasoning_about_colored_objects", "ruin_names",
    "salient_translation_error_detection", "snarks", "sports_understanding", "temporal_sequences",
    "tracking_shuffled_objects_five_objects", "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects", "web_of_lies")}
_BBH.update(causal_judgement=187, penguins_in_a_table=146, snarks=178)
_MATH = {"algebra": 307, "counting_and_prob": 123, "geometry": 132, "intermediate_algebra": 280,
         "num_theory": 154, "prealgebra": 193, "precalculus": 135}


@dataclass(frozen=True)
class Subset:
    """One subset of a benchmark: its routereval name, official key and prompt count."""

    name: str
    official: str
    prompts: int


@dataclass(frozen=True)
class BenchmarkInfo:
    """One of the paper's 12 benchmarks.

    Attributes
    ----------
    name
        routereval's name (``arc``, ..., ``mmlu_pro``).
    leaderboard
        Key of the official score file: ``old`` (Open LLM Leaderboard v1), ``new`` (v2), ``mmlu_pro``.
    scenario
        The reference code's scenario name.
    subsets
        Subsets in the official order.
    binary
        Whether the scores are 0/1 (all but TruthfulQA).
    reference_score
        Score of the GPT-4-class reference model behind V_R.
    choices
        Number of answer options (the guessing floor is 1/choices); 0 for generative tasks.
    file_stem
        Stem of the router-dataset pickle the reference scripts read for this benchmark
        (``data/router_dataset/{file_stem}.pkl``: ``test_router.py`` lines 7 and 35,
        ``quick_start.ipynb``): the scenario name + ``_router_dataset``.
    """

    name: str
    leaderboard: str
    scenario: str
    subsets: tuple[Subset, ...]
    binary: bool
    reference_score: float
    choices: int
    file_stem: str

    @property
    def prompts(self) -> int:
        return sum(s.prompts for s in self.subsets)


def _subsets(fmt: str, counts: dict[str, int]) -> tuple[Subset, ...]:
    return tuple(Subset(k, fmt.format(k), v) for k, v in counts.items())


BENCHMARKS: dict[str, BenchmarkInfo] = {b.name: b for b in (
    BenchmarkInfo("arc", "old", "arc", (Subset("arc_challenge", "harness_arc_challenge_25", 1172),), True, 0.852, 4,
                  file_stem="arc_router_dataset"),
    BenchmarkInfo("hellaswag", "old", "hellaswag", (Subset("hellaswag", "harness_hellaswag_10", 10042),), True, 0.953, 4,
                  file_stem="hellaswag_router_dataset"),
    BenchmarkInfo("mmlu", "old", "mmlu", _subsets("harness_hendrycksTest_{}_5", _MMLU), True, 0.864, 4,
                  file_stem="mmlu_router_dataset"),
    BenchmarkInfo("truthfulqa", "old", "harness_truthfulqa_mc_0",
                  (Subset("truthfulqa_mc", "harness_truthfulqa_mc_0", 817),), False, 0.669, 4,
                  file_stem="harness_truthfulqa_mc_0_router_dataset"),
    BenchmarkInfo("winogrande", "old", "winogrande", (Subset("winogrande", "harness_winogrande_5", 1267),), True, 0.875, 2,
                  file_stem="winogrande_router_dataset"),
    BenchmarkInfo("gsm8k", "old", "gsm8k", (Subset("gsm8k", "harness_gsm8k_5", 1319),), True, 0.92, 0,
                  file_stem="gsm8k_router_dataset"),
    BenchmarkInfo("ifeval", "new", "ifeval", (Subset("ifeval", "ifeval", 541),), True, 0.7689, 0,
                  file_stem="ifeval_router_dataset"),
    BenchmarkInfo("bbh", "new", "bbh", _subsets("bbh_{}", _BBH), True, 0.8303, 3,
                  file_stem="bbh_router_dataset"),
    BenchmarkInfo("gpqa", "new", "gpqa", _subsets("gpqa_{}", {"diamond": 198, "extended": 546, "main": 448}), True, 0.397, 4,
                  file_stem="gpqa_router_dataset"),
    BenchmarkInfo("math", "new", "math", _subsets("math_{}_hard", _MATH), True, 0.4, 0,
                  file_stem="math_router_dataset"),
    BenchmarkInfo("musr", "new", "musr", _subsets(
        "musr_{}", {"murder_mysteries": 250, "object_placements": 256, "team_allocation": 250}), True, 0.699, 3,
                  file_stem="musr_router_dataset"),
    BenchmarkInfo("mmlu_pro", "mmlu_pro", "mmlu_pro", (Subset("mmlu_pro", "mmlu_pro", 12032),), True, 0.637, 10,
                  file_stem="mmlu_pro_router_dataset"),
)}

LEADERBOARDS: dict[str, tuple[str, ...]] = {
    lb: tuple(b.name for b in BENCHMARKS.values() if b.leaderboard == lb) for lb in ("old", "new", "mmlu_pro")
}

# Reference (GPT-4-class) scores behind V_R, by benchmark name; the reference code's scenario names map here too.
REFERENCE_SCORES: dict[str, float] = {b.name: b.reference_score for b in BENCHMARKS.values()}
SCENARIO_TO_NAME: dict[str, str] = {b.scenario: b.name for b in BENCHMARKS.values()}

# The paper's corpus size (ARCHITECTURE.md)
PAPER_MODELS = 8567
PAPER_PROMPTS = 50265
PAPER_RECORDS = 201_715_850
