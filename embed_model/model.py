"""The VideoChat-Embed-style model: frozen encoder features -> GMHRA -> Q-Former -> projection
into the frozen LLM's embedding space, followed by the prompt and answer tokens.

Only GMHRA, the Q-Former (its queries included) and the projection train; the LLM and the
encoder stay frozen. The loss is the LLM's next-token loss on the answer tokens only.

Where this departs from VideoChat-Embed, and why:

- **Encoder.** EfficientNet-Lite0 (ImageNet weights, the one image encoder that ships in a
  registry package here) instead of EVA-CLIP ViT-g; GMHRA reads its last feature map only
  (UniFormerV2 attaches a global block to several backbone layers). Any timm/transformers
  encoder plugs in through `EmbedConfig.encoder` where its weights exist.
- **Q-Former from scratch.** No BLIP-2 weights ship in any registry package, so the Q-Former is
  randomly initialized (and far smaller on CPU); BLIP-2's layout is kept: learned queries,
  self-attention every layer, cross-attention every other layer.
- **The question reaches the Q-Former** (`EmbedConfig.qformer_text`, on in the CPU preset,
  off in ``full()``): InstructBLIP's choice, not VideoChat-Embed's. With a scene of several
  shapes the bridge must know which one is asked about; VideoChat-Embed leaves that to a 7B
  LLM, which the CPU preset cannot train through (a step through all 30 layers of SmolLM2-135M
  took 32 s here).
- **A truncated frozen LLM on CPU** (`EmbedConfig.llm_layers`): the CPU preset keeps the
  first of SmolLM2-135M's 30 decoder layers (its real embeddings, final norm and output
  head), so a step costs about 1/30 of the whole model; ``full()`` keeps every layer. A
  one-layer LLM reads little: here it mostly turns the video tokens into answer words, and
  the Q-Former, which sees the question, does the reasoning.
- **The video tokens just before the answer** (`EmbedConfig.video_at="answer"`, the CPU
  preset; ``full()`` keeps VideoChat-Embed's ``prompt`` placement, video first, then the
  question). A truncated LLM is no longer a calibrated language model (the first layer of
  SmolLM2-135M followed by its output head gives ~29 nats per answer token before training,
  against ~6 for the whole model), and its one attention layer is the only road from a video
  token in the prompt to the answer: with the video first, the bridge trained for 250 steps
  stayed at chance on held-out scenes (bench/README.md, 2026-11-28). With the video tokens
  last, the token that predicts the answer's first word is the bridge's own output, which
  reaches the output head through the residual stream.
- **An auxiliary attribute loss and a stage 0** (`EmbedConfig.aux_weight`,
  `TrainConfig.attr_steps`, on in the CPU preset): a linear head reads the video tokens (the
  Q-Former's outputs before the projection) and predicts each object's shape, size and motion
  (one slot per colour), how many objects move and which moves first, from the generator's
  truth (`vidchat.embed_model.scenes.ATTRIBUTE_HEADS`); stage 0 trains the bridge on this loss
  alone before any answer step, and the loss stays on, added to the answer loss, after it.
  VideoChat-Embed has no such loss: its bridge starts from BLIP-2's Q-Former, pre-trained on
  millions of image-caption pairs, and aligns on large caption sets, so its video tokens
  already describe what is seen. Trained from scratch on 1,600 videos, this bridge did not get
  there from the answer loss alone (round 4: 99.2 % of the variance of its video tokens came
  from the question, 0.4 % from the video), although linear probes on the same frozen
  features read the colours; the auxiliary loss is the supervision a pre-trained Q-Former
  would have brought. It needs truth records, so it applies to generated scenes only (other
  videos train without it).
- **Motion signals into GMHRA** (`EmbedConfig.motion`): besides each frame's tokens, GMHRA
  receives (projected and added to each token) the difference of the same position's features
  since the previous frame. UniFormerV2's GMHRA sits on a backbone whose local blocks already
  mix time; here the frozen image encoder sees one frame at a time, so its tokens say what is
  where, never what moved, and GMHRA's zero-initialised temporal convolution did not learn the
  difference from the answer or attribute losses (round 5: motion read back at chance;
  round 6, with the signal and 7x7 tokens: 0.48-0.64 for 5 classes, bench/README.md).
- **A question-conditioned answer head** (`EmbedConfig.aux_answer`): the auxiliary head also
  predicts, from the video tokens, the answer to the example's own visual question (among
  `vidchat.embed_model.scenes.ANSWER_CLASSES`). The Q-Former reads the question (above), and
  this target makes it put the asked-about slot into the tokens ("What shape is the red
  object?"), a selection the one-layer LLM did not learn from the answer loss alone (round 5:
  shape at chance while the attribute head read every colour's shape). BLIP-2's own
  pre-training has question-free objectives only; this is closer to InstructBLIP's
  instruction-aware queries trained with a direct target. Measured (round 6,
  bench/results/embed_answer_head_r6.json): the head reads direction 0.51 and shape 0.46 on
  held-out videos from that token, yet without LoRA (below) the LLM's answers stayed at
  chance on both (bench/results/embed_r6.json).
- **LoRA on the kept LLM layer** (`EmbedConfig.llm_lora_rank`, rank 8 in the CPU preset;
  `vidchat.embed_model.lora`): the frozen layer's attention and MLP projections get trainable
  low-rank updates in stages 1-2 (the LLM's own weights stay frozen; ``full()`` keeps none, as
  VideoChat-Embed). VideoChat2's third stage tunes its LLM with LoRA, so this stays within the
  family. Why: a one-layer SmolLM2 cannot end an answer (its end-of-answer token cost 7.6 nats
  on val after round 6's training, the words after "the" 10.2, the answer word itself 0.89;
  with the adapters 0.002, 1.1 and 0.49: bench/results/embed_probe_r7.jsonl),
  and the loss on those tokens, which the video tokens reach only through the one attention
  layer, swamped the answer word's and undid stage 0's selection (the answer head's colour
  read-back fell from 0.98 to 0.55 during the answer steps). With the adapters the answer
  loss ends at 0.29-0.47 and the LLM's answers follow what the answer head reads
  (bench/README.md, round 7).
- **Alignment data** are descriptions written from the records by code
  (`vidchat.embed_model.scenes.describe_scene`, or LLM-written ones from ``vidchat instruct``), not
  WebVid/CC captions; stage 1 trains the same parts as stage 2 (VideoChat-Embed also trains
  the same bridge in both stages).

Sequence fed to the LLM (ChatML with SmolLM2; the tokenizer's own chat template in general)::

    video_at="prompt" (VideoChat-Embed; full()):
    [prefix tokens] [Q video tokens] [instruction + question + assistant start] [answer, eos]
     ^ label -100     ^ label -100     ^ label -100                               ^ trained

    video_at="answer" (the CPU preset):
    [prefix + instruction + question + assistant start] [Q video tokens] [answer, eos]
     ^ label -100                                        ^ label -100      ^ trained

Multiple choice (`VideoChatEmbed.score_choices`) takes the option whose own tokens have the
highest mean log-likelihood; the eos counts only where it tells the options apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidchat.embed_model.config import EmbedConfig
from vidchat.embed_model.gmhra import GMHRA
from vidchat.embed_model.qformer import QFormer
from vidchat.kernel.errors import ConfigError

__all__ = ["VIDEO_MARK", "Example", "VideoChatEmbed", "load_llm"]

VIDEO_MARK = "<video>"
IGNORE = -100
SYSTEM = "You answer questions about the video."
"""The system turn of every prompt (short: the template's default would cost ~20 tokens)."""


def load_llm(name_or_path: str, layers: int = 0) -> tuple[Any, Any]:
    """The frozen causal LM and its tokenizer: a shipped name (the GGUF is converted once into
    the cache by `vidchat.llm.local`), a GGUF file or a transformers folder. `layers` > 0 keeps
    only the first `layers` decoder layers (embeddings, final norm and output head kept)."""
    from vidchat.llm.local import import_transformers, transformers_folder

    transformers = import_transformers()
    folder = Path(name_or_path)
    if not (folder.is_dir() and (folder / "config.json").exists()):
        folder = transformers_folder(name_or_path)
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    llm = transformers.AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, dtype=torch.float32
    )
    if layers:
        decoder = llm.get_decoder()
        if not hasattr(decoder, "layers") or layers > len(decoder.layers):
            have = len(getattr(decoder, "layers", []))
            raise ConfigError(
                f"llm_layers={layers}: {name_or_path} has {have} decoder layers to keep from"
            )
        decoder.layers = decoder.layers[:layers]
        llm.config.num_hidden_layers = layers
        if getattr(llm.config, "layer_types", None):
            llm.config.layer_types = llm.config.layer_types[:layers]
    llm.eval()
    llm.requires_grad_(False)
    return llm, tok


