"""Tiny KerasHub presets, saved as local preset folders as ``save_to_preset`` writes them.

KerasHub's real classes (DINOv2, SigLIP, CLIP) at tiny random configurations: a handful of dimensions, one
or two blocks, a 32-64 px image. The image-text ones carry a real tokenizer: a SentencePiece model trained
here on the prompts' words (SigLIP), a byte-pair vocabulary of single characters (CLIP). Nothing is
downloaded: this is how the tests and benchmarks run foundation backbones offline.
"""

from __future__ import annotations

import io
from pathlib import Path

IMAGE_SIZE = 64
# Words the SigLIP vocabulary is trained on: the prompt templates and the test datasets' names.
CORPUS = (
    "a photo of red green blue colour. 一张红色绿色蓝色的照片。 shirt shoe bag "
    "photo of a plain red square. photo of a plain green square. photo of a plain blue square."
)


def dinov2(folder: Path, *, registers: int = 0, size: int = 56) -> Path:
    import keras_hub

    backbone = keras_hub.models.DINOV2Backbone(
        patch_size=14, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
        num_register_tokens=registers, image_shape=(size, size, 3), position_embedding_shape=(42, 42, 3),
    )  # fmt: skip
    converter = keras_hub.layers.DINOV2ImageConverter(
        image_size=(size, size), scale=[1 / (255 * s) for s in (0.229, 0.224, 0.225)],
        offset=[-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True)],
    )  # fmt: skip
    backbone.save_to_preset(str(folder))
    converter.save_to_preset(str(folder))
    return folder


def _siglip_proto() -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    words = CORPUS.replace(".", " ").replace("。", " ").split()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(words * 4), model_writer=model, vocab_size=48, model_type="unigram",
        pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="<pad>", bos_piece="<s>", eos_piece="</s>",
        unk_piece="<unk>", character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    return model.getvalue()


def siglip(folder: Path, *, size: int = IMAGE_SIZE) -> Path:
    import keras_hub

    vision = keras_hub.models.SigLIPVisionEncoder(
        patch_size=16, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, image_shape=(size, size, 3)
    )
    text = keras_hub.models.SigLIPTextEncoder(
        vocabulary_size=64, embedding_dim=16, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
        max_sequence_length=16,
    )  # fmt: skip
    backbone = keras_hub.models.SigLIPBackbone(vision, text)
    tokenizer = keras_hub.models.SigLIPTokenizer(proto=_siglip_proto())
    converter = keras_hub.layers.SigLIPImageConverter(image_size=(size, size), scale=1 / 127.5, offset=-1.0)
    preprocessor = keras_hub.models.SigLIPPreprocessor(tokenizer, converter, sequence_length=16)
    backbone.save_to_preset(str(folder))
    preprocessor.save_to_preset(str(folder))
    return folder


def _clip_vocabulary() -> tuple[dict[str, int], list[str]]:
    letters = sorted(set(CORPUS.lower()) - {" ", "\n"})
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(f"{c}</w>" for c in letters), "re", "re</w>"]
    return {token: i for i, token in enumerate(tokens)}, ["r e", "r e</w>"]


def clip(folder: Path, *, size: int = IMAGE_SIZE) -> Path:
    import keras_hub

    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=16, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, image_shape=(size, size, 3)
    )
    vocabulary, merges = _clip_vocabulary()
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=len(vocabulary), embedding_dim=16, hidden_dim=16, num_layers=1, num_heads=2,
        intermediate_dim=32, max_sequence_length=96,
    )  # fmt: skip
    backbone = keras_hub.models.CLIPBackbone(vision, text, projection_dim=12)
    tokenizer = keras_hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=merges)
    converter = keras_hub.layers.CLIPImageConverter(
        image_size=(size, size), scale=[1 / (255 * s) for s in (0.2686, 0.2613, 0.2758)],
        offset=[-m / s for m, s in zip((0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758), strict=True)],
    )  # fmt: skip
    preprocessor = keras_hub.models.CLIPPreprocessor(tokenizer, converter, sequence_length=96)
    backbone.save_to_preset(str(folder))
    preprocessor.save_to_preset(str(folder))
    return folder


MAKERS = {"dinov2": dinov2, "siglip": siglip, "clip": clip}
