"""Stage 3: one text-to-video or image-to-video prompt per clip (PA-VAD 3.1.2, GV-VAD II-A)."""