@dataclass
class Example:
    """One training or inference item: a video's features and one turn."""

    features: torch.Tensor  # [T, N, C]
    instruction: str
    question: str
    answer: str = ""
    targets: torch.Tensor | None = None
    """class index per auxiliary head (`scenes.ATTRIBUTE_HEADS`, then with
    `EmbedConfig.aux_answer` the answer's `scenes.ANSWER_CLASSES` index; -100: none), or
    None."""


class VideoChatEmbed(nn.Module):
    """Trainable bridge between a frozen video encoder's features and a frozen LLM."""

    feat_mean: torch.Tensor  # buffers, present with EmbedConfig.feature_norm
    feat_std: torch.Tensor

    def __init__(
        self,
        config: EmbedConfig,
        encoder_dim: int,
        llm: Any,
        tokenizer: Any,
        encoder_tokens: int | None = None,
    ):
        """`encoder_tokens`: spatial tokens per frame (default ``spatial_tokens**2``)."""
        super().__init__()
        self.config = config
        if encoder_tokens is None:
            if not config.spatial_tokens:
                raise ConfigError("encoder_tokens is needed when spatial_tokens is 0 (keep all)")
            encoder_tokens = config.spatial_tokens**2
        self.encoder_tokens = encoder_tokens
        self.gmhra = GMHRA(
            encoder_dim,
            config.width,
            config.heads,
            config.gmhra_layers,
            config.n_frames,
            encoder_tokens,
            config.gmhra_queries,
            config.mlp_ratio,
            config.dropout,
            motion=config.motion,
        )
        self.qformer = QFormer(
            config.n_queries,
            config.width,
            config.heads,
            config.qformer_layers,
            config.mlp_ratio,
            config.dropout,
            cross_every=config.qformer_cross_every,
            text=config.qformer_text,
        )
        hidden = llm.get_input_embeddings().weight.shape[1]
        if config.qformer_text:
            # The question enters as the frozen LLM's own word embeddings, projected.
            self.text_proj = nn.Linear(hidden, config.width)
            self.text_pos = nn.Parameter(torch.randn(config.max_text_tokens, config.width) * 0.02)
        if config.feature_norm:
            # Filled from the training videos by `set_feature_stats` (saved in checkpoints).
            self.register_buffer("feat_mean", torch.zeros(encoder_dim))
            self.register_buffer("feat_std", torch.ones(encoder_dim))
        self.proj = nn.Linear(config.width, hidden)
        self.aux_sizes: list[int] = []
        if config.aux_weight:
            from vidchat.embed_model.scenes import ANSWER_CLASSES, ATTRIBUTE_HEADS

            self.aux_sizes = [len(classes) for _, classes in ATTRIBUTE_HEADS]
            tokens = config.n_queries if config.aux_from == "queries" else config.gmhra_queries + 1
            # Linear on purpose: what it can read, the (linear) projection into the LLM can too.
            self.aux_head = nn.Linear(tokens * config.width, sum(self.aux_sizes))
            if config.aux_answer:  # the question-conditioned head comes last
                # It reads the last video token only: with video_at="answer" that token's
                # position predicts the answer's first word, so the answer must be there.
                self.answer_head = nn.Linear(config.width, len(ANSWER_CLASSES))
        # Start the video tokens at the scale of the LLM's own word embeddings.
        scale = float(llm.get_input_embeddings().weight.std())
        nn.init.normal_(self.proj.weight, std=scale / math.sqrt(config.width))
        nn.init.zeros_(self.proj.bias)
        # The LLM is held outside the module tree: its weights are never saved in checkpoints
        # nor handed to the optimizer.
        self._llm = [llm]
        self.tokenizer = tokenizer
        self.encoder_dim = encoder_dim
        if config.llm_lora_rank:
            from vidchat.embed_model.lora import LLMAdapters

            # Built last, so the bridge's other weights start as they would without it; installed
            # into the (frozen) LLM, owned here: saved and trained with the bridge.
            self.llm_lora = LLMAdapters(llm, config.llm_lora_rank, config.llm_lora_alpha)

    @property
    def llm(self) -> Any:
        return self._llm[0]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.state_dict().items()}

    # -- video tokens ------------------------------------------------------------------------

    def set_feature_stats(self, features: list[torch.Tensor]) -> None:
        """Per-channel mean and standard deviation of the encoder features ``[T, N, C]`` of the
        training videos (`EmbedConfig.feature_norm`)."""
        if not self.config.feature_norm:
            raise ConfigError("set_feature_stats needs EmbedConfig.feature_norm")
        total = torch.zeros(self.encoder_dim, dtype=torch.float64)
        squares = torch.zeros(self.encoder_dim, dtype=torch.float64)
        count = 0
        for f in features:
            flat = f.reshape(-1, f.shape[-1]).double()
            total += flat.sum(0)
            squares += (flat * flat).sum(0)
            count += flat.shape[0]
        if not count:
            raise ConfigError("set_feature_stats got no features")
        mean = total / count
        std = (squares / count - mean * mean).clamp_min(0).sqrt()
        self.feat_mean.copy_(mean.float())
        self.feat_std.copy_(std.float().clamp_min(1e-4))  # a constant channel stays finite

    def bridge(
        self, feats: torch.Tensor, texts: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T, N, C]`` -> GMHRA's output ``[B, G + T*N, D]`` and the Q-Former's query
        outputs ``[B, Q, D]`` (the video tokens before the projection into the LLM); `texts`
        (one instruction + question per row) reach the Q-Former when the config says so."""
        if self.config.feature_norm:
            feats = (feats - self.feat_mean) / self.feat_std
        tokens = self.gmhra(feats)
        if not self.config.qformer_text or texts is None:
            return tokens, self.qformer(tokens)
        text, pad = self._qformer_text(texts)
        return tokens, self.qformer(tokens, text, pad)

    def video_embeds(self, feats: torch.Tensor, texts: list[str] | None = None) -> torch.Tensor:
        """``[B, T, N, C]`` -> ``[B, Q, H]`` tokens in the LLM's embedding space."""
        return self.proj(self.bridge(feats, texts)[1])

    def aux_logits(self, gmhra_out: torch.Tensor, queries: torch.Tensor) -> list[torch.Tensor]:
        """One ``[B, classes]`` logit table per auxiliary head (`EmbedConfig.aux_from` says
        which of the two bridge outputs it reads)."""
        if not self.aux_sizes:
            raise ConfigError("aux_logits needs EmbedConfig.aux_weight > 0 (no head was built)")
        if self.config.aux_from == "queries":
            x = queries.flatten(1)
        else:  # GMHRA's global queries and the mean of its tokens
            g = self.config.gmhra_queries
            x = torch.cat([gmhra_out[:, :g], gmhra_out[:, g:].mean(1, keepdim=True)], 1).flatten(1)
        out = list(self.aux_head(x).split(self.aux_sizes, dim=-1))
        if self.config.aux_answer:
            out.append(self.answer_head(queries[:, -1]))
        return out

    def aux_loss(
        self, gmhra_out: torch.Tensor, queries: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Mean cross-entropy over every (row, head) with a target (``targets [B, heads]``,
        -100 where an attribute does not exist or the row has no truth)."""
        total = queries.new_zeros(())
        count = 0
        for k, logits in enumerate(self.aux_logits(gmhra_out, queries)):
            t = targets[:, k]
            valid = int((t != IGNORE).sum())
            if valid:
                total = total + nn.functional.cross_entropy(logits, t, reduction="sum")
                count += valid
        return total / max(count, 1)

    def _qformer_text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected word embeddings ``[B, S, D]`` of each text (its end kept when too long)
        and the padding mask ``[B, S]`` (True: padding)."""
        device = self.proj.weight.device
        n = self.config.max_text_tokens
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][-n:] or [0] for t in texts]
        length = max(len(i) for i in ids)
        pad = torch.ones(len(ids), length, dtype=torch.bool, device=device)
        table = torch.zeros(len(ids), length, dtype=torch.long, device=device)
        for k, row in enumerate(ids):
            table[k, : len(row)] = torch.tensor(row, device=device)
            pad[k, : len(row)] = False
        emb = self.llm.get_input_embeddings()(table)
        return self.text_proj(emb) + self.text_pos[:length], pad

    # -- text --------------------------------------------------------------------------------

    def _prompt_parts(self, instruction: str, question: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the video tokens (the chat template's user turn; with
        ``video_at="answer"`` all of the prompt comes before them and nothing after)."""
        at_answer = self.config.video_at == "answer"
        user = ("" if at_answer else f"{VIDEO_MARK}\n") + instruction
        user += f"\n{question}" if question else ""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                tokenize=False,
                add_generation_prompt=True,
            )
        else:
            text = f"User: {user}\nAssistant: "
        if at_answer:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            return ids[-self.config.max_text_tokens :], []
        before, _, after = text.partition(VIDEO_MARK)
        ids_b = tok(before, add_special_tokens=False)["input_ids"]
        ids_a = tok(after, add_special_tokens=False)["input_ids"]
        room = self.config.max_text_tokens - len(ids_b)
        return ids_b, ids_a[-max(room, 8) :]

    def _answer_ids(self, answer: str) -> list[int]:
        tok = self.tokenizer
        ids = tok(answer, add_special_tokens=False)["input_ids"][: self.config.max_answer_tokens]
        return ids + ([tok.eos_token_id] if tok.eos_token_id is not None else [])

    @staticmethod
    def bridge_texts(examples: list[Example]) -> list[str]:
        """What the Q-Former reads of each example (with `EmbedConfig.qformer_text`)."""
        return [f"{e.instruction}\n{e.question}".strip() for e in examples]

    def build_inputs(
        self,
        examples: list[Example],
        answers: list[str] | None = None,
        vid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """inputs_embeds ``[B, L, H]``, attention mask ``[B, L]`` and labels ``[B, L]`` (answer
        tokens only; right padding). `vid`: the video tokens when already computed."""
        device = self.proj.weight.device
        if vid is None:
            feats = torch.stack([e.features for e in examples]).to(device)
            vid = self.video_embeds(feats, self.bridge_texts(examples))  # [B, Q, H]
        emb = self.llm.get_input_embeddings()
        rows, labels = [], []
        for k, e in enumerate(examples):
            before, after = self._prompt_parts(e.instruction, e.question)
            ans = self._answer_ids(answers[k] if answers is not None else e.answer)
            text_ids = torch.tensor(before + after + ans, device=device)
            t = emb(text_ids)
            nb = len(before)
            rows.append(torch.cat([t[:nb], vid[k], t[nb:]]))
            lab = [IGNORE] * (nb + vid.shape[1] + len(after)) + ans
            labels.append(torch.tensor(lab, device=device))
        length = max(r.shape[0] for r in rows)
        hidden = rows[0].shape[1]
        x = rows[0].new_zeros(len(rows), length, hidden)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        y = torch.full((len(rows), length), IGNORE, dtype=torch.long, device=device)
        for k, (r, row_labels) in enumerate(zip(rows, labels, strict=True)):
            x[k, : r.shape[0]] = r
            mask[k, : r.shape[0]] = 1
            y[k, : row_labels.shape[0]] = row_labels
        return x, mask, y

    def _answer_logits(
        self,
        examples: list[Example],
        answers: list[str] | None = None,
        vid: torch.Tensor | None = None,
    ):
        """Logits at the positions that predict an answer token, and those tokens.

        The vocabulary projection runs only there (about a tenth of the sequence): with a 49k
        vocabulary it is most of the cost of a step on a CPU otherwise.
        """
        x, mask, y = self.build_inputs(examples, answers, vid)
        hidden = self.llm.base_model(inputs_embeds=x, attention_mask=mask).last_hidden_state
        target = y[:, 1:]
        keep = target != IGNORE  # [B, L-1]
        logits = self.llm.get_output_embeddings()(hidden[:, :-1][keep])  # [K, V]
        return logits.float(), target[keep], keep

    def losses(
        self, examples: list[Example], answer_head: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The main loss (mean next-token loss over the answer tokens of the batch) and the
        auxiliary attribute loss (None when it is off or no example of the batch has
        targets); `answer_head` False leaves the question-conditioned answer head's target out
        (`TrainConfig.answer_head_in_answers`)."""
        device = self.proj.weight.device
        feats = torch.stack([e.features for e in examples]).to(device)
        gmhra_out, queries = self.bridge(feats, self.bridge_texts(examples))
        logits, target, _ = self._answer_logits(examples, vid=self.proj(queries))
        main = nn.functional.cross_entropy(logits, target)
        if not self.aux_sizes or all(e.targets is None for e in examples):
            return main, None
        n = len(self.aux_sizes) + int(self.config.aux_answer)
        none = torch.full((n,), IGNORE, dtype=torch.long)
        targets = torch.stack([none if e.targets is None else e.targets for e in examples])
        if self.config.aux_answer and not answer_head:
            targets = targets.clone()
            targets[:, -1] = IGNORE
        return main, self.aux_loss(gmhra_out, queries, targets.to(device))

    def attribute_loss(self, examples: list[Example]) -> torch.Tensor:
        """The auxiliary attribute loss alone (stage 0 of training: the LLM is not run);
        every example must carry targets."""
        if not self.aux_sizes:
            raise ConfigError("attribute_loss needs EmbedConfig.aux_weight > 0")
        missing = sum(e.targets is None for e in examples)
        if missing:
            raise ConfigError(
                f"attribute_loss needs targets on every example; {missing} of "
                f"{len(examples)} have none (videos without a truth record)"
            )
        device = self.proj.weight.device
        feats = torch.stack([e.features for e in examples]).to(device)
        gmhra_out, queries = self.bridge(feats, self.bridge_texts(examples))
        targets = torch.stack([e.targets for e in examples if e.targets is not None])
        return self.aux_loss(gmhra_out, queries, targets.to(device))

    def forward(self, examples: list[Example]) -> torch.Tensor:
        """The training loss: the main loss plus `EmbedConfig.aux_weight` x the auxiliary one."""
        main, aux = self.losses(examples)
        return main if aux is None else main + self.config.aux_weight * aux

    # -- inference ---------------------------------------------------------------------------

    def ends_matter(self, choices: list[str]) -> bool:
        """Whether the end-of-answer token tells `choices` apart: only when one choice's tokens
        start another's ("1" and "10"). Otherwise the eos after an answer is predicted from the
        answer's own words, which says how the frozen LLM likes that word to end a reply, not
        what the video shows (with a truncated LLM a bias of several nats per option)."""
        ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        return any(a != b and len(a) <= len(b) and b[: len(a)] == a for a in ids for b in ids)

    @torch.no_grad()
    def score_choices(
        self, example: Example, choices: list[str], with_eos: bool | None = None
    ) -> list[float]:
        """Mean log-likelihood of each candidate answer's tokens (higher is likelier); the
        end-of-answer token counts when `with_eos` (None: when `ends_matter`)."""
        logits, target, keep = self._answer_logits([example] * len(choices), answers=choices)
        picked = torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        rows = keep.nonzero()[:, 0]  # which choice each kept position belongs to
        eos = self.tokenizer.eos_token_id
        if eos is not None and not (self.ends_matter(choices) if with_eos is None else with_eos):
            # Each row's last kept position predicts its eos (rows come in order).
            last = torch.ones_like(rows, dtype=torch.bool)
            last[:-1] = rows[1:] != rows[:-1]
            only = ~last | (keep.sum(1)[rows] == 1)  # an empty answer keeps its eos
            picked, rows = picked[only], rows[only]
        total = torch.zeros(len(choices)).index_add_(0, rows.cpu(), picked.cpu())
        count = torch.zeros(len(choices)).index_add_(0, rows.cpu(), torch.ones_like(picked).cpu())
        return (total / count.clamp(min=1)).tolist()

    @torch.no_grad()
    def answer_token_losses(self, example: Example, answer: str) -> list[float]:
        """The next-token loss (nats) of each token of `answer`, its end-of-answer token last
        (where the loss of training goes: the first token is the word the video decides; the
        later ones and the end follow from the LLM's own continuation)."""
        logits, target, _ = self._answer_logits([example], answers=[answer])
        nll = -torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return [float(x) for x in nll]

    @torch.no_grad()
    def generate(self, example: Example, max_new_tokens: int = 64) -> str:
        """Greedy answer to one example's question."""
        x, mask, _ = self.build_inputs([example], answers=[""])
        # build_inputs appended the eos of the empty answer: drop it so generation starts fresh.
        n_eos = 1 if self.tokenizer.eos_token_id is not None else 0
        if n_eos:
            x, mask = x[:, :-1], mask[:, :-1]
        out = self.llm.generate(
            inputs_embeds=x,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        return self.tokenizer.decode(out[0], skip_special_tokens=True).strip()
