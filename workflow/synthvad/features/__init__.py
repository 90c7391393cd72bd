"""Stage 6: open_clip features of segments, as chunk jobs (scatter) and a checked gather.

jobs.py plans the Snakemake jobs (imported at parse time: no torch), sampling.py says
which frames a segment encodes, transforms.py turns frames into model inputs, loader.py
decodes in background workers, extract.py runs the model, gather.py checks and joins the
chunk shards.
"""
