"""Video synthesis backends: turn a prompt (text, or text plus a retrieved frame) into a clip.

`perturb` is the offline, rule-based backend that needs no model weights.
"""
