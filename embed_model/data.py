"""The instruction dataset: items from ``vidchat instruct`` JSONL, with each video's frozen
encoder features computed once (and cached on disk by `embed_model.encoder.video_features`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vidchat.apps.instruct import QA, InstructionRecord, read_jsonl
from vidchat.embed_model.config import EmbedConfig
from vidchat.embed_model.encoder import FrozenEncoder, video_features
from vidchat.embed_model.model import Example
from vidchat.embed_model.scenes import answer_target, scene_targets
from vidchat.kernel.errors import InputError

__all__ = ["InstructionDataset", "Item"]


@dataclass
class Item:
    sha256: str
    video: str
    qa: QA


class InstructionDataset:
    """Every QA of the records in `split` (or all splits with None), as model `Example`s (with
    blank frames for every video when `EmbedConfig.blind`, and each generated scene's
    attribute targets when `EmbedConfig.aux_weight`: a blind twin gets the same targets, so
    it learns their priors, as it learns the answers' priors)."""

    def __init__(
        self,
        records: list[InstructionRecord] | str | Path,
        config: EmbedConfig,
        encoder: FrozenEncoder,
        split: str | None = "train",
        mc_only: bool = False,
        open_only: bool = False,
        types: set[str] | None = None,
        exclude_types: set[str] | None = None,
    ) -> None:
        """`types`/`exclude_types` keep or drop question types (``description`` is stage 1's
        alignment data); `mc_only`/`open_only` keep one form of the questions."""
        recs = read_jsonl(records) if isinstance(records, (str, Path)) else records
        self.items = [
            Item(r.sha256, r.video, qa)
            for r in recs
            if split is None or r.split == split
            for qa in r.QA
            if (qa.is_mc or not mc_only)
            and (not qa.is_mc or not open_only)
            and (types is None or qa.type in types)
            and (exclude_types is None or qa.type not in exclude_types)
        ]
        if not self.items:
            what = [
                w
                for w, on in (
                    ("multiple choice only", mc_only),
                    ("open-ended only", open_only),
                    (f"types {sorted(types or [])}", types is not None),
                    (f"not types {sorted(exclude_types or [])}", exclude_types is not None),
                )
                if on
            ]
            raise InputError(
                f"no instruction items in split {split!r}"
                + (f" ({', '.join(what)})" if what else "")
                + f" among {len(recs)} video record(s)"
            )
        self.aux_answer = config.aux_answer
        self.features: dict[str, torch.Tensor] = {}
        self.targets: dict[str, torch.Tensor | None] = {}
        """auxiliary attribute targets per video (`EmbedConfig.aux_weight`; None: no truth)."""
        blank: torch.Tensor | None = None
        for it in self.items:
            if it.sha256 in self.features:
                continue
            if config.blind:  # the trained blind baseline: one blank video for every item
                if blank is None:
                    blank = video_features(it.video, encoder, config.n_frames, perturb="blank")
                self.features[it.sha256] = blank
            else:
                self.features[it.sha256] = video_features(it.video, encoder, config.n_frames)
            if config.aux_weight:
                t = scene_targets(it.video)
                self.targets[it.sha256] = None if t is None else torch.tensor(t)

    def __len__(self) -> int:
        return len(self.items)

    def example(self, k: int) -> Example:
        it = self.items[k]
        targets = self.targets.get(it.sha256)
        if targets is not None and self.aux_answer:  # the question's own answer, last
            targets = torch.cat([targets, torch.tensor([answer_target(it.qa.type, it.qa.a)])])
        return Example(self.features[it.sha256], it.qa.i, it.qa.q, it.qa.a, targets)

    def batches(self, batch_size: int, generator: torch.Generator):
        """An endless stream of shuffled batches (reshuffled every epoch)."""
        while True:
            order = torch.randperm(len(self.items), generator=generator).tolist()
            # Full batches only (a ragged last batch is dropped), but always at least one.
            for s in range(0, max(len(order) - batch_size + 1, 1), batch_size):
                yield [self.example(k) for k in order[s : s + batch_size]]
