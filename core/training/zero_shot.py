"""A classifier from the class descriptions alone (zero-shot), with an image-text model (SigLIP, CLIP).

Each class's name and description (标签说明) become a text prompt through a template in the names'
language; the model's text tower turns the prompts into embeddings, and the run's head holds them,
unit-normalised and times the model's own logit scale, over the unit-normalised image embedding. Its
scores are therefore the cosine similarities of image and prompts times that scale, as in the CLIP and
SigLIP papers' zero-shot classification, through a softmax over the classes (SigLIP's shared bias cancels
in it; the text tower's side is :func:`core.training.foundation.text_head_weights`). The head is an
ordinary ``Dense`` layer, so such a run evaluates, predicts, explains, exports and
suggests labels like any other; a trained run may start its head from the same weights (``text_head``).
"""

from __future__ import annotations

import re
from typing import Any

from core.datasets.catalog import load_dataset
from core.runs.backbones import DEFAULT_IMAGE_TEXT
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training.pipeline import TrainingData

# One template per language; ``{name}`` the class, ``{description}`` its description (may be empty).
TEMPLATES = {"en": "a photo of {name}. {description}", "zh": "一张{name}的照片。{description}"}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def language_of(text: str) -> str:
    """``zh`` when the text has Chinese characters, else ``en``."""
    return "zh" if _CJK.search(text) else "en"


def prompt(name: str, description: str, template: str = "") -> str:
    """One class's prompt: the template (the names' language's unless given) filled in as typed."""
    chosen = template or TEMPLATES[language_of(name + description)]
    return " ".join(chosen.replace("{name}", name).replace("{description}", description.strip()).split())


def class_prompts(config: TrainConfig, data: TrainingData) -> list[str]:
    """The prompts of the run's classes, in the run's class order."""
    return [prompt(name, data.descriptions.get(name, ""), config.prompt_template) for name in data.classes]


def zero_shot_config(
    dataset: str, backbone: str = DEFAULT_IMAGE_TEXT, template: str = "", **settings: Any
) -> TrainConfig:
    """The config of a zero-shot run: a text head and no epochs, at the backbone's own size."""
    return TrainConfig(
        dataset=dataset, backbone=backbone, text_head=True, prompt_template=template, head_epochs=0,
        fine_tune_epochs=0, **settings,
    )  # fmt: skip


def prompts_for(descriptions: dict[str, str], template: str = "") -> dict[str, str]:
    """Each class and its prompt, from the classes' descriptions (no TensorFlow: the pages and the CLI
    show them before a run)."""
    return {name: prompt(name, text, template) for name, text in descriptions.items()}


def dataset_prompts(ws: Workspace, dataset: str, template: str = "") -> dict[str, str]:
    """:func:`prompts_for` the stored descriptions of ``dataset``."""
    return prompts_for(load_dataset(ws, dataset).descriptions, template)
