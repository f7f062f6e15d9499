"""A classifier from the class descriptions alone (zero-shot), with an image-text model (SigLIP, CLIP).

Each class's name and description (标签说明) become a text prompt through a template in the names'
language; the model's text tower turns the prompts into embeddings, and the run's head holds them,
unit-normalised and times the model's own logit scale, over the unit-normalised image embedding. Its
scores are therefore the cosine similarities of image and prompts times that scale, as in the CLIP and
SigLIP papers' zero-shot classification, through a softmax over the classes (SigLIP's shared bias cancels
in it). The head is an ordinary ``Dense`` layer, so such a run evaluates, predicts, explains, exports and
suggests labels like any other; a trained run may start its head from the same weights (``text_head``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from core.datasets.catalog import load_dataset
from core.runs.backbones import DEFAULT_IMAGE_TEXT, Backbone, Family
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


def dataset_prompts(ws: Workspace, dataset: str, template: str = "") -> dict[str, str]:
    """Each class of ``dataset`` and its prompt, from the stored descriptions (no TensorFlow: the pages and
    the CLI show them before a run)."""
    descriptions = load_dataset(ws, dataset).descriptions
    return {name: prompt(name, text, template) for name, text in descriptions.items()}


def _preprocessor(hub: Any, backbone: Backbone) -> Any:
    import keras_hub

    cls = keras_hub.models.SigLIPPreprocessor if backbone.family is Family.SIGLIP else keras_hub.models.CLIPPreprocessor
    return cls.from_preset(backbone.preset)


def text_embeddings(hub: Any, backbone: Backbone, prompts: list[str]) -> np.ndarray:
    """The prompts through the preset's own tokenizer and text tower, unit-normalised (one row each)."""
    preprocessor = _preprocessor(hub, backbone)
    dummy = np.zeros((len(prompts), 2, 2, 3), dtype=np.float32)  # the preprocessor takes both; unused here
    packed = preprocessor({"prompts": prompts, "images": dummy})
    found = np.asarray(hub.get_text_embeddings(packed["token_ids"]), dtype=np.float64)
    return found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)


def logit_scale(hub: Any, backbone: Backbone) -> float:
    """The model's learnt temperature: ``exp(logit_scale)`` of its contrastive head."""
    head = hub.siglip_head if backbone.family is Family.SIGLIP else hub.clip_head
    return float(np.exp(np.asarray(head.logit_scale)))


def text_head_weights(hub: Any, backbone: Backbone, prompts: list[str]) -> list[np.ndarray]:
    """The head's kernel and bias for ``prompts``: scale times the normalised text embeddings, no bias."""
    kernel = logit_scale(hub, backbone) * text_embeddings(hub, backbone, prompts).T
    return [kernel.astype(np.float32), np.zeros(len(prompts), dtype=np.float32)]
