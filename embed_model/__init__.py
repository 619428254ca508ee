"""The VideoChat-Embed-style model: a frozen vision encoder, GMHRA over time, a Q-Former with
learned queries, and a linear projection into a frozen LLM's embedding space, instruction-tuned
on data from ``vidchat instruct``.

- `embed_model.config`: `EmbedConfig` (model; ``tiny()`` for tests, ``cpu()`` to train for real
  on 2 CPU cores, ``full()`` for a GPU) and `TrainConfig` (``cpu()``: the two-stage schedule),
  both saved inside every checkpoint.
- `vidchat.embed_model.encoder`: the frozen encoder wrapper and the on-disk feature cache.
- `embed_model.gmhra`, `embed_model.qformer`, `embed_model.model`: the trainable parts and the
  whole model (loss on answer tokens only; `gmhra.motion_inputs`: the frame-difference signal
  GMHRA adds to its tokens, `EmbedConfig.motion`).
- `embed_model.lora`: LoRA adapters on the frozen LLM's kept layers (`EmbedConfig.llm_lora_rank`),
  owned and saved by the bridge, installed into the LLM.
- `embed_model.data`, `embed_model.train`: dataset and the training loop (stage 0, optional:
  the auxiliary attribute loss alone; then VideoChat-Embed's two stages, alignment on
  descriptions and instruction tuning; AdamW, accumulation, checkpoint and resume).
- `vidchat.embed_model.infer`: `answer_with_embed(video_or_record, question, checkpoint)`.
- `embed_model.synthetic`: moving-square videos with exact records, and a tiny local LLM, for
  tests.
- `embed_model.scenes`: the comparison task: generated scenes with questions that need pixels
  and questions the text path owns, balanced answers, truth and text-path records, and the
  attribute targets of the auxiliary loss (`ATTRIBUTE_HEADS`, `scene_targets`; the
  question-conditioned answer head's `ANSWER_CLASSES`, `answer_target`).

Where the model departs from VideoChat-Embed, and why, is written in `vidchat.embed_model.model`.

Heavy libraries (torch, transformers) load when these submodules are imported, never here.
"""
