"""Video synthesis backends: turn a prompt (text, or text plus a retrieved frame) into a clip.

`perturb` is the offline, rule-based backend that needs no model weights; `cogvideox`,
`wan_i2v` and `wan_t2v` run diffusers pipelines (diffusion.py). run.py drives a job,
jobs.py plans the Snakemake jobs, locate.py finds the weights.
"""
