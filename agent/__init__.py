"""The tuned VideoLLM as a tool-using agent on real videos, and the long-video benchmark harness.

- ``agent.models``: the model protocol (transformers in-process, OpenAI-compatible server); ``agent.scripted``
  holds ``ScriptedModel``, a test double.
- ``agent.video_tools`` / ``agent.retrieval``: the builder's video-space executors plus ClipRetrieval over
  video-text clip embeddings.
- ``agent.loop`` (the multi-turn tool loop, caps, forced answer) and ``agent.policy`` (uniform, agent and the
  paper's adaptive policy).
- ``agent.benchmarks`` (MLVU, LVBench, Video-MME, LongVideoBench readers), ``agent.answers`` (final-answer
  extraction, confidence), ``agent.metrics`` and ``agent.evaluate`` (resumable results, summary).
- ``agent.commands``: ``videothinker agent`` and ``videothinker eval``; ``agent.cli`` is the root CLI.
"""
