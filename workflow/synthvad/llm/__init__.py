"""OpenAI-compatible chat backends of describe (LLM) and refine (VLM).

settings: the `<stage>.openai` config block; client: the `openai` client with a preflight
check and key redaction; cache: one file per answered request; batch: bounded parallel
requests with answer validation and re-asking.
"""
