"""The VideoChat-Embed-style model: a frozen vision encoder, GMHRA over time, a Q-Former with
learned queries, and a linear projection into a frozen LLM's embedding space, instruction-tuned
on data from ``vidchat instruct``.

- `embed_model.config`: `EmbedConfig` (model; ``tiny()`` for CPU tests, ``full()`` for a GPU) and
  `TrainConfig`, both saved inside every checkpoint.
- `embed_model.encoder`: the frozen encoder wrapper and the on-disk feature cache.
- `embed_model.gmhra`, `embed_model.qformer`, `embed_model.model`: the trainable parts and the
  whole model (loss on answer tokens only).
- `embed_model.data`, `embed_model.train`: dataset and training loop (AdamW, accumulation,
  checkpoint and resume).
- `embed_model.infer`: `answer_with_embed(video_or_record, question, checkpoint)`.
- `embed_model.synthetic`: videos with exact records, for tests and the benchmark.

Heavy libraries (torch, transformers) load when these submodules are imported, never here.
"""
