"""Socratic hints: LLM backends, prompts, the answer-leak guard and dialogue state."""
